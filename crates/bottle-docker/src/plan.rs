//! Pure planning: a prepared bottle → the Docker topology that runs it.
//!
//! Nothing here touches the engine or reads secrets. The plan names every object, label, limit
//! and variable; values that only exist at launch (credentials, the egress's address) are
//! placeholders the launch fills in, so the plan can be shown, serialised and snapshotted.
//!
//! # DNS: why the agent's resolver points at the egress
//!
//! The agent needs no DNS: its only peer is the egress, and the egress resolves upstream names.
//! Engines before 26.0 / 25.0.4 / 23.0.11 forward external queries from *internal* networks
//! (CVE-2024-29018): when the host's resolver is on loopback, the embedded resolver forwards from
//! the host's network namespace, so a query for `<secret>.attacker.example` leaves the machine.
//! The embedded resolver forwards to the container's configured upstream servers, so the agent
//! gets exactly one upstream: the egress's own address on the internal network, where nothing
//! answers on port 53. A non-loopback upstream is dialled from the container's namespace, which
//! only reaches the internal network — forwarding goes nowhere, whatever the engine's version.
//! The egress's address is also written into the agent's `/etc/hosts` as `egress`, so the proxy
//! resolves even where the embedded resolver is unavailable (gVisor's netstack bypasses the
//! engine's DNS redirection). Both are possible because the egress starts, and is healthy, before
//! the agent is created; its address does not change while it runs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bottle_core::PreparedSpec;
use bottle_core::agent::{self, AgentEnvValue};
use serde::Serialize;

use crate::api::{Attachment, ContainerConfig, EnvVar, NetworkSpec};
use crate::error::{DockerError, Result};
use crate::names::{EGRESS_ALIAS, Names, Role, label};

/// Where the egress's files go inside its container.
pub const EGRESS_CONFIG_DIR: &str = "/etc/bottle-egress";
/// The existing directory the egress's files are extracted into (an upload needs one; the
/// engine creates `/etc` in every container, even on an empty base).
pub const EGRESS_FILES_PARENT: &str = "/etc";
/// The egress config file inside its container.
pub const EGRESS_CONFIG_FILE: &str = "/etc/bottle-egress/config.json";

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
}

/// Backend settings that are not part of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerOptions {
    /// The agent's limits.
    pub agent_limits: Limits,
    /// The egress's limits.
    pub egress_limits: Limits,
    /// The egress image.
    pub egress_image: String,
    /// Labels added to every object (tests put a per-test label here).
    pub extra_labels: BTreeMap<String, String>,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            agent_limits: agent::DEFAULT_LIMITS,
            // The proxy needs little; the bound contains a runaway.
            egress_limits: Limits {
                memory_bytes: 512 << 20,
                pids: 512,
            },
            egress_image: crate::image::default_egress_image(),
            extra_labels: BTreeMap::new(),
        }
    }
}

