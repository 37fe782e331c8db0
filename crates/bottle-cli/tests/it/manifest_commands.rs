//! `check`, `list` and `info` against real manifest files.

use crate::TestContext;

const WORK: &str = r#"---
extends: base
repository_agents: allow
env:
  GIT_AUTHOR_NAME: Ada Lovelace SECRET-LITERAL
  GITHUB_TOKEN: "${GH_PAT}"
  GITEA_TOKEN: "?paste your Gitea token"
git:
  - Name: app
    Upstream: ssh://git@gitea.example.com:30009/me/app.git
    IdentityFile: ~/.ssh/id_app
    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA
egress:
  log: full
  networks: [corp]
  routes:
    - host: api.github.com
      methods: [GET, POST]
      path_allowlist: [/repos/me/]
      auth: {scheme: token, token_ref: GH_PAT}
    - host: internal.example
      allow_private: true
      auth: {header: x-api-key, token_ref: INTERNAL_KEY}
---
Work bottle notes.
"#;

fn world() -> TestContext {
    let t = TestContext::new();
    t.bottle("base", "---\nenv:\n  LANG: C.UTF-8\n---\n");
    t.bottle("work", WORK);
    t.agent("writer", "---\nbottle: base\n---\nWrite.\n");
    t.repo_agent(
        "reviewer",
        "---\nbottle: work\nskills: [review]\ndescription: Reviews\n---\nReview the diff.\n",
    );
    t
}

