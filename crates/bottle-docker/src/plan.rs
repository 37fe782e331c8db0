//! Pure planning: a prepared bottle → the Docker topology that runs it.
//!
//! Nothing here touches the engine or reads secrets. The plan names every object, label, limit
//! and variable; values that only exist at launch (credentials, the egress's address) are
//! placeholders the launch fills in, so the plan can be shown, serialised and snapshotted.
//!
//! # DNS: where the agent's resolver forwards, and how it finds the sidecars
//!
//! The agent needs no outside DNS: its peers are its sidecars, and the egress resolves upstream
//! names. Engines before 26.0 / 25.0.4 / 23.0.11 forward external queries from *internal*
//! networks (CVE-2024-29018): when the host's resolver is on loopback, the embedded resolver
//! forwards from the host's network namespace, so a query for `<secret>.attacker.example` leaves
//! the machine. The embedded resolver forwards to the container's configured upstream servers,
//! so the agent gets exactly one upstream, on the internal network, that nothing answers: a
//! non-loopback upstream is dialled from the container's namespace, which only reaches the
//! internal network — forwarding goes nowhere, whatever the engine's version.
//!
//! - **runc**: the upstream is the gateway address the engine reserved on the internal network
//!   ([`LaunchAddress::InternalGateway`]). Nothing holds it — the network inhibits the host's
//!   address, and the engine gives the gateway to no container — so a forwarded query is never
//!   answered (it fails after the resolver's timeout instead of at once). The embedded resolver
//!   answers the sidecars' aliases (`egress`, `git-gate`), so the agent's config names no
//!   sidecar address and the agent is created and started while its sidecars start: a second
//!   faster per launch.
//! - **runsc**: gVisor's netstack bypasses the engine's DNS redirection, so the aliases go into
//!   the agent's `/etc/hosts` and the upstream is the egress's own address (nothing answers on
//!   its port 53). Both need the sidecars' addresses, so the agent is created after they start;
//!   an address does not change while its container runs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bottle_core::agent::{self, AgentEnvValue};
use bottle_core::{LaunchSecret, PreparedSpec, Readiness, Role, SidecarEnvValue, SidecarSpec};
use serde::Serialize;

use crate::api::{Attachment, ContainerConfig, EngineInfo, EnvVar, LogRotation, NetworkSpec};
use crate::error::{DockerError, Result};
use crate::names::{Names, ObjectRole, label};

/// The OCI runtime of the agent container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// The engine's default runtime.
    Runc,
    /// gVisor: the agent's syscalls go to a user-space kernel.
    Runsc,
}

impl Runtime {
    /// `runc` or `runsc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Runsc => "runsc",
        }
    }
}

pub use bottle_core::agent::Limits;

/// Environment variables that override the limits.
pub mod env {
    /// Agent memory limit: bytes or `512m`, `8g`.
    pub const MEMORY: &str = "CLAUDE_BOTTLE_MEMORY";
    /// Agent process limit.
    pub const PIDS_LIMIT: &str = "CLAUDE_BOTTLE_PIDS_LIMIT";
    /// Agent CPU limit: a number of CPUs, `2`, `1.5`, `0.5`.
    pub const CPUS: &str = "CLAUDE_BOTTLE_CPUS";
    /// The bound of the agent's writable layer: bytes or `20g`, where the storage driver can
    /// bound it.
    pub const DISK: &str = "CLAUDE_BOTTLE_DISK";
}

/// The default bound of the agent's writable layer: room for dependencies and builds.
pub const DEFAULT_AGENT_DISK_BYTES: i64 = 32 << 30;

/// Backend settings that are not part of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerOptions {
    /// The agent's limits.
    pub agent_limits: Limits,
    /// The bound of the agent's writable layer, where the engine's storage can hold it.
    pub agent_disk_bytes: i64,
    /// The image of each sidecar this backend runs, by role. A new sidecar is a new entry
    /// here (and in the recipe); nothing else in this crate names it.
    pub sidecar_images: BTreeMap<Role, SidecarImage>,
    /// Labels added to every object (tests put a per-test label here).
    pub extra_labels: BTreeMap<String, String>,
}

