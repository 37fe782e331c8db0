//! The Docker backend's plans as bottle-core sees them: [`DockerPlan`] with its preflight
//! lines, and [`DockerCleanupPlan`].

use std::collections::BTreeMap;

use bottle_core::{
    BottleCleanupPlan, BottlePlan, CleanupItem, CleanupSummary, Detail, Identity, PlanSummary,
    PreparedSpec, SidecarSpec,
};
use serde::Serialize;

use crate::backend::BACKEND_NAME;
use crate::cleanup::CleanupPlan;
use crate::endpoint::EngineEndpoint;
use crate::image::AgentImageRecipe;
use crate::plan::{DockerOptions, PlanInputs, Topology};
use crate::runtime::RuntimeChoice;

/// A Docker bottle's plan.
#[derive(Debug, Clone)]
pub struct DockerPlan {
    /// The engine, when it is not the local default socket: the preflight names it.
    pub(crate) engine: Option<EngineEndpoint>,
    pub(crate) prepared: PreparedSpec,
    pub(crate) recipe: AgentImageRecipe,
    pub(crate) agent_image: String,
    pub(crate) runtime: RuntimeChoice,
    /// The recipe's sidecars, as planned into the topology.
    pub(crate) sidecars: Vec<SidecarSpec>,
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
        let engine = self.engine.iter().map(|endpoint| Detail {
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
                    "{} on {} only, as node, no capabilities, {} MiB, {} processes",
                    t.agent.name,
                    t.internal_network().name,
                    t.agent.limits.memory_bytes >> 20,
                    t.agent.limits.pids
                ),
            },
        ]);
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
