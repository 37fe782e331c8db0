//! The egress sidecar: the [bottle-egress](bottle_egress) proxy that is the agent's only way
//! out, as every backend runs it — its spec, its config (routes, CA, trust roots, the clients
//! it serves, the bottle's proxy credential) and its files.
//!
//! Two walls keep anyone but the bottle's agent from using it, and with it the credentials it
//! injects: it answers only its own networks ([`clients`]), and every request must carry the
//! bottle's proxy credential ([`proxy_auth`]: user `bottle`, a random token minted at launch,
//! which the agent holds in its proxy URL and the egress in its environment).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bottle_core::agent::{self, EGRESS_ALIAS, EGRESS_PORT, Limits, PROXY_TOKEN_VAR, PROXY_USER};
use bottle_core::{
    BottleFile, FileOwner, LaunchSecret, PreparedSpec, Readiness, Role, SidecarEnv,
    SidecarEnvValue, SidecarSpec,
};
use bottle_egress::{CaFiles, CertificateAuthority, Cidr, EgressConfig, ProxyAuth};

use crate::error::{RecipeError, Result};

/// The folder of the egress's files inside its container.
pub const CONFIG_DIR: &str = "/etc/bottle-egress";
/// The egress config file.
pub const CONFIG_FILE: &str = "/etc/bottle-egress/config.json";
/// The per-bottle CA certificate in the egress.
pub const CA_CERT: &str = "/etc/bottle-egress/ca.crt";
/// The per-bottle CA key in the egress: the only copy, gone with the container.
pub const CA_KEY: &str = "/etc/bottle-egress/ca.key";
/// The variable that names the config file.
pub const CONFIG_ENV: &str = "BOTTLE_EGRESS_CONFIG";
/// The egress image's binary, its entrypoint.
pub const BINARY: &str = "/bottle-egress";

/// The proxy needs little; the bound contains a runaway (one CPU: an agent flooding it with
/// requests slows its own bottle, not the machine).
pub const LIMITS: Limits = Limits {
    memory_bytes: 512 << 20,
    pids: 512,
    millicpus: 1000,
};

/// The egress of `prepared`'s bottle: alias `egress` on the internal network, its own way
/// upstream, the `egress.networks` joined, each route's credential by name, the bottle's proxy
/// token (minted at launch), and ready when `bottle-egress health` answers from inside.
pub fn sidecar(prepared: &PreparedSpec) -> SidecarSpec {
    let bottle = &prepared.agent.bottle;
    let mut env = vec![
        SidecarEnv {
            name: CONFIG_ENV.to_owned(),
            value: SidecarEnvValue::Fixed(CONFIG_FILE.to_owned()),
        },
        SidecarEnv {
            name: PROXY_TOKEN_VAR.to_owned(),
            value: SidecarEnvValue::Launch(LaunchSecret::ProxyToken),
        },
    ];
    env.extend(
        credential_refs(prepared)
            .into_iter()
            .map(|name| SidecarEnv {
                name: name.to_owned(),
                value: SidecarEnvValue::Credential,
            }),
    );
    // The bottle's env secrets, for DLP: each in its own prefixed variable, as the git gate
    // gets them (the credentials are above, under their own names).
    env.extend(
        crate::git_gate::known_secrets(prepared)
            .into_iter()
            .filter(|k| matches!(k.source, SidecarEnvValue::EnvOf(_)))
            .map(|k| SidecarEnv {
                name: k.variable,
                value: k.source,
            }),
    );

    let mut files = BTreeMap::from([
        (
            CONFIG_FILE.to_owned(),
            "routes, listen address, log mode, the bottle's own client networks, the proxy \
             credential's variable"
                .to_owned(),
        ),
        (
            CA_CERT.to_owned(),
            "the per-bottle CA certificate".to_owned(),
        ),
        (
            CA_KEY.to_owned(),
            "the per-bottle CA key (mode 0400, minted at launch, gone with the container)"
                .to_owned(),
        ),
    ]);
    for (file, path) in trust_files(prepared) {
        files.insert(file, format!("trusted upstream CA from {}", path.display()));
    }

    let mut spec = SidecarSpec::new(Role::Egress, LIMITS);
    spec.command = Some(vec![
        "run".to_owned(),
        "--config".to_owned(),
        CONFIG_FILE.to_owned(),
    ]);
    spec.alias = Some(EGRESS_ALIAS.to_owned());
    spec.upstream = true;
    spec.joins = bottle.egress.networks.clone();
    spec.env = env;
    spec.files = files;
    // From inside, on loopback (always among its clients): no path from the host needed. The
    // config names the proxy credential's variable, which the check reads from the egress's
    // own environment.
    spec.readiness = Readiness::Exec(vec![
        BINARY.to_owned(),
        "health".to_owned(),
        "--addr".to_owned(),
        format!("127.0.0.1:{EGRESS_PORT}"),
        "--config".to_owned(),
        CONFIG_FILE.to_owned(),
    ]);
    spec.summary = format!(
        "proxy {}, only with the proxy credential minted for this bottle",
        agent::proxy_url()
    );
    spec
}

/// The `token_ref` of every route credential of `prepared`'s bottle, sorted, each once.
pub(crate) fn credential_refs(prepared: &PreparedSpec) -> Vec<&str> {
    let mut refs: Vec<&str> = prepared
        .agent
        .bottle
        .egress
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| a.token_ref()))
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

fn trust_file(index: usize) -> String {
    format!("{CONFIG_DIR}/trust-{index}.pem")
}

