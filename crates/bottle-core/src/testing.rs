//! A recording fake backend (feature `testing`): it creates nothing, records every call it
//! receives, and keeps a pretend set of labelled resources so tests can check that teardown and
//! cleanup leave nothing behind. Failures and hangs can be injected at any step.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bottle_core::testing::{Call, FakeBackend};
//! use bottle_core::BottleBackend;
//!
//! let fake = FakeBackend::new();
//! let plan = fake.prepare_cleanup().await.unwrap();
//! assert!(bottle_core::BottleCleanupPlan::is_empty(&plan));
//! assert_eq!(fake.calls(), vec![Call::PrepareCleanup]);
//! # });
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::Notify;

use crate::backend::{
    Bottle, BottleBackend, BottleFile, CopiedOut, ExecResult, ExecUser, FileContents, HostTree,
    LaunchContext,
};
use crate::capability::Capabilities;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Step};
use crate::host::HostContext;
use crate::identity::Identity;
use crate::labels;
use crate::plan::{
    ActiveBottle, ActiveState, BottleCleanupPlan, BottlePlan, CleanupItem, CleanupSummary,
    PlanSummary, PreparedSpec,
};
use crate::provision;

/// The fake's registry name.
pub const FAKE_BACKEND: &str = "fake";
/// The per-bottle CA certificate the fake's bottles report ([`Bottle::ca_pem`]).
pub const FAKE_CA_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nZmFrZSBib3R0bGUgQ0E=\n-----END CERTIFICATE-----\n";

/// One call the fake received, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum Call {
    /// `resolve_plan` (after the common checks passed).
    ResolvePlan {
        /// The bottle.
        identity: String,
    },
    /// `launch`.
    Launch {
        /// The bottle.
        identity: String,
        /// The labels it was asked to apply.
        labels: BTreeMap<String, String>,
        /// Names of the env values it received (never values).
        env: Vec<String>,
    },
    /// `provision_ca`.
    ProvisionCa,
    /// `provision_prompt`.
    ProvisionPrompt,
    /// `provision_skills`.
    ProvisionSkills,
    /// `copy_workdir`.
    CopyWorkdir,
    /// `provision_git`.
    ProvisionGit,
    /// `provision_supervise`.
    ProvisionSupervise,
    /// `Bottle::exec_claude`.
    ExecClaude {
        /// The argv after `claude`.
        argv: Vec<String>,
        /// With a terminal.
        tty: bool,
    },
    /// `Bottle::exec_attached`.
    ExecAttached {
        /// The script.
        script: String,
        /// With a terminal.
        tty: bool,
    },
    /// `Bottle::exec`.
    Exec {
        /// Who it ran as.
        user: ExecUser,
        /// The script.
        script: String,
    },
    /// `Bottle::write_files`.
    WriteFiles {
        /// Each file as `path mode uid:gid` (directories end in `/`), never its contents.
        files: Vec<String>,
    },
    /// `Bottle::cp_in`.
    CpIn {
        /// Host side.
        host_path: PathBuf,
        /// Bottle side.
        bottle_path: String,
        /// The files copied with other bytes than the host's, and those bytes (lossy UTF-8).
        replaced: Vec<(PathBuf, String)>,
    },
    /// `Bottle::cp_out`.
    CpOut {
        /// The folder in the bottle.
        bottle_path: String,
        /// The most it could write.
        limit: u64,
    },
    /// `Bottle::cp_in_archive`.
    CpInArchive {
        /// What the archive held (the fake's archives are a line of text naming their folder).
        archive: String,
        /// Where it was extracted.
        bottle_dir: String,
    },
    /// The first `Bottle::close` (later ones do nothing and are not recorded).
    Close {
        /// The bottle's name.
        name: String,
    },
    /// `teardown`.
    Teardown {
        /// The bottle.
        identity: String,
        /// The resources it removed.
        removed: Vec<String>,
    },
    /// `prepare_cleanup`.
    PrepareCleanup,
    /// `cleanup`.
    Cleanup {
        /// The resources it removed (already-gone ones are skipped).
        removed: Vec<String>,
    },
    /// `list_active`.
    ListActive,
}

