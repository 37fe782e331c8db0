//! The ref policy, beyond what any peer enforces: `PushRefs`, force pushes, deletions and
//! tags. Each refusal names the rule and the ref; nothing moves upstream or in the gate.

use std::path::PathBuf;

use crate::support::{GateProcess, TestContext, Upstream, commit, has_object, rev};

struct World {
    ctx: TestContext,
    /// Kept alive for the world's lifetime.
    _upstream: Upstream,
    bare: PathBuf,
    gate: GateProcess,
    work: PathBuf,
}

/// One upstream served by two entries: `strict` with `policy` as declared (the agent's git
/// rewrites the declared URL to it) and `loose` allowing everything (reached by its gate URL).
fn world(policy: &str) -> World {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let loose = "PushRefs: ['refs/*']\nAllowForce: true\nAllowDelete: true\nAllowTags: true\n";
    let gate = GateProcess::start(
        &ctx,
        &[
            upstream.entry_yaml("strict", &bare, policy),
            upstream.entry_yaml("loose", &bare, loose),
        ],
        "",
        &[],
    );
    ctx.install_agent_gitconfig(&gate, &[upstream.entry("strict", &bare, policy)]);
    let work = ctx.clone(&upstream.url(&bare), "work");
    World {
        ctx,
        _upstream: upstream,
        bare,
        gate,
        work,
    }
}

impl World {
    fn refused(&self, args: &[&str]) -> String {
        let refs = |repo: &std::path::Path| {
            String::from_utf8(
                crate::support::plain_git(
                    repo,
                    &["for-each-ref", "--format=%(refname) %(objectname)"],
                )
                .stdout,
            )
            .unwrap()
        };
        let (upstream_before, gate_before) = (refs(&self.bare), refs(&self.gate.repo("strict")));
        let stderr = self.ctx.git_fails(&self.work, args);
        assert_eq!(
            refs(&self.bare),
            upstream_before,
            "the upstream's refs moved"
        );
        assert_eq!(
            refs(&self.gate.repo("strict")),
            gate_before,
            "the gate's refs moved"
        );
        stderr
    }
}

#[test]
fn a_push_outside_push_refs_is_refused_and_one_inside_goes_through() {
    let w = world("PushRefs: [refs/heads/agent/*]\n");
    let id = commit(&w.ctx, &w.work, &[("a.txt", "a\n")], "a");
    let stderr = w.refused(&["push", "origin", "HEAD:main"]);
    assert!(
        stderr.contains("remote: bottle-git-gate: push refused by the policy of `strict` (nothing was sent upstream):"),
        "{stderr}"
    );
    assert!(
        stderr.contains("refs/heads/main: [push-refs] the ref is outside `PushRefs` (refs/heads/agent/*); push there instead, e.g. `git push origin HEAD:refs/heads/agent/<name>`"),
        "{stderr}"
    );
    assert!(!has_object(&w.bare, &id));

    w.ctx.git_ok(
        &w.work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/agent/fix-1"],
    );
    assert_eq!(
        rev(&w.bare, "refs/heads/agent/fix-1").as_deref(),
        Some(id.as_str())
    );
    // `*` crosses `/`, as in refspecs.
    w.ctx.git_ok(
        &w.work,
        &[
            "push",
            "--quiet",
            "origin",
            "HEAD:refs/heads/agent/team/fix-2",
        ],
    );
    assert!(rev(&w.bare, "refs/heads/agent/team/fix-2").is_some());
}

#[test]
fn a_force_push_is_refused_unless_the_entry_allows_it() {
    let w = world("");
    commit(&w.ctx, &w.work, &[("a.txt", "a\n")], "a");
    w.ctx
        .git_ok(&w.work, &["push", "--quiet", "origin", "HEAD:main"]);
    let pushed = rev(&w.bare, "refs/heads/main").unwrap();
    // Rewrite the pushed commit.
    w.ctx.git_ok(
        &w.work,
        &["commit", "--quiet", "--amend", "-m", "a, reworded"],
    );
    let rewritten = w
        .ctx
        .git_ok(&w.work, &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    let stderr = w.refused(&["push", "--force", "origin", "HEAD:main"]);
    assert!(
        stderr.contains("refs/heads/main: [allow-force] this is not a fast-forward of the upstream's branch, and force pushes are off (`AllowForce`)"),
        "{stderr}"
    );
    assert_eq!(
        rev(&w.bare, "refs/heads/main").as_deref(),
        Some(pushed.as_str())
    );

    // The entry that allows it forwards the force push.
    let loose = w.gate.url("loose");
    w.ctx.git_ok(
        &w.work,
        &["push", "--quiet", "--force", &loose, "HEAD:main"],
    );
    assert_eq!(
        rev(&w.bare, "refs/heads/main").as_deref(),
        Some(rewritten.as_str())
    );
    assert_eq!(
        rev(&w.gate.repo("loose"), "refs/heads/main").as_deref(),
        Some(rewritten.as_str())
    );
}

#[test]
fn deletions_and_tags_are_refused_by_default() {
    let w = world("");
    commit(&w.ctx, &w.work, &[("a.txt", "a\n")], "a");
    w.ctx.git_ok(
        &w.work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/topic"],
    );
    let stderr = w.refused(&["push", "origin", "--delete", "topic"]);
    assert!(
        stderr.contains(
            "refs/heads/topic: [allow-delete] refs may not be deleted (`AllowDelete` is off)"
        ),
        "{stderr}"
    );
    w.ctx
        .git_ok(&w.work, &["tag", "-a", "v1", "-m", "release 1"]);
    let stderr = w.refused(&["push", "origin", "v1"]);
    assert!(
        stderr.contains("refs/tags/v1: [allow-tags] tags may not be pushed (`AllowTags` is off)"),
        "{stderr}"
    );
    assert!(rev(&w.bare, "refs/tags/v1").is_none());
}

#[test]
fn with_allow_tags_a_tag_is_created_but_not_moved() {
    let w = world("AllowTags: true\n");
    commit(&w.ctx, &w.work, &[("a.txt", "a\n")], "a");
    w.ctx
        .git_ok(&w.work, &["push", "--quiet", "origin", "HEAD:main"]);
    w.ctx
        .git_ok(&w.work, &["tag", "-a", "v1", "-m", "release 1"]);
    w.ctx.git_ok(&w.work, &["push", "--quiet", "origin", "v1"]);
    let tag = rev(&w.bare, "refs/tags/v1").unwrap();
    commit(&w.ctx, &w.work, &[("b.txt", "b\n")], "b");
    w.ctx.git_ok(
        &w.work,
        &["tag", "-f", "-a", "v1", "-m", "release 1, again"],
    );
    let stderr = w.refused(&["push", "--force", "origin", "v1"]);
    assert!(
        stderr.contains("refs/tags/v1: [allow-force] an existing tag may not be moved (`AllowForce` is off); push a new tag"),
        "{stderr}"
    );
    assert_eq!(rev(&w.bare, "refs/tags/v1").as_deref(), Some(tag.as_str()));
}
