//! [`DockerBackend`]: bottle-core's backend contract on a Docker engine — construction and
//! settings, the runtime choice, and the lifecycle calls (resolve, launch, teardown, cleanup,
//! listing). The handle is in [`crate::bottle`], the plans in [`crate::summary`], the topology
//! in [`crate::plan`], the launch order in [`crate::launch`]; what the bottle holds (sidecar
//! specs, egress config, CA, provisioning) comes from bottle-core and bottle-recipe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bottle_core::{
    ActiveBottle, ActiveState, BottleBackend, Capabilities, Event, EventSink, Feature, FileOwner,
    HostContext, Identity, LaunchContext, NoTerminal, PreparedSpec, Role, Step, TerminalHost,
};
use bottle_egress::Cidr;
use bottle_recipe::LaunchMaterial;

use crate::api::{DockerApi, EngineInfo, Progress};
use crate::bottle::DockerBottle;
use crate::cleanup;
use crate::endpoint::EngineEndpoint;
use crate::engine::Engine;
use crate::error::DockerError;
use crate::image::{self, AgentImageRecipe, ImageSettings};
use crate::inflight::{InFlight, SETTLE_TIMEOUT, Tracked};
use crate::launch::{self, LaunchValues};
use crate::liveness;
use crate::names::label;
use crate::plan::{self, DiskBound, DockerOptions, EnvValue, PlanInputs};
use crate::runtime::{self, ProbeImage, RuntimeChoice, Verdicts};
use crate::summary::{DockerCleanupPlan, DockerPlan};

/// The backend's registry name.
pub const BACKEND_NAME: &str = "docker";

pub(crate) fn core_err(action: impl Into<String>, err: DockerError) -> bottle_core::Error {
    bottle_core::Error::backend(BACKEND_NAME, action, err)
}

/// Relays this crate's progress to bottle-core's events.
fn relay(events: &dyn EventSink) -> impl Fn(Progress) + Send + Sync + '_ {
    move |p| match p {
        Progress::BuildStep {
            image,
            step,
            total,
            text,
        } => events.emit(Event::Progress {
            step: Step::Launch,
            message: format!("building {image}: {text}"),
            current: Some(u64::from(step)),
            total: Some(u64::from(total)),
        }),
        Progress::BuildOutput { .. } => {}
        Progress::Note { message } => events.emit(Event::Progress {
            step: Step::Launch,
            message,
            current: None,
            total: None,
        }),
        Progress::Removed { kind, name } => events.emit(Event::Removed { kind, name }),
        Progress::Warning { message } => events.emit(Event::Warning { message }),
    }
}

/// The Docker backend.
pub struct DockerBackend<D: DockerApi + Clone + 'static = Engine> {
    api: D,
    options: DockerOptions,
    images: ImageSettings,
    forced_runtime: Option<String>,
    runtime_cache: Mutex<Option<RuntimeChoice>>,
    /// Probe verdicts kept across runs, when the launcher gives a place for them.
    runtime_verdicts: Option<Verdicts>,
    terminal: Arc<dyn TerminalHost>,
    ready_timeout: Duration,
    /// The engine, for the preflight (`None`: not known, as for a fake).
    endpoint: Option<EngineEndpoint>,
    /// Creates still running for a launch that was dropped; teardown waits for them.
    inflight: InFlight,
}

impl<D: DockerApi + Clone + 'static> std::fmt::Debug for DockerBackend<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBackend")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DockerBackend<Engine> {
    /// A backend on the engine the environment names, with settings from the environment
    /// (`CLAUDE_BOTTLE_*`). Does not contact the engine yet.
    pub fn from_env() -> bottle_core::Result<Self> {
        let engine = Engine::new().map_err(|e| core_err("connect to the engine", e))?;
        let options = DockerOptions::from_lookup(|n| std::env::var(n).ok())
            .map_err(|e| core_err("read settings", e))?;
        let endpoint = engine.endpoint().clone();
        Ok(
            DockerBackend::new(engine, options, ImageSettings::from_env())
                .with_forced_runtime(std::env::var(runtime::RUNTIME_ENV).ok())
                .with_endpoint(endpoint),
        )
    }
}