#[derive(Debug)]
struct Config {
    fail_at: Option<Step>,
    hang_at: Option<Step>,
    pause_at: Option<Step>,
    exit_code: i32,
    capabilities: Capabilities,
    /// `(host, count, reasons)` the teardown reports as refused.
    refusals: Vec<(String, u64, Vec<String>)>,
    /// Folders whose `cp_out` reaches the limit.
    too_large: Vec<String>,
    /// Folders `cp_out` does not find.
    missing: Vec<String>,
    /// `(script, stdout)`: what `exec` prints for a script.
    exec_stdout: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fail_at: None,
            hang_at: None,
            pause_at: None,
            exit_code: 0,
            // A complete backend unless a test says otherwise.
            capabilities: Capabilities::all(),
            refusals: Vec::new(),
            too_large: Vec::new(),
            missing: Vec::new(),
            exec_stdout: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Resource {
    kind: &'static str,
    identity: Identity,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Inner {
    calls: Mutex<Vec<Call>>,
    resources: Mutex<BTreeMap<String, Resource>>,
    config: Mutex<Config>,
    reached: Notify,
    paused: Notify,
    resume: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the record from the assertions that follow.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recording fake backend. Cheap to clone; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    inner: Arc<Inner>,
}

impl FakeBackend {
    /// A fake where every step succeeds and sessions exit 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `step` fail with a backend error. [`Step::Launch`] fails after creating the
    /// bottle's network, as a real launch failing half way would.
    pub fn fail_at(self, step: Step) -> Self {
        lock(&self.inner.config).fail_at = Some(step);
        self
    }

    /// Makes `step` never finish (for signal tests); [`FakeBackend::reached`] resolves when it
    /// is entered.
    pub fn hang_at(self, step: Step) -> Self {
        lock(&self.inner.config).hang_at = Some(step);
        self
    }

    /// Makes `step`, once entered, wait for [`FakeBackend::resume`] (for tests that act while
    /// a step is under way, such as a second signal during teardown);
    /// [`FakeBackend::paused`] resolves when it is entered.
    pub fn pause_at(self, step: Step) -> Self {
        lock(&self.inner.config).pause_at = Some(step);
        self
    }

    /// Resolves once a [`pause_at`](FakeBackend::pause_at) step has been entered.
    pub async fn paused(&self) {
        self.inner.paused.notified().await;
    }

    /// Lets a paused step go on.
    pub fn resume(&self) {
        self.inner.resume.notify_one();
    }

    /// Declares only `capabilities` as implemented (default: every optional feature), to test
    /// how a bottle asking for more is shown and refused.
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        lock(&self.inner.config).capabilities = capabilities;
        self
    }

    /// Makes teardown report `host` as refused `count` times for `reasons`, as a backend
    /// whose egress refused it would.
    pub fn refused(self, host: &str, count: u64, reasons: &[&str]) -> Self {
        lock(&self.inner.config).refusals.push((
            host.to_owned(),
            count,
            reasons.iter().map(|r| (*r).to_owned()).collect(),
        ));
        self
    }

    /// Makes `cp_out` of the folder `bottle_path` reach the save limit.
    pub fn too_large(self, bottle_path: &str) -> Self {
        lock(&self.inner.config)
            .too_large
            .push(bottle_path.to_owned());
        self
    }

    /// Makes `cp_out` of the folder `bottle_path` find nothing.
    pub fn missing(self, bottle_path: &str) -> Self {
        lock(&self.inner.config)
            .missing
            .push(bottle_path.to_owned());
        self
    }

    /// Makes `Bottle::exec` of exactly `script` print `stdout`.
    pub fn exec_prints(self, script: &str, stdout: &str) -> Self {
        lock(&self.inner.config)
            .exec_stdout
            .push((script.to_owned(), stdout.to_owned()));
        self
    }

    /// The text of the archives the fake writes for the folder `bottle_path`.
    pub fn archive_text(bottle_path: &str) -> String {
        format!("fake archive of {bottle_path}\n")
    }

    /// The exit code sessions return.
    pub fn exit_code(self, code: i32) -> Self {
        lock(&self.inner.config).exit_code = code;
        self
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    /// The names of the pretend resources that exist now.
    pub fn resources(&self) -> Vec<String> {
        lock(&self.inner.resources).keys().cloned().collect()
    }

    /// The labels of a pretend resource.
    pub fn labels_of(&self, resource: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.inner.resources)
            .get(resource)
            .map(|r| r.labels.clone())
    }

    /// Leaves the resources of `identity` as a SIGKILLed launch would: a network and a
    /// container, labelled, with no session to tear them down.
    pub fn leave_behind(&self, identity: &Identity) {
        let labels = labels::for_bottle(identity, FAKE_BACKEND, time::OffsetDateTime::UNIX_EPOCH);
        self.create(
            "network",
            &format!("claude-bottle-net-{identity}"),
            identity,
            &labels,
        );
        self.create(
            "container",
            &format!("claude-bottle-{identity}"),
            identity,
            &labels,
        );
    }

    /// Resolves once a [`hang_at`](FakeBackend::hang_at) step has been entered.
    pub async fn reached(&self) {
        self.inner.reached.notified().await;
    }

    fn record(&self, call: Call) {
        lock(&self.inner.calls).push(call);
    }

    fn create(
        &self,
        kind: &'static str,
        name: &str,
        identity: &Identity,
        labels: &BTreeMap<String, String>,
    ) {
        lock(&self.inner.resources).insert(
            name.to_owned(),
            Resource {
                kind,
                identity: identity.clone(),
                labels: labels.clone(),
            },
        );
    }

    /// Records `call`, then fails or hangs if `step` was configured to.
    async fn step(&self, step: Step, call: Option<Call>) -> Result<()> {
        if let Some(call) = call {
            self.record(call);
        }
        let (fail, hang, pause) = {
            let config = lock(&self.inner.config);
            (
                config.fail_at == Some(step),
                config.hang_at == Some(step),
                config.pause_at == Some(step),
            )
        };
        if pause {
            // Both stored as permits: the order of `paused()`, `resume()` and this wait does
            // not matter.
            self.inner.paused.notify_one();
            self.inner.resume.notified().await;
        }
        if hang {
            // `notify_one` stores a permit, so a `reached()` that starts later still wakes.
            self.inner.reached.notify_one();
            std::future::pending::<()>().await;
        }
        if fail {
            return Err(Error::backend(
                FAKE_BACKEND,
                step.as_str(),
                format!("injected failure at {step}"),
            ));
        }
        Ok(())
    }
}

fn removal_rank(kind: &str) -> u8 {
    match kind {
        "network" => 1,
        _ => 0,
    }
}

/// The fake's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePlan {
    /// The common part.
    pub prepared: PreparedSpec,
}