/// A sidecar's image, and how to get it when the engine lacks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarImage {
    /// The image reference.
    pub reference: String,
    /// What to do when the engine does not have it, as a clause (`build it with …`).
    pub hint: String,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            agent_limits: agent::DEFAULT_LIMITS,
            agent_disk_bytes: DEFAULT_AGENT_DISK_BYTES,
            sidecar_images: BTreeMap::from([
                (
                    Role::Egress,
                    SidecarImage {
                        reference: crate::image::default_egress_image(),
                        hint: "build it with `cargo xtask images egress` (or `docker build -f \
                               Dockerfile.egress` with the static bottle-egress binary), or set \
                               CLAUDE_BOTTLE_EGRESS_IMAGE"
                            .to_owned(),
                    },
                ),
                (
                    Role::GitGate,
                    SidecarImage {
                        reference: bottle_recipe::git_gate::default_image(),
                        hint: format!(
                            "build it with `cargo xtask images git-gate` (see \
                             crates/bottle-git-gate/Dockerfile), or set {}",
                            bottle_recipe::git_gate::IMAGE_ENV
                        ),
                    },
                ),
            ]),
            extra_labels: BTreeMap::new(),
        }
    }
}

impl DockerOptions {
    /// The image of sidecar `role`, if this backend runs it.
    pub fn sidecar_image(&self, role: Role) -> Option<&SidecarImage> {
        self.sidecar_images.get(&role)
    }

    /// The egress image's reference.
    pub fn egress_image(&self) -> &str {
        self.sidecar_image(Role::Egress)
            .map_or("", |image| image.reference.as_str())
    }

    /// Defaults overridden by `CLAUDE_BOTTLE_MEMORY`, `CLAUDE_BOTTLE_PIDS_LIMIT`,
    /// `CLAUDE_BOTTLE_CPUS`, `CLAUDE_BOTTLE_DISK`, `CLAUDE_BOTTLE_EGRESS_IMAGE` and
    /// `CLAUDE_BOTTLE_GIT_GATE_IMAGE`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut options = DockerOptions::default();
        if let Some(v) = lookup(env::MEMORY).filter(|v| !v.trim().is_empty()) {
            options.agent_limits.memory_bytes =
                parse_bytes(&v).ok_or(DockerError::InvalidSetting {
                    name: env::MEMORY.to_owned(),
                    value: v.clone(),
                    hint: "use bytes or a number with k, m or g, e.g. 8g".to_owned(),
                })?;
        }
        if let Some(v) = lookup(env::PIDS_LIMIT).filter(|v| !v.trim().is_empty()) {
            options.agent_limits.pids = v.trim().parse().ok().filter(|n: &i64| *n > 0).ok_or(
                DockerError::InvalidSetting {
                    name: env::PIDS_LIMIT.to_owned(),
                    value: v.clone(),
                    hint: "use a positive number, e.g. 4096".to_owned(),
                },
            )?;
        }
        if let Some(v) = lookup(env::CPUS).filter(|v| !v.trim().is_empty()) {
            options.agent_limits.millicpus =
                parse_millicpus(&v).ok_or(DockerError::InvalidSetting {
                    name: env::CPUS.to_owned(),
                    value: v.clone(),
                    hint: "use a number of CPUs of at least 0.01, e.g. 2 or 1.5".to_owned(),
                })?;
        }
        if let Some(v) = lookup(env::DISK).filter(|v| !v.trim().is_empty()) {
            options.agent_disk_bytes = parse_bytes(&v).ok_or(DockerError::InvalidSetting {
                name: env::DISK.to_owned(),
                value: v.clone(),
                hint: "use bytes or a number with k, m or g, e.g. 20g".to_owned(),
            })?;
        }
        if let Some(v) = lookup(crate::image::env::EGRESS_IMAGE).filter(|v| !v.trim().is_empty())
            && let Some(egress) = options.sidecar_images.get_mut(&Role::Egress)
        {
            egress.reference = v;
        }
        if let Some(v) = lookup(bottle_recipe::git_gate::IMAGE_ENV).filter(|v| !v.trim().is_empty())
            && let Some(gate) = options.sidecar_images.get_mut(&Role::GitGate)
        {
            gate.reference = v;
        }
        Ok(options)
    }
}

