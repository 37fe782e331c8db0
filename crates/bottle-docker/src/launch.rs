//! Bringing a planned bottle up, and taking it down, over the [`DockerApi`] seam.
//!
//! Order of launch: the networks at once → each sidecar in order (created on the internal network
//! under its alias, connected to its upstream networks, given its files, started, and waited for
//! until its readiness check passes *inside* it) and, alongside them, the agent (internal network
//! only; created and started at once under runc, after the sidecars under runsc, whose
//! `/etc/hosts` needs their addresses — see [`launch`]). Nothing here knows which sidecars there are:
//! the topology lists them. Teardown finds objects by the identity label (and by name, for
//! anything whose labels were lost), so it works whatever point a launch reached, even from
//! another process.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bottle_core::{BottleFile, Readiness, Role};
use bottle_egress::Cidr;

use crate::api::{DockerApi, ExecSpec, Filter, Progress, ProgressSink, Subnet};
use crate::error::{DockerError, Result};
use crate::names::{ObjectRole, label, parse_name};
use crate::plan::{ContainerPlan, EnvValue, LaunchAddress, LaunchAddresses, Topology};
use crate::remove::{ObjectKind, Removed, remove_all};
use crate::tarball;

/// The files of sidecar `role`, given the subnets of the bottle's own internal network (which
/// exist only once the networks are created).
pub type SidecarFiles<'a> = dyn Fn(Role, &[Cidr]) -> Result<Vec<BottleFile>> + Send + Sync + 'a;

/// Values the launch fills into the plan. Never logged.
pub struct LaunchValues<'a> {
    /// A manifest env value or a credential, by name.
    pub value: &'a (dyn Fn(&str, &EnvValue) -> Option<String> + Send + Sync),
    /// Each sidecar's files (`bottle_recipe::LaunchMaterial::files`), extracted at `/` of its
    /// container before it starts.
    pub files: &'a SidecarFiles<'a>,
    /// How long to wait for each sidecar's readiness check.
    pub ready_timeout: Duration,
}

impl std::fmt::Debug for LaunchValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchValues")
            .field("ready_timeout", &self.ready_timeout)
            .finish_non_exhaustive()
    }
}

/// A launched bottle: its containers by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The agent container's name.
    pub agent: String,
    /// Each sidecar's container name, in start order.
    pub sidecars: Vec<(Role, String)>,
}

fn step(progress: ProgressSink<'_>, text: String) {
    progress(Progress::Note { message: text });
}

/// Creates and starts the bottle of `topology`. On error, what was created stays for
/// [`teardown`] (which the lifecycle always runs).
///
/// The networks are created at once. The sidecars start in order, each ready before the next.
/// An agent whose config names no sidecar address (runc: the embedded resolver answers the
/// aliases, see [`crate::plan`]) is created and started while they do — a container start is
/// most of a launch, and the two no longer wait for each other; launch returns when both are
/// done. Under runsc the agent needs the sidecars' addresses, so it is created after them.
pub async fn launch<D: DockerApi>(
    api: &D,
    topology: &Topology,
    values: &LaunchValues<'_>,
    progress: ProgressSink<'_>,
) -> Result<Launched> {
    for network in &topology.networks {
        step(progress, format!("creating network {}", network.name));
    }
    futures_util::future::try_join_all(topology.networks.iter().map(|n| api.create_network(n)))
        .await?;
    let internal = &topology.internal_network().name;
    let agent = &topology.agent;
    let needs_gateway = agent.dns.contains(&LaunchAddress::InternalGateway);
    let subnets = if topology.sidecars.is_empty() && !needs_gateway {
        Vec::new()
    } else {
        api.network_subnets(internal).await?
    };
    let bottle_networks = if topology.sidecars.is_empty() {
        Vec::new()
    } else {
        parse_subnets(internal, &subnets)?
    };
    let internal_gateway = if needs_gateway {
        Some(gateway_of(internal, &subnets)?)
    } else {
        None
    };

    let start_agent = |addresses: LaunchAddresses| async move {
        step(progress, format!("creating agent {}", agent.name));
        api.create_container(&agent.resolve(values.value, &addresses)?)
            .await?;
        api.start_container(&agent.name).await?;
        step(progress, format!("agent {} started", agent.name));
        Ok::<_, DockerError>(())
    };
    let start_sidecars = async {
        let mut addresses = BTreeMap::new();
        for sidecar in &topology.sidecars {
            let address =
                start_sidecar(api, sidecar, values, &bottle_networks, internal, progress).await?;
            addresses.insert(sidecar.role, address);
        }
        Ok::<_, DockerError>(addresses)
    };
    if agent.needs_sidecar_addresses() {
        let sidecars = start_sidecars.await?;
        start_agent(LaunchAddresses {
            sidecars,
            internal_gateway,
        })
        .await?;
    } else {
        tokio::try_join!(
            start_sidecars,
            start_agent(LaunchAddresses {
                sidecars: BTreeMap::new(),
                internal_gateway,
            })
        )?;
    }
    Ok(Launched {
        agent: agent.name.clone(),
        sidecars: topology
            .sidecars
            .iter()
            .map(|s| (s.role, s.name.clone()))
            .collect(),
    })
}

