//! Bringing a planned bottle up, and taking it down, over the [`DockerApi`] seam.
//!
//! Order of launch: networks → egress (created on the internal network as `egress`, connected to
//! its upstream networks, given its files, started) → wait until the egress answers its health
//! check → agent (internal network only, DNS and `/etc/hosts` pointed at the egress) → start.
//! Teardown finds objects by the identity label (and by name, for anything whose labels were
//! lost), so it works whatever point a launch reached, even from another process.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bottle_egress::Cidr;
use bytes::Bytes;

use crate::api::{DockerApi, Filter, Progress, ProgressSink};
use crate::error::{DockerError, Result};
use crate::names::{EGRESS_PORT, Names, label};
use crate::plan::{EnvValue, Topology};

/// Values the launch fills into the plan. Never logged.
pub struct LaunchValues<'a> {
    /// A manifest env value or a credential, by name.
    pub value: &'a (dyn Fn(&str, &EnvValue) -> Option<String> + Send + Sync),
    /// Packs the egress's files (config, CA, trust), a tar extracted in
    /// [`EGRESS_FILES_PARENT`](crate::plan::EGRESS_FILES_PARENT) of the egress container,
    /// given the networks it may serve: the bottle's own (see `egress_clients`), never the
    /// `egress.networks` it joins to reach upstreams.
    pub egress_files: &'a (dyn Fn(&[Cidr]) -> Result<Bytes> + Send + Sync),
    /// How long to wait for the egress's health check.
    pub egress_timeout: Duration,
}

impl std::fmt::Debug for LaunchValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchValues")
            .field("egress_timeout", &self.egress_timeout)
            .finish_non_exhaustive()
    }
}

/// A launched bottle's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The agent container's name.
    pub agent: String,
    /// The egress's address on the internal network.
    pub egress_internal: IpAddr,
}

fn step(progress: ProgressSink<'_>, text: String) {
    progress(Progress::Launch { step: text });
}

/// Creates and starts the bottle of `topology`. On error, what was created stays for
/// [`teardown`] (which the lifecycle always runs).
pub async fn launch<D: DockerApi>(
    api: &D,
    topology: &Topology,
    values: &LaunchValues<'_>,
    progress: ProgressSink<'_>,
) -> Result<Launched> {
    for network in &topology.networks {
        step(progress, format!("creating network {}", network.name));
        api.create_network(network).await?;
    }

    let egress = &topology.egress;
    let clients = egress_clients(api, topology).await?;
    let egress_files = (values.egress_files)(&clients)?;
    step(progress, format!("creating egress {}", egress.name));
    api.create_container(&egress.resolve(values.value, None)?)
        .await?;
    for attachment in &egress.connect {
        api.connect_network(&egress.name, attachment).await?;
    }
    api.upload(&egress.name, crate::plan::EGRESS_FILES_PARENT, egress_files)
        .await?;
    api.start_container(&egress.name).await?;

    step(progress, format!("waiting for egress {}", egress.name));
    let upstream = egress
        .connect
        .first()
        .map(|a| a.network.clone())
        .unwrap_or_else(|| egress.network.network.clone());
    let egress_internal = wait_for_egress(
        api,
        &egress.name,
        &egress.network.network,
        &upstream,
        values.egress_timeout,
    )
    .await?;

    let agent = &topology.agent;
    step(progress, format!("creating agent {}", agent.name));
    api.create_container(&agent.resolve(values.value, Some(egress_internal))?)
        .await?;
    api.start_container(&agent.name).await?;
    Ok(Launched {
        agent: agent.name.clone(),
        egress_internal,
    })
}

/// Who may use the egress: the internal network (the agent), the bottle's own upstream bridge
/// (nothing else is attached to it; the host's health check arrives from its gateway) and the
/// egress's loopback (the image's `HEALTHCHECK`). Not the `egress.networks`: other containers
/// live there.
async fn egress_clients<D: DockerApi>(api: &D, topology: &Topology) -> Result<Vec<Cidr>> {
    let egress = &topology.egress;
    let mut clients = subnets_of(api, &egress.network.network).await?;
    if let Some(own_bridge) = egress.connect.first() {
        clients.extend(subnets_of(api, &own_bridge.network).await?);
    }
    for loopback in ["127.0.0.0/8", "::1/128"] {
        clients.extend(loopback.parse::<Cidr>().ok());
    }
    Ok(clients)
}