/// `8g`, `512m`, `1024k`, `1073741824` → bytes.
pub fn parse_bytes(value: &str) -> Option<i64> {
    let v = value.trim().to_ascii_lowercase();
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (digits, shift) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 10),
        'm' => (&v[..v.len() - 1], 20),
        'g' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    let n: i64 = digits.trim().parse().ok()?;
    (n > 0).then_some(n)?.checked_mul(1 << shift)
}

/// `2`, `1.5`, `0.25` CPUs → thousandths of a CPU; at least 0.01 (the engine's minimum), at
/// most three decimals.
pub fn parse_millicpus(value: &str) -> Option<i64> {
    let v = value.trim();
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    if fraction.len() > 3
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || (whole.is_empty() && fraction.is_empty())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: i64 = format!("{fraction:0<3}").parse().ok()?;
    let millicpus = whole.checked_mul(1000)?.checked_add(fraction)?;
    (millicpus >= 10).then_some(millicpus)
}

/// Thousandths of a CPU for people: `2 CPUs`, `1.5 CPUs`, `1 CPU`.
pub fn show_cpus(millicpus: i64) -> String {
    let whole = millicpus / 1000;
    let fraction = millicpus % 1000;
    let number = if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
    };
    format!("{number} CPU{}", if millicpus == 1000 { "" } else { "s" })
}

/// Whether the engine's storage can bound a container's writable layer, and so the agent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskBound {
    /// The agent's writable layer holds at most this many bytes.
    Bounded {
        /// The bound.
        bytes: i64,
    },
    /// The agent can write until the engine's disk is full.
    NotBounded {
        /// Why, as a clause (`the engine's overlay2 on extfs cannot limit a container's size`).
        reason: String,
    },
}

impl DiskBound {
    /// What `engine`'s storage allows for a bound of `bytes`: overlay2 only over xfs (mounted
    /// with `pquota`, which the engine checks when the container is created), devicemapper,
    /// btrfs and zfs; nothing else can limit a container's size.
    pub fn for_engine(engine: Option<&EngineInfo>, bytes: i64) -> DiskBound {
        let Some(engine) = engine else {
            return DiskBound::NotBounded {
                reason: "the engine's storage driver could not be read".to_owned(),
            };
        };
        let driver = engine.storage_driver.as_str();
        let backing = engine.backing_filesystem.as_deref();
        let bounded = match driver {
            "overlay2" => backing == Some("xfs"),
            "devicemapper" | "btrfs" | "zfs" => true,
            _ => false,
        };
        if bounded {
            return DiskBound::Bounded { bytes };
        }
        let what = match (driver, backing) {
            ("", _) => "storage driver".to_owned(),
            (driver, Some(backing)) => format!("{driver} on {backing}"),
            (driver, None) => driver.to_owned(),
        };
        DiskBound::NotBounded {
            reason: format!("the engine's {what} cannot limit a container's size"),
        }
    }

    /// The bound, when there is one.
    pub fn bytes(&self) -> Option<i64> {
        match self {
            DiskBound::Bounded { bytes } => Some(*bytes),
            DiskBound::NotBounded { .. } => None,
        }
    }
}

