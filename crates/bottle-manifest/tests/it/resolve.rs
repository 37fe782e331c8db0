//! Valid manifests: every key, `extends` folding, the built-in default, the route table.

use std::path::PathBuf;

use bottle_manifest::{
    AuthScheme, CLAUDE_CODE_HOSTS, ClaudeAuth, EnvMode, EnvValue, LogMode, Origin, PLACEHOLDER,
    PermissionMode, RepositoryAgents, RouteAuth, RouteSource,
};

use crate::{Fixture, md};

const FULL_BOTTLE: &str = r#"---
# Every key a bottle accepts.
env:
  GIT_AUTHOR_NAME: Ada Lovelace
  PORT: 8080
  GITHUB_TOKEN: "${GH_PAT}"
  GITEA_TOKEN: "?paste your Gitea API token"
  OTP: "?"
  NOT_HOST: "x${GH_PAT}"
git:
  - Name: app
    Upstream: ssh://git@gitea.example.com:30009/me/app.git
    IdentityFile: ~/.ssh/id_app
    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA
    ExtraHosts:
      gitea.example.com: 10.1.2.3
    PushRefs: [refs/heads/agent/*, refs/tags/v*]
    AllowForce: true
    AllowDelete: true
    AllowTags: true
  - Name: lib
    Upstream: ssh://git@[2001:db8::1]/lib.git
    IdentityFile: /keys/lib
    KnownHostKey: ecdsa-sha2-nistp256 AAAAE2VjZHNh comment
git_user:
  name: Claude (bottle work)
  email: claude@example.com
egress:
  log: full
  trust: [~/certs/corp.pem, /etc/ssl/extra.pem]
  networks: [corp-services]
  routes:
    - host: api.github.com
      path_allowlist: [/repos/me/]
      methods: [GET, POST]
      auth: {scheme: token, token_ref: GH_PAT}
    - host: "*.example.com"
    - host: 10.0.0.5
      allow_private: true
      auth: {header: X-Api-Key, token_ref: SVC_KEY}
supervise: false
repository_agents: allow
image:
  base: registry.example.com/debian:bookworm-slim
  dockerfile: ~/bottle/agent.Dockerfile
  claude_code_version: 2.1.330
---
# Work bottle

Notes for humans.
"#;

const FULL_AGENT: &str = "---\nname: reviewer\ndescription: Reviews code\nmodel: opus\ncolor: blue\ntools: [Read, Grep]\nbottle: work\nskills: [review, lint-rules]\npermission_mode: acceptEdits\n---\n\nYou review code.\n";

#[test]
fn every_key() {
    let f = Fixture::new();
    f.bottle("work", FULL_BOTTLE);
    f.agent("reviewer", FULL_AGENT);
    let index = f.load_with(Some(ClaudeAuth::OAuthToken));
    assert!(
        index.check().errors.is_empty(),
        "{}",
        f.render(&index.check().errors)
    );
    let m = index.manifest("reviewer").expect("valid");

    assert_eq!(m.agent.skills, ["review", "lint-rules"]);
    assert_eq!(m.agent.prompt, "You review code.\n");
    assert_eq!(m.prompt_bytes(), 17);

    let env: Vec<(&str, EnvMode)> = m
        .bottle
        .env
        .iter()
        .map(|e| (e.name.as_str(), e.value.mode()))
        .collect();
    assert_eq!(
        env,
        [
            ("GITEA_TOKEN", EnvMode::Prompt),
            ("GITHUB_TOKEN", EnvMode::Host),
            ("GIT_AUTHOR_NAME", EnvMode::Literal),
            ("NOT_HOST", EnvMode::Literal),
            ("OTP", EnvMode::Prompt),
            ("PORT", EnvMode::Literal),
        ]
    );
    let by_name = |n: &str| {
        &m.bottle
            .env
            .iter()
            .find(|e| e.name == n)
            .expect("present")
            .value
    };
    assert_eq!(
        by_name("GITHUB_TOKEN"),
        &EnvValue::Host {
            var: "GH_PAT".into()
        }
    );
    assert_eq!(
        by_name("GITEA_TOKEN"),
        &EnvValue::Prompt {
            message: Some("paste your Gitea API token".into())
        }
    );
    assert_eq!(by_name("OTP"), &EnvValue::Prompt { message: None });
    match by_name("PORT") {
        EnvValue::Literal(l) => assert_eq!(l.expose(), "8080"),
        other => panic!("{other:?}"),
    }

    let app = &m.bottle.git[0];
    assert_eq!(app.name, "app");
    assert_eq!(
        app.upstream.to_string(),
        "ssh://git@gitea.example.com:30009/me/app.git"
    );
    assert_eq!(app.upstream.port, 30009);
    assert_eq!(app.identity_file, f.user_home().join(".ssh/id_app"));
    assert_eq!(app.extra_hosts["gitea.example.com"].to_string(), "10.1.2.3");
    assert_eq!(
        app.effective_push_refs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["refs/heads/agent/*", "refs/tags/v*"]
    );
    assert!(app.allow_force && app.allow_delete && app.allow_tags);
    let lib = &m.bottle.git[1];
    assert_eq!(lib.upstream.host, "2001:db8::1");
    assert_eq!(lib.upstream.port, 22);
    assert_eq!(lib.upstream.to_string(), "ssh://git@[2001:db8::1]/lib.git");
    // Defaults: every branch, no force, no delete, no tags.
    assert_eq!(lib.push_refs, None);
    assert_eq!(
        lib.effective_push_refs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["refs/heads/*"]
    );
    assert!(!lib.allow_force && !lib.allow_delete && !lib.allow_tags);
    assert_eq!(
        m.bottle.git_user.name.as_deref(),
        Some("Claude (bottle work)")
    );
    assert_eq!(
        m.bottle.git_user.email.as_deref(),
        Some("claude@example.com")
    );

    assert_eq!(m.bottle.egress.log, LogMode::Full);
    assert_eq!(
        m.bottle.egress.trust,
        [
            f.user_home().join("certs/corp.pem"),
            PathBuf::from("/etc/ssl/extra.pem")
        ]
    );
    assert_eq!(m.bottle.egress.networks, ["corp-services"]);
    assert!(!m.bottle.supervise);
    assert_eq!(m.bottle.repository_agents, RepositoryAgents::Allow);
    assert_eq!(
        m.bottle.image.base.as_deref(),
        Some("registry.example.com/debian:bookworm-slim")
    );
    assert_eq!(
        m.bottle.image.dockerfile,
        Some(f.user_home().join("bottle/agent.Dockerfile"))
    );
    assert_eq!(
        m.bottle.image.claude_code_version.as_deref(),
        Some("2.1.330")
    );
    assert_eq!(m.agent.permission_mode, PermissionMode::AcceptEdits);
    assert_eq!(
        m.host_vars(),
        ["CLAUDE_CODE_OAUTH_TOKEN", "GH_PAT", "SVC_KEY"]
    );

    // Never a literal value in Debug output.
    let debug = format!("{m:?}");
    assert!(
        !debug.contains("Ada Lovelace") && !debug.contains("8080"),
        "{debug}"
    );
    insta::assert_snapshot!(f.redact(&format!("{m:#?}")));
}

#[test]
fn route_table_is_claude_code_hosts_then_the_bottles() {
    let f = Fixture::new();
    f.bottle("work", FULL_BOTTLE);
    f.agent("reviewer", FULL_AGENT);
    let m = f.load().manifest("reviewer").expect("valid");
    let table: Vec<(String, String)> = m
        .bottle
        .egress
        .routes
        .iter()
        .map(|r| (r.route.host.to_string(), r.source.label().to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = CLAUDE_CODE_HOSTS
        .iter()
        .map(|h| ((*h).to_owned(), "claude-code".to_owned()))
        .collect();
    for h in ["api.github.com", "*.example.com", "10.0.0.5"] {
        expected.push((h.to_owned(), "work".to_owned()));
    }
    assert_eq!(table, expected);
    // Without a host credential, the API route injects nothing and the agent needs no placeholder.
    assert_eq!(m.bottle.egress.routes[0].route.auth, None);
    assert_eq!(m.bottle.claude_placeholder_env(), None);
}

#[test]
fn builtin_default_with_oauth_token() {
    let f = Fixture::new();
    let m = f
        .load_with(ClaudeAuth::detect(|v| {
            v == "CLAUDE_CODE_OAUTH_TOKEN" || v == "ANTHROPIC_API_KEY"
        }))
        .manifest("default")
        .expect("built-in");
    assert_eq!(
        (m.agent.origin, m.bottle.origin),
        (Origin::BuiltIn, Origin::BuiltIn)
    );
    assert_eq!(m.bottle.chain, ["default"]);
    assert!(m.bottle.env.is_empty() && m.bottle.git.is_empty() && m.bottle.supervise);
    assert_eq!(
        m.agent.permission_mode,
        PermissionMode::BypassPermissions,
        "the bottle is the sandbox: no prompts inside by default"
    );
    let hosts: Vec<&str> = m
        .bottle
        .egress
        .routes
        .iter()
        .map(|r| r.route.host.as_str())
        .collect();
    assert_eq!(hosts, CLAUDE_CODE_HOSTS);
    assert_eq!(
        m.bottle.egress.routes[0].route.auth,
        Some(RouteAuth::Scheme {
            scheme: AuthScheme::Bearer,
            token_ref: "CLAUDE_CODE_OAUTH_TOKEN".parse().unwrap()
        })
    );
    assert_eq!(
        m.bottle.claude_placeholder_env(),
        Some(("CLAUDE_CODE_OAUTH_TOKEN", PLACEHOLDER))
    );
    assert!(
        m.bottle.egress.routes[1..]
            .iter()
            .all(|r| r.route.auth.is_none())
    );
    insta::assert_snapshot!(format!("{m:#?}"));
}

#[test]
fn builtin_default_with_api_key() {
    let f = Fixture::new();
    let m = f
        .load_with(ClaudeAuth::detect(|v| v == "ANTHROPIC_API_KEY"))
        .manifest("default")
        .expect("built-in");
    assert_eq!(
        m.bottle.egress.routes[0].route.auth,
        Some(RouteAuth::Header {
            header: "x-api-key".parse().unwrap(),
            token_ref: "ANTHROPIC_API_KEY".parse().unwrap()
        })
    );
    assert_eq!(
        m.bottle.claude_placeholder_env(),
        Some(("ANTHROPIC_API_KEY", PLACEHOLDER))
    );
    assert_eq!(ClaudeAuth::detect(|_| false), None);
}

#[test]
fn manifest_route_wins_over_claude_code_route() {
    let f = Fixture::new();
    f.bottle("b", &md("egress:\n  routes:\n    - host: api.anthropic.com\n      path_allowlist: [/v1/messages]\n"));
    f.agent("a", &md("bottle: b\n"));
    let m = f
        .load_with(Some(ClaudeAuth::OAuthToken))
        .manifest("a")
        .expect("valid");
    let api: Vec<_> = m
        .bottle
        .egress
        .routes
        .iter()
        .filter(|r| r.route.host == "api.anthropic.com")
        .collect();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].source, RouteSource::Bottle("b".into()));
    assert_eq!(api[0].route.path_allowlist, ["/v1/messages"]);
    assert_eq!(
        api[0].route.auth, None,
        "the manifest's route replaces the built-in one entirely"
    );
    // The API route moved to the bottle's part of the table.
    assert_eq!(
        m.bottle.egress.routes.last().map(|r| r.route.host.as_str()),
        Some("api.anthropic.com")
    );
}

#[test]
fn home_default_bottle_replaces_the_builtin() {
    let f = Fixture::new();
    f.bottle("default", &md("supervise: false\n"));
    let m = f.load().manifest("default").expect("valid");
    assert_eq!(m.bottle.origin, Origin::Home);
    assert!(!m.bottle.supervise);
}

#[test]
fn user_bottle_may_extend_the_builtin_default() {
    let f = Fixture::new();
    f.bottle("b", &md("extends: default\nenv: {A: x}\n"));
    f.agent("a", &md("bottle: b\n"));
    let m = f.load().manifest("a").expect("valid");
    assert_eq!(m.bottle.chain, ["default", "b"]);
}

#[test]
fn extends_folds_left_to_right() {
    let f = Fixture::new();
    let git = |name: &str, host: &str| {
        format!(
            "  - Name: {name}\n    Upstream: ssh://git@{host}/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
        )
    };
    f.bottle(
        "base",
        &md(&format!(
            "env: {{A: base, B: base}}\ngit:\n{}{}egress:\n  log: full\n  trust: [/ca1]\n  networks: [n1]\n  routes:\n    - host: one.example\n    - host: two.example\n      methods: [GET]\nsupervise: false\n",
            git("repo", "base.example"),
            git("only-base", "base.example")
        )),
    );
    f.bottle(
        "mid",
        &md(&format!(
            "extends: base\nenv: {{B: mid, C: mid}}\ngit_user: {{name: Mid, email: mid@example.com}}\nimage: {{base: \"mid:1\", dockerfile: /df/mid}}\ngit:\n{}egress:\n  trust: [/ca2, /ca1]\n  routes:\n    - host: two.example\n      methods: [POST]\n    - host: three.example\n",
            git("repo", "mid.example")
        )),
    );
    f.bottle(
        "other",
        &md("env: {D: other}\nsupervise: true\ngit_user: {email: other@example.com}\negress:\n  log: off\n  networks: [n2]\n"),
    );
    f.bottle(
        "child",
        &md("extends: [mid, other]\nenv: {C: child}\nimage:\n  dockerfile: /df/child\n"),
    );
    f.agent("a", &md("bottle: child\n"));
    let m = f.load().manifest("a").expect("valid");
    let b = &m.bottle;
    assert_eq!(b.chain, ["base", "mid", "other", "child"]);
    let env: Vec<(&str, &str)> = b
        .env
        .iter()
        .map(|e| match &e.value {
            EnvValue::Literal(l) => (e.name.as_str(), l.expose()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        env,
        [("A", "base"), ("B", "mid"), ("C", "child"), ("D", "other")]
    );
    let git: Vec<(&str, &str)> = b
        .git
        .iter()
        .map(|g| (g.name.as_str(), g.upstream.host.as_str()))
        .collect();
    assert_eq!(
        git,
        [("only-base", "base.example"), ("repo", "mid.example")]
    );
    let routes: Vec<(&str, Vec<String>, &str)> = b
        .egress
        .routes
        .iter()
        .filter(|r| r.source != RouteSource::ClaudeCode)
        .map(|r| {
            (
                r.route.host.as_str(),
                r.route
                    .methods
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>(),
                r.source.label(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("one.example", vec![], "base"),
            ("two.example", vec!["POST".to_owned()], "mid"),
            ("three.example", vec![], "mid"),
        ]
    );
    assert_eq!(b.egress.log, LogMode::Off);
    assert_eq!(
        b.egress.trust,
        [PathBuf::from("/ca1"), PathBuf::from("/ca2")]
    );
    assert_eq!(b.egress.networks, ["n1", "n2"]);
    assert!(
        b.supervise,
        "`other` sets supervise: true after base's false"
    );
    // `git_user` fields are scalars: each last-wins on its own.
    assert_eq!(b.git_user.name.as_deref(), Some("Mid"));
    assert_eq!(b.git_user.email.as_deref(), Some("other@example.com"));
    // `image` fields are scalars: each last-wins on its own.
    assert_eq!(b.image.base.as_deref(), Some("mid:1"));
    assert_eq!(b.image.dockerfile, Some(PathBuf::from("/df/child")));
}

#[test]
fn diamond_extends_is_not_a_cycle() {
    let f = Fixture::new();
    f.bottle("root", &md("env: {R: root}\n"));
    f.bottle("left", &md("extends: root\n"));
    f.bottle("right", &md("extends: root\n"));
    f.bottle("tip", &md("extends: [left, right]\n"));
    f.agent("a", &md("bottle: tip\n"));
    let m = f.load().manifest("a").expect("valid");
    assert_eq!(m.bottle.chain, ["root", "left", "right", "tip"]);
}

#[test]
fn empty_front_matter_and_crlf_and_bom() {
    let f = Fixture::new();
    f.bottle("empty", "---\n---\n");
    f.agent("crlf", "\u{feff}---\r\nbottle: empty\r\n---\r\nPrompt.\r\n");
    let m = f.load().manifest("crlf").expect("valid");
    assert_eq!(m.agent.prompt, "Prompt.\r\n");
    assert!(m.bottle.supervise, "supervise defaults to true");
}

#[test]
fn listing() {
    let f = Fixture::new();
    f.bottle("base", &md(""));
    f.bottle("work", &md("extends: base\n"));
    f.agent("a", &md("bottle: work\n"));
    f.agent("broken", &md("nope: 1\n"));
    let index = f.load();
    let agents: Vec<String> = index
        .agents()
        .iter()
        .map(|e| format!("{} {} {:?} errors={}", e.name, e.origin, e.uses, e.errors))
        .collect();
    let bottles: Vec<String> = index
        .bottles()
        .iter()
        .map(|e| format!("{} {} {:?} errors={}", e.name, e.origin, e.uses, e.errors))
        .collect();
    insta::assert_snapshot!(format!("{}\n--\n{}", agents.join("\n"), bottles.join("\n")));
}

#[test]
fn literal_values_are_redacted_in_debug_and_display() {
    let l = bottle_manifest::Literal::new("hunter2");
    assert_eq!(format!("{l:?}"), "Literal(<redacted>)");
    assert_eq!(l.to_string(), "<redacted>");
    assert_eq!(l.expose(), "hunter2");
}

#[test]
fn numbers_and_booleans_in_env_are_literal_text() {
    let f = Fixture::new();
    f.bottle(
        "b",
        &md("env:\n  PORT: 8080\n  DEBUG: true\n  RATIO: 0.5\n"),
    );
    f.agent("a", &md("bottle: b\n"));
    let m = f.load().manifest("a").expect("valid");
    let values: Vec<&str> = m
        .bottle
        .env
        .iter()
        .map(|e| match &e.value {
            EnvValue::Literal(l) => l.expose(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, ["true", "8080", "0.5"]);
}
