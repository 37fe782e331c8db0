//! `start`, `resume`, `cleanup`, `list active` and `completions` against bottle-core's
//! recording fake backend (the binary under test is built with the `testing` feature), and
//! their `--help`.

use crate::TestContext;
use crate::bottle_support::{
    backend_used, fake_context, find_identity, kept_states, record, redact_identity, run_detached,
    run_with,
};

fn help(args: &[&str]) -> String {
    let run = TestContext::new().run(args);
    assert_eq!(run.code, 0, "{}", run.all());
    run.stdout
}

#[test]
fn start_help() {
    let out = help(&["start", "--help"]);
    assert!(out.contains("Examples:"));
    insta::assert_snapshot!(out);
}

#[test]
fn resume_help() {
    insta::assert_snapshot!(help(&["resume", "--help"]));
}

#[test]
fn cleanup_help() {
    insta::assert_snapshot!(help(&["cleanup", "--help"]));
}

#[test]
fn completions_help() {
    insta::assert_snapshot!(help(&["completions", "--help"]));
}

#[test]
fn completions_name_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = help(&["completions", shell]);
        for command in ["start", "resume", "cleanup", "list", "check", "info"] {
            assert!(
                out.contains(command),
                "{shell} completions lack `{command}`"
            );
        }
    }
}

