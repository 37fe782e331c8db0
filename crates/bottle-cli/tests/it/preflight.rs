//! The preflight over a matrix of manifests, through `start --dry-run` with the fake backend
//! (its runtime and image are `fake`; the rest is the real rendering of the real plan), and
//! the plan as JSON for tools.

use crate::TestContext;
use crate::bottle_support::{fake_context, record, redact_identity};

/// Literal values and host values that must never be shown.
const SECRETS: &[&str] = &[
    "literal-value-never-shown",
    "host-value-never-shown",
    "gh-pat-never-shown",
    "oauth-never-shown",
    "internal-key-never-shown",
];

fn dry_run(ctx: &TestContext, args: &[&str], agent: &str) -> String {
    let mut full = vec!["start"];
    full.extend_from_slice(args);
    full.push("--dry-run");
    let run = ctx.run(&full);
    assert_eq!(run.code, 0, "{}", run.all());
    for secret in SECRETS {
        assert!(
            !run.all().contains(secret),
            "`{secret}` shown:\n{}",
            run.all()
        );
    }
    // A dry run reaches only prepare: nothing is launched.
    assert_eq!(record(ctx).names(), ["resolve-plan"]);
    redact_identity(&run.all(), agent)
}

/// Three bottles folded `base → team → work`, every env mode, git, skills, every route shape.
fn full_world() -> TestContext {
    let ctx = fake_context()
        .env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown")
        .env("GH_PAT", "gh-pat-never-shown")
        .env("HOST_VALUE", "host-value-never-shown")
        .env("INTERNAL_KEY", "internal-key-never-shown");
    ctx.bottle(
        "base",
        "---\nenv:\n  EDITOR_MODE: literal-value-never-shown\negress:\n  routes:\n    - host: api.github.com\n      path_allowlist: [/repos/me/]\n      methods: [GET, POST]\n      auth: {scheme: Bearer, token_ref: GH_PAT}\n---\nBase notes.\n",
    )
    .bottle(
        "team",
        "---\nextends: base\nenv:\n  FROM_HOST: \"${HOST_VALUE}\"\ngit:\n  - Name: app\n    Upstream: ssh://git@gitea.example.com:30009/me/app.git\n    IdentityFile: ~/.ssh/id_app\n    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n---\n",
    )
    .bottle(
        "work",
        "---\nextends: team\nenv:\n  ASKED: \"?paste the deploy token\"\negress:\n  routes:\n    - host: \"*.internal.example\"\n      auth: {header: x-api-key, token_ref: INTERNAL_KEY}\n      auth_every_subdomain: true\n      allow_private: true\n---\n",
    )
    .agent(
        "coder",
        "---\nbottle: work\nskills: [review, lint]\ndescription: ignored sub-agent field\n---\nYou write code.\n",
    )
    .write(ctx.user_home().join(".ssh/id_app"), "not a real key\n")
    .write(ctx.user_home().join(".claude/skills/review/SKILL.md"), "# review\n")
    .write(ctx.user_home().join(".claude/skills/lint/SKILL.md"), "# lint\n");
    ctx
}

#[test]
fn default_agent_without_a_claude_credential() {
    let ctx = fake_context();
    insta::assert_snapshot!(dry_run(&ctx, &[], "default"));
}

#[test]
fn default_agent_with_an_oauth_token_injects_it() {
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    let out = dry_run(&ctx, &[], "default");
    assert!(
        out.contains("api.anthropic.com      [auth:Bearer]"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn default_agent_with_an_api_key_injects_it_as_a_header() {
    let ctx = fake_context().env("ANTHROPIC_API_KEY", "sk-never-shown");
    let out = dry_run(&ctx, &[], "default");
    assert!(
        out.contains("api.anthropic.com      [auth:x-api-key]"),
        "{out}"
    );
    assert!(!out.contains("sk-never-shown"));
}

#[test]
fn folded_bottle_with_every_kind_of_grant() {
    let ctx = full_world();
    let out = dry_run(&ctx, &["coder"], "coder");
    assert!(out.contains("(base → team → work)"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn copy_cwd_and_remote_control_are_shown() {
    let ctx = full_world();
    insta::assert_snapshot!(dry_run(
        &ctx,
        &["coder", "--cwd", "--remote-control"],
        "coder"
    ));
}

#[test]
fn supervise_off_and_a_repository_agent_that_shadows_a_home_one() {
    let ctx = fake_context();
    ctx.bottle("quiet", "---\nsupervise: false\n---\n")
        .agent("helper", "---\nbottle: default\n---\nHome helper.\n")
        .repo_agent("helper", "---\nbottle: quiet\n---\nRepository helper.\n");
    let out = dry_run(&ctx, &["helper"], "helper");
    assert!(out.contains("supervise  off"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn plan_as_json_for_tools() {
    let ctx = full_world();
    let run = ctx.run(&["start", "coder", "--dry-run", "--json", "--cwd"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    assert_eq!(json["agent"], "coder");
    assert_eq!(json["extends"], serde_json::json!(["base", "team"]));
    let asked = json["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "ASKED")
        .expect("ASKED");
    assert_eq!(asked["mode"], "prompt");
    for secret in SECRETS {
        assert!(!run.stdout.contains(secret), "`{secret}` in the JSON");
    }
    insta::assert_json_snapshot!(json, {
        ".identity" => "[identity]",
        ".copy_cwd" => "[cwd]",
    });
}

#[test]
fn manifest_errors_stop_before_the_backend() {
    let ctx = fake_context();
    ctx.agent("broken", "---\nbottle: nowhere\n---\n");
    let run = ctx.run(&["start", "broken", "--dry-run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    insta::assert_snapshot!("unknown_bottle", run.all());

    let run = ctx.run(&["start", "nobody", "--dry-run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    insta::assert_snapshot!("unknown_agent", run.all());
}

#[test]
fn host_requirements_are_checked_before_anything_is_created() {
    let ctx = fake_context();
    ctx.bottle(
        "needs",
        "---\nenv:\n  TOKEN: \"${NOT_SET_ANYWHERE}\"\n---\n",
    )
    .agent("needy", "---\nbottle: needs\nskills: [missing]\n---\n");
    let run = ctx.run(&["start", "needy", "--dry-run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    insta::assert_snapshot!(run.all());
}