impl<D: DockerApi + Clone + 'static> DockerBackend<D> {
    /// A backend over `api`.
    pub fn new(api: D, options: DockerOptions, images: ImageSettings) -> Self {
        DockerBackend {
            api,
            options,
            images,
            forced_runtime: None,
            runtime_cache: Mutex::new(None),
            runtime_verdicts: None,
            terminal: Arc::new(NoTerminal),
            ready_timeout: Duration::from_secs(30),
            endpoint: None,
            inflight: InFlight::default(),
        }
    }

    /// Names the engine `api` talks to, for the preflight (shown when it is not the local
    /// default socket).
    pub fn with_endpoint(mut self, endpoint: EngineEndpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Uses `terminal` for raw mode and window sizes in TTY sessions.
    pub fn with_terminal(mut self, terminal: Arc<dyn TerminalHost>) -> Self {
        self.terminal = terminal;
        self
    }

    /// Forces a runtime: `runc` skips the gVisor probe and takes no account of the engine's
    /// runtimes (`prepare` still asks the engine, so that one that does not answer fails first).
    pub fn with_forced_runtime(mut self, runtime: Option<String>) -> Self {
        self.forced_runtime = runtime.filter(|r| !r.is_empty());
        self
    }

    /// Keeps the gVisor probe's verdict in `verdicts` across runs, so that a start on a known
    /// engine skips the probe (see [`runtime`]).
    pub fn with_runtime_verdicts(mut self, verdicts: Verdicts) -> Self {
        self.runtime_verdicts = Some(verdicts);
        self
    }

    /// The engine seam.
    pub fn api(&self) -> &D {
        &self.api
    }

    /// Labels for the launch: bottle-core's set, this process as launcher, and extra labels.
    fn launch_labels(&self, base: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut labels = base.clone();
        if let Some(me) = liveness::current() {
            labels.insert(label::LAUNCHER.to_owned(), me);
        }
        labels.extend(self.options.extra_labels.clone());
        labels
    }

    /// Before resuming: what a killed launcher left under this identity would collide with the
    /// new objects' names. Removed when that launcher is gone; refused while it runs.
    async fn clear_stale(
        &self,
        plan: &DockerPlan,
        progress: crate::api::ProgressSink<'_>,
    ) -> bottle_core::Result<()> {
        let identity = plan.prepared.identity.as_str();
        let action = format!("resume bottle {identity}");
        let found = self
            .api
            .list_containers(&crate::api::Filter::label(label::IDENTITY, identity))
            .await
            .map_err(|e| core_err(action.clone(), e))?;
        let live = found.iter().any(|c| {
            c.labels
                .get(label::LAUNCHER)
                .is_some_and(|l| liveness::check(l) == liveness::Liveness::Live)
        });
        if live {
            return Err(core_err(
                action,
                DockerError::InvalidSetting {
                    name: "bottle".to_owned(),
                    value: identity.to_owned(),
                    hint: "it is still running in another claude-bottle process; end that one \
                           first"
                        .to_owned(),
                },
            ));
        }
        launch::teardown(&self.api, &plan.topology, progress)
            .await
            .map(drop)
            .map_err(|e| core_err(action, e))
    }

    /// The runtime as `prepare` may know it: a probe result from earlier in this process, else
    /// what the engine's registered runtimes say (see [`runtime::registered`]).
    fn planned_runtime(&self, info: &crate::error::Result<EngineInfo>) -> RuntimeChoice {
        if let Some(choice) = self.runtime_cache.lock().ok().and_then(|c| c.clone()) {
            return choice;
        }
        runtime::registered(info.as_ref(), self.forced_runtime.as_deref())
    }

    /// The runtime proven at launch: runs the networked gVisor probe (once per process) on a
    /// local image, its objects labelled with `labels` so that teardown finds them if the
    /// launch is interrupted.
    async fn probe_runtime(
        &self,
        api: &impl DockerApi,
        agent_image: &str,
        labels: &BTreeMap<String, String>,
    ) -> RuntimeChoice {
        if let Some(choice) = self.runtime_cache.lock().ok().and_then(|c| c.clone()) {
            return choice;
        }
        let egress_image = self.options.egress_image();
        let probe = if crate::image::image_exists(&self.api, egress_image)
            .await
            .unwrap_or(false)
        {
            Some(ProbeImage {
                image: egress_image.to_owned(),
                cmd: vec!["--version".to_owned()],
            })
        } else if crate::image::image_exists(&self.api, agent_image)
            .await
            .unwrap_or(false)
        {
            Some(ProbeImage {
                image: agent_image.to_owned(),
                cmd: vec!["true".to_owned()],
            })
        } else {
            None
        };
        let choice = runtime::detect(
            api,
            probe.as_ref(),
            labels,
            self.forced_runtime.as_deref(),
            self.runtime_verdicts.as_ref(),
        )
        .await;
        if let Ok(mut cache) = self.runtime_cache.lock() {
            *cache = Some(choice.clone());
        }
        choice
    }
}