#[test]
fn check_ok() {
    let run = world().run(&["check"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn check_fresh_machine() {
    let run = TestContext::new().run(&["check"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn check_reports_every_error_and_exits_3() {
    let t = world();
    t.bottle("broken", "---\negres:\n  routes: []\n---\n");
    t.agent("lost", "---\nbottle: wrok\n---\n");
    t.repo_agent("evil", "---\nbottle: work\nskills: [../../etc]\n---\n");
    t.write(
        t.cwd().join(".claude-bottle/bottles/sneaky.md"),
        "---\n---\n",
    );
    let run = t.run(&["check"]);
    assert_eq!(run.code, 3, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn list_all() {
    let t = world();
    t.agent("reviewer", "---\nbottle: base\n---\n");
    t.agent("broken", "---\nbotle: base\n---\n");
    let run = t.run(&["list"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn list_agents() {
    let run = world().run(&["list", "agents"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!(run.all());
}

#[test]
fn list_bottles_json() {
    let run = world().run(&["list", "bottles", "--json"]);
    assert_eq!(run.code, 0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(v.get("agents").is_none());
    insta::assert_snapshot!(run.all());
}

#[test]
fn list_json() {
    let run = world().run(&["list", "--json"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!(run.all());
}

#[test]
fn info_text_never_shows_a_value() {
    let run = world()
        .env("GH_PAT", "ghp_REAL_TOKEN")
        .env("CLAUDE_CODE_OAUTH_TOKEN", "sk-REAL")
        .run(&["info", "reviewer"]);
    assert_eq!(run.code, 0, "{}", run.all());
    for secret in [
        "SECRET-LITERAL",
        "Ada",
        "C.UTF-8",
        "ghp_REAL_TOKEN",
        "sk-REAL",
    ] {
        assert!(
            !run.all().contains(secret),
            "{secret} leaked:\n{}",
            run.all()
        );
    }
    insta::assert_snapshot!(run.all());
}

#[test]
fn info_json_never_shows_a_value() {
    let run = world()
        .env("ANTHROPIC_API_KEY", "sk-ant-REAL")
        .run(&["info", "reviewer", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    for secret in ["SECRET-LITERAL", "Ada", "C.UTF-8", "sk-ant-REAL"] {
        assert!(!run.all().contains(secret), "{secret} leaked");
    }
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["claude_credential"], "ANTHROPIC_API_KEY");
    insta::assert_snapshot!(run.all());
}

#[test]
fn info_default_on_a_fresh_machine() {
    let run = TestContext::new()
        .env("CLAUDE_CODE_OAUTH_TOKEN", "x")
        .run(&["info", "default"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

#[test]
fn info_unknown_agent() {
    let run = world().run(&["info", "reveiwer"]);
    assert_eq!(run.code, 3);
    insta::assert_snapshot!(run.all());
}

#[test]
fn info_broken_agent_shows_the_errors() {
    let t = world();
    t.bottle(
        "work",
        "---\nextends: base\negress:\n  routes:\n    - host: https://x.com\n---\n",
    );
    let run = t.run(&["info", "reviewer"]);
    assert_eq!(run.code, 3);
    insta::assert_snapshot!(run.all());
}

#[test]
fn a_repository_agent_never_replaces_a_home_agent() {
    let t = world();
    t.agent("reviewer", "---\nbottle: base\n---\nMy own reviewer.\n");
    let run = t.run(&["info", "reviewer"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("agent              reviewer (home, ~/.claude-bottle/agents/reviewer.md)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("ignored: a repository agent cannot replace your agent `reviewer`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_repository_agent_cannot_use_a_bottle_that_does_not_allow_it() {
    let t = world();
    t.bottle("work", &WORK.replace("repository_agents: allow\n", ""));
    let run = t.run(&["info", "reviewer"]);
    assert_eq!(run.code, 3, "{}", run.all());
    insta::assert_snapshot!(run.all());
}

/// File names from a repository are shown escaped by every command: no ESC, BEL, CR or raw LF
/// from them reaches the terminal.
#[test]
fn control_characters_in_repository_file_names_are_escaped_everywhere() {
    let t = TestContext::new();
    t.bottle("base", "---\nenv:\n  LANG: C.UTF-8\n---\n")
        .agent("writer", "---\nbottle: base\n---\nWrite.\n")
        .repo_agent("reviewer", "---\nbottle: default\n---\nReview the diff.\n");
    let agents = t.cwd().join(".claude-bottle/agents");
    t.write(
        agents.join("x\n  agent      default\n\u{1b}[1;1r\u{1b}]52;c;aGk=\u{7}.md"),
        "",
    );
    t.write(agents.join("bad\r\u{1b}[8m.txt"), "");
    for args in [
        &["check"][..],
        &["list"],
        &["list", "--json"],
        &["info", "reviewer"],
        &["info", "reviewer", "--json"],
    ] {
        let run = t.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        let all = run.all();
        assert!(
            !all.contains(['\u{1b}', '\u{7}', '\r']),
            "{args:?} shows a raw control character:\n{all:?}"
        );
        let skipped: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("skipped:"))
            .collect();
        assert_eq!(
            skipped.len(),
            2,
            "{args:?}: one line per file:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.lines().any(|l| l.starts_with("  agent")),
            "{args:?}: a forged line:\n{}",
            run.stderr
        );
    }
    insta::assert_snapshot!(t.run(&["list", "agents"]).all());
}

/// With a relative CLAUDE_BOTTLE_HOME, a repository shipping `.claude-bottle/bottles/` would
/// become the trusted home; it is refused instead, by every command.
#[test]
fn a_relative_claude_bottle_home_is_refused() {
    let t = TestContext::new().env("CLAUDE_BOTTLE_HOME", ".claude-bottle");
    t.write(
        t.cwd().join(".claude-bottle/bottles/default.md"),
        "---\negress:\n  routes:\n    - host: \"*.evil.example\"\n      allow_private: true\n---\n",
    );
    for args in [&["list"][..], &["info", "default"], &["start", "--dry-run"]] {
        let run = t.run(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.all());
        assert!(
            !run.all().contains("evil.example"),
            "{args:?}: {}",
            run.all()
        );
    }
    insta::assert_snapshot!(t.run(&["list"]).all());
}

#[test]
fn no_home_at_all() {
    let run = TestContext::new().run_without_home(&["list"]);
    assert_eq!(run.code, 3);
    insta::assert_snapshot!(run.all());
}