/// `limits` with its CPU share lowered to what the engine's machine has (the engine refuses
/// more CPUs than it has).
pub fn fit_to_engine(limits: Limits, engine: Option<&EngineInfo>) -> Limits {
    let available = engine
        .and_then(|e| e.cpus)
        .map(|cpus| i64::from(cpus.max(1)) * 1000);
    Limits {
        millicpus: available.map_or(limits.millicpus, |a| limits.millicpus.min(a)),
        ..limits
    }
}

/// The agent's resolver options: the embedded resolver's own default, set so that the host's
/// options are not copied in.
pub const AGENT_DNS_OPTIONS: &str = "ndots:0";

/// Where a planned environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "value")]
pub enum EnvValue {
    /// A fixed, non-secret value set by the backend (CA paths, the config's path).
    Fixed(String),
    /// A secret made at launch for this bottle (the proxy token, the proxy URL with it); never
    /// in the plan.
    Launch(LaunchSecret),
    /// The bottle's env entry of that name, handed over at launch; never in the plan.
    Manifest,
    /// A route credential (`token_ref`), handed to the egress at launch; never in the plan.
    Credential,
    /// The route credential named here, under the variable's own name (the git gate's known
    /// secrets); never in the plan.
    CredentialOf(String),
    /// The bottle's env entry named here, under the variable's own name (the git gate's known
    /// secrets); never in the plan.
    ManifestOf(String),
}

/// A planned environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEnv {
    /// Its name.
    pub name: String,
    /// Its value's source.
    #[serde(flatten)]
    pub value: EnvValue,
}

/// An address only known at launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaunchAddress {
    /// The address of a sidecar on the bottle's internal network, known once it has started.
    Sidecar(Role),
    /// The gateway address the engine reserved on the internal network, known once the
    /// network exists. Nothing holds it: the network is created with
    /// `com.docker.network.bridge.inhibit_ipv4`, so the host takes no address there and the
    /// engine gives it to no container.
    InternalGateway,
}

impl Serialize for LaunchAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LaunchAddress::Sidecar(role) => {
                serializer.collect_str(&format_args!("the {role}'s internal address"))
            }
            LaunchAddress::InternalGateway => {
                serializer.serialize_str("the internal network's reserved gateway (held by none)")
            }
        }
    }
}

/// The addresses [`ContainerPlan::resolve`] fills in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchAddresses {
    /// The internal addresses of the sidecars started so far.
    pub sidecars: BTreeMap<Role, IpAddr>,
    /// The internal network's reserved gateway, when the engine reports one.
    pub internal_gateway: Option<IpAddr>,
}

/// A container in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerPlan {
    /// Its name.
    pub name: String,
    /// What it is.
    pub role: Role,
    /// Its image.
    pub image: String,
    /// Its command (`None`: the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Its user (`None`: the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Its hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The network it is created on.
    pub network: Attachment,
    /// Networks connected before start, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect: Vec<Attachment>,
    /// Its environment.
    pub env: Vec<PlannedEnv>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The OCI runtime (`None`: the engine's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Capabilities added back, each with why.
    pub cap_add: Vec<String>,
    /// Security options.
    pub security_opt: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Its log's rotation.
    pub log: LogRotation,
    /// The bound of its writable layer, in bytes (`None`: unbounded, see [`DiskBound`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<i64>,
    /// An init process as PID 1.
    pub init: bool,
    /// Upstream DNS servers, resolved at launch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<LaunchAddress>,
    /// DNS search domains (`.`: none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Resolver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `/etc/hosts` entries, resolved at launch.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, LaunchAddress>,
    /// Files put into the container before it starts: path → what.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// When it is ready (sidecars; the agent is the last to start and waits for nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
}

/// Everything Docker-specific about one bottle: the agent plus its sidecars, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// The bottle identity.
    pub identity: String,
    /// The networks created for the bottle, in creation order: the internal one, then each
    /// upstream bridge of a sidecar that needs one.
    pub networks: Vec<NetworkSpec>,
    /// Existing networks a sidecar joins (`egress.networks`); never created or removed.
    pub joined_networks: Vec<String>,
    /// The sidecars, in start order; each is ready before the next starts.
    pub sidecars: Vec<ContainerPlan>,
    /// The agent, started last.
    pub agent: ContainerPlan,
}

