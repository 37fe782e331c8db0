//! [`DockerBackend`]: bottle-core's backend contract on a Docker engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bottle_core::{
    ActiveBottle, ActiveState, Bottle, BottleBackend, BottleCleanupPlan, BottlePlan, Capabilities,
    CleanupItem, CleanupSummary, Detail, Event, EventSink, ExecResult, Feature, HostContext,
    Identity, LaunchContext, PlanSummary, PreparedSpec, Step,
};
use bottle_egress::{CaFiles, CertificateAuthority, Cidr, EgressConfig};
use bytes::Bytes;
use serde::Serialize;

use crate::api::{DockerApi, ExecSpec, Interactive, Progress};
use crate::cleanup::{self, CleanupPlan};
use crate::engine::Engine;
use crate::error::DockerError;
use crate::image::{self, AgentImageRecipe, ImageSettings};
use crate::inflight::{InFlight, SETTLE_TIMEOUT, Tracked};
use crate::launch::{self, LaunchValues};
use crate::liveness;
use crate::names::{EGRESS_PORT, Names, label};
use crate::plan::{
    self, AGENT_CA_FILE, AGENT_HOME, AGENT_WORKDIR, DockerOptions, EGRESS_CONFIG_DIR,
    EGRESS_CONFIG_FILE, EnvValue, PlanInputs, Topology,
};
use crate::runtime::{self, ProbeImage, RuntimeChoice};
use crate::tarball::{Owner, TarBuilder};

/// The backend's registry name.
pub const BACKEND_NAME: &str = "docker";

/// Where the prompt file goes in the agent.
pub const PROMPT_FILE: &str = "/home/node/.claude-bottle/prompt.md";

/// The host terminal, as far as an interactive session needs it. Implemented at the CLI edge
/// (e.g. with crossterm) so no terminal library enters this crate.
pub trait TerminalHost: Send + Sync + 'static {
    /// Puts the terminal in raw mode; the returned guard restores it when dropped.
    fn enter_raw(&self) -> std::io::Result<Box<dyn Send>>;
    /// The terminal's size, `(rows, cols)`.
    fn size(&self) -> Option<(u16, u16)>;
}

/// No terminal control: sessions still attach, but the caller's terminal stays as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTerminal;

impl TerminalHost for NoTerminal {
    fn enter_raw(&self) -> std::io::Result<Box<dyn Send>> {
        Ok(Box::new(()))
    }
    fn size(&self) -> Option<(u16, u16)> {
        None
    }
}

fn core_err(action: impl Into<String>, err: DockerError) -> bottle_core::Error {
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
                    plan::proxy_url()
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

/// A running Docker bottle.
pub struct DockerBottle<D: DockerApi + Clone + 'static = Engine> {
    api: D,
    name: String,
    egress: String,
    ca_pem: String,
    terminal: Arc<dyn TerminalHost>,
    closed: AtomicBool,
}

impl<D: DockerApi + Clone + 'static> std::fmt::Debug for DockerBottle<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBottle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<D: DockerApi + Clone + 'static> DockerBottle<D> {
    /// The per-bottle CA certificate (public), PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn node(&self, cmd: Vec<String>) -> ExecSpec {
        ExecSpec {
            cmd,
            user: Some("node".to_owned()),
            working_dir: Some(AGENT_WORKDIR.to_owned()),
            env: Vec::new(),
        }
    }

    async fn attached(&self, cmd: Vec<String>, tty: bool) -> bottle_core::Result<i32> {
        let spec = self.node(cmd);
        let _raw = if tty {
            Some(
                self.terminal
                    .enter_raw()
                    .map_err(|e| bottle_core::Error::backend(BACKEND_NAME, "enter raw mode", e))?,
            )
        } else {
            None
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let watcher = if tty {
            let terminal = self.terminal.clone();
            Some(tokio::spawn(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let Ok(mut winch) = signal(SignalKind::window_change()) else {
                        return;
                    };
                    while winch.recv().await.is_some() {
                        if let Some(size) = terminal.size()
                            && tx.send(size).await.is_err()
                        {
                            return;
                        }
                    }
                }
                #[cfg(not(unix))]
                drop((terminal, tx));
            }))
        } else {
            None
        };
        let io = Interactive {
            tty,
            stdin: Some(Box::pin(tokio::io::stdin())),
            stdout: Box::pin(tokio::io::stdout()),
            stderr: Box::pin(tokio::io::stderr()),
            size: if tty { self.terminal.size() } else { None },
            resize: tty.then_some(rx),
        };
        let result = self.api.exec_interactive(&self.name, &spec, io).await;
        if let Some(w) = watcher {
            w.abort();
        }
        let code = result.map_err(|e| core_err(format!("run a session in {}", self.name), e))?;
        if code != 0 {
            self.check_egress().await?;
        }
        Ok(i32::try_from(code).unwrap_or(1))
    }

    /// After a failed session: if the egress died, that is what the user needs to hear (the
    /// agent had no network from that moment on), not the session's own exit code.
    async fn check_egress(&self) -> bottle_core::Result<()> {
        let Ok(Some(info)) = self.api.inspect_container(&self.egress).await else {
            return Ok(());
        };
        if info.running {
            return Ok(());
        }
        let log = self
            .api
            .logs_tail(&self.egress, 20)
            .await
            .unwrap_or_default();
        Err(core_err(
            format!("run a session in {}", self.name),
            DockerError::EgressNotReady {
                container: self.egress.clone(),
                detail: format!(
                    "it stopped (exit code {}) during the session, which cut the bottle off \
                     from the network; its log ends with:\n{}",
                    info.exit_code.unwrap_or(-1),
                    log.trim_end()
                ),
            },
        ))
    }
}

