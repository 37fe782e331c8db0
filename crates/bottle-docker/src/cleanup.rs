//! Finding and removing what dead bottles left behind, and listing live ones.
//!
//! One list call per kind of resource by the managed label, one more by the `claude-bottle-`
//! name prefix for objects whose labels were lost. A bottle whose launcher still runs (see
//! [`liveness`](crate::liveness)) is never touched, so cleanup is safe while other bottles run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::{ContainerSummary, DockerApi, Filter, NetworkSummary, ProgressSink};
use crate::error::Result;
use crate::liveness::Liveness;
use crate::names::{NAME_PREFIX, label, parse_name};
use crate::remove::{ObjectKind, Removed, remove_all};

/// One object cleanup would remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// The bottle it belonged to, when known.
    pub identity: Option<String>,
}

/// What cleanup would remove, containers first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CleanupPlan {
    /// Containers.
    pub containers: Vec<Leftover>,
    /// Volumes.
    pub volumes: Vec<Leftover>,
    /// Networks.
    pub networks: Vec<Leftover>,
}

impl CleanupPlan {
    /// Nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }

    /// Every leftover, in removal order.
    pub fn items(&self) -> impl Iterator<Item = &Leftover> {
        self.containers
            .iter()
            .chain(&self.volumes)
            .chain(&self.networks)
    }
}

fn identity_of(labels: &BTreeMap<String, String>, name: &str, is_network: bool) -> Option<String> {
    labels
        .get(label::IDENTITY)
        .cloned()
        .or_else(|| parse_name(name, is_network).map(|(_, id)| id))
}

/// Finds leftovers. `live` judges a launcher label value (inject
/// [`liveness::check`](crate::liveness::check) in production). Reads only.
pub async fn plan_cleanup<D: DockerApi>(
    api: &D,
    live: &(dyn Fn(&str) -> Liveness + Send + Sync),
) -> Result<CleanupPlan> {
    let managed = Filter::has_label(label::MANAGED);
    let prefixed = Filter::name(NAME_PREFIX);
    let mut containers: BTreeMap<String, ContainerSummary> = BTreeMap::new();
    for c in api
        .list_containers(&managed)
        .await?
        .into_iter()
        .chain(api.list_containers(&prefixed).await?)
    {
        let ours = c.labels.contains_key(label::MANAGED) || c.name.starts_with(NAME_PREFIX);
        if ours {
            containers.entry(c.name.clone()).or_insert(c);
        }
    }
    let mut networks: BTreeMap<String, NetworkSummary> = BTreeMap::new();
    for n in api
        .list_networks(&managed)
        .await?
        .into_iter()
        .chain(api.list_networks(&prefixed).await?)
    {
        let ours = n.labels.contains_key(label::MANAGED) || n.name.starts_with(NAME_PREFIX);
        if ours {
            networks.entry(n.name.clone()).or_insert(n);
        }
    }
    let volumes = api.list_volumes(&managed).await?;

    // A bottle is live when any of its objects names a launcher that may still run.
    let mut live_identities = BTreeSet::new();
    let launchers = containers
        .values()
        .map(|c| &c.labels)
        .chain(networks.values().map(|n| &n.labels))
        .chain(volumes.iter().map(|v| &v.labels));
    for labels in launchers {
        if let (Some(id), Some(launcher)) =
            (labels.get(label::IDENTITY), labels.get(label::LAUNCHER))
            && live(launcher) != Liveness::Dead
        {
            live_identities.insert(id.clone());
        }
    }
    let keep = |identity: &Option<String>| {
        identity
            .as_ref()
            .is_some_and(|id| live_identities.contains(id))
    };

    let mut plan = CleanupPlan::default();
    for c in containers.values() {
        let identity = identity_of(&c.labels, &c.name, false);
        if !keep(&identity) {
            plan.containers.push(Leftover {
                kind: ObjectKind::Container,
                name: c.name.clone(),
                identity,
            });
        }
    }
    for v in &volumes {
        let identity = v.labels.get(label::IDENTITY).cloned();
        if !keep(&identity) {
            plan.volumes.push(Leftover {
                kind: ObjectKind::Volume,
                name: v.name.clone(),
                identity,
            });
        }
    }
    for n in networks.values() {
        let identity = identity_of(&n.labels, &n.name, true);
        if !keep(&identity) {
            plan.networks.push(Leftover {
                kind: ObjectKind::Network,
                name: n.name.clone(),
                identity,
            });
        }
    }
    Ok(plan)
}

/// Removes a cleanup plan's objects: containers, then volumes, then networks. Objects already
/// gone are skipped; failures do not stop the rest, and the first is returned.
pub async fn cleanup<D: DockerApi>(
    api: &D,
    plan: &CleanupPlan,
    progress: ProgressSink<'_>,
) -> Result<Vec<Removed>> {
    let objects: Vec<(ObjectKind, String)> =
        plan.items().map(|l| (l.kind, l.name.clone())).collect();
    remove_all(api, objects, progress).await
}

/// A running (or stopped) bottle as its agent container describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveAgent {
    /// The identity.
    pub identity: String,
    /// The agent's name.
    pub agent: String,
    /// The started label, RFC 3339.
    pub started: Option<String>,
    /// Whether the container runs.
    pub running: bool,
    /// The agent container's name.
    pub container: String,
}

/// Lists bottles by their agent containers: one call.
pub async fn list_active<D: DockerApi>(api: &D) -> Result<Vec<ActiveAgent>> {
    let filter = Filter {
        labels: vec![
            format!("{}={}", label::MANAGED, label::MANAGED_VALUE),
            format!("{}={}", label::ROLE, bottle_core::Role::Agent.as_str()),
        ],
        name: None,
    };
    Ok(api
        .list_containers(&filter)
        .await?
        .into_iter()
        .filter_map(|c| {
            Some(ActiveAgent {
                identity: c.labels.get(label::IDENTITY)?.clone(),
                agent: c.labels.get(label::AGENT).cloned().unwrap_or_default(),
                started: c.labels.get(label::STARTED).cloned(),
                running: c.running,
                container: c.name,
            })
        })
        .collect())
}
