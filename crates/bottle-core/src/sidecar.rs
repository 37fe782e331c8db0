//! Sidecars as data: what a backend needs to know to run one next to the agent.
//!
//! A bottle is the agent plus sidecars — the egress now; the git gate and the supervise server
//! next. Each is described once, backend-neutrally, as a [`SidecarSpec`] (the `bottle-recipe`
//! crate makes them from a prepared bottle), and every backend places them the same way: the
//! sidecars in order, each ready before the next and all before the agent. A backend maps a
//! spec onto its own objects (Docker: a container with networks and aliases; Kubernetes: a
//! container of the bottle's pod) and names, labels and tears them down by its [`Role`]; it
//! needs no code per sidecar beyond its image.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::agent::Limits;
use crate::labels::Role;

/// One sidecar of a bottle, as every backend runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SidecarSpec {
    /// What it is; names, labels and the teardown order derive from it.
    pub role: Role,
    /// Arguments for the image's entrypoint (`None`: the image's own command). The image
    /// itself is the backend's to name (a local tag, a registry path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The name the agent reaches it by on the bottle's internal network (`egress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// It needs a route out of the bottle: a network of its own that reaches upstream (the
    /// agent never joins it).
    pub upstream: bool,
    /// Existing networks it joins besides (the egress's `egress.networks`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<String>,
    /// Its environment.
    pub env: Vec<SidecarEnv>,
    /// Files placed before it starts: path → what it is. The contents are made at launch
    /// (a CA is minted, client networks are known only then).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// When it is ready for the next sidecar, and the agent, to start.
    pub readiness: Readiness,
    /// Its resource limits.
    pub limits: Limits,
    /// One line for the preflight: what the agent sees of it (`proxy http://egress:9099`).
    pub summary: String,
}

impl SidecarSpec {
    /// A sidecar of `role` with nothing set: no command, alias, upstream, env or files; ready
    /// once started.
    pub fn new(role: Role, limits: Limits) -> Self {
        SidecarSpec {
            role,
            command: None,
            alias: None,
            upstream: false,
            joins: Vec::new(),
            env: Vec::new(),
            files: BTreeMap::new(),
            readiness: Readiness::Started,
            limits,
            summary: String::new(),
        }
    }
}

/// One variable of a sidecar's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SidecarEnv {
    /// Its name.
    pub name: String,
    /// Its value's source.
    #[serde(flatten)]
    pub value: SidecarEnvValue,
}

/// Where a sidecar variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "value")]
pub enum SidecarEnvValue {
    /// A fixed, non-secret value.
    Fixed(String),
    /// A route credential of that name ([`Secrets::token`](crate::Secrets::token)), handed to
    /// the sidecar at launch and to nothing else; never in a plan.
    Credential,
    /// A secret made at launch for this bottle (the egress's proxy token); never in a plan.
    Launch(crate::agent::LaunchSecret),
    /// The route credential `token_ref` ([`Secrets::token`](crate::Secrets::token)) under a
    /// variable of another name, so it cannot clash with the sidecar's own environment;
    /// never in a plan.
    CredentialOf(String),
    /// The value of the bottle's env entry of that name ([`Secrets::env`](crate::Secrets::env)),
    /// under a variable of another name; never in a plan. The git gate scans pushes for it.
    EnvOf(String),
}

/// How a backend knows a sidecar is ready.
///
/// Checks run *inside* the sidecar, through the engine (a Docker exec, a Kubernetes exec
/// probe): the host never dials a container's address, so the check works on a remote engine
/// and needs no network path from the host into the bottle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// Ready once this command, run in the sidecar as its own user, exits 0.
    Exec(Vec<String>),
    /// Ready once started.
    Started,
}