fn route_trust_file(route: usize, index: usize) -> String {
    format!("{CONFIG_DIR}/trust-route-{route}-{index}.pem")
}

/// Every trust root the egress gets, as (its path in the egress, its host file): the
/// bottle-wide `egress.trust` roots (trusted for routes without `auth`), then each route's own
/// `trust` (trusted for that route only).
fn trust_files(prepared: &PreparedSpec) -> Vec<(String, &Path)> {
    let egress = &prepared.agent.bottle.egress;
    let bottle_wide = egress
        .trust
        .iter()
        .enumerate()
        .map(|(i, path)| (trust_file(i), path.as_path()));
    let per_route = egress.routes.iter().enumerate().flat_map(|(r, route)| {
        route
            .trust
            .iter()
            .enumerate()
            .map(move |(i, path)| (route_trust_file(r, i), path.as_path()))
    });
    bottle_wide.chain(per_route).collect()
}

/// Mints the per-bottle CA, in memory: its key goes only into the egress and disappears with
/// it; the agent gets the certificate.
pub fn mint_ca(prepared: &PreparedSpec) -> Result<CertificateAuthority> {
    CertificateAuthority::generate_named(
        &format!("claude-bottle {}", prepared.identity),
        bottle_egress::DEFAULT_CA_VALIDITY,
    )
    .map_err(RecipeError::Ca)
}

/// Who may use the egress: the bottle's own internal network(s), where the agent is, and the
/// egress's loopback (its readiness check and the image's `HEALTHCHECK`). Never the
/// `egress.networks` it joins: other containers live there, and must not borrow its routes and
/// their credentials.
pub fn clients(bottle_networks: &[Cidr]) -> Vec<Cidr> {
    let mut clients = bottle_networks.to_vec();
    for loopback in ["127.0.0.0/8", "::1/128"] {
        clients.extend(loopback.parse::<Cidr>().ok());
    }
    clients
}

/// The credential every client of the egress presents: user [`PROXY_USER`], the token from
/// [`PROXY_TOKEN_VAR`] in the egress's environment. The agent's proxy URL carries it
/// ([`agent::proxy_url_with`]); the egress strips it before forwarding.
pub fn proxy_auth() -> ProxyAuth {
    ProxyAuth {
        user: PROXY_USER.to_owned(),
        token_ref: PROXY_TOKEN_VAR
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid variable name")),
    }
}

/// The egress config of `prepared`'s bottle, serving `bottle_networks` (see [`clients`]) with
/// the bottle's [`proxy_auth`].
// The egress's config gains fields of its own; those the recipe does not set take their
// defaults, so the struct update stays even while every field is set.
#[allow(clippy::needless_update)]
///
/// `known` names the variables of the bottle's secrets that can be scanned for
/// ([`git_gate::scannable`](crate::git_gate::scannable)); the env secrets among them become
/// the config's `known_secrets`, which DLP looks for (route credentials it looks for anyway).
pub fn config(prepared: &PreparedSpec, bottle_networks: &[Cidr], known: &[String]) -> EgressConfig {
    let egress = &prepared.agent.bottle.egress;
    EgressConfig {
        known_secrets: known
            .iter()
            .filter(|name| name.starts_with(crate::git_gate::ENV_PREFIX))
            .filter_map(|name| name.parse().ok())
            .collect(),
        listen: SocketAddr::from(([0, 0, 0, 0], EGRESS_PORT)),
        ca: Some(CaFiles {
            cert: PathBuf::from(CA_CERT),
            key: PathBuf::from(CA_KEY),
        }),
        log: egress.log,
        trust: (0..egress.trust.len())
            .map(|i| PathBuf::from(trust_file(i)))
            .collect(),
        clients: Some(clients(bottle_networks)),
        proxy_auth: Some(proxy_auth()),
        // Each route's own roots, at the paths they are copied to in the egress.
        routes: egress
            .routes
            .iter()
            .enumerate()
            .map(|(r, route)| {
                let mut route = route.clone();
                route.trust = (0..route.trust.len())
                    .map(|i| PathBuf::from(route_trust_file(r, i)))
                    .collect();
                route
            })
            .collect(),
        ..EgressConfig::default()
    }
}

/// The egress's files, owned by its image's user `owner`: config, CA and trust roots, as its
/// [spec](sidecar) lists them. The key is readable by that user only.
pub fn files(
    prepared: &PreparedSpec,
    ca: &CertificateAuthority,
    owner: FileOwner,
    bottle_networks: &[Cidr],
    known: &[String],
) -> Result<Vec<BottleFile>> {
    let config = config(prepared, bottle_networks, known);
    // JSON is YAML: the egress's YAML loader reads it, and no YAML writer is needed.
    let json = serde_json::to_vec_pretty(&config).map_err(RecipeError::Config)?;
    let mut files = vec![
        BottleFile::dir(CONFIG_DIR, 0o755, owner),
        BottleFile::file(CONFIG_FILE, json, 0o444, owner),
        BottleFile::file(CA_CERT, ca.cert_pem(), 0o444, owner),
        BottleFile::file(CA_KEY, ca.key_pem(), 0o400, owner),
    ];
    for (file, path) in trust_files(prepared) {
        files.push(BottleFile::file(file, read(path)?, 0o444, owner));
    }
    Ok(files)
}

/// The bytes of a host file a sidecar gets; an error names it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| RecipeError::HostFile {
        path: path.to_path_buf(),
        source,
    })
}