/// How much of the egress's log teardown reads for the refusal summary: the audit writes a
/// refusal repeated within its window once, so this many lines cover any session's variety.
const AUDIT_TAIL_LINES: u32 = 20_000;

/// Reads the egress's audit log through the engine (before the egress goes) and reports each
/// host it refused ([`Event::Refused`]). Best effort: a bottle whose egress never started, or
/// an engine that does not answer, reports nothing, and teardown goes on.
async fn report_refusals(api: &impl DockerApi, topology: &plan::Topology, events: &dyn EventSink) {
    let Some(egress) = topology.sidecars.iter().find(|s| s.role == Role::Egress) else {
        return;
    };
    match api.logs_tail(&egress.name, AUDIT_TAIL_LINES).await {
        Ok(log) => {
            for refused in bottle_egress::refused_hosts(&log) {
                events.emit(Event::Refused {
                    host: refused.host,
                    count: refused.count,
                    reasons: refused.reasons,
                });
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "no refusal summary: the egress's log is not readable")
        }
    }
}

/// `65532`, `65532:65532` → an owner; names and the empty user → root.
fn owner_of(user: &str) -> FileOwner {
    let mut parts = user.split(':');
    let uid = parts.next().and_then(|u| u.parse().ok());
    let gid = parts.next().and_then(|g| g.parse().ok()).or(uid);
    match (uid, gid) {
        (Some(uid), Some(gid)) => FileOwner { uid, gid },
        _ => FileOwner::ROOT,
    }
}

