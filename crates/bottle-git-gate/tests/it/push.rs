//! Push: a clean push arrives upstream; a push carrying a secret is refused naming the rule,
//! the commit and the place — never the secret — and then nothing moves anywhere.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::support::{
    AWS_KEY, GateProcess, TestContext, Upstream, commit, has_object, plain_git, rev,
};

/// A token the bottle knows as secret (given to the gate by name, never to the agent).
const TOKEN_VAR: &str = "BOTTLE_TEST_DEPLOY_TOKEN";
const TOKEN: &str = "tok-5e9f1c2a7b3d9e8f0a61";

struct World {
    ctx: TestContext,
    upstream: Upstream,
    bare: PathBuf,
    gate: GateProcess,
    work: PathBuf,
}

fn world(extra: &str) -> World {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let gate = GateProcess::start(
        &ctx,
        &[upstream.entry_yaml("app", &bare, extra)],
        &format!("known_secrets: [{TOKEN_VAR}]\n"),
        &[(TOKEN_VAR, TOKEN)],
    );
    ctx.install_agent_gitconfig(&gate, &[upstream.entry("app", &bare, extra)]);
    let work = ctx.clone(&upstream.url(&bare), "work");
    World {
        ctx,
        upstream,
        bare,
        gate,
        work,
    }
}

impl World {
    /// Push `HEAD:main` expecting a refusal; git's stderr. Checks that nothing moved: not the
    /// upstream's `main`, not the gate's, and that `commit` reached neither.
    fn refused(&self, args: &[&str], commit: &str) -> String {
        let upstream_before = rev(&self.bare, "refs/heads/main");
        let gate_before = rev(&self.gate.repo("app"), "refs/heads/main");
        let stderr = self.ctx.git_fails(&self.work, args);
        assert_eq!(rev(&self.bare, "refs/heads/main"), upstream_before);
        assert_eq!(rev(&self.gate.repo("app"), "refs/heads/main"), gate_before);
        assert!(
            !has_object(&self.bare, commit),
            "the commit reached the upstream"
        );
        assert!(
            !has_object(&self.gate.repo("app"), commit),
            "the commit stayed in the gate after the quarantine"
        );
        stderr
    }
}

fn short(id: &str) -> &str {
    &id[..12]
}

#[test]
fn a_clean_push_arrives_upstream_and_moves_the_gate() {
    let w = world("");
    let id = commit(
        &w.ctx,
        &w.work,
        &[("src/lib.rs", "pub fn f() {}\n")],
        "add f",
    );
    let out = w.ctx.git(&w.work, &["push", "origin", "HEAD:main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "remote: bottle-git-gate: forwarded 1 ref to {} (",
            w.upstream.url(&w.bare)
        )),
        "{stderr}"
    );
    assert_eq!(
        rev(&w.bare, "refs/heads/main").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        rev(&w.gate.repo("app"), "refs/heads/main").as_deref(),
        Some(id.as_str())
    );
    // The agent's identity comes from the rendered config.
    let author = plain_git(&w.bare, &["log", "-1", "--format=%an <%ae>", "main"]);
    assert_eq!(
        String::from_utf8_lossy(&author.stdout).trim(),
        "Agent <agent@bottle.test>"
    );

    // A new branch is a create.
    commit(&w.ctx, &w.work, &[("b.txt", "b\n")], "b");
    w.ctx.git_ok(
        &w.work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/feature"],
    );
    assert!(rev(&w.bare, "refs/heads/feature").is_some());
}

