//! Fetch reflects upstream: clones and pulls of the declared URL go through the gate, which
//! fetches first, and fail with one sentence when the upstream cannot be reached.

use crate::support::{GateProcess, TestContext, Upstream, rev};

#[test]
fn a_clone_of_the_declared_url_goes_through_the_gate_and_reflects_upstream() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");

    // The agent names the upstream; its git rewrites that to the gate (nothing else could
    // resolve `upstream.test`, and every proxy variable points at a closed port).
    let declared = upstream.url(&bare);
    let work = ctx.clone(&declared, "work");
    assert_eq!(
        std::fs::read_to_string(work.join("README.md")).unwrap(),
        "# upstream\n"
    );
    // The work tree keeps the declared URL; git rewrites it to the gate at each use.
    assert_eq!(
        ctx.git_ok(&work, &["config", "remote.origin.url"]).trim(),
        declared
    );
    assert_eq!(
        ctx.git_ok(&work, &["remote", "get-url", "origin"]).trim(),
        gate.url("app")
    );
    assert_eq!(
        ctx.git_ok(&work, &["rev-parse", "HEAD"]).trim(),
        rev(&bare, "main").unwrap()
    );
    assert!(
        gate.log().contains("path=/app.git/info/refs"),
        "the clone went through the gate:\n{}",
        gate.log()
    );

    // Another writer moves the upstream; the agent's next pull sees it at once.
    let theirs = upstream.commit_directly(&ctx, &bare, &[("NEWS.md", "news\n")], "from elsewhere");
    ctx.git_ok(&work, &["pull", "--quiet", "--ff-only"]);
    assert_eq!(ctx.git_ok(&work, &["rev-parse", "HEAD"]).trim(), theirs);
    assert_eq!(
        rev(&gate.repo("app"), "refs/heads/main").as_deref(),
        Some(theirs.as_str())
    );

    // And with the older protocol too.
    ctx.git_ok(
        ctx.dir.path(),
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "--quiet",
            &declared,
            "work-v0",
        ],
    );
    assert_eq!(
        ctx.git_ok(&ctx.path("work-v0"), &["rev-parse", "HEAD"])
            .trim(),
        theirs
    );
}

#[test]
fn the_upstream_default_branch_is_what_a_clone_checks_out() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    // The upstream's default is `trunk`, not the gate's own initial `master`.
    let out = crate::support::plain_git(&bare, &["branch", "-m", "main", "trunk"]);
    assert!(out.status.success(), "{out:?}");
    let _gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let work = ctx.clone(&upstream.url(&bare), "work");
    assert_eq!(
        ctx.git_ok(&work, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "trunk"
    );
}

#[test]
fn an_unreachable_upstream_fails_clone_and_push_with_one_clear_sentence() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let declared = upstream.url(&bare);
    let work = ctx.clone(&declared, "work");
    let before = rev(&gate.repo("app"), "refs/heads/main");
    assert!(before.is_some());

    upstream.stop();

    // The gate has a copy, but serves no answer it could not refresh.
    let stderr = ctx.git_fails(ctx.dir.path(), &["clone", &declared, "again"]);
    let expected = format!("fatal: remote error: bottle-git-gate cannot fetch from {declared}: ");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert_eq!(
        stderr.lines().count(),
        2,
        "one line from the gate (after `Cloning into`):\n{stderr}"
    );
    assert!(!ctx.path("again").join("README.md").exists());

    let stderr = ctx.git_fails(&work, &["fetch"]);
    assert!(stderr.contains(&expected), "{stderr}");

    crate::support::commit(&ctx, &work, &[("a.txt", "a\n")], "local work");
    let stderr = ctx.git_fails(&work, &["push", "origin", "HEAD:main"]);
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(rev(&gate.repo("app"), "refs/heads/main"), before);
}

#[test]
fn concurrent_clones_all_get_the_upstream() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let _gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let declared = upstream.url(&bare);
    let head = rev(&bare, "main").unwrap();
    std::thread::scope(|s| {
        let clones: Vec<_> = (0..4)
            .map(|i| {
                let (ctx, declared) = (&ctx, &declared);
                s.spawn(move || ctx.clone(declared, &format!("work-{i}")))
            })
            .collect();
        for clone in clones {
            let work = clone.join().unwrap();
            assert_eq!(ctx.git_ok(&work, &["rev-parse", "HEAD"]).trim(), head);
        }
    });
}

#[test]
fn a_fetch_whose_request_git_gzips_is_served() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let _gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let work = ctx.clone(&upstream.url(&bare), "work");
    // Many local commits the upstream lacks: the fetch's `have` lines pass 1 KiB, and git
    // sends them with `Content-Encoding: gzip`.
    for i in 0..60 {
        crate::support::commit(
            &ctx,
            &work,
            &[("local.txt", &format!("{i}\n"))],
            &format!("local {i}"),
        );
    }
    let theirs = upstream.commit_directly(&ctx, &bare, &[("NEWS.md", "news\n")], "upstream moves");
    let out = ctx.git_with(
        &work,
        &["-c", "protocol.version=0", "fetch", "origin"],
        &[("GIT_TRACE_CURL", "1"), ("GIT_TRACE_CURL_NO_DATA", "1")],
    );
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(
        trace.contains("Content-Encoding: gzip"),
        "the request was not gzipped:\n{trace}"
    );
    assert_eq!(
        ctx.git_ok(&work, &["rev-parse", "origin/main"]).trim(),
        theirs
    );
}

#[test]
fn an_empty_upstream_can_be_cloned_and_gets_its_first_branch_by_push() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.empty_repo("fresh");
    let _gate = GateProcess::serving(&ctx, &upstream, "fresh", &bare, "");
    let out = ctx.git(ctx.dir.path(), &["clone", &upstream.url(&bare), "work"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty repository"));
    let work = ctx.path("work");
    let id = crate::support::commit(&ctx, &work, &[("README.md", "first\n")], "first");
    ctx.git_ok(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
    );
    assert_eq!(rev(&bare, "refs/heads/main").as_deref(), Some(id.as_str()));
    // A second clone checks out the new branch: the gate's HEAD followed the upstream's.
    let again = ctx.clone(&upstream.url(&bare), "again");
    assert_eq!(
        std::fs::read_to_string(again.join("README.md")).unwrap(),
        "first\n"
    );
}

#[test]
fn a_client_outside_clients_is_closed_unanswered() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let entry = [upstream.entry_yaml("app", &bare, "")];
    // Loopback is not among the clients: the test's connection gets no byte back.
    let closed = GateProcess::start(&ctx, &entry, "clients: [10.255.255.0/24]\n", &[]);
    let mut stream = std::net::TcpStream::connect(closed.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // The request may or may not be written before the gate closes; either way, no byte back
    // (a reset is as good as an empty reply).
    let _ = std::io::Write::write_all(
        &mut stream,
        b"GET /app.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: git-gate\r\n\r\n",
    );
    let mut reply = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut reply);
    assert!(reply.is_empty(), "{}", closed.log());
    assert!(
        closed
            .log()
            .contains("refused a connection from outside `clients`"),
        "{}",
        closed.log()
    );
    // With loopback among them, the same request is served.
    let open = GateProcess::start(
        &ctx,
        &entry,
        "clients: [10.255.255.0/24, 127.0.0.0/8]\n",
        &[],
    );
    let (status, _) = open.get("/health");
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", open.log());
}
