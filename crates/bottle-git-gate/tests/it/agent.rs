//! The agent's side: the rendered git config rewrites every spelling of a declared upstream to
//! the gate, for fetch and for push, and bypasses the agent's proxy for the gate.

use std::path::Path;

use bottle_git_gate::agent::{GateEndpoint, render_gitconfig, url_spellings};
use bottle_manifest::{GitEntry, GitUser};

use crate::support::{GateProcess, TestContext, Upstream};

fn entry(name: &str, upstream: &str) -> GitEntry {
    bottle_manifest::yaml::parse(&format!(
        "Name: {name}\nUpstream: {upstream}\nIdentityFile: /k\nKnownHostKey: ssh-ed25519 AAAA\n"
    ))
    .unwrap()
}

#[test]
fn every_spelling_of_a_declared_upstream_resolves_to_the_gate_for_fetch_and_push() {
    let ctx = TestContext::new();
    let entries = [
        entry("app", "ssh://git@github.com/me/app.git"),
        entry("infra", "ssh://git@gitea.example.com:30009/team/infra.git"),
        entry("tools", "ssh://git@github.com/me/app-tools.git"),
    ];
    std::fs::write(
        ctx.home.join(".gitconfig"),
        render_gitconfig(&GateEndpoint::in_bottle(), &entries, &GitUser::default()),
    )
    .unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "ssh://git@github.com/me/app.git",
            "http://git-gate:9419/app.git",
        ),
        ("ssh://git@github.com/me/app", "http://git-gate:9419/app"),
        (
            "ssh://git@github.com:22/me/app.git",
            "http://git-gate:9419/app.git",
        ),
        ("git@github.com:me/app.git", "http://git-gate:9419/app.git"),
        ("git@github.com:me/app", "http://git-gate:9419/app"),
        ("git@github.com:/me/app.git", "http://git-gate:9419/app.git"),
        (
            "https://github.com/me/app.git",
            "http://git-gate:9419/app.git",
        ),
        ("https://github.com/me/app", "http://git-gate:9419/app"),
        ("https://github.com/me/app/", "http://git-gate:9419/app/"),
        // The longer declared path wins over its prefix.
        (
            "git@github.com:me/app-tools.git",
            "http://git-gate:9419/tools.git",
        ),
        (
            "ssh://git@gitea.example.com:30009/team/infra.git",
            "http://git-gate:9419/infra.git",
        ),
    ];
    let dir = ctx.dir.path();
    for (url, expected) in cases {
        assert_eq!(
            ctx.git_ok(dir, &["ls-remote", "--get-url", url]).trim(),
            *expected,
            "fetch URL of {url}"
        );
    }
    ctx.git_ok(dir, &["init", "--quiet", "repo"]);
    let repo = ctx.path("repo");
    for (i, (url, expected)) in cases.iter().enumerate() {
        let name = format!("r{i}");
        ctx.git_ok(&repo, &["remote", "add", &name, url]);
        assert_eq!(
            ctx.git_ok(&repo, &["remote", "get-url", "--push", &name])
                .trim(),
            *expected,
            "push URL of {url}"
        );
    }
    // Undeclared repositories are left alone (and, in a bottle, unreachable).
    assert_eq!(
        ctx.git_ok(
            dir,
            &["ls-remote", "--get-url", "git@github.com:me/other.git"]
        )
        .trim(),
        "git@github.com:me/other.git"
    );
    assert_eq!(
        url_spellings(&entries[1].upstream),
        ["ssh://git@gitea.example.com:30009/team/infra"],
        "scp syntax has no port, and gitea.example.com is no known forge"
    );
}

#[test]
fn the_gate_is_reached_past_the_agents_proxy_only_thanks_to_the_rendered_config() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let gate = GateProcess::start(&ctx, &[upstream.entry_yaml("app", &bare, "")], "", &[]);
    let entries = [upstream.entry("app", &bare, "")];
    ctx.install_agent_gitconfig(&gate, &entries);
    let rendered = std::fs::read_to_string(ctx.home.join(".gitconfig")).unwrap();

    // Without the `[http "<gate>"] proxy = ""` section, git follows http_proxy (a closed
    // port in the test context) and cannot reach the gate.
    let without_proxy_line: String = {
        let mut skip = false;
        rendered
            .lines()
            .filter(|l| {
                if l.starts_with("[http ") {
                    skip = true;
                    return false;
                }
                if l.starts_with('[') {
                    skip = false;
                }
                !skip
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    std::fs::write(ctx.home.join(".gitconfig"), &without_proxy_line).unwrap();
    let stderr = ctx.git_fails(ctx.dir.path(), &["clone", &upstream.url(&bare), "blocked"]);
    assert!(
        stderr.contains("127.0.0.1 port 9") || stderr.contains("proxy"),
        "{stderr}"
    );

    std::fs::write(ctx.home.join(".gitconfig"), &rendered).unwrap();
    ctx.clone(&upstream.url(&bare), "work");
    assert!(Path::new(&ctx.path("work/README.md")).is_file());
}