impl Topology {
    /// The sidecar of `role`, if the bottle has one.
    pub fn sidecar(&self, role: Role) -> Option<&ContainerPlan> {
        self.sidecars.iter().find(|s| s.role == role)
    }

    /// The internal network.
    pub fn internal_network(&self) -> &NetworkSpec {
        &self.networks[0]
    }

    /// Every container the bottle runs, in start order (the agent last).
    pub fn containers(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.sidecars.iter().chain(std::iter::once(&self.agent))
    }
}

/// What planning needs besides the prepared spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInputs<'a> {
    /// The agent image reference.
    pub agent_image: &'a str,
    /// The agent's runtime.
    pub runtime: Runtime,
    /// Backend settings.
    pub options: &'a DockerOptions,
    /// Labels every object gets (bottle-core's `for_bottle` set plus the launcher label); added
    /// to each object with its role.
    pub labels: &'a BTreeMap<String, String>,
    /// The bottle's sidecars, from the recipe (`bottle_recipe::sidecars`).
    pub sidecars: &'a [SidecarSpec],
    /// What the engine said of itself at prepare (its CPUs, its storage); `None` when it could
    /// not be read.
    pub engine: Option<&'a EngineInfo>,
}

fn labels_for(base: &BTreeMap<String, String>, role: ObjectRole) -> BTreeMap<String, String> {
    let mut labels = base.clone();
    for (k, v) in role.labels() {
        labels.insert(k.to_owned(), v.to_owned());
    }
    labels
}

/// The engine objects of one sidecar: its container (on the internal network under its alias,
/// connected to its upstream bridge and the networks it joins) and that bridge. Sidecars stay
/// on the default runtime: gVisor guards the untrusted agent.
fn sidecar(
    spec: &SidecarSpec,
    names: &Names,
    internal: &str,
    base: &BTreeMap<String, String>,
    options: &DockerOptions,
    engine: Option<&EngineInfo>,
) -> Result<(ContainerPlan, Option<NetworkSpec>)> {
    let image = &options
        .sidecar_image(spec.role)
        .ok_or_else(|| DockerError::InvalidSetting {
            name: "sidecar".to_owned(),
            value: spec.role.to_string(),
            hint: "the docker backend has no image for it yet".to_owned(),
        })?
        .reference;
    let upstream = spec.upstream.then(|| {
        NetworkSpec::bridge(
            names.upstream_network(spec.role),
            labels_for(base, ObjectRole::UpstreamNetwork(spec.role)),
        )
    });
    let connect = upstream
        .iter()
        .map(|n| n.name.clone())
        .chain(spec.joins.iter().cloned())
        .map(|network| Attachment {
            network,
            aliases: Vec::new(),
        })
        .collect();
    let env = spec
        .env
        .iter()
        .map(|e| PlannedEnv {
            name: e.name.clone(),
            value: match &e.value {
                SidecarEnvValue::Fixed(v) => EnvValue::Fixed(v.clone()),
                SidecarEnvValue::Credential => EnvValue::Credential,
                SidecarEnvValue::Launch(secret) => EnvValue::Launch(*secret),
                SidecarEnvValue::CredentialOf(token_ref) => {
                    EnvValue::CredentialOf(token_ref.clone())
                }
                SidecarEnvValue::EnvOf(entry) => EnvValue::ManifestOf(entry.clone()),
            },
        })
        .collect();
    let container = ContainerPlan {
        name: names.container(spec.role),
        role: spec.role,
        image: image.clone(),
        cmd: spec.command.clone(),
        user: None,
        working_dir: None,
        hostname: None,
        network: Attachment {
            network: internal.to_owned(),
            aliases: spec.alias.iter().cloned().collect(),
        },
        connect,
        env,
        labels: labels_for(base, ObjectRole::Container(spec.role)),
        runtime: None,
        cap_drop: vec!["ALL".to_owned()],
        cap_add: Vec::new(),
        security_opt: vec!["no-new-privileges".to_owned()],
        limits: fit_to_engine(spec.limits, engine),
        log: LogRotation::DEFAULT,
        storage_bytes: None,
        init: false,
        dns: Vec::new(),
        dns_search: Vec::new(),
        dns_options: Vec::new(),
        hosts: BTreeMap::new(),
        files: spec.files.clone(),
        readiness: Some(spec.readiness.clone()),
    };
    Ok((container, upstream))
}

