//! The git gate as the recipe makes it: only with git entries; its spec (alias, upstream
//! bridge, joined networks, known secrets by variable, readiness from inside); its files (the
//! config with keys at their paths in the gate, each key readable by the gate's user only).

use std::path::Path;

use bottle_core::{
    EnvEntry, EnvSource, FileContents, FileOwner, PreparedSpec, Readiness, Role, SecretString,
    Secrets, SidecarEnvValue,
};
use bottle_git_gate::GateConfig;
use bottle_manifest::GitEntry;
use bottle_recipe::{LaunchMaterial, git_gate, sidecars};

use crate::{network, prepared};

const GATE_USER: FileOwner = FileOwner {
    uid: 10001,
    gid: 10001,
};

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

/// The egress test bottle plus two git entries (one with a ref policy), a literal, a `${VAR}`
/// and a prompted env entry; keys in `dir`.
fn with_git(dir: &Path) -> PreparedSpec {
    let mut prepared = prepared(Vec::new());
    let bottle = &mut prepared.agent.bottle;
    for name in ["app", "docs"] {
        std::fs::write(dir.join(format!("id_{name}")), KEY).unwrap();
    }
    let app: GitEntry = bottle_manifest::yaml::parse(&format!(
        "Name: app\nUpstream: ssh://git@github.com/me/app.git\nIdentityFile: {}\n\
         KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
         PushRefs: [refs/heads/agent/*]\n",
        dir.join("id_app").display()
    ))
    .unwrap();
    let docs: GitEntry = bottle_manifest::yaml::parse(&format!(
        "Name: docs\nUpstream: ssh://git@git.corp.example:2222/team/docs.git\nIdentityFile: {}\n\
         KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
         ExtraHosts: {{git.corp.example: 10.1.2.3}}\n",
        dir.join("id_docs").display()
    ))
    .unwrap();
    bottle.git = vec![app, docs];
    bottle.env = vec![
        EnvEntry::new("MODE", EnvSource::Literal(SecretString::new("fast"))),
        EnvEntry::new("GH_TOKEN", EnvSource::Host("GH_TOKEN".to_owned())),
        EnvEntry::new("DB_PASSWORD", EnvSource::Prompt(None)),
        EnvEntry::new("PIN", EnvSource::Prompt(None)),
    ];
    prepared
}

fn secrets() -> Secrets {
    Secrets::empty()
        .with_token("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-abcdefghijkl")
        .with_token("GH_PAT", "ghp_0123456789abcdefghij")
        .with_env("MODE", "fast")
        .with_env("GH_TOKEN", "gho_abcdefghijklmnop")
        .with_env("DB_PASSWORD", "correct horse battery")
        // Too short to scan for: the gate would refuse it.
        .with_env("PIN", "1234")
}

#[test]
fn a_bottle_without_git_entries_runs_no_gate() {
    let specs = sidecars(&prepared(Vec::new()));
    assert_eq!(
        specs.iter().map(|s| s.role).collect::<Vec<_>>(),
        [Role::Egress]
    );
}

#[test]
fn the_gate_of_a_bottle_with_git_entries() {
    let dir = tempfile::tempdir().unwrap();
    let specs = sidecars(&with_git(dir.path()));
    assert_eq!(
        specs.iter().map(|s| s.role).collect::<Vec<_>>(),
        [Role::Egress, Role::GitGate]
    );
    let gate = &specs[1];
    assert_eq!(gate.alias.as_deref(), Some("git-gate"));
    assert!(gate.upstream, "its own bridge to the upstreams");
    assert_eq!(gate.joins, ["corp-services"], "an upstream may live there");
    assert_eq!(
        gate.readiness,
        Readiness::Exec(vec![
            git_gate::BINARY.to_owned(),
            "health".to_owned(),
            "--addr".to_owned(),
            "127.0.0.1:9419".to_owned()
        ])
    );
    let key_dir = dir.path().display().to_string();
    insta::with_settings!({filters => vec![(key_dir.as_str(), "[KEYS]")]}, {
        insta::assert_yaml_snapshot!(gate);
    });
}

#[test]
fn known_secrets_go_by_prefixed_variable_and_never_a_literal() {
    let dir = tempfile::tempdir().unwrap();
    let known = git_gate::known_secrets(&with_git(dir.path()));
    let pairs: Vec<(&str, &SidecarEnvValue)> = known
        .iter()
        .map(|k| (k.variable.as_str(), &k.source))
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "CREDENTIAL_CLAUDE_CODE_OAUTH_TOKEN",
                &SidecarEnvValue::CredentialOf("CLAUDE_CODE_OAUTH_TOKEN".to_owned())
            ),
            (
                "CREDENTIAL_GH_PAT",
                &SidecarEnvValue::CredentialOf("GH_PAT".to_owned())
            ),
            (
                "ENV_GH_TOKEN",
                &SidecarEnvValue::EnvOf("GH_TOKEN".to_owned())
            ),
            (
                "ENV_DB_PASSWORD",
                &SidecarEnvValue::EnvOf("DB_PASSWORD".to_owned())
            ),
            ("ENV_PIN", &SidecarEnvValue::EnvOf("PIN".to_owned())),
        ]
    );
    // The config lists only what the gate can scan for: `PIN` is under 8 bytes.
    assert_eq!(
        git_gate::scannable(&with_git(dir.path()), &secrets()),
        [
            "CREDENTIAL_CLAUDE_CODE_OAUTH_TOKEN",
            "CREDENTIAL_GH_PAT",
            "ENV_GH_TOKEN",
            "ENV_DB_PASSWORD"
        ]
    );
}

#[test]
fn a_launch_makes_the_config_and_the_keys_the_spec_lists() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = with_git(dir.path());
    let material = LaunchMaterial::mint(&prepared, &secrets()).unwrap();
    let files = material
        .files(&prepared, Role::GitGate, GATE_USER, &[network()])
        .unwrap();
    let mut made: Vec<&str> = files
        .iter()
        .filter(|f| matches!(f.contents, FileContents::File(_)))
        .map(|f| f.path.as_str())
        .collect();
    made.sort_unstable();
    let specs = sidecars(&prepared);
    let listed: Vec<&str> = specs[1].files.keys().map(String::as_str).collect();
    assert_eq!(made, listed);

    // Each key: the host file's bytes, the gate's user only, read-only.
    let key = files
        .iter()
        .find(|f| f.path == "/etc/bottle-git-gate/keys/app")
        .unwrap();
    assert_eq!((key.owner, key.mode), (GATE_USER, 0o400));
    assert_eq!(key.contents, FileContents::File(KEY.as_bytes().to_vec()));
    assert!(
        !format!("{files:?}").contains("PRIVATE KEY"),
        "Debug shows no contents"
    );
    // The config: root-owned, readable by the gate's group, not by others.
    let config = files
        .iter()
        .find(|f| f.path == git_gate::CONFIG_FILE)
        .unwrap();
    assert_eq!(
        (config.owner, config.mode),
        (FileOwner { uid: 0, gid: 10001 }, 0o640)
    );
    let FileContents::File(json) = &config.contents else {
        panic!("a file");
    };
    let text = String::from_utf8(json.clone()).unwrap();
    // Names only: no secret value, no key.
    for value in [
        "ghp_0123456789abcdefghij",
        "correct horse battery",
        "OPENSSH",
    ] {
        assert!(!text.contains(value), "{value} in {text}");
    }
    // The gate's own parser accepts it, with each key at its path in the gate.
    let parsed = GateConfig::from_yaml(&text, Some(Path::new(git_gate::CONFIG_FILE))).unwrap();
    assert_eq!(parsed.listen.to_string(), "0.0.0.0:9419");
    assert_eq!(
        parsed.entries[0].identity_file,
        Path::new("/etc/bottle-git-gate/keys/app")
    );
    let key_dir = dir.path().display().to_string();
    insta::with_settings!({filters => vec![(key_dir.as_str(), "[KEYS]")]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn a_missing_key_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = with_git(dir.path());
    std::fs::remove_file(dir.path().join("id_docs")).unwrap();
    let material = LaunchMaterial::mint(&prepared, &secrets()).unwrap();
    let err = material
        .files(&prepared, Role::GitGate, GATE_USER, &[network()])
        .unwrap_err();
    assert!(err.to_string().contains("id_docs"), "{err}");
}

#[test]
fn the_egress_gets_the_bottles_env_secrets_by_prefixed_variable_for_dlp() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = with_git(dir.path());
    let egress = sidecars(&prepared)
        .into_iter()
        .find(|s| s.role == Role::Egress)
        .unwrap();
    let env: Vec<(&str, &SidecarEnvValue)> = egress
        .env
        .iter()
        .filter(|e| e.name.starts_with(git_gate::ENV_PREFIX))
        .map(|e| (e.name.as_str(), &e.value))
        .collect();
    assert_eq!(
        env,
        [
            (
                "ENV_GH_TOKEN",
                &SidecarEnvValue::EnvOf("GH_TOKEN".to_owned())
            ),
            (
                "ENV_DB_PASSWORD",
                &SidecarEnvValue::EnvOf("DB_PASSWORD".to_owned())
            ),
            ("ENV_PIN", &SidecarEnvValue::EnvOf("PIN".to_owned())),
        ]
    );
    // The config names the scannable ones (the credentials the egress holds already).
    let known = git_gate::scannable(&prepared, &secrets());
    let config = bottle_recipe::egress::config(&prepared, &[network()], &known);
    let names: Vec<&str> = config.known_secrets.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["ENV_GH_TOKEN", "ENV_DB_PASSWORD"]);
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("correct horse"), "names only: {json}");
}
