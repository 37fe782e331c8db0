//! The Docker backend's plans as bottle-core sees them: [`DockerPlan`] with its preflight
//! lines, and [`DockerCleanupPlan`].

use std::collections::BTreeMap;

use bottle_core::{
    BottleCleanupPlan, BottlePlan, CleanupItem, CleanupSummary, Detail, Identity, PlanSummary,
    PreparedSpec, SidecarSpec,
};
use serde::Serialize;

use bottle_core::agent::Limits;

use crate::api::{EngineInfo, LogRotation};
use crate::backend::BACKEND_NAME;
use crate::cleanup::CleanupPlan;
use crate::endpoint::EngineEndpoint;
use crate::image::AgentImageRecipe;
use crate::plan::{self, DiskBound, DockerOptions, PlanInputs, Topology, show_cpus};
use crate::runtime::RuntimeChoice;

/// A Docker bottle's plan.
#[derive(Debug, Clone)]
pub struct DockerPlan {
    /// The engine, when it is not the local default socket: the preflight names it.
    pub(crate) endpoint: Option<EngineEndpoint>,
    pub(crate) prepared: PreparedSpec,
    pub(crate) recipe: AgentImageRecipe,
    pub(crate) agent_image: String,
    pub(crate) runtime: RuntimeChoice,
    /// The recipe's sidecars, as planned into the topology.
    pub(crate) sidecars: Vec<SidecarSpec>,
    /// What the engine said of itself at prepare; launch plans with the same facts.
    pub(crate) engine: Option<EngineInfo>,
    /// Whether the agent's writable layer is bounded on this engine.
    pub(crate) disk: DiskBound,
    /// The agent's limits as the settings ask them (the topology's are fitted to the engine).
    pub(crate) asked: Limits,
    pub(crate) topology: Topology,
}

impl DockerPlan {
    /// The topology as planned (labels without the launch time).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The runtime choice.
    pub fn runtime(&self) -> &RuntimeChoice {
        &self.runtime
    }

    /// Whether the agent's writable layer is bounded.
    pub fn disk(&self) -> &DiskBound {
        &self.disk
    }

    /// The inputs the topology was planned from, with `labels` (the launch's own).
    pub(crate) fn inputs<'a>(
        &'a self,
        options: &'a DockerOptions,
        labels: &'a BTreeMap<String, String>,
    ) -> PlanInputs<'a> {
        PlanInputs {
            agent_image: &self.agent_image,
            runtime: self.runtime.runtime,
            options,
            labels,
            sidecars: &self.sidecars,
            engine: self.engine.as_ref(),
        }
    }
}

impl BottlePlan for DockerPlan {
    fn prepared(&self) -> &PreparedSpec {
        &self.prepared
    }

    fn summary(&self) -> PlanSummary {
        let mut summary = PlanSummary::from_prepared(&self.prepared);
        summary.runtime = self.runtime.runtime.as_str().to_owned();
        summary.image = self.agent_image.clone();
        let t = &self.topology;
        let engine = self.endpoint.iter().map(|endpoint| Detail {
            label: "engine".to_owned(),
            value: endpoint.to_string(),
        });
        let mut details: Vec<Detail> = engine.collect();
        details.extend([
            Detail {
                label: "runtime".to_owned(),
                value: self.runtime.reason.clone(),
            },
            Detail {
                label: "agent".to_owned(),
                value: format!(
                    "{} on {} only, as node, no capabilities, {} MiB, {} processes, {}",
                    t.agent.name,
                    t.internal_network().name,
                    t.agent.limits.memory_bytes >> 20,
                    t.agent.limits.pids,
                    show_cpus(t.agent.limits.millicpus)
                ),
            },
        ]);
        if self.asked.millicpus > t.agent.limits.millicpus {
            details.push(Detail {
                label: "cpus".to_owned(),
                value: format!(
                    "{} asked, the engine has {}",
                    show_cpus(self.asked.millicpus),
                    show_cpus(t.agent.limits.millicpus)
                ),
            });
        }
        details.push(Detail {
            label: "network".to_owned(),
            value: format!(
                "{}: internal, no route out, no address of the host on it, no IPv6",
                t.internal_network().name
            ),
        });
        details.push(Detail {
            label: "disk".to_owned(),
            value: match &self.disk {
                DiskBound::Bounded { bytes } => format!(
                    "the agent's writable layer holds at most {} ({})",
                    show_bytes(*bytes),
                    plan::env::DISK
                ),
                DiskBound::NotBounded { reason } => format!("not bounded: {reason}"),
            },
        });
        let LogRotation {
            max_size_bytes,
            max_files,
        } = t.agent.log;
        details.push(Detail {
            label: "logs".to_owned(),
            value: format!(
                "json-file, at most {max_files} files of {} per container",
                show_bytes(i64::try_from(max_size_bytes).unwrap_or(i64::MAX))
            ),
        });
        // One line per sidecar, in start order, with what the recipe says the agent sees.
        for (container, spec) in t.sidecars.iter().zip(&self.sidecars) {
            details.push(Detail {
                label: container.role.to_string(),
                value: format!("{} ({}), {}", container.name, container.image, spec.summary),
            });
        }
        if let Some(warning) = &self.runtime.warning {
            details.push(Detail {
                label: "warning".to_owned(),
                value: warning.clone(),
            });
        }
        summary.details = details;
        summary
    }

    fn image(&self) -> Option<String> {
        Some(self.agent_image.clone())
    }
}

/// `34359738368` → `32 GiB`, `10485760` → `10 MiB`: whole units only, else bytes.
fn show_bytes(bytes: i64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// The cleanup plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DockerCleanupPlan(pub CleanupPlan);

impl BottleCleanupPlan for DockerCleanupPlan {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn summary(&self) -> CleanupSummary {
        CleanupSummary {
            backend: BACKEND_NAME.to_owned(),
            items: self
                .0
                .items()
                .map(|l| CleanupItem {
                    kind: l.kind.as_str().to_owned(),
                    name: l.name.clone(),
                    identity: l.identity.as_deref().and_then(|i| Identity::parse(i).ok()),
                })
                .collect(),
        }
    }
}