/// Creates, fills and starts one sidecar and waits until it is ready; returns its address on
/// the internal network.
async fn start_sidecar<D: DockerApi>(
    api: &D,
    sidecar: &ContainerPlan,
    values: &LaunchValues<'_>,
    bottle_networks: &[Cidr],
    internal: &str,
    progress: ProgressSink<'_>,
) -> Result<IpAddr> {
    let files = (values.files)(sidecar.role, bottle_networks)?;
    step(
        progress,
        format!("creating {} {}", sidecar.role, sidecar.name),
    );
    // A sidecar's config names no launch address (only the agent's does).
    api.create_container(&sidecar.resolve(values.value, &LaunchAddresses::default())?)
        .await?;
    for attachment in &sidecar.connect {
        api.connect_network(&sidecar.name, attachment).await?;
    }
    if !files.is_empty() {
        let tar = tarball::archive(&format!("{} files", sidecar.role), &files)?;
        api.upload(&sidecar.name, "/", tar).await?;
    }
    api.start_container(&sidecar.name).await?;
    step(
        progress,
        format!("waiting for {} {}", sidecar.role, sidecar.name),
    );
    let address = wait_until_ready(api, sidecar, internal, values.ready_timeout).await?;
    step(progress, format!("{} {} ready", sidecar.role, sidecar.name));
    Ok(address)
}

/// The internal network's subnets as CIDRs. None (or one that does not parse) is an error:
/// without them a sidecar such as the egress could not be limited to the bottle's own network.
fn parse_subnets(network: &str, subnets: &[Subnet]) -> Result<Vec<Cidr>> {
    let problem = |detail: String| DockerError::Engine {
        operation: "inspect network",
        object: network.to_owned(),
        detail,
    };
    if subnets.is_empty() {
        return Err(problem(
            "the engine reports no subnet, so the egress cannot be limited to the bottle's \
             network; check the engine's default address pools"
                .to_owned(),
        ));
    }
    subnets
        .iter()
        .map(|s| {
            s.cidr
                .parse::<Cidr>()
                .map_err(|e| problem(format!("unexpected subnet: {e}")))
        })
        .collect()
}

/// The gateway address the engine reserved on the internal network: the agent's resolver
/// forwards there, and nothing answers. An engine that reports none fails the launch rather
/// than leave the agent's resolver to forward to the host's servers.
fn gateway_of(network: &str, subnets: &[Subnet]) -> Result<IpAddr> {
    subnets
        .iter()
        .filter_map(|s| s.gateway.as_deref())
        .find_map(|g| g.parse::<IpAddr>().ok())
        .ok_or_else(|| DockerError::Engine {
            operation: "inspect network",
            object: network.to_owned(),
            detail: "the engine reports no gateway address for the internal network, which the \
                     agent's resolver needs as its dead end; check the engine's address pools"
                .to_owned(),
        })
}

