//! Every error message, snapshotted. Each case writes one broken file and snapshots what
//! `check` reports (file:line:col, the offending line, the hint).

use crate::{Fixture, md};

/// A bottle `b` with `front`, used by an agent so resolution runs too.
fn bottle_errors(front: &str) -> String {
    let f = Fixture::new();
    f.bottle("b", &md(front));
    f.agent("a", &md("bottle: b\n"));
    let out = f.check_errors();
    assert!(!out.is_empty(), "expected an error for:\n{front}");
    out
}

fn agent_errors(front: &str) -> String {
    let f = Fixture::new();
    f.agent("a", &md(front));
    let out = f.check_errors();
    assert!(!out.is_empty(), "expected an error for:\n{front}");
    out
}

macro_rules! bottle_case {
    ($name:ident, $front:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(bottle_errors($front));
        }
    };
}

macro_rules! agent_case {
    ($name:ident, $front:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(agent_errors($front));
        }
    };
}

// Front matter and YAML.
#[test]
fn no_front_matter() {
    let f = Fixture::new();
    f.bottle("b", "# Just markdown\n");
    insta::assert_snapshot!(f.check_errors());
}

#[test]
fn unclosed_front_matter() {
    let f = Fixture::new();
    f.bottle("b", "---\nsupervise: true\n");
    insta::assert_snapshot!(f.check_errors());
}

bottle_case!(yaml_syntax, "extends: [a, b\nsupervise: true\n");
bottle_case!(yaml_bad_indentation, "env:\n  A: x\n B: y\n");
bottle_case!(duplicate_key, "supervise: true\nsupervise: false\n");
bottle_case!(repository_agents_misspelt, "repository_agent: allow\n");
bottle_case!(repository_agents_not_a_choice, "repository_agents: yes\n");
bottle_case!(front_matter_not_a_mapping, "- a\n- b\n");
bottle_case!(yaml_1_1_boolean, "supervise: yes\n");
bottle_case!(supervise_not_bool, "supervise: sometimes\n");

// Unknown and removed keys.
bottle_case!(unknown_top_level_key, "egres:\n  routes: []\n");
bottle_case!(unknown_egress_key, "egress:\n  route: []\n");
bottle_case!(
    unknown_route_key,
    "egress:\n  routes:\n    - host: example.com\n      paths: [/a]\n"
);
bottle_case!(
    unknown_git_key,
    "git:\n  - Name: x\n    Upstream: ssh://git@h/x.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n    Port: 22\n"
);
bottle_case!(removed_egress_proxy, "egress_proxy:\n  routes: []\n");
bottle_case!(removed_cred_proxy, "cred_proxy:\n  routes: []\n");
bottle_case!(removed_ssh, "ssh: []\n");
bottle_case!(removed_runtime, "runtime: runsc\n");
bottle_case!(removed_allowlist, "egress:\n  allowlist: [example.com]\n");
bottle_case!(
    removed_agent_provider,
    "agent_provider:\n  template: claude\n"
);
bottle_case!(removed_git_gate, "git-gate:\n  repos: {}\n");
bottle_case!(
    removed_route_role,
    "egress:\n  routes:\n    - host: example.com\n      role: npm-registry\n"
);
bottle_case!(
    removed_route_matches,
    "egress:\n  routes:\n    - host: example.com\n      matches:\n        - methods: [GET]\n"
);
bottle_case!(
    removed_route_dlp,
    "egress:\n  routes:\n    - host: example.com\n      dlp:\n        inbound_detectors: false\n"
);
bottle_case!(
    removed_cred_proxy_route_fields,
    "egress:\n  routes:\n    - host: example.com\n      upstream: https://example.com\n"
);
bottle_case!(removed_tokens, "tokens: [GH_PAT]\n");
bottle_case!(removed_pipelock, "pipelock: {}\n");
bottle_case!(removed_dlp_action, "dlp_action: block\n");
// The original tool's numeric log levels (0 off, 1 blocks, 2 full).
bottle_case!(egress_numeric_log_level, "egress:\n  log: 2\n");
agent_case!(unknown_agent_key, "bottle: default\nskils: [a]\n");
agent_case!(removed_agent_prompt, "bottle: default\nprompt: hello\n");

// Agents.
agent_case!(agent_without_bottle, "skills: [x]\n");
agent_case!(
    permission_mode_misspelt,
    "bottle: default\npermission_mode: acceptedits\n"
);
agent_case!(
    permission_mode_unknown,
    "bottle: default\npermission_mode: yolo\n"
);
agent_case!(agent_bad_bottle_name, "bottle: Work_Stuff\n");
agent_case!(agent_missing_bottle, "bottle: wrok\n");
agent_case!(
    agent_skill_with_slash,
    "bottle: default\nskills: [../etc]\n"
);
agent_case!(agent_skill_twice, "bottle: default\nskills: [a, a]\n");
agent_case!(agent_skills_not_a_list, "bottle: default\nskills: {a: 1}\n");