#[test]
fn a_push_carrying_an_aws_key_is_refused_naming_the_rule_the_commit_and_the_path() {
    let w = world("");
    commit(
        &w.ctx,
        &w.work,
        &[("docs/intro.md", "hello\n")],
        "harmless first",
    );
    let id = commit(
        &w.ctx,
        &w.work,
        &[(
            "deploy/config.ini",
            &format!("[aws]\naws_access_key_id = {AWS_KEY}\n"),
        )],
        "add deploy config",
    );
    commit(
        &w.ctx,
        &w.work,
        &[("docs/more.md", "more\n")],
        "harmless last",
    );
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(
            "remote: bottle-git-gate: push refused: it carries 1 secret; nothing was sent upstream"
        ),
        "{stderr}"
    );
    // The commit that introduced the file, not the tip.
    assert!(
        stderr.contains(&format!(
            "aws-access-key-id in commit {}, file deploy/config.ini (bytes 26..46)",
            short(&id)
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(AWS_KEY),
        "the secret was echoed:\n{stderr}"
    );
    assert!(stderr.contains("pre-receive hook declined"), "{stderr}");
}

#[test]
fn a_known_secret_base64_encoded_in_one_file_is_refused() {
    use base64_like::encode;
    let w = world("");
    let encoded = encode(TOKEN.as_bytes());
    let id = commit(
        &w.ctx,
        &w.work,
        &[(
            "ci/settings.json",
            &format!("{{\"auth\": \"{encoded}\"}}\n"),
        )],
        "ci settings",
    );
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(&format!(
            "known-secret `{TOKEN_VAR}` (base64) in commit {}, file ci/settings.json",
            short(&id)
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(TOKEN) && !stderr.contains(&encoded),
        "{stderr}"
    );

    // Raw, in a commit message, it is found too.
    w.ctx
        .git_ok(&w.work, &["reset", "--quiet", "--hard", "origin/main"]);
    let id = commit(
        &w.ctx,
        &w.work,
        &[("x.txt", "x\n")],
        &format!("use {TOKEN} for deploys"),
    );
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(&format!(
            "known-secret `{TOKEN_VAR}` (raw) in commit {}, its message",
            short(&id)
        )),
        "{stderr}"
    );
}

#[test]
fn a_secret_in_the_author_line_is_refused() {
    let w = world("");
    std::fs::write(w.work.join("y.txt"), "y\n").unwrap();
    w.ctx.git_ok(&w.work, &["add", "y.txt"]);
    let out = w.ctx.git_with(
        &w.work,
        &["commit", "--quiet", "-m", "y"],
        &[("GIT_AUTHOR_EMAIL", &format!("{AWS_KEY}@example.com"))],
    );
    assert!(out.status.success(), "{out:?}");
    let id = w
        .ctx
        .git_ok(&w.work, &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(&format!(
            "aws-access-key-id in commit {}, its author or committer",
            short(&id)
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(AWS_KEY), "{stderr}");
}

#[test]
fn a_secret_across_a_read_boundary_of_a_large_file_is_found() {
    let w = world("");
    // The gate reads blobs in 64 KiB pieces; the key straddles the first boundary.
    let start = 64 * 1024 - 9;
    let content = format!(
        "{} {AWS_KEY} {}",
        "a".repeat(start - 1),
        "b".repeat(100 * 1024)
    );
    let id = commit(&w.ctx, &w.work, &[("data/big.txt", &content)], "big");
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(&format!(
            "aws-access-key-id in commit {}, file data/big.txt (bytes {start}..{})",
            short(&id),
            start + 20
        )),
        "{stderr}"
    );
}

#[test]
fn a_secret_in_a_push_option_or_a_ref_name_is_refused_without_echoing_it() {
    let w = world("");
    let id = commit(&w.ctx, &w.work, &[("z.txt", "z\n")], "z");
    let stderr = w.refused(
        &[
            "push",
            "-o",
            &format!("note={AWS_KEY}"),
            "origin",
            "HEAD:main",
        ],
        &id,
    );
    assert!(
        stderr.contains("aws-access-key-id in push option 1"),
        "{stderr}"
    );
    assert!(!stderr.contains(AWS_KEY), "{stderr}");

    let stderr = w.ctx.git_fails(
        &w.work,
        &["push", "origin", &format!("HEAD:refs/heads/x-{AWS_KEY}")],
    );
    assert!(
        stderr.contains("aws-access-key-id in the name of a pushed ref"),
        "{stderr}"
    );
    assert!(!stderr.contains(&format!("remote: {AWS_KEY}")), "{stderr}");
    assert!(rev(&w.bare, &format!("refs/heads/x-{AWS_KEY}")).is_none());
}

#[test]
fn an_upstream_refusal_is_the_pushers_refusal() {
    let w = world("");
    // The upstream's own refusal (a protected branch) reaches the agent word for word.
    let id = commit(&w.ctx, &w.work, &[("mine.txt", "mine\n")], "mine");
    let hook = w.bare.join("hooks").join("pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'protected branch: main' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = w.refused(&["push", "origin", "HEAD:main"], &id);
    assert!(
        stderr.contains(&format!(
            "remote: bottle-git-gate: push refused: cannot push to {}",
            w.upstream.url(&w.bare)
        )),
        "{stderr}"
    );
    assert!(stderr.contains("protected branch: main"), "{stderr}");
}

/// Base64 (standard alphabet, padded), so the test does not trust the scanner's own encoder.
mod base64_like {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn rfc4648_vectors() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(encode(b"foob"), "Zm9vYg==");
    }
}
