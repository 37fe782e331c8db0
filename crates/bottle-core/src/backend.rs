//! The backend contract: [`BottleBackend`] and the [`Bottle`] handle it launches.
//!
//! Methods are `async` through return-position `impl Future + Send` (no `async-trait`, no boxing):
//! implementors simply write `async fn`. The cost is that the trait is not object safe; the
//! [`registry`](crate::registry) erases it behind [`DynBackend`](crate::registry::DynBackend)
//! where a backend is chosen at run time.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::capability::Capabilities;
use crate::checks;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Step};
use crate::host::HostContext;
use crate::plan::{ActiveBottle, BottleCleanupPlan, BottlePlan, PreparedSpec};
use crate::secret::Secrets;
use crate::spec::BottleSpec;

/// Captured result of [`Bottle::exec`]. A non-zero `exit_code` is data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecResult {
    /// The script's exit code.
    pub exit_code: i32,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

impl ExecResult {
    /// `exit_code == 0`.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// A running bottle.
pub trait Bottle: Send + Sync + 'static {
    /// The bottle's main resource name (the agent container's name, a VM id, ...).
    fn name(&self) -> &str;

    /// Runs `claude <argv>` in the bottle attached to this process's stdin/stdout/stderr (with a
    /// terminal when `tty`), and returns its exit code when it ends.
    fn exec_claude(&self, argv: &[String], tty: bool) -> impl Future<Output = Result<i32>> + Send;

    /// Runs `script` with `sh -c` in the bottle attached to this process's streams (as
    /// `--exec 'CMD'` does), returning its exit code.
    fn exec_attached(&self, script: &str, tty: bool) -> impl Future<Output = Result<i32>> + Send;

    /// Runs `script` as a POSIX shell script in the bottle with the bottle's environment and
    /// captures its output. A non-zero exit is returned in [`ExecResult`], not as an error.
    fn exec(&self, script: &str) -> impl Future<Output = Result<ExecResult>> + Send;

    /// Copies the host file or folder `host_path` to `bottle_path` in the bottle (a folder is
    /// copied with its contents to `bottle_path`).
    fn cp_in(&self, host_path: &Path, bottle_path: &str)
    -> impl Future<Output = Result<()>> + Send;

    /// Removes what this handle owns. Idempotent: a second call does nothing and succeeds.
    fn close(&self) -> impl Future<Output = Result<()>> + Send;
}

/// The inputs of launch and of each provisioning step.
#[derive(Debug)]
pub struct LaunchContext<'a> {
    /// Resolved env values and credentials.
    pub secrets: &'a Secrets,
    /// Where to report progress.
    pub events: &'a dyn EventSink,
    /// When this launch started.
    pub started: OffsetDateTime,
    /// Labels to put on every resource created (see [`crate::labels::for_bottle`]).
    pub labels: BTreeMap<String, String>,
}

/// What provisioning produced for the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The prompt file inside the bottle, when the agent has a prompt: Claude Code gets
    /// `--append-system-prompt-file <path>`.
    pub prompt_path: Option<String>,
}