#[test]
fn agent_bottle_only_in_repo() {
    let f = Fixture::new();
    f.write(
        f.cwd().join(".claude-bottle/bottles/sneaky.md"),
        md("env: {A: b}\n"),
    );
    f.repo_agent("a", &md("bottle: sneaky\n"));
    insta::assert_snapshot!(f.check_errors());
}

// Env.
bottle_case!(env_bad_name, "env:\n  1BAD: x\n");
bottle_case!(
    env_reserved_proxy,
    "env:\n  HTTPS_PROXY: http://evil:8080\n"
);
bottle_case!(
    env_reserved_claude_token,
    "env:\n  CLAUDE_CODE_OAUTH_TOKEN: \"${CLAUDE_CODE_OAUTH_TOKEN}\"\n"
);
// Set by every backend: a manifest value would be silently replaced.
bottle_case!(env_reserved_home, "env:\n  HOME: /tmp\n");
bottle_case!(env_not_a_mapping, "env: [A, B]\n");
bottle_case!(env_null_value, "env:\n  A:\n");

// Image.
bottle_case!(image_bad_base, "image:\n  base: --privileged debian\n");
bottle_case!(
    image_dockerfile_relative,
    "image:\n  dockerfile: Dockerfile\n"
);
bottle_case!(image_unknown_key, "image:\n  from: debian\n");
bottle_case!(
    image_claude_code_version_not_pinned,
    "image:\n  claude_code_version: latest\n"
);

// Extends.
bottle_case!(extends_itself, "extends: b\n");
bottle_case!(extends_missing, "extends: bsae\n");
bottle_case!(extends_bad_name, "extends: [Base]\n");
bottle_case!(extends_wrong_type, "extends: {a: 1}\n");

#[test]
fn extends_cycle() {
    let f = Fixture::new();
    f.bottle("a", &md("extends: b\n"));
    f.bottle("b", &md("extends: c\n"));
    f.bottle("c", &md("extends: a\n"));
    insta::assert_snapshot!(f.check_errors());
}

#[test]
fn extends_broken_parent_reports_parent_error() {
    let f = Fixture::new();
    f.bottle("base", &md("egres: {}\n"));
    f.bottle("b", &md("extends: base\n"));
    f.agent("a", &md("bottle: b\n"));
    insta::assert_snapshot!(f.select_error("a"));
}

// Git.
const GIT_OK: &str = "    Upstream: ssh://git@example.com:2222/me/repo.git\n    IdentityFile: ~/.ssh/id_ed25519\n    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n";
bottle_case!(git_bad_name, &format!("git:\n  - Name: a/b\n{GIT_OK}"));
bottle_case!(
    git_duplicate_name,
    &format!("git:\n  - Name: a\n{GIT_OK}  - Name: a\n{GIT_OK}")
);
bottle_case!(
    git_upstream_https,
    "git:\n  - Name: a\n    Upstream: https://github.com/me/repo.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_upstream_no_user,
    "git:\n  - Name: a\n    Upstream: ssh://github.com/me/repo.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_upstream_bad_port,
    "git:\n  - Name: a\n    Upstream: ssh://git@h:99999/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_upstream_no_path,
    "git:\n  - Name: a\n    Upstream: ssh://git@h\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_identity_relative,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: keys/id\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_missing_known_host_key,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n"
);
bottle_case!(
    git_missing_upstream,
    "git:\n  - Name: a\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_bad_host_key,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: not a key\n"
);
bottle_case!(
    git_host_key_with_host,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: h ssh-ed25519 AAAA\n"
);
bottle_case!(
    git_extra_hosts_bad_ip,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n    ExtraHosts: {h: 10.0.0.300}\n"
);
bottle_case!(
    git_extra_hosts_conflict,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n    ExtraHosts: {h: 10.0.0.1}\n  - Name: b\n    Upstream: ssh://git@h/s.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n    ExtraHosts: {h: 10.0.0.2}\n"
);