/// The subnets the engine gave `network`. None (or one that does not parse) is an error:
/// without them the egress could not be limited to the bottle's own networks.
async fn subnets_of<D: DockerApi>(api: &D, network: &str) -> Result<Vec<Cidr>> {
    let subnets = api.network_subnets(network).await?;
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
            s.parse::<Cidr>()
                .map_err(|e| problem(format!("unexpected subnet: {e}")))
        })
        .collect()
}

/// Polls until the egress answers `GET /health` with 200 on its upstream-side address (the
/// host reaches an ordinary bridge network), failing fast with its log if it exits. Returns its
/// internal address.
async fn wait_for_egress<D: DockerApi>(
    api: &D,
    name: &str,
    internal: &str,
    upstream: &str,
    timeout: Duration,
) -> Result<IpAddr> {
    let deadline = Instant::now() + timeout;
    let mut last = "no answer yet".to_owned();
    loop {
        let info =
            api.inspect_container(name)
                .await?
                .ok_or_else(|| DockerError::EgressNotReady {
                    container: name.to_owned(),
                    detail: "the container disappeared".to_owned(),
                })?;
        if !info.running {
            let log = api.logs_tail(name, 20).await.unwrap_or_default();
            return Err(DockerError::EgressNotReady {
                container: name.to_owned(),
                detail: format!(
                    "it exited with code {}; its log ends with:\n{}",
                    info.exit_code.unwrap_or(-1),
                    log.trim_end()
                ),
            });
        }
        if let (Some(probe), Some(inside)) =
            (info.addresses.get(upstream), info.addresses.get(internal))
        {
            match api.egress_health(*probe, EGRESS_PORT).await? {
                Some(200) => return Ok(*inside),
                Some(status) => last = format!("health check answered {status}"),
                None => last = "nothing answers on the proxy port yet".to_owned(),
            }
        }
        if Instant::now() >= deadline {
            return Err(DockerError::EgressNotReady {
                container: name.to_owned(),
                detail: format!("no healthy answer within {}s ({last})", timeout.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What teardown or cleanup removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// `container`, `network` or `volume`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// Removes every container, volume and network of bottle `identity`: containers first (the
/// engine refuses to remove a network with endpoints), agent before egress. Already-gone objects
/// are skipped, so this is idempotent. Keeps going past failures and returns the first.
pub async fn teardown<D: DockerApi>(
    api: &D,
    identity: &str,
    progress: ProgressSink<'_>,
) -> Result<Vec<Removed>> {
    let names = Names::new(identity)?;
    let by_label = Filter::label(label::IDENTITY, identity);
    let mut containers: Vec<String> = api
        .list_containers(&by_label)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    // Name fallback, agent first: what carries no label (or was listed too early) still goes.
    for name in [names.egress_container(), names.agent_container()] {
        if !containers.contains(&name) {
            containers.push(name);
        }
    }
    let agent = names.agent_container();
    containers.sort_by_key(|n| (n != &agent, n.clone()));
    let mut networks: Vec<String> = api
        .list_networks(&by_label)
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect();
    for name in [names.internal_network(), names.egress_network()] {
        if !networks.contains(&name) {
            networks.push(name);
        }
    }
    let volumes = api.list_volumes(&by_label).await?;

    let mut removed = Vec::new();
    let mut first_error = None;
    for name in containers {
        match api.remove_container(&name).await {
            Ok(true) => {
                step(progress, format!("removed container {name}"));
                removed.push(Removed {
                    kind: "container",
                    name,
                });
            }
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for volume in volumes {
        match api.remove_volume(&volume.name).await {
            Ok(true) => removed.push(Removed {
                kind: "volume",
                name: volume.name,
            }),
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for name in networks {
        match api.remove_network(&name).await {
            Ok(true) => {
                step(progress, format!("removed network {name}"));
                removed.push(Removed {
                    kind: "network",
                    name,
                });
            }
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}