impl BottlePlan for FakePlan {
    fn prepared(&self) -> &PreparedSpec {
        &self.prepared
    }

    fn summary(&self) -> PlanSummary {
        let mut summary = PlanSummary::from_prepared(&self.prepared);
        summary.runtime = "fake".to_owned();
        summary.image = "fake:latest".to_owned();
        summary
    }

    fn image(&self) -> Option<String> {
        Some("fake:latest".to_owned())
    }
}

/// The fake's cleanup plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCleanupPlan {
    items: Vec<CleanupItem>,
}

impl BottleCleanupPlan for FakeCleanupPlan {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn summary(&self) -> CleanupSummary {
        CleanupSummary {
            backend: FAKE_BACKEND.to_owned(),
            items: self.items.clone(),
        }
    }
}

/// The fake's bottle handle.
#[derive(Debug)]
pub struct FakeBottle {
    backend: FakeBackend,
    name: String,
    closed: AtomicBool,
}

impl Bottle for FakeBottle {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec_claude(&self, argv: &[String], tty: bool) -> Result<i32> {
        let call = Call::ExecClaude {
            argv: argv.to_vec(),
            tty,
        };
        self.backend.step(Step::Session, Some(call)).await?;
        Ok(lock(&self.backend.inner.config).exit_code)
    }

    async fn exec_attached(&self, script: &str, tty: bool) -> Result<i32> {
        let call = Call::ExecAttached {
            script: script.to_owned(),
            tty,
        };
        self.backend.step(Step::Session, Some(call)).await?;
        Ok(lock(&self.backend.inner.config).exit_code)
    }

    async fn exec(&self, user: ExecUser, script: &str) -> Result<ExecResult> {
        self.backend.record(Call::Exec {
            user,
            script: script.to_owned(),
        });
        let stdout = lock(&self.backend.inner.config)
            .exec_stdout
            .iter()
            .find(|(s, _)| s == script)
            .map(|(_, out)| out.clone())
            .unwrap_or_default();
        Ok(ExecResult {
            exit_code: 0,
            stdout,
            stderr: String::new(),
        })
    }

