//! [`DockerBackend`]: bottle-core's backend contract on a Docker engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bottle_core::{
    ActiveBottle, ActiveState, BottleBackend, BottleCleanupPlan, BottlePlan, Capabilities,
    CleanupItem, CleanupSummary, Detail, Event, EventSink, Feature, FileOwner, HostContext,
    Identity, LaunchContext, NoTerminal, PlanSummary, PreparedSpec, Step, TerminalHost,
};
use bottle_egress::{CaFiles, CertificateAuthority, Cidr, EgressConfig};
use bytes::Bytes;
use serde::Serialize;

use crate::api::{DockerApi, Progress};
use crate::bottle::DockerBottle;
use crate::cleanup::{self, CleanupPlan};
use crate::engine::Engine;
use crate::error::DockerError;
use crate::image::{self, AgentImageRecipe, ImageSettings};
use crate::inflight::{InFlight, SETTLE_TIMEOUT, Tracked};
use crate::launch::{self, LaunchValues};
use crate::liveness;
use crate::names::{EGRESS_PORT, Names, label};
use crate::plan::{
    self, DockerOptions, EGRESS_CONFIG_DIR, EGRESS_CONFIG_FILE, EnvValue, PlanInputs, Topology,
};
use crate::runtime::{self, ProbeImage, RuntimeChoice};
use crate::tarball::TarBuilder;

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
        Progress::Launch { step } => events.emit(Event::Progress {
            step: Step::Launch,
            message: step,
            current: None,
            total: None,
        }),
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
    terminal: Arc<dyn TerminalHost>,
    egress_timeout: Duration,
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
        Ok(
            DockerBackend::new(engine, options, ImageSettings::from_env())
                .with_forced_runtime(std::env::var(runtime::RUNTIME_ENV).ok()),
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
            terminal: Arc::new(NoTerminal),
            egress_timeout: Duration::from_secs(30),
            inflight: InFlight::default(),
        }
    }

    /// Uses `terminal` for raw mode and window sizes in TTY sessions.
    pub fn with_terminal(mut self, terminal: Arc<dyn TerminalHost>) -> Self {
        self.terminal = terminal;
        self
    }

    /// Forces a runtime: `runc` skips the gVisor probe, so `prepare` does not contact the
    /// engine at all (what a `--dry-run` wants).
    pub fn with_forced_runtime(mut self, runtime: Option<String>) -> Self {
        self.forced_runtime = runtime.filter(|r| !r.is_empty());
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
        launch::teardown(&self.api, identity, progress)
            .await
            .map(drop)
            .map_err(|e| core_err(action, e))
    }

    /// The runtime as `prepare` may know it: a probe result from earlier in this process, else
    /// what the engine's registered runtimes say (read-only; see [`runtime::registered`]).
    async fn planned_runtime(&self) -> RuntimeChoice {
        if let Some(choice) = self.runtime_cache.lock().ok().and_then(|c| c.clone()) {
            return choice;
        }
        runtime::registered(&self.api, self.forced_runtime.as_deref()).await
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
        let probe = if crate::image::image_exists(&self.api, &self.options.egress_image)
            .await
            .unwrap_or(false)
        {
            Some(ProbeImage {
                image: self.options.egress_image.clone(),
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
        let choice =
            runtime::detect(api, probe.as_ref(), labels, self.forced_runtime.as_deref()).await;
        if let Ok(mut cache) = self.runtime_cache.lock() {
            *cache = Some(choice.clone());
        }
        choice
    }
}

/// A Docker bottle's plan.
#[derive(Debug, Clone)]
pub struct DockerPlan {
    prepared: PreparedSpec,
    recipe: AgentImageRecipe,
    agent_image: String,
    runtime: RuntimeChoice,
    topology: Topology,
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

    fn inputs<'a>(
        &'a self,
        options: &'a DockerOptions,
        labels: &'a BTreeMap<String, String>,
    ) -> PlanInputs<'a> {
        PlanInputs {
            agent_image: &self.agent_image,
            runtime: self.runtime.runtime,
            options,
            labels,
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
        let mut details = vec![
            Detail {
                label: "runtime".to_owned(),
                value: self.runtime.reason.clone(),
            },
            Detail {
                label: "agent".to_owned(),
                value: format!(
                    "{} on {} only, as node, no capabilities, {} MiB, {} processes",
                    t.agent.name,
                    t.networks[0].name,
                    t.agent.limits.memory_bytes >> 20,
                    t.agent.limits.pids
                ),
            },
            Detail {
                label: "egress".to_owned(),
                value: format!(
                    "{} ({}), proxy {}",
                    t.egress.name,
                    t.egress.image,
                    bottle_core::agent::proxy_url()
                ),
            },
        ];
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
                    kind: l.kind.to_owned(),
                    name: l.name.clone(),
                    identity: l.identity.as_deref().and_then(|i| Identity::parse(i).ok()),
                })
                .collect(),
        }
    }
}