/// Polls until `sidecar` is ready — its readiness command, run inside it through the engine,
/// exits 0 — failing fast with its log if it exits. Returns its address on the internal
/// network. The host never connects to the container: the engine may be remote.
async fn wait_until_ready<D: DockerApi>(
    api: &D,
    sidecar: &ContainerPlan,
    internal: &str,
    timeout: Duration,
) -> Result<IpAddr> {
    let name = &sidecar.name;
    let not_ready = |detail: String| DockerError::SidecarNotReady {
        role: sidecar.role,
        container: name.clone(),
        detail,
    };
    let deadline = Instant::now() + timeout;
    let mut last = "no answer yet".to_owned();
    loop {
        let info = api
            .inspect_container(name)
            .await?
            .ok_or_else(|| not_ready("the container disappeared".to_owned()))?;
        if !info.running {
            let log = api.logs_tail(name, 20).await.unwrap_or_default();
            return Err(not_ready(format!(
                "it exited with code {}; its log ends with:\n{}",
                info.exit_code.unwrap_or(-1),
                log.trim_end()
            )));
        }
        if let Some(address) = info.addresses.get(internal) {
            match &sidecar.readiness {
                None | Some(Readiness::Started) => return Ok(*address),
                Some(Readiness::Exec(cmd)) => {
                    let check = ExecSpec {
                        cmd: cmd.clone(),
                        ..ExecSpec::default()
                    };
                    let out = api.exec(name, &check, None).await?;
                    if out.exit_code == 0 {
                        return Ok(*address);
                    }
                    let said = String::from_utf8_lossy(&out.stderr);
                    last = format!(
                        "`{}` exited with {}: {}",
                        cmd.join(" "),
                        out.exit_code,
                        said.trim()
                    );
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(not_ready(format!(
                "not ready within {}s ({last})",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The role of a listed container: its label, else what its name says.
fn role_of(name: &str, labels: &BTreeMap<String, String>) -> Role {
    labels
        .get(label::ROLE)
        .and_then(|r| Role::parse(r))
        .or_else(|| match parse_name(name, false) {
            Some((ObjectRole::Container(role), _)) => Some(role),
            _ => None,
        })
        .unwrap_or(Role::Probe)
}

/// Removes every container, volume and network of `topology`'s bottle: containers first (the
/// engine refuses to remove a network with endpoints) in [`Role::removal_rank`] order — the
/// agent, then the sidecars in reverse start order. Objects are found by the identity label,
/// and by the topology's names for anything whose labels were lost. Already-gone objects are
/// skipped, so this is idempotent. Keeps going past failures and returns the first (see
/// [`remove_all`]).
pub async fn teardown<D: DockerApi>(
    api: &D,
    topology: &Topology,
    progress: ProgressSink<'_>,
) -> Result<Vec<Removed>> {
    let objects = objects_of(api, topology).await?;
    remove_all(api, objects, progress).await
}

/// What [`teardown`] removes, in its order: the bottle's containers, volumes and networks.
pub async fn objects_of<D: DockerApi>(
    api: &D,
    topology: &Topology,
) -> Result<Vec<(ObjectKind, String)>> {
    let by_label = Filter::label(label::IDENTITY, &topology.identity);
    let mut containers: Vec<(Role, String)> = api
        .list_containers(&by_label)
        .await?
        .into_iter()
        .map(|c| (role_of(&c.name, &c.labels), c.name))
        .collect();
    // Name fallback: what carries no label (or was listed too early) still goes.
    for planned in topology.containers() {
        if !containers.iter().any(|(_, name)| *name == planned.name) {
            containers.push((planned.role, planned.name.clone()));
        }
    }
    containers.sort_by(|(a, a_name), (b, b_name)| {
        (a.removal_rank(), a_name).cmp(&(b.removal_rank(), b_name))
    });
    let mut networks: Vec<String> = api
        .list_networks(&by_label)
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect();
    for planned in &topology.networks {
        if !networks.contains(&planned.name) {
            networks.push(planned.name.clone());
        }
    }
    let volumes = api.list_volumes(&by_label).await?;

    Ok(containers
        .into_iter()
        .map(|(_, name)| (ObjectKind::Container, name))
        .chain(volumes.into_iter().map(|v| (ObjectKind::Volume, v.name)))
        .chain(networks.into_iter().map(|n| (ObjectKind::Network, n)))
        .collect())
}