/// A place bottles run: Docker, a micro-VM, a remote host.
///
/// Lifecycle, as driven by [`run_bottle`](crate::lifecycle::run_bottle): [`prepare`] (checks
/// and resolution, creates nothing) → [`launch`] → [`provision`] → session → [`Bottle::close`] and
/// [`teardown`], the last two on every path out.
///
/// [`prepare`]: BottleBackend::prepare
/// [`launch`]: BottleBackend::launch
/// [`provision`]: BottleBackend::provision
/// [`teardown`]: BottleBackend::teardown
pub trait BottleBackend: Send + Sync + 'static {
    /// The resolved plan.
    type Plan: BottlePlan;
    /// The running bottle.
    type Bottle: Bottle;
    /// Leftovers found by [`prepare_cleanup`](BottleBackend::prepare_cleanup).
    type CleanupPlan: BottleCleanupPlan;

    /// The backend's registry name (`docker`).
    fn name(&self) -> &str;

    /// The optional features this backend implements ([`crate::capability`]). Default: none,
    /// so a backend claims only what it does; a bottle asking for more is shown what is
    /// missing, and its missing grants are refused at launch.
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    /// Checks and resolves `spec` into a plan. Provided: runs [`check`](BottleBackend::check),
    /// records the backend's [`capabilities`](BottleBackend::capabilities) in the prepared spec,
    /// then runs [`resolve_plan`](BottleBackend::resolve_plan). Creates nothing on the machine;
    /// safe before the y/N question and for `--dry-run`. A grant the backend does not implement
    /// does not fail `prepare` (the preflight shows it); `run_bottle` refuses it.
    fn prepare(
        &self,
        spec: BottleSpec,
        host: &HostContext,
    ) -> impl Future<Output = Result<Self::Plan>> + Send {
        async move {
            let mut prepared = self.check(&spec, host)?;
            prepared.capabilities = self.capabilities();
            self.resolve_plan(prepared, host).await
        }
    }

    /// The checks every backend needs ([`checks::check`]). Override to add a backend's own
    /// preconditions, calling [`checks::check`] first.
    fn check(&self, spec: &BottleSpec, host: &HostContext) -> Result<PreparedSpec> {
        checks::check(self.name(), spec, host)
    }

    /// The backend's own resolution: images, names, runtime. Must not create anything.
    fn resolve_plan(
        &self,
        prepared: PreparedSpec,
        host: &HostContext,
    ) -> impl Future<Output = Result<Self::Plan>> + Send;

    /// Creates and starts the bottle, labelling every resource with `ctx.labels`. On failure it
    /// may leave resources behind: [`teardown`](BottleBackend::teardown) removes them.
    fn launch(
        &self,
        plan: &Self::Plan,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<Self::Bottle>> + Send;

    /// Provisions the running bottle. Provided: CA → prompt → skills → working tree →
    /// supervise, each reported as a step; a step with nothing to do for this bottle
    /// ([`PreparedSpec::needs`]) is skipped and not reported. An error is wrapped in
    /// [`Error::Step`] naming the failing step.
    fn provision(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<Provisioned>> + Send {
        async move {
            let mut provisioned = Provisioned::default();
            for step in Step::PROVISION {
                if !plan.prepared().needs(step) {
                    continue;
                }
                ctx.events.emit(Event::StepStarted { step });
                let result = match step {
                    Step::ProvisionCa => self.provision_ca(plan, bottle, ctx).await,
                    Step::ProvisionPrompt => self
                        .provision_prompt(plan, bottle, ctx)
                        .await
                        .map(|path| provisioned.prompt_path = path),
                    Step::ProvisionSkills => self.provision_skills(plan, bottle, ctx).await,
                    Step::CopyWorkdir => self.copy_workdir(plan, bottle, ctx).await,
                    _ => self.provision_supervise(plan, bottle, ctx).await,
                };
                if let Err(error) = result {
                    ctx.events.emit(Event::StepFailed {
                        step,
                        message: error.to_string(),
                    });
                    return Err(Error::Step {
                        step,
                        source: Box::new(error),
                    });
                }
                ctx.events.emit(Event::StepFinished { step });
            }
            Ok(provisioned)
        }
    }

    /// Installs the per-bottle CA so the agent trusts the egress. Default: nothing (a backend
    /// without TLS interception).
    fn provision_ca(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (plan, bottle, ctx);
        async { Ok(()) }
    }

    /// Copies the prompt in; returns its path in the bottle when the agent has a prompt.
    fn provision_prompt(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Copies each skill folder in. Nothing when the agent has none.
    fn provision_skills(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Copies the user's working tree (with its `.git`) in when `copy_cwd`. Nothing otherwise.
    fn copy_workdir(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Registers the supervise sidecar with Claude Code. Default: nothing.
    fn provision_supervise(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (plan, bottle, ctx);
        async { Ok(()) }
    }

    /// Removes every resource of the plan's bottle (found by its identity label), whatever state
    /// launch reached. Idempotent: succeeds when nothing is left.
    ///
    /// After a signal, the launch future is dropped mid-step and teardown runs at once, so a
    /// create request may still be completing at the engine: find resources by label (not by a
    /// list kept during launch), and remove dependants first (containers before networks).
    fn teardown(
        &self,
        plan: &Self::Plan,
        events: &dyn EventSink,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Finds leftovers of earlier bottles (labelled [`crate::labels::MANAGED`]) that no running
    /// session owns. Read-only.
    fn prepare_cleanup(&self) -> impl Future<Output = Result<Self::CleanupPlan>> + Send;

    /// Removes what the cleanup plan lists. Idempotent: what is already gone is skipped.
    fn cleanup(
        &self,
        plan: &Self::CleanupPlan,
        events: &dyn EventSink,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The bottles present on this backend.
    fn list_active(&self) -> impl Future<Output = Result<Vec<ActiveBottle>>> + Send;
}
