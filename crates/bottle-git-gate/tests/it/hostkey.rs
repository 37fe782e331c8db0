//! Host keys: `KnownHostKey` is the only key the gate trusts for an upstream — no trust on
//! first use, no known_hosts of a user, no agent, no other identity.

use crate::support::{GateProcess, TestContext, Upstream};

/// Another ed25519 key, not the upstream's.
const WRONG_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHuq6+T0E/7nTNVHCwLUXGnnGdMq+TUw8Lcr8aEJMwCs";

#[test]
fn a_wrong_known_host_key_refuses_the_connection() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let yaml = upstream
        .entry_yaml("app", &bare, "")
        .replace(&upstream.host_key, WRONG_KEY);
    // A user's ssh setup that knows the right key: the gate must not read it.
    let user_ssh = ctx.path("gate-user-home/.ssh");
    std::fs::create_dir_all(&user_ssh).unwrap();
    std::fs::write(
        user_ssh.join("known_hosts"),
        format!(
            "[127.0.0.1]:{} {}\n[upstream.test]:{} {}\n",
            upstream.port, upstream.host_key, upstream.port, upstream.host_key
        ),
    )
    .unwrap();
    std::fs::write(
        user_ssh.join("config"),
        "Host *\n  StrictHostKeyChecking no\n",
    )
    .unwrap();

    let gate = GateProcess::start(&ctx, std::slice::from_ref(&yaml), "", &[]);
    let entry: bottle_manifest::GitEntry = bottle_manifest::yaml::parse(&yaml).unwrap();
    ctx.install_agent_gitconfig(&gate, &[entry]);
    let declared = upstream.url(&bare);
    let stderr = ctx.git_fails(ctx.dir.path(), &["clone", &declared, "work"]);
    assert!(
        stderr.contains(&format!(
            "fatal: remote error: bottle-git-gate cannot fetch from {declared}: the upstream's host key does not match the entry's KnownHostKey"
        )),
        "{stderr}"
    );
    // The connection was made and dropped before any authentication.
    assert!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
    assert!(
        !upstream.log().contains("Accepted publickey"),
        "{}",
        upstream.log()
    );
    // Nothing was learned: the entry's known_hosts still holds only the configured key.
    let known = std::fs::read_to_string(gate.state.join("ssh/app.known_hosts")).unwrap();
    assert_eq!(
        known,
        format!("[upstream.test]:{} {WRONG_KEY}\n", upstream.port)
    );
}

#[test]
fn the_right_key_under_the_declared_name_is_accepted_whatever_address_is_dialled() {
    // `ExtraHosts` sends the connection to 127.0.0.1, but the key is looked up under the
    // declared `[upstream.test]:port`: the pin follows the name the manifest gave.
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let _gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    ctx.clone(&upstream.url(&bare), "work");
    let log = upstream.log();
    assert!(log.contains("Accepted publickey"), "{log}");
    assert!(
        log.contains("forced-command (config)") && log.contains("git-shell"),
        "only git-shell runs upstream:\n{log}"
    );
}

#[test]
fn a_key_the_upstream_does_not_know_is_named_as_the_cause() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    std::fs::write(upstream.dir.join("authorized_keys"), "").unwrap();
    let _gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let stderr = ctx.git_fails(ctx.dir.path(), &["clone", &upstream.url(&bare), "work"]);
    assert!(
        stderr.contains("the upstream refused the entry's key (IdentityFile)"),
        "{stderr}"
    );
}