/// Plans the topology of `prepared`: the internal network, each sidecar (and its upstream
/// bridge), then the agent.
pub fn plan(prepared: &PreparedSpec, inputs: &PlanInputs<'_>) -> Result<Topology> {
    let names = Names::new(prepared.identity.as_str())?;
    let mut base = inputs.labels.clone();
    base.extend(inputs.options.extra_labels.clone());
    let bottle = &prepared.agent.bottle;

    let internal = NetworkSpec::internal(
        names.internal_network(),
        labels_for(&base, ObjectRole::InternalNetwork),
    );
    let mut networks = vec![internal.clone()];
    let mut sidecars = Vec::new();
    let mut joined = Vec::new();
    for spec in inputs.sidecars {
        let (container, upstream) = sidecar(
            spec,
            &names,
            &internal.name,
            &base,
            inputs.options,
            inputs.engine,
        )?;
        networks.extend(upstream);
        joined.extend(spec.joins.iter().cloned());
        sidecars.push(container);
    }

    // The agent: the internal network only; every way out goes through the egress. Its
    // environment is bottle-core's agent contract (fixed variables win over the manifest);
    // each sidecar with an alias is in its /etc/hosts, and its only resolver is the egress
    // (see the module docs).
    let agent_env = agent::environment(bottle, prepared.remote_control)
        .into_iter()
        .map(|e| PlannedEnv {
            name: e.name,
            value: match e.value {
                AgentEnvValue::Fixed(value) => EnvValue::Fixed(value),
                AgentEnvValue::Launch(secret) => EnvValue::Launch(secret),
                AgentEnvValue::Manifest => EnvValue::Manifest,
            },
        })
        .collect();
    // How the agent finds its sidecars, and the dead end its resolver forwards to (module
    // docs): under runc the engine's embedded resolver answers the aliases, so the agent
    // needs no sidecar's address and starts at the same time as they do; under runsc the
    // aliases go into `/etc/hosts`, so the agent waits for the sidecars' addresses.
    let (hosts, dns) = match inputs.runtime {
        Runtime::Runc => (
            BTreeMap::new(),
            if inputs.sidecars.is_empty() {
                Vec::new()
            } else {
                vec![LaunchAddress::InternalGateway]
            },
        ),
        Runtime::Runsc => (
            inputs
                .sidecars
                .iter()
                .filter_map(|s| {
                    s.alias
                        .clone()
                        .map(|alias| (alias, LaunchAddress::Sidecar(s.role)))
                })
                .collect(),
            inputs
                .sidecars
                .iter()
                .filter(|s| s.role == Role::Egress)
                .map(|s| LaunchAddress::Sidecar(s.role))
                .collect(),
        ),
    };
    let mut agent_labels = labels_for(&base, ObjectRole::Container(Role::Agent));
    agent_labels.insert(
        label::RUNTIME.to_owned(),
        inputs.runtime.as_str().to_owned(),
    );
    let agent = ContainerPlan {
        name: names.agent_container(),
        role: Role::Agent,
        image: inputs.agent_image.to_owned(),
        cmd: Some(vec!["sleep".to_owned(), "infinity".to_owned()]),
        user: Some(agent::USER.to_owned()),
        working_dir: Some(agent::WORKDIR.to_owned()),
        hostname: Some(prepared.identity.to_string()),
        network: Attachment {
            network: internal.name.clone(),
            aliases: Vec::new(),
        },
        connect: Vec::new(),
        env: agent_env,
        labels: agent_labels,
        runtime: Some(inputs.runtime),
        cap_drop: vec!["ALL".to_owned()],
        // None: every process runs as `node` under no-new-privileges, where capabilities would
        // be inert anyway; files are placed through the engine's archive API with their owner
        // set in the archive (no CAP_CHOWN), and the CA step runs as root on root-owned files
        // (no CAP_DAC_OVERRIDE).
        cap_add: Vec::new(),
        security_opt: vec!["no-new-privileges".to_owned()],
        limits: fit_to_engine(inputs.options.agent_limits, inputs.engine),
        log: LogRotation::DEFAULT,
        storage_bytes: DiskBound::for_engine(inputs.engine, inputs.options.agent_disk_bytes)
            .bytes(),
        init: true,
        dns,
        // No search domain and fixed options: nothing of the host's resolv.conf.
        dns_search: vec![".".to_owned()],
        dns_options: vec![AGENT_DNS_OPTIONS.to_owned()],
        hosts,
        files: BTreeMap::new(),
        readiness: None,
    };

    Ok(Topology {
        identity: prepared.identity.to_string(),
        networks,
        joined_networks: joined,
        sidecars,
        agent,
    })
}