impl<D: DockerApi + Clone + 'static> BottleBackend for DockerBackend<D> {
    type Plan = DockerPlan;
    type Bottle = DockerBottle<D>;
    type CleanupPlan = DockerCleanupPlan;

    fn name(&self) -> &str {
        BACKEND_NAME
    }

    /// The egress joins `egress.networks`; the git gate serves `git:` entries; supervise is
    /// not here yet.
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with(Feature::EgressNetworks)
            .with(Feature::GitGate)
    }

    async fn resolve_plan(
        &self,
        prepared: PreparedSpec,
        _host: &HostContext,
    ) -> bottle_core::Result<DockerPlan> {
        // The bottle's `image:` (from the user's home, a trusted place) wins over the
        // environment.
        let settings = self
            .images
            .clone()
            .with_manifest(&prepared.agent.bottle.image);
        // First, the one engine call of `prepare`, a read: its runtimes, CPUs and storage. An
        // engine that does not answer fails the prepare, before any state.
        let info = match self.api.engine_info().await {
            Err(
                unreachable @ (DockerError::EngineUnreachable { .. }
                | DockerError::EngineEndpoint { .. }),
            ) => return Err(core_err("reach the engine", unreachable)),
            other => other,
        };
        let runtime = self.planned_runtime(&info);
        let engine = info.ok();
        let recipe = AgentImageRecipe::resolve(&settings)
            .map_err(|e| core_err("read the agent image recipe", e))?;
        let agent_image = recipe.tag();
        let labels = bottle_core::labels::for_bottle(
            &prepared.identity,
            BACKEND_NAME,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let sidecars = bottle_recipe::sidecars(&prepared);
        let topology = plan::plan(
            &prepared,
            &PlanInputs {
                agent_image: &agent_image,
                runtime: runtime.runtime,
                options: &self.options,
                labels: &labels,
                sidecars: &sidecars,
                engine: engine.as_ref(),
            },
        )
        .map_err(|e| core_err("plan the bottle", e))?;
        Ok(DockerPlan {
            endpoint: self.endpoint.clone().filter(|e| !e.is_local_default()),
            prepared,
            recipe,
            agent_image,
            runtime,
            sidecars,
            disk: DiskBound::for_engine(engine.as_ref(), self.options.agent_disk_bytes),
            asked: self.options.agent_limits,
            engine,
            topology,
        })
    }

    async fn launch(
        &self,
        plan: &DockerPlan,
        ctx: &LaunchContext<'_>,
    ) -> bottle_core::Result<DockerBottle<D>> {
        let progress = relay(ctx.events);
        if plan.prepared.resuming {
            self.clear_stale(plan, &progress).await?;
        }
        image::ensure_agent_image(&self.api, &plan.recipe, &progress)
            .await
            .map_err(|e| core_err(format!("build image {}", plan.agent_image), e))?;
        // Each sidecar's image must be here; its user owns the sidecar's files.
        let mut owners = BTreeMap::new();
        for sidecar in &plan.topology.sidecars {
            let hint = self
                .options
                .sidecar_image(sidecar.role)
                .map_or("", |image| image.hint.as_str());
            let info = self
                .api
                .image_info(&sidecar.image)
                .await
                .map_err(|e| core_err(format!("inspect the {} image", sidecar.role), e))?
                .ok_or_else(|| {
                    core_err(
                        format!("find the {} image", sidecar.role),
                        DockerError::ImageMissing {
                            image: sidecar.image.clone(),
                            hint: hint.to_owned(),
                        },
                    )
                })?;
            owners.insert(sidecar.role, owner_of(&info.user));
        }

        // The per-bottle CA and proxy token are minted here, in memory: the CA's key goes only
        // into the egress container and disappears with it; the token goes to the egress and,
        // inside the proxy URL, to the agent, and is never in the plan, a log or the state.
        let material = LaunchMaterial::mint(&plan.prepared, ctx.secrets)
            .map_err(|e| core_err("mint the bottle's CA and proxy token", e.into()))?;
        let files = |role: Role, bottle_networks: &[Cidr]| {
            let owner = owners.get(&role).copied().unwrap_or(FileOwner::ROOT);
            Ok(material.files(&plan.prepared, role, owner, bottle_networks)?)
        };

        let labels = self.launch_labels(&ctx.labels);
        // Everything created from here on carries the identity label; the creates run as
        // tracked tasks so that teardown, after a cancelled launch, waits for them.
        let tracked = Tracked {
            api: &self.api,
            identity: plan.prepared.identity.as_str(),
            inflight: &self.inflight,
        };
        // The gVisor probe creates objects, so it runs here and not in `prepare`.
        let runtime = if plan.runtime.probe_at_launch {
            let choice = self
                .probe_runtime(&tracked, &plan.agent_image, &labels)
                .await;
            progress(Progress::Note {
                message: format!(
                    "agent runtime: {} ({})",
                    choice.runtime.as_str(),
                    choice.reason
                ),
            });
            choice
        } else {
            plan.runtime.clone()
        };
        if let Some(warning) = &runtime.warning {
            ctx.events.emit(Event::Warning {
                message: warning.clone(),
            });
        }
        let inputs = PlanInputs {
            runtime: runtime.runtime,
            ..plan.inputs(&self.options, &labels)
        };
        let topology =
            plan::plan(&plan.prepared, &inputs).map_err(|e| core_err("plan the bottle", e))?;
        let secrets = ctx.secrets;
        let material = &material;
        let value = move |name: &str, source: &EnvValue| -> Option<String> {
            match source {
                EnvValue::Launch(secret) => Some(material.secret(*secret).expose().to_owned()),
                EnvValue::Manifest => secrets
                    .env()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.expose().to_owned()),
                EnvValue::Credential => secrets.token(name).map(|v| v.expose().to_owned()),
                EnvValue::CredentialOf(token_ref) => {
                    secrets.token(token_ref).map(|v| v.expose().to_owned())
                }
                EnvValue::ManifestOf(entry) => secrets
                    .env()
                    .find(|(n, _)| n == entry)
                    .map(|(_, v)| v.expose().to_owned()),
                EnvValue::Fixed(v) => Some(v.clone()),
            }
        };
        let values = LaunchValues {
            value: &value,
            files: &files,
            ready_timeout: self.ready_timeout,
        };
        let launched = launch::launch(&tracked, &topology, &values, &progress)
            .await
            .map_err(|e| core_err(format!("launch bottle {}", plan.prepared.identity), e))?;
        Ok(DockerBottle {
            api: self.api.clone(),
            name: launched.agent,
            sidecars: launched.sidecars,
            ca_pem: material.ca_pem().to_owned(),
            terminal: self.terminal.clone(),
        })
    }

    async fn teardown(&self, plan: &DockerPlan, events: &dyn EventSink) -> bottle_core::Result<()> {
        let progress = relay(events);
        // A launch dropped mid-request (Ctrl-C) leaves creates the engine still completes:
        // listing before they land would miss what they make.
        let identity = plan.prepared.identity.as_str();
        if !self.inflight.settle(identity, SETTLE_TIMEOUT).await {
            events.emit(Event::Warning {
                message: format!(
                    "the engine did not finish creating bottle {identity}'s objects within {} \
                     s; if some appear later, remove them with `claude-bottle cleanup`",
                    SETTLE_TIMEOUT.as_secs()
                ),
            });
        }
        // The egress's audit is read while the bottle's objects are listed; both before
        // anything is removed.
        let failed = |e| core_err(format!("tear down bottle {}", plan.prepared.identity), e);
        let ((), objects) = tokio::join!(
            report_refusals(&self.api, &plan.topology, events),
            launch::objects_of(&self.api, &plan.topology)
        );
        // Each removal is reported as it happens, through the progress relay.
        crate::remove::remove_all(&self.api, objects.map_err(failed)?, &progress)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn prepare_cleanup(&self) -> bottle_core::Result<DockerCleanupPlan> {
        cleanup::plan_cleanup(&self.api, &liveness::check)
            .await
            .map(DockerCleanupPlan)
            .map_err(|e| core_err("look for leftovers", e))
    }

    async fn cleanup(
        &self,
        plan: &DockerCleanupPlan,
        events: &dyn EventSink,
    ) -> bottle_core::Result<()> {
        let progress = relay(events);
        cleanup::cleanup(&self.api, &plan.0, &progress)
            .await
            .map(drop)
            .map_err(|e| core_err("remove leftovers", e))
    }

    async fn list_active(&self) -> bottle_core::Result<Vec<ActiveBottle>> {
        let agents = cleanup::list_active(&self.api)
            .await
            .map_err(|e| core_err("list bottles", e))?;
        Ok(agents
            .into_iter()
            .filter_map(|a| {
                Some(ActiveBottle {
                    backend: BACKEND_NAME.to_owned(),
                    identity: Identity::parse(&a.identity).ok()?,
                    agent: a.agent,
                    started: a
                        .started
                        .as_deref()
                        .and_then(bottle_core::labels::parse_started),
                    state: if a.running {
                        ActiveState::Running
                    } else {
                        ActiveState::Stopped
                    },
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_users_become_archive_owners() {
        assert_eq!(owner_of(""), FileOwner::ROOT);
        assert_eq!(owner_of("root"), FileOwner::ROOT);
        assert_eq!(
            owner_of("65532"),
            FileOwner {
                uid: 65532,
                gid: 65532
            }
        );
        assert_eq!(
            owner_of("1000:2000"),
            FileOwner {
                uid: 1000,
                gid: 2000
            }
        );
    }
}
