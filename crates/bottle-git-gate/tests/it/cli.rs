//! The `bottle-git-gate` binary: `--help` of each subcommand, `check`, `health`, and
//! `pre-receive` run by hand.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use crate::support::{BIN, GateProcess, TestContext, Upstream};

fn gate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("BOTTLE_GIT_GATE_CONFIG")
        .env_remove("BOTTLE_GIT_GATE_ENTRY")
        .env("COLUMNS", "100")
        .output()
        .unwrap()
}

#[test]
fn help_teaches_every_subcommand() {
    for (name, args) in [
        ("help", &["--help"][..]),
        ("run_help", &["run", "--help"]),
        ("check_help", &["check", "--help"]),
        ("health_help", &["health", "--help"]),
        ("pre_receive_help", &["pre-receive", "--help"]),
    ] {
        let out = gate(args);
        assert!(out.status.success(), "{name}");
        insta::assert_snapshot!(name, String::from_utf8(out.stdout).unwrap());
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHuq6+T0E/7nTNVHCwLUXGnnGdMq+TUw8Lcr8aEJMwCs";

#[test]
fn check_reports_every_problem_at_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.yaml");
    std::fs::write(
        &path,
        format!(
            "state: /var/lib/gate\n\
             known_secrets: [GH_TOKEN, 'not-a-name']\n\
             entries:\n\
             \x20 - Name: app\n\
             \x20   Upstream: ssh://git@github.com/me/app.git\n\
             \x20   IdentityFile: /var/lib/gate/keys/app\n\
             \x20   KnownHostKey: github.com {KEY}\n\
             \x20   PushRefs: [refs/tags/*]\n\
             \x20 - Name: app\n\
             \x20   Upstream: ssh://git@github.com/me/lib.git\n\
             \x20   IdentityFile: /etc/keys/lib\n\
             \x20   KnownHostKey: {KEY}\n"
        ),
    )
    .unwrap();
    let out = gate(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&dir.path().display().to_string(), "[dir]");
    insta::assert_snapshot!("check_rules", stderr);

    std::fs::write(
        &path,
        "entries:\n  - Name: app\n    Upstream: https://github.com/me/app.git\n",
    )
    .unwrap();
    let out = gate(&["check", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&dir.path().display().to_string(), "[dir]");
    insta::assert_snapshot!("check_shape", stderr);
}

#[test]
fn check_looks_at_the_key_file_and_the_known_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_app");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("gate.yaml");
    std::fs::write(
        &path,
        format!(
            "state: {}/state\nknown_secrets: [BOTTLE_GATE_TEST_UNSET, BOTTLE_GATE_TEST_SHORT]\nentries:\n  - Name: app\n    Upstream: ssh://git@github.com/me/app.git\n    IdentityFile: id_app\n    KnownHostKey: {KEY}\n  - Name: gone\n    Upstream: ssh://git@github.com/me/gone.git\n    IdentityFile: /nonexistent/id_gone\n    KnownHostKey: {KEY}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env_remove("BOTTLE_GATE_TEST_UNSET")
        .env("BOTTLE_GATE_TEST_SHORT", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&dir.path().display().to_string(), "[dir]");
    assert!(
        !stderr.contains("short\n") && !stderr.contains("`short`"),
        "a value was shown:\n{stderr}"
    );
    insta::assert_snapshot!("check_files_and_secrets", stderr);

    // Fixed, it passes and says what it serves.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "known_secrets: [BOTTLE_GATE_TEST_UNSET, BOTTLE_GATE_TEST_SHORT]\n",
            "known_secrets: [BOTTLE_GATE_TEST_SET]\n",
        )
        .replace("/nonexistent/id_gone", key.to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env("BOTTLE_GATE_TEST_SET", "a-long-enough-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .replace(&dir.path().display().to_string(), "[dir]"),
        "[dir]/gate.yaml: ok (2 entries: app, gone; 1 known secret)\n"
    );
}

#[test]
fn health_answers_for_a_running_gate_and_fails_clearly_otherwise() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let running = GateProcess::start(&ctx, &[upstream.entry_yaml("app", &bare, "")], "", &[]);
    let out = gate(&["health", "--addr", &running.addr.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ok\n");
    drop(running);

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let out = gate(&["health", "--addr", &addr.to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "bottle-git-gate: the gate at {addr} is not healthy: Connection refused"
        )),
        "{stderr}"
    );
}

#[test]
fn pre_receive_by_hand_refuses_and_says_why() {
    let out = gate(&["pre-receive"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--entry <ENTRY>"),
        "{out:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.yaml");
    std::fs::write(
        &path,
        format!("entries:\n  - Name: app\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: {KEY}\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "pre-receive",
            "--entry",
            "app",
            "--config",
            path.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stderr).unwrap(), @"bottle-git-gate: push refused: the gate could not check it (pre-receive got a line that is not `<old> <new> <ref>`; it is run by git for a push, not by hand); nothing was sent upstream");
}
