//! The gate's image (built by `cargo xtask images git-gate`): git, ssh and the gate run in it,
//! as the unprivileged `gate` user. Built as an ordinary test only with
//! `CLAUDE_BOTTLE_DOCKER_TESTS=1` (see build.rs), otherwise listed as ignored; with the
//! variable set, a missing engine or image fails it.

use std::process::Command;

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn the_image_holds_git_ssh_and_the_gate_as_a_non_root_user() {
    let image = std::env::var(bottle_git_gate::IMAGE_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(bottle_git_gate::default_image);
    // One throwaway container (`--rm`, labelled), no mounts, no network: a key is minted
    // inside, a config written, and `check` validates it.
    let script = "set -e\n\
        id -u\n\
        git --version\n\
        ssh -V 2>&1\n\
        ssh-keygen -q -t ed25519 -N '' -f /etc/bottle-git-gate/keys/app\n\
        printf 'entries:\\n  - Name: app\\n    Upstream: ssh://git@github.com/me/app.git\\n    IdentityFile: /etc/bottle-git-gate/keys/app\\n    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\\n' > /tmp/config.yaml\n\
        bottle-git-gate check --config /tmp/config.yaml\n";
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--label",
            "claude-bottle.test=bottle-git-gate-image",
            "--entrypoint",
            "sh",
            &image,
            "-c",
            script,
        ])
        .output()
        .expect("docker runs (CLAUDE_BOTTLE_DOCKER_TESTS=1 needs an engine)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{image}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("10001"), "{stdout}");
    assert!(stdout.contains("git version 2."), "{stdout}");
    assert!(stdout.contains("OpenSSH_"), "{stdout}");
    assert!(
        stdout.contains("/tmp/config.yaml: ok (1 entry: app; 0 known secrets)"),
        "{stdout}"
    );
}