impl<D: DockerApi + Clone + 'static> Bottle for DockerBottle<D> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec_claude(&self, argv: &[String], tty: bool) -> bottle_core::Result<i32> {
        let mut cmd = vec!["claude".to_owned()];
        cmd.extend(argv.iter().cloned());
        self.attached(cmd, tty).await
    }

    async fn exec_attached(&self, script: &str, tty: bool) -> bottle_core::Result<i32> {
        self.attached(vec!["sh".into(), "-c".into(), script.to_owned()], tty)
            .await
    }

    async fn exec(&self, script: &str) -> bottle_core::Result<ExecResult> {
        let spec = self.node(vec!["sh".into(), "-c".into(), script.to_owned()]);
        let out = self
            .api
            .exec(&self.name, &spec, None)
            .await
            .map_err(|e| core_err(format!("exec in {}", self.name), e))?;
        Ok(ExecResult {
            exit_code: i32::try_from(out.exit_code).unwrap_or(1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn cp_in(&self, host_path: &Path, bottle_path: &str) -> bottle_core::Result<()> {
        let target = Path::new(bottle_path);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(core_err(
                format!("copy into {bottle_path}"),
                DockerError::InvalidSetting {
                    name: "bottle path".to_owned(),
                    value: bottle_path.to_owned(),
                    hint: "give an absolute path with a file name".to_owned(),
                },
            ));
        };
        let name = name.to_string_lossy();
        let mut tar = TarBuilder::new(host_path);
        let meta = std::fs::metadata(host_path).map_err(|source| {
            core_err(
                format!("copy {}", host_path.display()),
                DockerError::HostFile {
                    path: host_path.to_path_buf(),
                    source,
                },
            )
        })?;
        let packed = if meta.is_dir() {
            tar.host_tree(host_path, &name, Owner::NODE).map(drop)
        } else {
            std::fs::read(host_path)
                .map_err(|source| DockerError::HostFile {
                    path: host_path.to_path_buf(),
                    source,
                })
                .and_then(|data| tar.file(&name, &data, 0o644, Owner::NODE).map(drop))
        };
        let action = format!("copy {} into {bottle_path}", host_path.display());
        packed.map_err(|e| core_err(action.clone(), e))?;
        let bytes = tar.finish().map_err(|e| core_err(action.clone(), e))?;
        self.api
            .upload(&self.name, &parent.to_string_lossy(), bytes)
            .await
            .map_err(|e| core_err(action, e))
    }

    async fn close(&self) -> bottle_core::Result<()> {
        // Teardown removes the containers; closing only marks the handle spent.
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// The egress's files: config, CA and trust roots, as a tar to extract in `/etc`. The key is
/// readable by the egress's user only.
fn egress_files(
    prepared: &PreparedSpec,
    ca: &CertificateAuthority,
    owner: Owner,
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
fn owner_of(user: &str) -> Owner {
    let mut parts = user.split(':');
    let uid = parts.next().and_then(|u| u.parse().ok());
    let gid = parts.next().and_then(|g| g.parse().ok()).or(uid);
    match (uid, gid) {
        (Some(uid), Some(gid)) => Owner { uid, gid },
        _ => Owner::ROOT,
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
            closed: AtomicBool::new(false),
        })
    }

    async fn provision_ca(
        &self,
        _plan: &DockerPlan,
        bottle: &DockerBottle<D>,
        _ctx: &LaunchContext<'_>,
    ) -> bottle_core::Result<()> {
        let pem = bottle.ca_pem.as_bytes();
        let ca_dir = Path::new(AGENT_CA_FILE)
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "claude-bottle".to_owned());
        let action = "install the bottle CA";
        let mut own = TarBuilder::new("bottle CA");
        own.dir(&ca_dir, 0o755, Owner::ROOT)
            .and_then(|t| t.file(&format!("{ca_dir}/ca.pem"), pem, 0o644, Owner::ROOT))
            .map_err(|e| core_err(action, e))?;
        let own = own.finish().map_err(|e| core_err(action, e))?;
        self.api
            .upload(&bottle.name, "/etc", own)
            .await
            .map_err(|e| core_err(action, e))?;
        let mut system = TarBuilder::new("bottle CA");
        system
            .file("claude-bottle.crt", pem, 0o644, Owner::ROOT)
            .map_err(|e| core_err(action, e))?;
        let system = system.finish().map_err(|e| core_err(action, e))?;
        self.api
            .upload(&bottle.name, "/usr/local/share/ca-certificates", system)
            .await
            .map_err(|e| core_err(action, e))?;
        // As root, on root-owned files: no capability needed. Without Debian's tool (another
        // base), append to the bundle directly.
        let script = format!(
            "set -e; if command -v update-ca-certificates >/dev/null 2>&1; then \
             update-ca-certificates >/dev/null 2>&1; else cat {AGENT_CA_FILE} >> \
             {bundle}; fi; grep -q \"$(sed -n 2p {AGENT_CA_FILE})\" {bundle}",
            bundle = plan::AGENT_CA_BUNDLE
        );
        let out = self
            .api
            .exec(
                &bottle.name,
                &ExecSpec {
                    cmd: vec!["sh".into(), "-c".into(), script],
                    user: Some("0".to_owned()),
                    working_dir: Some("/".to_owned()),
                    env: Vec::new(),
                },
                None,
            )
            .await
            .map_err(|e| core_err(action, e))?;
        if out.exit_code != 0 {
            return Err(core_err(
                action,
                DockerError::Engine {
                    operation: "update the trust store in",
                    object: bottle.name.clone(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                },
            ));
        }
        Ok(())
    }

    async fn provision_prompt(
        &self,
        plan: &DockerPlan,
        bottle: &DockerBottle<D>,
        _ctx: &LaunchContext<'_>,
    ) -> bottle_core::Result<Option<String>> {
        let prompt = &plan.prepared.agent.prompt;
        if prompt.trim().is_empty() {
            return Ok(None);
        }
        let action = "copy the prompt";
        let relative = PROMPT_FILE
            .strip_prefix(&format!("{AGENT_HOME}/"))
            .unwrap_or(PROMPT_FILE);
        let dir = Path::new(relative)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tar = TarBuilder::new("prompt");
        tar.dir(&dir, 0o755, Owner::NODE)
            .and_then(|t| t.file(relative, prompt.as_bytes(), 0o644, Owner::NODE))
            .map_err(|e| core_err(action, e))?;
        let bytes = tar.finish().map_err(|e| core_err(action, e))?;
        self.api
            .upload(&bottle.name, AGENT_HOME, bytes)
            .await
            .map_err(|e| core_err(action, e))?;
        Ok(Some(PROMPT_FILE.to_owned()))
    }

    async fn provision_skills(
        &self,
        plan: &DockerPlan,
        bottle: &DockerBottle<D>,
        _ctx: &LaunchContext<'_>,
    ) -> bottle_core::Result<()> {
        if plan.prepared.skills.is_empty() {
            return Ok(());
        }
        let action = "copy the skills";
        let mut tar = TarBuilder::new("skills");
        tar.dir(".claude", 0o755, Owner::NODE)
            .and_then(|t| t.dir(".claude/skills", 0o755, Owner::NODE))
            .map_err(|e| core_err(action, e))?;
        for skill in &plan.prepared.skills {
            tar.host_tree(
                &skill.host_dir,
                &format!(".claude/skills/{}", skill.name),
                Owner::NODE,
            )
            .map_err(|e| core_err(format!("copy skill {}", skill.name), e))?;
        }
        let bytes = tar.finish().map_err(|e| core_err(action, e))?;
        self.api
            .upload(&bottle.name, AGENT_HOME, bytes)
            .await
            .map_err(|e| core_err(action, e))
    }

    async fn copy_workdir(
        &self,
        plan: &DockerPlan,
        bottle: &DockerBottle<D>,
        _ctx: &LaunchContext<'_>,
    ) -> bottle_core::Result<()> {
        if !plan.prepared.copy_cwd {
            return Ok(());
        }
        let cwd = &plan.prepared.user_cwd;
        let action = format!("copy {} into the bottle", cwd.display());
        let workdir = Path::new(AGENT_WORKDIR);
        let name = workdir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workspace".to_owned());
        let parent = workdir
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| AGENT_HOME.to_owned());
        // The working tree with its .git, owned by the agent user.
        let mut tar = TarBuilder::new(cwd);
        tar.host_tree(cwd, &name, Owner::NODE)
            .map_err(|e| core_err(action.clone(), e))?;
        let bytes = tar.finish().map_err(|e| core_err(action.clone(), e))?;
        self.api
            .upload(&bottle.name, &parent, bytes)
            .await
            .map_err(|e| core_err(action, e))
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
        assert_eq!(owner_of(""), Owner::ROOT);
        assert_eq!(owner_of("root"), Owner::ROOT);
        assert_eq!(
            owner_of("65532"),
            Owner {
                uid: 65532,
                gid: 65532
            }
        );
        assert_eq!(
            owner_of("1000:2000"),
            Owner {
                uid: 1000,
                gid: 2000
            }
        );
    }
}