// Egress.
bottle_case!(
    route_host_url,
    "egress:\n  routes:\n    - host: https://api.github.com\n"
);
bottle_case!(
    route_host_upper_case,
    "egress:\n  routes:\n    - host: API.github.com\n"
);
bottle_case!(
    route_host_with_port,
    "egress:\n  routes:\n    - host: example.com:443\n"
);
bottle_case!(
    route_host_missing,
    "egress:\n  routes:\n    - path_allowlist: [/a]\n"
);
bottle_case!(
    route_duplicate_host,
    "egress:\n  routes:\n    - host: example.com\n    - host: example.com\n"
);
bottle_case!(
    route_bad_path,
    "egress:\n  routes:\n    - host: example.com\n      path_allowlist: [api/v1]\n"
);
bottle_case!(
    route_bad_method,
    "egress:\n  routes:\n    - host: example.com\n      methods: [get]\n"
);
bottle_case!(
    route_auth_empty,
    "egress:\n  routes:\n    - host: example.com\n      auth: {}\n"
);
bottle_case!(
    route_auth_both,
    "egress:\n  routes:\n    - host: example.com\n      auth: {scheme: Bearer, header: x-api-key, token_ref: T}\n"
);
bottle_case!(
    route_auth_no_token_ref,
    "egress:\n  routes:\n    - host: example.com\n      auth: {scheme: Bearer}\n"
);
bottle_case!(
    route_auth_bad_scheme,
    "egress:\n  routes:\n    - host: example.com\n      auth: {scheme: Basic, token_ref: T}\n"
);
bottle_case!(
    route_auth_bad_token_ref,
    "egress:\n  routes:\n    - host: example.com\n      auth: {scheme: Bearer, token_ref: my-token}\n"
);
bottle_case!(
    route_auth_framing_header,
    "egress:\n  routes:\n    - host: example.com\n      auth: {header: Host, token_ref: T}\n"
);
bottle_case!(
    route_allow_private_not_bool,
    "egress:\n  routes:\n    - host: example.com\n      allow_private: 1\n"
);
bottle_case!(egress_bad_log, "egress:\n  log: verbose\n");
bottle_case!(egress_trust_relative, "egress:\n  trust: [certs/ca.pem]\n");
bottle_case!(egress_bad_network, "egress:\n  networks: [\"my net\"]\n");

// Several errors in one file are all reported.
bottle_case!(
    many_errors_in_one_file,
    "env:\n  1A: x\n  HTTP_PROXY: y\negress:\n  routes:\n    - host: Bad\n    - host: ok.example\n      methods: [get]\n"
);

#[test]
fn unknown_agent() {
    let f = Fixture::new();
    f.agent("reviewer", &md("bottle: default\n"));
    insta::assert_snapshot!(f.select_error("reveiwer"));
    insta::assert_snapshot!("unknown_agent_far", f.select_error("zzz"));
}

#[test]
fn select_broken_agent() {
    let f = Fixture::new();
    f.agent("a", &md("bottle: default\nskills: [x, x]\n"));
    insta::assert_snapshot!(f.select_error("a"));
}

#[test]
fn positions_point_at_the_offending_token() {
    let f = Fixture::new();
    f.bottle(
        "b",
        &md("egress:\n  routes:\n    - host: example.com\n      methods: [GET, post]\n"),
    );
    let report = f.load().check();
    let d = &report.errors[0];
    // Line 1 is `---`; `methods` is on line 5 of the file; `post` starts at column 22.
    assert_eq!((d.line, d.column), (5, 22));
    assert_eq!(d.source_line.as_deref(), Some("      methods: [GET, post]"));
}

bottle_case!(env_duplicate_name, "env:\n  A: x\n  A: y\n");
const GIT_H: &str = "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n";
bottle_case!(
    git_extra_hosts_other_host,
    &format!("{GIT_H}    ExtraHosts: {{other.example: 10.0.0.1}}\n")
);
bottle_case!(
    git_push_refs_short_name,
    &format!("{GIT_H}    PushRefs: [agent/*]\n")
);
bottle_case!(
    git_push_refs_bad_character,
    &format!("{GIT_H}    PushRefs: [refs/heads/ok, \"refs/heads/a b\", \"refs/heads/[ab]\"]\n")
);
bottle_case!(
    git_push_refs_tags_without_allow_tags,
    &format!("{GIT_H}    PushRefs: [refs/heads/*, refs/tags/v*]\n")
);
bottle_case!(
    git_allow_force_not_bool,
    &format!("{GIT_H}    AllowForce: yes\n")
);
bottle_case!(
    git_user_control_character,
    "git_user:\n  name: \"Ada\\nLovelace\"\n  email: \"<ada@example.com>\"\n"
);
bottle_case!(git_user_unknown_key, "git_user:\n  mail: ada@example.com\n");
bottle_case!(
    git_extra_hosts_duplicate_key,
    "git:\n  - Name: a\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n    ExtraHosts: {h: 10.0.0.1, h: 10.0.0.2}\n"
);

#[test]
fn env_values_are_never_shown_in_diagnostics() {
    for front in [
        "env:\n  HTTPS_PROXY: http://user:hunter2@proxy\n",
        "env:\n  A: hunter2\n  A: hunter2\n",
        "env: {1A: hunter2}\n",
        "env:\n  1A: hunter2\n",
        "env:\n  A: [hunter2\n",
        "env:\n  A: |\n    hunter2\n  A: x\n",
        "env:\n  A: \"hunter2\n    hunter2\"\nsupervise: maybe\n",
    ] {
        let out = bottle_errors(front);
        assert!(!out.contains("hunter2"), "{out}");
    }
    insta::assert_snapshot!(bottle_errors(
        "env:\n  OK: fine\n  HTTPS_PROXY: http://user:hunter2@proxy\n"
    ));
}