#[test]
fn an_unknown_backend_is_refused_with_the_known_ones() {
    let ctx = TestContext::new();
    let run = ctx.run(&["start", "--backend", "podman", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    insta::assert_snapshot!(run.all());

    let run = ctx
        .env("CLAUDE_BOTTLE_BACKEND", "vm")
        .run(&["list", "active"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("unknown backend `vm` (from CLAUDE_BOTTLE_BACKEND)")
    );
}

#[test]
fn start_yes_exec_runs_the_command_and_tears_down() {
    let ctx = fake_context()
        .env("ANTHROPIC_API_KEY", "sk-ant-real-key-never-shown")
        .env("CLAUDE_BOTTLE_FAKE_EXIT_CODE", "0");
    ctx.bottle(
        "work",
        "---\nenv:\n  MODE: fast\n  TOKEN: \"${HOST_TOKEN}\"\n---\n",
    )
    .agent("coder", "---\nbottle: work\n---\nYou write code.\n");
    let ctx = ctx.env("HOST_TOKEN", "host-secret-value");
    let run = ctx.run(&["start", "coder", "--yes", "--exec", "echo hi; exit 0"]);
    assert_eq!(run.code, 0, "{}", run.all());

    let record = record(&ctx);
    // No skills and no --cwd: those steps have nothing to do and are not run.
    assert_eq!(
        record.names(),
        [
            "resolve-plan",
            "launch",
            "provision-ca",
            "write-files",
            "exec",
            "write-files",
            "provision-prompt",
            "write-files",
            "provision-supervise",
            "exec-attached",
            "close",
            "teardown"
        ]
    );
    let exec = record.call("exec-attached").expect("exec");
    assert_eq!(exec["script"], "echo hi; exit 0");
    assert_eq!(exec["tty"], false, "no terminal in this test");
    let launch = record.call("launch").expect("launch");
    assert_eq!(
        launch["env"],
        serde_json::json!(["MODE", "TOKEN", "ANTHROPIC_API_KEY"]),
        "manifest env, then the placeholder"
    );
    assert!(record.resources.is_empty(), "left: {:?}", record.resources);
    assert!(kept_states(&ctx).is_empty(), "a clean exit keeps no state");
    for secret in ["fast", "host-secret-value", "sk-ant-real-key-never-shown"] {
        assert!(
            !run.all().contains(secret),
            "`{secret}` was shown:\n{}",
            run.all()
        );
    }
    insta::assert_snapshot!(redact_identity(&run.all(), "coder"));
}

#[test]
fn after_the_session_each_host_the_egress_refused_is_named_with_what_would_allow_it() {
    let ctx = fake_context()
        .env("ANTHROPIC_API_KEY", "sk-ant-real-key-never-shown")
        .env(
            "CLAUDE_BOTTLE_FAKE_REFUSED",
            "registry.npmjs.org:12:host_not_allowed,\
             api.github.com:2:method_not_allowed+path_not_allowed,\
             github.com:1:git_push",
        );
    ctx.agent("coder", "---\nbottle: default\n---\nYou write code.\n");
    let run = ctx.run(&["start", "coder", "--yes", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let refused: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("refused:"))
        .collect();
    insta::assert_snapshot!(refused.join("\n"));
}

#[test]
fn the_exec_exit_code_is_the_exit_code_and_state_is_kept() {
    let ctx = fake_context().env("CLAUDE_BOTTLE_FAKE_EXIT_CODE", "7");
    let run = ctx.run(&["start", "--yes", "--exec", "exit 7"]);
    assert_eq!(run.code, 7, "{}", run.all());
    let identity = find_identity(&run.stderr, "default");
    assert_eq!(kept_states(&ctx), std::slice::from_ref(&identity));
    assert!(run.stderr.contains("the session exited with code 7"));
    assert!(record(&ctx).resources.is_empty());
}

#[test]
fn claude_args_follow_the_double_dash() {
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    ctx.agent("writer", "---\nbottle: default\n---\nWrite well.\n");
    let run = ctx.run(&[
        "start",
        "writer",
        "--yes",
        "--remote-control",
        "--",
        "-p",
        "say hi",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = record(&ctx);
    let exec = record.call("exec-claude").expect("claude ran");
    assert_eq!(
        exec["argv"],
        serde_json::json!([
            "--append-system-prompt-file",
            "/home/node/.claude-bottle/prompt.md",
            "--remote-control",
            "-p",
            "say hi"
        ])
    );
}

#[test]
fn without_a_terminal_and_without_yes_nothing_is_created() {
    let ctx = fake_context();
    let run = run_detached(&ctx, ctx.command(&["start", "--exec", "true"]), "y\n");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        !backend_used(&ctx),
        "refused before the backend was contacted"
    );
    assert!(kept_states(&ctx).is_empty());

    let run = run_detached(&ctx, ctx.command(&["resume", "default-abcde"]), "y\n");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no terminal"), "{}", run.stderr);
    assert!(!backend_used(&ctx));
    insta::assert_snapshot!(redact_identity(&run.stderr, "default"));
}

#[test]
fn a_prompted_secret_needs_a_terminal_even_with_yes() {
    let ctx = fake_context();
    ctx.bottle(
        "asks",
        "---\nenv:\n  API_TOKEN: \"?paste the token\"\n---\n",
    )
    .agent("asker", "---\nbottle: asks\n---\n");
    let run = run_detached(
        &ctx,
        ctx.command(&["start", "asker", "--yes", "--exec", "true"]),
        "",
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("API_TOKEN") && run.stderr.contains("no terminal"),
        "{}",
        run.stderr
    );
    assert_eq!(record(&ctx).names(), ["resolve-plan"], "no launch");
}

#[test]
fn a_failed_step_tears_down_keeps_state_and_resume_continues() {
    // The default agent has a prompt and no skills: copying the prompt is a step it runs.
    let ctx = fake_context().env("CLAUDE_BOTTLE_FAKE_FAIL_AT", "provision-prompt");
    let run = ctx.run(&["start", "--yes", "--exec", "true"]);
    assert_eq!(run.code, 5, "{}", run.all());
    let failed = record(&ctx);
    assert_eq!(failed.names().last(), Some(&"teardown"));
    assert!(!failed.names().contains(&"exec-attached"));
    assert!(failed.resources.is_empty(), "left: {:?}", failed.resources);
    let identity = find_identity(&run.stderr, "default");
    assert_eq!(kept_states(&ctx), std::slice::from_ref(&identity));
    insta::assert_snapshot!(redact_identity(&run.all(), "default"));

    // `resume` starts the same bottle again, from its state.
    let ctx = ctx.env("CLAUDE_BOTTLE_FAKE_FAIL_AT", "");
    let run = ctx.run(&["resume", &identity, "--yes", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let resumed = record(&ctx);
    assert_eq!(
        resumed.call("launch").expect("launch")["identity"],
        identity.as_str()
    );
    assert!(
        run.stderr.contains(&format!("resuming {identity}")),
        "{}",
        run.stderr
    );
    assert!(
        kept_states(&ctx).is_empty(),
        "a clean exit removes the state"
    );

    // Nothing is left to resume.
    let run = ctx.run(&["resume", &identity, "--yes"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no kept state"), "{}", run.stderr);
}

#[test]
fn a_kept_session_is_saved_and_resume_continues_its_conversation() {
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    let run = run_with(
        &ctx,
        &["start", "--yes"],
        &[("CLAUDE_BOTTLE_FAKE_EXIT_CODE", "3")],
    );
    assert_eq!(run.code, 3, "{}", run.all());
    let identity = find_identity(&run.stderr, "default");
    let names = record(&ctx);
    assert_eq!(
        names.names().iter().filter(|n| **n == "cp-out").count(),
        2,
        "both folders are saved before teardown: {:?}",
        names.names()
    );
    let stderr = redact_identity(&run.stderr, "default");
    let from_save = &stderr[stderr.find("· saving").expect("the save step is shown")..];
    insta::assert_snapshot!(from_save, @r"
    · saving the workspace and conversation…
    ✓ workspace and conversation saved
    · tearing down…
      removed container claude-bottle-default-[ID]
      removed network claude-bottle-net-default-[ID]
    ✓ torn down
    the session exited with code 3
    saved Claude Code's conversation and the workspace (102 B)
    state kept; continue this bottle with: claude-bottle resume default-[ID]
    ");
    let listed = ctx.run(&["list", "active"]);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains(&identity))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(row.contains(" 102 B "), "the saved size is listed: {row}");
    let json = ctx.run(&["list", "active", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(json["resumable"][0]["saved_bytes"], 102);

    // `--fresh` starts a new conversation, with the files put back; kept again by exit 3.
    let fresh = run_with(
        &ctx,
        &["resume", &identity, "--yes", "--fresh"],
        &[("CLAUDE_BOTTLE_FAKE_EXIT_CODE", "3")],
    );
    assert_eq!(fresh.code, 3, "{}", fresh.all());
    let recorded = record(&ctx);
    assert_eq!(
        recorded
            .names()
            .iter()
            .filter(|n| **n == "cp-in-archive")
            .count(),
        2,
        "{:?}",
        recorded.names()
    );
    let argv = &recorded.call("exec-claude").expect("claude ran")["argv"];
    assert!(
        !argv.as_array().unwrap().iter().any(|a| a == "--continue"),
        "{argv}"
    );

    // By default the saved conversation continues.
    let resumed = ctx.run(&["resume", &identity, "--yes", "--", "--model", "opus"]);
    assert_eq!(resumed.code, 0, "{}", resumed.all());
    let argv = record(&ctx).call("exec-claude").expect("claude ran")["argv"].clone();
    let argv: Vec<&str> = argv
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        argv.ends_with(&["--continue", "--model", "opus"]),
        "{argv:?}"
    );
    assert!(
        kept_states(&ctx).is_empty(),
        "a clean exit forgets what was saved"
    );
}

#[test]
fn a_save_limit_that_is_not_a_size_is_refused_before_anything_is_created() {
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    let run = run_with(
        &ctx,
        &["start", "--yes"],
        &[("CLAUDE_BOTTLE_SAVE_LIMIT", "lots")],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("CLAUDE_BOTTLE_SAVE_LIMIT=`lots` is not a size; give bytes or a size such as 512MiB or 2GiB"),
        "{}",
        run.stderr
    );
    assert!(kept_states(&ctx).is_empty());
}

#[test]
fn resume_refuses_what_is_not_an_identity() {
    let run = fake_context().run(&["resume", "Not An Identity", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn ctrl_c_sigterm_and_sighup_during_the_session_tear_down_and_keep_state() {
    for (signal, name, code) in [
        ("-INT", "SIGINT", 130),
        ("-TERM", "SIGTERM", 143),
        ("-HUP", "SIGHUP", 129),
    ] {
        let ctx = fake_context().env("CLAUDE_BOTTLE_FAKE_HANG_AT", "session");
        let mut child = ctx
            .command(&["start", "--yes", "--exec", "sleep 1000"])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Wait for the last step before the session, then signal as Ctrl-C (or a closed
        // terminal, or `kill`) does.
        let mut stderr = child.stderr.take().expect("stderr");
        let mut seen = String::new();
        let mut buf = [0u8; 1024];
        while !seen.contains("supervise registered") {
            let n = std::io::Read::read(&mut stderr, &mut buf).expect("read");
            assert!(n > 0, "exited early:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        std::io::Read::read_to_string(&mut stderr, &mut seen).expect("read");
        assert_eq!(
            child.wait().expect("wait").code(),
            Some(code),
            "{name}: {seen}"
        );
        assert!(seen.contains(&format!("received {name}")), "{seen}");
        let record = record(&ctx);
        assert_eq!(record.names().last(), Some(&"teardown"), "{name}");
        assert!(
            record.resources.is_empty(),
            "{name} left: {:?}",
            record.resources
        );
        let identity = find_identity(&seen, "default");
        assert_eq!(kept_states(&ctx), [identity], "{name}");
    }
}

const LEFTOVERS: &str = "coder-aaaaa,default-bbbbb";

#[test]
fn cleanup_shows_asks_and_removes() {
    let ctx = fake_context().env("CLAUDE_BOTTLE_FAKE_LEFTOVERS", LEFTOVERS);

    let run = ctx.run(&["cleanup", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(record(&ctx).resources.len(), 4, "a dry run removes nothing");
    insta::assert_snapshot!("cleanup_dry_run", run.all());

    let run = ctx.run(&["cleanup", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(json["items"].as_array().expect("items").len(), 4);

    let run = run_detached(&ctx, ctx.command(&["cleanup"]), "y\n");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no terminal"), "{}", run.stderr);
    assert_eq!(record(&ctx).resources.len(), 4, "a refusal removes nothing");

    let run = ctx.run(&["cleanup", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = record(&ctx);
    assert!(record.resources.is_empty(), "left: {:?}", record.resources);
    assert_eq!(
        record.call("cleanup").expect("cleanup")["removed"]
            .as_array()
            .expect("removed")
            .len(),
        4
    );
    insta::assert_snapshot!("cleanup_yes", run.all());
}

#[test]
fn cleanup_with_nothing_left_says_so() {
    let run = fake_context().run(&["cleanup"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn list_active_shows_running_and_resumable_bottles() {
    let ctx = fake_context();
    let failed = run_with(
        &ctx,
        &["start", "--yes", "--exec", "true"],
        &[("CLAUDE_BOTTLE_FAKE_FAIL_AT", "launch")],
    );
    assert_eq!(failed.code, 5, "{}", failed.all());
    let kept = find_identity(&failed.stderr, "default");

    let ctx = ctx.env("CLAUDE_BOTTLE_FAKE_LEFTOVERS", LEFTOVERS);
    let run = ctx.run(&["list", "active"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains(&kept), "{}", run.stdout);
    let text = redact_identity(&run.stdout, "default").replace(&kept, "default-[ID]");
    insta::assert_snapshot!(redact_times(&text));

    let run = ctx.run(&["list", "active", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let active: Vec<&str> = json["active"]
        .as_array()
        .expect("active")
        .iter()
        .map(|b| b["identity"].as_str().expect("identity"))
        .collect();
    assert_eq!(active, ["coder-aaaaa", "default-bbbbb"]);
    assert_eq!(json["resumable"][0]["identity"], kept.as_str());
    assert_eq!(json["active"][0]["state"], "running");
}

fn redact_times(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split_inclusive(' ')
                .map(|word| {
                    let w = word.trim_end();
                    if w.len() >= 20 && w.as_bytes()[4] == b'-' && w.contains('T') {
                        word.replace(w, "[TIME]")
                    } else {
                        word.to_owned()
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn quiet_shows_only_what_the_command_prints() {
    let ctx = fake_context();
    let run = ctx.run(&["start", "--yes", "--quiet", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.stderr, "", "no preflight, progress or hints");
    assert_eq!(record(&ctx).names().last(), Some(&"teardown"));

    // Errors still show.
    let run = ctx.run(&["start", "nobody", "--yes", "--quiet"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .starts_with("error: agent `nobody` is not defined"),
        "{}",
        run.stderr
    );
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    const ESC: char = '\u{1b}';
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    let plain = ctx.run(&["start", "--dry-run"]);
    assert!(!plain.all().contains(ESC), "not a terminal: no colour");

    let forced = run_with(&ctx, &["start", "--dry-run"], &[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.stdout.contains(ESC),
        "CLICOLOR_FORCE=1 colours the preflight"
    );

    let no_color = run_with(
        &ctx,
        &["start", "--dry-run"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!no_color.all().contains(ESC), "NO_COLOR wins");
}

#[test]
fn verbose_shows_debug_logs_of_each_event() {
    let ctx = fake_context();
    let run = ctx.run(&["start", "--yes", "-v", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("DEBUG"), "{}", run.stderr);
    assert!(run.stderr.contains("StepStarted"), "{}", run.stderr);
    let quiet = ctx.run(&["start", "--yes", "--exec", "true"]);
    assert!(!quiet.stderr.contains("DEBUG"), "{}", quiet.stderr);
}

/// Issue 12: an engine that does not answer (here: a TCP port nobody listens on), or an
/// address that cannot be used, fails `start`, `resume`, `list active` and `cleanup` with exit
/// 4, one sentence and its fix, before anything: no state is kept, no teardown is attempted.
#[test]
fn an_engine_that_cannot_be_used_fails_before_anything_with_exit_4() {
    // Bound, then released: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("tcp://127.0.0.1:{port}");
    let mut shown = String::new();
    for docker_host in [
        closed.as_str(),
        "ssh://me@build-box",
        "tcp://build-box:2375",
    ] {
        let ctx = TestContext::new()
            .env("CLAUDE_BOTTLE_BACKEND", "docker")
            .env("CLAUDE_CODE_OAUTH_TOKEN", "test-token")
            .env("DOCKER_HOST", docker_host);
        // A bottle kept earlier, to resume.
        let identity = "default-k3pt0";
        ctx.write(
            ctx.home().join(format!("state/{identity}/state.json")),
            &format!(
                r#"{{"identity":"{identity}","agent":"default","cwd":"{}","copy_cwd":false,"backend":"docker","started":"2026-12-02T03:07:39Z","image":"claude-bottle-agent:0","remote_control":false}}"#,
                ctx.cwd().display()
            ),
        );
        let state_before = std::fs::read_dir(ctx.home().join("state")).unwrap().count();
        for args in [
            &["start", "--yes", "--exec", "true"][..],
            &["start", "--dry-run"],
            &["resume", "--yes", identity, "--exec", "true"],
            &["list", "active"],
            &["cleanup", "--yes"],
        ] {
            let run = ctx.run(args);
            assert_eq!(run.code, 4, "{docker_host} {args:?}: {}", run.all());
            let stderr = run.stderr.replace(&port.to_string(), "[PORT]");
            assert_eq!(
                stderr.lines().count(),
                2,
                "one sentence and one fix: {docker_host} {args:?}: {stderr}"
            );
            assert!(stderr.starts_with("error: "), "{stderr}");
            assert!(
                stderr.lines().nth(1).unwrap().starts_with("hint: "),
                "{stderr}"
            );
            for never in ["teardown", "tearing down", "state kept", "resume default"] {
                assert!(
                    !run.all().contains(never),
                    "{docker_host} {args:?}: {}",
                    run.all()
                );
            }
            if args[0] == "list" {
                shown.push_str(&format!(
                    "$ DOCKER_HOST={docker_host} claude-bottle list active\n{stderr}"
                ));
            }
        }
        assert_eq!(
            std::fs::read_dir(ctx.home().join("state")).unwrap().count(),
            state_before,
            "no state was added"
        );
    }
    insta::assert_snapshot!(shown.replace(&closed, "tcp://127.0.0.1:[PORT]"));
}

#[test]
fn an_unreachable_engine_exits_4_with_how_to_fix_it() {
    let ctx = TestContext::new()
        .env("CLAUDE_BOTTLE_BACKEND", "docker")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    for args in [
        &["start", "--dry-run"][..],
        &["start", "--yes", "--exec", "true"],
        &["list", "active"],
        &["cleanup", "--dry-run"],
    ] {
        let run = ctx.run(args);
        assert_eq!(run.code, 4, "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("DOCKER_HOST"),
            "{args:?}: {}",
            run.stderr
        );
    }
    insta::assert_snapshot!(ctx.run(&["list", "active"]).all());
}
