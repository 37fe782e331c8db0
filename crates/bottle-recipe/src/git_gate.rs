//! The git-gate sidecar: the [bottle-git-gate](bottle_git_gate) server through which the
//! agent fetches from and pushes to the bottle's `git:` upstreams, as every backend runs it —
//! its spec, its config (entries with their keys' paths in the gate, the known secrets, the
//! clients it serves) and its files, keys included. Only a bottle with git entries runs it.
//!
//! The agent sees none of this: it gets a git config that rewrites each upstream to
//! `http://git-gate:9419/<name>` ([`bottle_manifest::gitconfig`]), and no key, no
//! `known_hosts`, no ssh config. The keys live in the gate only, readable by its user only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use bottle_core::agent::Limits;
use bottle_core::{
    BottleFile, EnvSource, FileOwner, PreparedSpec, Readiness, Role, Secrets, SidecarEnv,
    SidecarEnvValue, SidecarSpec,
};
use bottle_git_gate::GateConfig;
use bottle_manifest::Cidr;
use bottle_manifest::gitconfig::{GATE_HOST, GATE_PORT, GateEndpoint};
use bottle_secrets::{MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN};

use crate::error::{RecipeError, Result};

pub use bottle_git_gate::{DOCKERFILE, IMAGE_ENV, default_image};

/// The folder of the gate's config and keys inside its container.
pub const CONFIG_DIR: &str = "/etc/bottle-git-gate";
/// The gate's config file (JSON, which its YAML loader reads).
pub const CONFIG_FILE: &str = "/etc/bottle-git-gate/config.yaml";
/// The folder of the entries' private keys inside the gate.
pub const KEYS_DIR: &str = "/etc/bottle-git-gate/keys";
/// The variable that names the config file (the image sets it too).
pub const CONFIG_ENV: &str = "BOTTLE_GIT_GATE_CONFIG";
/// The gate image's binary, its entrypoint.
pub const BINARY: &str = "/usr/local/bin/bottle-git-gate";
/// The gate's bare repositories, hooks and `known_hosts` files (no key ever).
pub const STATE_DIR: &str = bottle_git_gate::DEFAULT_STATE;

/// Prefix of the variable carrying a route credential's value (`CREDENTIAL_GH_PAT`).
pub const CREDENTIAL_PREFIX: &str = "CREDENTIAL_";
/// Prefix of the variable carrying a secret env entry's value (`ENV_DB_PASSWORD`).
pub const ENV_PREFIX: &str = "ENV_";

/// The gate runs `git upload-pack` / `receive-pack` and `ssh` per request; the bound contains
/// a runaway push.
pub const LIMITS: Limits = Limits {
    memory_bytes: 1 << 30,
    pids: 512,
    millicpus: 1000,
};

/// Where an entry's key is inside the gate.
pub fn key_file(entry: &str) -> String {
    format!("{KEYS_DIR}/{entry}")
}

/// One value the gate scans every push for, carried to it in its own variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSecret {
    /// The gate's variable (prefixed, so a bottle's `PATH` or `GIT_SSH_COMMAND` entry can never
    /// become part of the gate's own environment), named in a rejected push's message.
    pub variable: String,
    /// Where its value comes from.
    pub source: SidecarEnvValue,
}

impl KnownSecret {
    /// Its value in `secrets`, when it has one.
    fn value<'s>(&self, secrets: &'s Secrets) -> Option<&'s str> {
        match &self.source {
            SidecarEnvValue::CredentialOf(token_ref) => {
                secrets.token(token_ref).map(|v| v.expose())
            }
            SidecarEnvValue::EnvOf(entry) => secrets
                .env()
                .find(|(name, _)| name == entry)
                .map(|(_, v)| v.expose()),
            SidecarEnvValue::Fixed(_)
            | SidecarEnvValue::Credential
            | SidecarEnvValue::Launch(_) => None,
        }
    }
}

/// The bottle's secrets, which must never leave in a push: every route credential (the
/// Claude credential among them) and every env entry whose value is not in the manifest
/// (`${VAR}` and `?`-prompted), in that order, each once.
pub fn known_secrets(prepared: &PreparedSpec) -> Vec<KnownSecret> {
    let bottle = &prepared.agent.bottle;
    let credentials = crate::egress::credential_refs(prepared)
        .into_iter()
        .map(|token_ref| KnownSecret {
            variable: format!("{CREDENTIAL_PREFIX}{token_ref}"),
            source: SidecarEnvValue::CredentialOf(token_ref.to_owned()),
        });
    let env = bottle
        .env
        .iter()
        .filter(|e| !matches!(e.source, EnvSource::Literal(_)))
        .map(|e| KnownSecret {
            variable: format!("{ENV_PREFIX}{}", e.name),
            source: SidecarEnvValue::EnvOf(e.name.clone()),
        });
    credentials.chain(env).collect()
}