    async fn cp_out(
        &self,
        bottle_path: &str,
        mut to: std::fs::File,
        limit: u64,
    ) -> Result<CopiedOut> {
        let call = Call::CpOut {
            bottle_path: bottle_path.to_owned(),
            limit,
        };
        self.backend.step(Step::Save, Some(call)).await?;
        let (too_large, missing) = {
            let config = lock(&self.backend.inner.config);
            (
                config.too_large.iter().any(|p| p == bottle_path),
                config.missing.iter().any(|p| p == bottle_path),
            )
        };
        if missing {
            return Ok(CopiedOut::Missing);
        }
        let text = FakeBackend::archive_text(bottle_path);
        let io_err = |e: std::io::Error| Error::backend(FAKE_BACKEND, "save", e);
        if too_large {
            // Written up to the limit, as a real copy stopped at it would be.
            std::io::Write::write_all(&mut to, text.as_bytes()).map_err(io_err)?;
            return Ok(CopiedOut::TooLarge);
        }
        std::io::Write::write_all(&mut to, text.as_bytes()).map_err(io_err)?;
        Ok(CopiedOut::Copied {
            bytes: text.len() as u64,
            skipped: 0,
        })
    }

    async fn cp_in_archive(&self, mut archive: std::fs::File, bottle_dir: &str) -> Result<()> {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive, &mut text)
            .map_err(|e| Error::backend(FAKE_BACKEND, "restore", e))?;
        let call = Call::CpInArchive {
            archive: text,
            bottle_dir: bottle_dir.to_owned(),
        };
        self.backend.step(Step::Restore, Some(call)).await
    }

    async fn write_files(&self, files: &[BottleFile]) -> Result<()> {
        let files = files
            .iter()
            .map(|f| {
                let slash = if f.contents == FileContents::Dir {
                    "/"
                } else {
                    ""
                };
                format!("{}{slash} {:o} {}", f.path, f.mode, f.owner)
            })
            .collect();
        self.backend.record(Call::WriteFiles { files });
        Ok(())
    }

    fn ca_pem(&self) -> Option<&str> {
        Some(FAKE_CA_PEM)
    }

    async fn cp_in(&self, tree: &HostTree, bottle_path: &str) -> Result<()> {
        self.backend.record(Call::CpIn {
            host_path: tree.path.clone(),
            bottle_path: bottle_path.to_owned(),
            replaced: tree
                .replaced
                .iter()
                .map(|(path, bytes)| (path.clone(), String::from_utf8_lossy(bytes).into_owned()))
                .collect(),
        });
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.backend.record(Call::Close {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}

impl BottleBackend for FakeBackend {
    type Plan = FakePlan;
    type Bottle = FakeBottle;
    type CleanupPlan = FakeCleanupPlan;

    fn name(&self) -> &str {
        FAKE_BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        lock(&self.inner.config).capabilities.clone()
    }

    async fn resolve_plan(&self, prepared: PreparedSpec, _host: &HostContext) -> Result<FakePlan> {
        self.record(Call::ResolvePlan {
            identity: prepared.identity.to_string(),
        });
        Ok(FakePlan { prepared })
    }

    async fn launch(&self, plan: &FakePlan, ctx: &LaunchContext<'_>) -> Result<FakeBottle> {
        let identity = &plan.prepared.identity;
        self.record(Call::Launch {
            identity: identity.to_string(),
            labels: ctx.labels.clone(),
            env: ctx.secrets.env().map(|(name, _)| name.to_owned()).collect(),
        });
        let network = format!("claude-bottle-net-{identity}");
        self.create("network", &network, identity, &ctx.labels);
        ctx.events.emit(Event::Progress {
            step: Step::Launch,
            message: format!("created network {network}"),
            current: Some(1),
            total: Some(2),
        });
        // A failure here leaves the network behind: teardown must remove it.
        self.step(Step::Launch, None).await?;
        let name = format!("claude-bottle-{identity}");
        self.create("container", &name, identity, &ctx.labels);
        Ok(FakeBottle {
            backend: self.clone(),
            name,
            closed: AtomicBool::new(false),
        })
    }

    // The provisioning steps record themselves (and fail or hang on request), then run
    // bottle-core's own recipe over the fake handle: the recipe is what is tested.
    async fn provision_ca(
        &self,
        _plan: &FakePlan,
        bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<()> {
        self.step(Step::ProvisionCa, Some(Call::ProvisionCa))
            .await?;
        provision::install_ca(bottle, FAKE_CA_PEM).await
    }

    async fn provision_prompt(
        &self,
        plan: &FakePlan,
        bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<Option<String>> {
        self.step(Step::ProvisionPrompt, Some(Call::ProvisionPrompt))
            .await?;
        provision::copy_prompt(bottle, &plan.prepared.agent.prompt).await
    }

    async fn provision_skills(
        &self,
        plan: &FakePlan,
        bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<()> {
        self.step(Step::ProvisionSkills, Some(Call::ProvisionSkills))
            .await?;
        provision::copy_skills(bottle, &plan.prepared.skills).await
    }

    async fn copy_workdir(
        &self,
        plan: &FakePlan,
        bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<()> {
        self.step(Step::CopyWorkdir, Some(Call::CopyWorkdir))
            .await?;
        provision::copy_workdir(bottle, &plan.prepared.user_cwd).await
    }

    async fn provision_git(
        &self,
        plan: &FakePlan,
        bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<()> {
        self.step(Step::ProvisionGit, Some(Call::ProvisionGit))
            .await?;
        let def = &plan.prepared.agent.bottle;
        provision::install_gitconfig(bottle, &def.git, &def.git_user).await
    }

    async fn provision_supervise(
        &self,
        _plan: &FakePlan,
        _bottle: &FakeBottle,
        _ctx: &LaunchContext<'_>,
    ) -> Result<()> {
        self.step(Step::ProvisionSupervise, Some(Call::ProvisionSupervise))
            .await
    }

    async fn teardown(&self, plan: &FakePlan, events: &dyn EventSink) -> Result<()> {
        let identity = &plan.prepared.identity;
        let refusals = lock(&self.inner.config).refusals.clone();
        for (host, count, reasons) in refusals {
            events.emit(Event::Refused {
                host,
                count,
                reasons,
            });
        }
        let removed: Vec<(String, String)> = {
            let mut resources = lock(&self.inner.resources);
            let mut mine: Vec<(&'static str, String)> = resources
                .iter()
                .filter(|(_, r)| &r.identity == identity)
                .map(|(name, r)| (r.kind, name.clone()))
                .collect();
            // Containers before the networks they are attached to, as a real engine requires.
            mine.sort_by_key(|(kind, _)| removal_rank(kind));
            for (_, name) in &mine {
                resources.remove(name);
            }
            mine.into_iter()
                .map(|(kind, name)| (kind.to_owned(), name))
                .collect::<Vec<_>>()
        };
        for (kind, name) in &removed {
            events.emit(Event::Removed {
                kind: kind.clone(),
                name: name.clone(),
            });
        }
        let removed: Vec<String> = removed.into_iter().map(|(_, name)| name).collect();
        self.record(Call::Teardown {
            identity: identity.to_string(),
            removed,
        });
        self.step(Step::Teardown, None).await
    }

    async fn prepare_cleanup(&self) -> Result<FakeCleanupPlan> {
        self.record(Call::PrepareCleanup);
        let mut items: Vec<CleanupItem> = lock(&self.inner.resources)
            .iter()
            .map(|(name, r)| CleanupItem {
                kind: r.kind.to_owned(),
                name: name.clone(),
                identity: Some(r.identity.clone()),
            })
            .collect();
        items.sort_by_key(|item| removal_rank(&item.kind));
        Ok(FakeCleanupPlan { items })
    }

    async fn cleanup(&self, plan: &FakeCleanupPlan, events: &dyn EventSink) -> Result<()> {
        let mut removed = Vec::new();
        {
            let mut resources = lock(&self.inner.resources);
            for item in &plan.items {
                if resources.remove(&item.name).is_some() {
                    events.emit(Event::Removed {
                        kind: item.kind.clone(),
                        name: item.name.clone(),
                    });
                    removed.push(item.name.clone());
                }
            }
        }
        self.record(Call::Cleanup { removed });
        Ok(())
    }

    async fn list_active(&self) -> Result<Vec<ActiveBottle>> {
        self.record(Call::ListActive);
        let resources = lock(&self.inner.resources);
        Ok(resources
            .values()
            .filter(|r| r.kind == "container")
            .map(|r| ActiveBottle {
                backend: FAKE_BACKEND.to_owned(),
                identity: r.identity.clone(),
                agent: r.identity.agent().to_owned(),
                started: r
                    .labels
                    .get(labels::STARTED)
                    .and_then(|v| labels::parse_started(v)),
                state: ActiveState::Running,
            })
            .collect())
    }
}