/// The egress's files: config, CA and trust roots, as a tar to extract in `/etc`. The key is
/// readable by the egress's user only.
fn egress_files(
    prepared: &PreparedSpec,
    ca: &CertificateAuthority,
    owner: FileOwner,
    clients: &[Cidr],
) -> crate::Result<Bytes> {
    let egress = &prepared.agent.bottle.egress;
    let dir = EGRESS_CONFIG_DIR
        .strip_prefix(plan::EGRESS_FILES_PARENT)
        .unwrap_or(EGRESS_CONFIG_DIR)
        .trim_start_matches('/');
    let mut trust = Vec::new();
    let mut tar = TarBuilder::new("egress files");
    tar.dir(dir, 0o755, owner)?;
    for (i, path) in egress.trust.iter().enumerate() {
        let pem = std::fs::read(path).map_err(|source| DockerError::HostFile {
            path: path.clone(),
            source,
        })?;
        let name = format!("trust-{i}.pem");
        tar.file(&format!("{dir}/{name}"), &pem, 0o444, owner)?;
        trust.push(Path::new(EGRESS_CONFIG_DIR).join(name));
    }
    let config = EgressConfig {
        listen: std::net::SocketAddr::from(([0, 0, 0, 0], EGRESS_PORT)),
        ca: Some(CaFiles {
            cert: Path::new(EGRESS_CONFIG_DIR).join("ca.crt"),
            key: Path::new(EGRESS_CONFIG_DIR).join("ca.key"),
        }),
        log: egress.log,
        trust,
        // Only the bottle's own networks (see `launch::egress_clients`): other containers on
        // the networks the egress joins must not borrow its routes and their credentials.
        clients: Some(clients.to_vec()),
        routes: egress.routes.clone(),
    };
    // JSON is YAML: the egress's YAML loader reads it, and no YAML writer is needed.
    let json = serde_json::to_vec_pretty(&config).map_err(|e| DockerError::Pack {
        path: EGRESS_CONFIG_FILE.into(),
        source: std::io::Error::other(e),
    })?;
    tar.file(&format!("{dir}/config.json"), &json, 0o444, owner)?;
    tar.file(
        &format!("{dir}/ca.crt"),
        ca.cert_pem().as_bytes(),
        0o444,
        owner,
    )?;
    tar.file(
        &format!("{dir}/ca.key"),
        ca.key_pem().as_bytes(),
        0o400,
        owner,
    )?;
    tar.finish()
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

    /// The egress joins `egress.networks`; the git gate and supervise are not here yet.
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with(Feature::EgressNetworks)
    }

    async fn resolve_plan(
        &self,
        prepared: PreparedSpec,
        _host: &HostContext,
    ) -> bottle_core::Result<DockerPlan> {
        Names::new(prepared.identity.as_str()).map_err(|e| core_err("name the bottle", e))?;
        // The bottle's `image:` (from the user's home, a trusted place) wins over the
        // environment.
        let settings = self
            .images
            .clone()
            .with_manifest(&prepared.agent.bottle.image);
        let recipe = AgentImageRecipe::resolve(&settings)
            .map_err(|e| core_err("read the agent image recipe", e))?;
        let agent_image = recipe.tag();
        let runtime = self.planned_runtime().await;
        let labels = bottle_core::labels::for_bottle(
            &prepared.identity,
            BACKEND_NAME,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let topology = plan::plan(
            &prepared,
            &PlanInputs {
                agent_image: &agent_image,
                runtime: runtime.runtime,
                options: &self.options,
                labels: &labels,
            },
        )
        .map_err(|e| core_err("plan the bottle", e))?;
        Ok(DockerPlan {
            prepared,
            recipe,
            agent_image,
            runtime,
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
        let egress_image = self
            .api
            .image_info(&self.options.egress_image)
            .await
            .map_err(|e| core_err("inspect the egress image", e))?
            .ok_or_else(|| {
                core_err(
                    "find the egress image",
                    DockerError::ImageMissing {
                        image: self.options.egress_image.clone(),
                        hint: "build it with `cargo xtask images egress` (or `docker build -f \
                               Dockerfile.egress` with the static bottle-egress binary), or set \
                               CLAUDE_BOTTLE_EGRESS_IMAGE"
                            .to_owned(),
                    },
                )
            })?;

        // The per-bottle CA is minted here, in memory; its key goes only into the egress
        // container and disappears with it.
        let ca = CertificateAuthority::generate_named(
            &format!("claude-bottle {}", plan.prepared.identity),
            bottle_egress::DEFAULT_CA_VALIDITY,
        )
        .map_err(|e| bottle_core::Error::backend(BACKEND_NAME, "mint the bottle CA", e))?;
        let egress_owner = owner_of(&egress_image.user);
        let files = |clients: &[Cidr]| egress_files(&plan.prepared, &ca, egress_owner, clients);

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
            progress(Progress::Launch {
                step: format!(
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
        let value = move |name: &str, source: &EnvValue| -> Option<String> {
            match source {
                EnvValue::Manifest => secrets
                    .env()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.expose().to_owned()),
                EnvValue::Credential => secrets.token(name).map(|v| v.expose().to_owned()),
                EnvValue::Fixed(v) => Some(v.clone()),
            }
        };
        let values = LaunchValues {
            value: &value,
            egress_files: &files,
            egress_timeout: self.egress_timeout,
        };
        let launched = launch::launch(&tracked, &topology, &values, &progress)
            .await
            .map_err(|e| core_err(format!("launch bottle {}", plan.prepared.identity), e))?;
        Ok(DockerBottle {
            api: self.api.clone(),
            name: launched.agent,
            egress: topology.egress.name.clone(),
            ca_pem: ca.cert_pem().to_owned(),
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
        let removed = launch::teardown(&self.api, plan.prepared.identity.as_str(), &progress)
            .await
            .map_err(|e| core_err(format!("tear down bottle {}", plan.prepared.identity), e))?;
        for r in removed {
            events.emit(Event::Removed {
                kind: r.kind.to_owned(),
                name: r.name,
            });
        }
        Ok(())
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
        let progress = |_: Progress| {};
        let removed = cleanup::cleanup(&self.api, &plan.0, &progress)
            .await
            .map_err(|e| core_err("remove leftovers", e))?;
        for r in removed {
            events.emit(Event::Removed {
                kind: r.kind.to_owned(),
                name: r.name,
            });
        }
        Ok(())
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
