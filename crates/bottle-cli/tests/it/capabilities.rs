//! What the preflight and the progress say when the backend lacks a feature the bottle asks
//! for, and when it has it: through the `fake` backend, whose capabilities a test sets with
//! `CLAUDE_BOTTLE_FAKE_CAPABILITIES`.

use crate::TestContext;
use crate::bottle_support::{fake_context, kept_states, record, redact_identity};

/// A bottle with a git remote, an egress network and supervise (the default), implemented by
/// the fake only as far as `capabilities` says.
fn asking_for_everything(capabilities: &str) -> TestContext {
    let ctx = fake_context()
        .env("CLAUDE_BOTTLE_FAKE_CAPABILITIES", capabilities)
        .env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    ctx.bottle(
        "wide",
        "---\ngit:\n  - Name: app\n    Upstream: ssh://git@gitea.example.com:30009/me/app.git\n    IdentityFile: ~/.ssh/id_app\n    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\negress:\n  networks: [corp-services]\n---\n",
    )
    .agent("wide", "---\nbottle: wide\n---\nDo it all.\n")
    .write(ctx.user_home().join(".ssh/id_app"), "not a real key\n");
    ctx
}

#[test]
fn the_preflight_marks_what_the_backend_does_not_implement() {
    let ctx = asking_for_everything("");
    let run = ctx.run(&["start", "wide", "--dry-run"]);
    assert_eq!(run.code, 0, "a dry run shows the plan: {}", run.all());
    let out = redact_identity(&run.all(), "wide");
    assert!(
        out.contains("supervise  not available on the fake backend yet"),
        "{out}"
    );
    assert_eq!(
        out.matches("not implemented by the fake backend: refused unless --allow-unimplemented")
            .count(),
        2,
        "under git and under networks: {out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn the_preflight_shows_what_the_backend_implements() {
    let ctx = asking_for_everything("git-gate,egress-networks,supervise");
    let run = ctx.run(&["start", "wide", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let out = redact_identity(&run.all(), "wide");
    assert!(out.contains("supervise  on"), "{out}");
    assert!(!out.contains("not implemented"), "{out}");
    assert!(!out.contains("not available"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn start_refuses_a_missing_grant_before_asking_and_creates_nothing() {
    let ctx = asking_for_everything("supervise");
    let run = ctx.run(&["start", "wide", "--yes", "--exec", "true"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(record(&ctx).names(), ["resolve-plan"], "nothing launched");
    assert!(kept_states(&ctx).is_empty(), "no state written");
    insta::assert_snapshot!(redact_identity(&run.all(), "wide"));
}

#[test]
fn allow_unimplemented_launches_the_smaller_bottle_and_says_so() {
    let ctx = asking_for_everything("");
    let run = ctx.run(&[
        "start",
        "wide",
        "--yes",
        "--allow-unimplemented",
        "--exec",
        "true",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains(
            "not implemented by the fake backend: launched without it (--allow-unimplemented)"
        ),
        "{}",
        run.stderr
    );
    let names = record(&ctx).names().join(" ");
    assert!(names.contains("exec-attached"), "{names}");
    assert!(!names.contains("provision-supervise"), "{names}");
    assert!(
        !run.stderr.contains("supervise registered"),
        "no step is reported that did not run: {}",
        run.stderr
    );
}

#[test]
fn progress_reports_supervise_only_where_the_backend_registers_it() {
    let without = fake_context().env("CLAUDE_BOTTLE_FAKE_CAPABILITIES", "");
    let run = without.run(&["start", "--yes", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr
            .contains("supervise  not available on the fake backend yet"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("registering supervise")
            && !run.stderr.contains("supervise registered"),
        "{}",
        run.stderr
    );
    assert!(!record(&without).names().contains(&"provision-supervise"));

    let with = fake_context().env("CLAUDE_BOTTLE_FAKE_CAPABILITIES", "supervise");
    let run = with.run(&["start", "--yes", "--exec", "true"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("supervise  on"), "{}", run.stderr);
    assert!(
        run.stderr.contains("✓ supervise registered"),
        "{}",
        run.stderr
    );
    assert!(record(&with).names().contains(&"provision-supervise"));
}