impl ContainerPlan {
    /// Whether this container's config names a sidecar's address, so it can be created only
    /// after that sidecar has started (under runsc, the agent's `/etc/hosts`).
    pub fn needs_sidecar_addresses(&self) -> bool {
        self.dns
            .iter()
            .chain(self.hosts.values())
            .any(|a| matches!(a, LaunchAddress::Sidecar(_)))
    }

    /// The engine's container config, with values filled in: `value(name, source)` supplies
    /// manifest values and credentials, `addresses` the addresses known at launch (needed by
    /// the agent only). A missing value is an error naming it.
    pub fn resolve(
        &self,
        value: &dyn Fn(&str, &EnvValue) -> Option<String>,
        addresses: &LaunchAddresses,
    ) -> Result<ContainerConfig> {
        let env = self
            .env
            .iter()
            .map(|e| match &e.value {
                EnvValue::Fixed(v) => Ok(EnvVar::new(&e.name, v)),
                other => value(&e.name, other)
                    .map(|v| EnvVar::new(&e.name, v))
                    .ok_or_else(|| DockerError::MissingValue {
                        name: e.name.clone(),
                    }),
            })
            .collect::<Result<Vec<_>>>()?;
        let address = |a: &LaunchAddress| match a {
            LaunchAddress::Sidecar(role) => {
                addresses
                    .sidecars
                    .get(role)
                    .copied()
                    .ok_or_else(|| DockerError::MissingValue {
                        name: format!("the {role}'s internal address"),
                    })
            }
            LaunchAddress::InternalGateway => {
                addresses
                    .internal_gateway
                    .ok_or_else(|| DockerError::MissingValue {
                        name: "the internal network's gateway address".to_owned(),
                    })
            }
        };
        let dns = self
            .dns
            .iter()
            .map(|a| address(a).map(|ip| ip.to_string()))
            .collect::<Result<Vec<_>>>()?;
        let extra_hosts = self
            .hosts
            .iter()
            .map(|(h, a)| address(a).map(|ip| format!("{h}:{ip}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(ContainerConfig {
            name: self.name.clone(),
            image: self.image.clone(),
            cmd: self.cmd.clone(),
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            hostname: self.hostname.clone(),
            env,
            labels: self.labels.clone(),
            network: Some(self.network.clone()),
            runtime: self.runtime.map(|r| r.as_str().to_owned()),
            cap_drop: self.cap_drop.clone(),
            cap_add: self.cap_add.clone(),
            security_opt: self.security_opt.clone(),
            pids_limit: Some(self.limits.pids),
            memory_bytes: Some(self.limits.memory_bytes),
            nano_cpus: Some(self.limits.millicpus * 1_000_000),
            log: Some(self.log),
            storage_bytes: self.storage_bytes,
            init: self.init,
            dns,
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_options.clone(),
            extra_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_bytes("8g"), Some(8 << 30));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("1024kb"), Some(1 << 20));
        assert_eq!(parse_bytes("12345"), Some(12345));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("-1g"), None);
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn limits_come_from_the_environment_and_bad_values_are_errors() {
        let o = DockerOptions::from_lookup(|n| match n {
            env::MEMORY => Some("2g".into()),
            env::PIDS_LIMIT => Some("100".into()),
            env::CPUS => Some("1.5".into()),
            env::DISK => Some("20g".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(o.agent_limits.memory_bytes, 2 << 30);
        assert_eq!(o.agent_limits.pids, 100);
        assert_eq!(o.agent_limits.millicpus, 1500);
        assert_eq!(o.agent_disk_bytes, 20 << 30);
        for (name, value) in [
            (env::PIDS_LIMIT, "many"),
            (env::CPUS, "0"),
            (env::DISK, "x"),
        ] {
            let bad = DockerOptions::from_lookup(|n| (n == name).then(|| value.into()));
            let msg = bad.unwrap_err().to_string();
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn cpu_counts_parse_and_show() {
        assert_eq!(parse_millicpus("2"), Some(2000));
        assert_eq!(parse_millicpus("1.5"), Some(1500));
        assert_eq!(parse_millicpus(" .25 "), Some(250));
        assert_eq!(parse_millicpus("0.01"), Some(10));
        for bad in ["0", "0.001", "1.2345", "-1", "two", ".", "", "1e3"] {
            assert_eq!(parse_millicpus(bad), None, "{bad:?}");
        }
        assert_eq!(show_cpus(2000), "2 CPUs");
        assert_eq!(show_cpus(1000), "1 CPU");
        assert_eq!(show_cpus(1500), "1.5 CPUs");
        assert_eq!(show_cpus(250), "0.25 CPUs");
    }

    #[test]
    fn the_cpu_share_never_exceeds_the_engines_machine() {
        let engine = |cpus| EngineInfo {
            cpus: Some(cpus),
            ..EngineInfo::default()
        };
        let asked = agent::DEFAULT_LIMITS;
        assert_eq!(fit_to_engine(asked, Some(&engine(1))).millicpus, 1000);
        assert_eq!(fit_to_engine(asked, Some(&engine(8))).millicpus, 2000);
        assert_eq!(fit_to_engine(asked, None).millicpus, 2000);
    }

    #[test]
    fn only_storage_that_can_bound_a_container_is_asked_to() {
        let engine = |driver: &str, backing: Option<&str>| EngineInfo {
            storage_driver: driver.to_owned(),
            backing_filesystem: backing.map(str::to_owned),
            ..EngineInfo::default()
        };
        let bound = |e: &EngineInfo| DiskBound::for_engine(Some(e), 1 << 30);
        assert_eq!(
            bound(&engine("overlay2", Some("xfs"))),
            DiskBound::Bounded { bytes: 1 << 30 }
        );
        assert_eq!(
            bound(&engine("btrfs", Some("btrfs"))).bytes(),
            Some(1 << 30)
        );
        assert_eq!(
            bound(&engine("overlay2", Some("extfs"))),
            DiskBound::NotBounded {
                reason: "the engine's overlay2 on extfs cannot limit a container's size".into()
            }
        );
        assert_eq!(bound(&engine("vfs", None)).bytes(), None);
        assert_eq!(DiskBound::for_engine(None, 1).bytes(), None);
    }
}