/// The variables of the known secrets whose values the gate can scan for: set, and between
/// [`MIN_KNOWN_SECRET_LEN`] and [`MAX_KNOWN_SECRET_LEN`] bytes (the gate refuses others: a
/// value shorter than that cannot be told apart from ordinary text). Names only.
pub fn scannable(prepared: &PreparedSpec, secrets: &Secrets) -> Vec<String> {
    known_secrets(prepared)
        .into_iter()
        .filter(|known| {
            known
                .value(secrets)
                .is_some_and(|v| (MIN_KNOWN_SECRET_LEN..=MAX_KNOWN_SECRET_LEN).contains(&v.len()))
        })
        .map(|known| known.variable)
        .collect()
}

/// The git gate of `prepared`'s bottle, `None` without git entries: alias `git-gate` on the
/// internal network, its own way upstream (a bridge only it is on), the `egress.networks`
/// joined (an upstream may live there), each known secret by name, and ready when
/// `bottle-git-gate health` answers from inside.
pub fn sidecar(prepared: &PreparedSpec) -> Option<SidecarSpec> {
    let bottle = &prepared.agent.bottle;
    if bottle.git.is_empty() {
        return None;
    }
    let mut env = vec![SidecarEnv {
        name: CONFIG_ENV.to_owned(),
        value: SidecarEnvValue::Fixed(CONFIG_FILE.to_owned()),
    }];
    env.extend(known_secrets(prepared).into_iter().map(|k| SidecarEnv {
        name: k.variable,
        value: k.source,
    }));

    let mut files = BTreeMap::from([(
        CONFIG_FILE.to_owned(),
        "entries, ref policies, the known secrets' names, the bottle's own client networks"
            .to_owned(),
    )]);
    for entry in &bottle.git {
        files.insert(
            key_file(&entry.name),
            format!(
                "the private key of `{}` from {} (mode 0400, the gate's user only)",
                entry.name,
                entry.identity_file.display()
            ),
        );
    }

    let mut spec = SidecarSpec::new(Role::GitGate, LIMITS);
    spec.command = Some(vec!["run".to_owned()]);
    spec.alias = Some(GATE_HOST.to_owned());
    spec.upstream = true;
    spec.joins = bottle.egress.networks.clone();
    spec.env = env;
    spec.files = files;
    spec.readiness = Readiness::Exec(vec![
        BINARY.to_owned(),
        "health".to_owned(),
        "--addr".to_owned(),
        format!("127.0.0.1:{GATE_PORT}"),
    ]);
    spec.summary = format!("git {}", GateEndpoint::in_bottle().base_url());
    Some(spec)
}

/// The gate's config: listening on every address of its container on port 9419, serving only
/// the bottle's own networks and loopback (never an `egress.networks` network it joins, whose
/// other containers must not use the entries' keys), each `IdentityFile` at its path in the
/// gate, and the `known` secrets' variables.
pub fn config(prepared: &PreparedSpec, bottle_networks: &[Cidr], known: &[String]) -> GateConfig {
    let entries = prepared
        .agent
        .bottle
        .git
        .iter()
        .map(|entry| {
            let mut entry = entry.clone();
            entry.identity_file = PathBuf::from(key_file(&entry.name));
            entry
        })
        .collect();
    let mut config = GateConfig::new(STATE_DIR, entries);
    config.listen = SocketAddr::from(([0, 0, 0, 0], GATE_PORT));
    config.clients = Some(crate::egress::clients(bottle_networks));
    config.known_secrets = known.to_vec();
    config
}

/// The gate's files, for its image's user `owner`: the config (root-owned, readable by the
/// gate's group) and each entry's key (the gate's user only), as its [spec](sidecar) lists
/// them. None without git entries.
pub fn files(
    prepared: &PreparedSpec,
    owner: FileOwner,
    bottle_networks: &[Cidr],
    known: &[String],
) -> Result<Vec<BottleFile>> {
    let bottle = &prepared.agent.bottle;
    if bottle.git.is_empty() {
        return Ok(Vec::new());
    }
    let config = config(prepared, bottle_networks, known);
    let json = serde_json::to_vec_pretty(&config).map_err(RecipeError::Config)?;
    let root_group = FileOwner {
        uid: 0,
        gid: owner.gid,
    };
    let mut files = vec![
        BottleFile::dir(CONFIG_DIR, 0o750, root_group),
        BottleFile::file(CONFIG_FILE, json, 0o640, root_group),
        BottleFile::dir(KEYS_DIR, 0o700, owner),
    ];
    for entry in &bottle.git {
        files.push(BottleFile::file(
            key_file(&entry.name),
            crate::egress::read(&entry.identity_file)?,
            0o400,
            owner,
        ));
    }
    Ok(files)
}