impl DockerOptions {
    /// Defaults overridden by `CLAUDE_BOTTLE_MEMORY`, `CLAUDE_BOTTLE_PIDS_LIMIT` and
    /// `CLAUDE_BOTTLE_EGRESS_IMAGE`.
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
        if let Some(v) = lookup(crate::image::env::EGRESS_IMAGE).filter(|v| !v.trim().is_empty()) {
            options.egress_image = v;
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

/// Where a planned environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "value")]
pub enum EnvValue {
    /// A fixed, non-secret value set by the backend (proxy URLs, CA paths).
    Fixed(String),
    /// The bottle's env entry of that name, handed over at launch; never in the plan.
    Manifest,
    /// A route credential (`token_ref`), handed to the egress at launch; never in the plan.
    Credential,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchAddress {
    /// The egress's address on the internal network.
    EgressInternal,
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
    /// An init process as PID 1.
    pub init: bool,
    /// Upstream DNS servers, resolved at launch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<LaunchAddress>,
    /// `/etc/hosts` entries, resolved at launch.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, LaunchAddress>,
    /// Files put into the container before it starts: path → what.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

/// Everything Docker-specific about one bottle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// The bottle identity.
    pub identity: String,
    /// The networks created for the bottle, in creation order.
    pub networks: Vec<NetworkSpec>,
    /// Existing networks the egress joins (`egress.networks`); never created or removed.
    pub joined_networks: Vec<String>,
    /// The egress sidecar.
    pub egress: ContainerPlan,
    /// The agent.
    pub agent: ContainerPlan,
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
}

fn fixed(name: &str, value: impl Into<String>) -> PlannedEnv {
    PlannedEnv {
        name: name.to_owned(),
        value: EnvValue::Fixed(value.into()),
    }
}

fn labels_for(base: &BTreeMap<String, String>, role: Role) -> BTreeMap<String, String> {
    let mut labels = base.clone();
    for (k, v) in role.labels() {
        labels.insert(k.to_owned(), v.to_owned());
    }
    labels
}

/// Plans the topology of `prepared`.
pub fn plan(prepared: &PreparedSpec, inputs: &PlanInputs<'_>) -> Result<Topology> {
    let names = Names::new(prepared.identity.as_str())?;
    let mut base = inputs.labels.clone();
    base.extend(inputs.options.extra_labels.clone());
    let bottle = &prepared.agent.bottle;

    let internal = NetworkSpec {
        name: names.internal_network(),
        internal: true,
        labels: labels_for(&base, Role::InternalNetwork),
    };
    let upstream = NetworkSpec {
        name: names.egress_network(),
        internal: false,
        labels: labels_for(&base, Role::EgressNetwork),
    };

    // The egress: created on the internal network under the alias `egress`, then connected to
    // its upstream bridge and to every network the manifest names.
    let mut egress_env = vec![fixed("BOTTLE_EGRESS_CONFIG", EGRESS_CONFIG_FILE)];
    let mut credentials: Vec<&str> = bottle
        .egress
        .routes
        .iter()
        .filter_map(|r| r.auth.as_ref().map(|a| a.token_ref()))
        .collect();
    credentials.sort_unstable();
    credentials.dedup();
    egress_env.extend(credentials.into_iter().map(|name| PlannedEnv {
        name: name.to_owned(),
        value: EnvValue::Credential,
    }));
    let mut egress_files = BTreeMap::from([
        (
            EGRESS_CONFIG_FILE.to_owned(),
            "routes, listen address, log mode".to_owned(),
        ),
        (
            format!("{EGRESS_CONFIG_DIR}/ca.crt"),
            "the per-bottle CA certificate".to_owned(),
        ),
        (
            format!("{EGRESS_CONFIG_DIR}/ca.key"),
            "the per-bottle CA key (mode 0400, minted at launch, gone with the container)"
                .to_owned(),
        ),
    ]);
    for (i, path) in bottle.egress.trust.iter().enumerate() {
        egress_files.insert(
            format!("{EGRESS_CONFIG_DIR}/trust-{i}.pem"),
            format!("trusted upstream CA from {}", path.display()),
        );
    }
    let mut connect = vec![Attachment {
        network: upstream.name.clone(),
        aliases: Vec::new(),
    }];
    connect.extend(bottle.egress.networks.iter().map(|n| Attachment {
        network: n.clone(),
        aliases: Vec::new(),
    }));
    let egress = ContainerPlan {
        name: names.egress_container(),
        role: Role::Egress,
        image: inputs.options.egress_image.clone(),
        cmd: Some(vec![
            "run".to_owned(),
            "--config".to_owned(),
            EGRESS_CONFIG_FILE.to_owned(),
        ]),
        user: None,
        working_dir: None,
        hostname: None,
        network: Attachment {
            network: internal.name.clone(),
            aliases: vec![EGRESS_ALIAS.to_owned()],
        },
        connect,
        env: egress_env,
        labels: labels_for(&base, Role::Egress),
        // Sidecars stay on the default runtime: gVisor guards the untrusted agent.
        runtime: None,
        cap_drop: vec!["ALL".to_owned()],
        cap_add: Vec::new(),
        security_opt: vec!["no-new-privileges".to_owned()],
        limits: inputs.options.egress_limits,
        init: false,
        dns: Vec::new(),
        hosts: BTreeMap::new(),
        files: egress_files,
    };

    // The agent: the internal network only; every way out goes through the egress. Its
    // environment is bottle-core's agent contract (fixed variables win over the manifest).
    let agent_env = agent::environment(bottle)
        .into_iter()
        .map(|e| PlannedEnv {
            name: e.name,
            value: match e.value {
                AgentEnvValue::Fixed(value) => EnvValue::Fixed(value),
                AgentEnvValue::Manifest => EnvValue::Manifest,
            },
        })
        .collect();
    let mut agent_labels = labels_for(&base, Role::Agent);
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
        limits: inputs.options.agent_limits,
        init: true,
        dns: vec![LaunchAddress::EgressInternal],
        hosts: BTreeMap::from([(EGRESS_ALIAS.to_owned(), LaunchAddress::EgressInternal)]),
        files: BTreeMap::new(),
    };

    Ok(Topology {
        identity: prepared.identity.to_string(),
        networks: vec![internal, upstream],
        joined_networks: bottle.egress.networks.clone(),
        egress,
        agent,
    })
}

impl ContainerPlan {
    /// The engine's container config, with values filled in: `value(name, source)` supplies
    /// manifest values and credentials, `egress` the egress's internal address (needed by the
    /// agent only). A missing value is an error naming the variable.
    pub fn resolve(
        &self,
        value: &dyn Fn(&str, &EnvValue) -> Option<String>,
        egress: Option<IpAddr>,
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
            LaunchAddress::EgressInternal => egress.ok_or_else(|| DockerError::MissingValue {
                name: "the egress's internal address".to_owned(),
            }),
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
            init: self.init,
            dns,
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
            _ => None,
        })
        .unwrap();
        assert_eq!(o.agent_limits.memory_bytes, 2 << 30);
        assert_eq!(o.agent_limits.pids, 100);
        let bad = DockerOptions::from_lookup(|n| (n == env::PIDS_LIMIT).then(|| "many".into()));
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("CLAUDE_BOTTLE_PIDS_LIMIT"), "{msg}");
    }
}
