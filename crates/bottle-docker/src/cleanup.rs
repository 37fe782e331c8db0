//! Finding and removing what dead bottles left behind, and listing live ones.
//!
//! One list call per kind of resource, for the objects claude-bottle created: those with the
//! managed label, a bottle identity and a role ([`is_ours`]). Nothing else is ever considered —
//! not an object merely named `claude-bottle-…`, and not a container someone made from a
//! claude-bottle image (images carry only image labels, but older images carried the managed
//! label, which every container made from them inherits). A bottle whose launcher still runs
//! (see [`liveness`](crate::liveness)) is never touched, so cleanup is safe while other bottles
//! run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::{ContainerSummary, DockerApi, Filter, NetworkSummary, ProgressSink};
use crate::error::Result;
use crate::liveness::Liveness;
use bottle_core::Role;

use crate::names::{Names, label};
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

/// The filter of what claude-bottle creates: managed, with an identity and a role.
fn created_by_bottles() -> Filter {
    Filter {
        labels: vec![
            format!("{}={}", label::MANAGED, label::MANAGED_VALUE),
            label::IDENTITY.to_owned(),
            label::ROLE.to_owned(),
        ],
        name: None,
    }
}

/// Whether `labels` are those of an object a bottle created: the managed label, a valid bottle
/// identity and a role claude-bottle gives. The engine's filter asks the same; this is the
/// second wall, which an engine ignoring a filter cannot pass.
pub fn is_ours(labels: &BTreeMap<String, String>) -> bool {
    labels.get(label::MANAGED).map(String::as_str) == Some(label::MANAGED_VALUE)
        && labels
            .get(label::IDENTITY)
            .is_some_and(|id| Names::new(id).is_ok())
        && labels
            .get(label::ROLE)
            .is_some_and(|role| Role::parse(role).is_some())
}

/// Finds leftovers. `live` judges a launcher label value (inject
/// [`liveness::check`](crate::liveness::check) in production). Reads only.
pub async fn plan_cleanup<D: DockerApi>(
    api: &D,
    live: &(dyn Fn(&str) -> Liveness + Send + Sync),
) -> Result<CleanupPlan> {
    let filter = created_by_bottles();
    let containers: BTreeMap<String, ContainerSummary> = api
        .list_containers(&filter)
        .await?
        .into_iter()
        .filter(|c| is_ours(&c.labels))
        .map(|c| (c.name.clone(), c))
        .collect();
    let networks: BTreeMap<String, NetworkSummary> = api
        .list_networks(&filter)
        .await?
        .into_iter()
        .filter(|n| is_ours(&n.labels))
        .map(|n| (n.name.clone(), n))
        .collect();
    let volumes: Vec<_> = api
        .list_volumes(&filter)
        .await?
        .into_iter()
        .filter(|v| is_ours(&v.labels))
        .collect();

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
        let identity = c.labels.get(label::IDENTITY).cloned();
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
        let identity = n.labels.get(label::IDENTITY).cloned();
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
