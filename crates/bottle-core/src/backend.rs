//! The backend contract: [`BottleBackend`] and the [`Bottle`] handle it launches.
//!
//! A backend implements *transport*: creating and removing what runs a bottle, and the
//! [`Bottle`] handle's few primitives (run a command as the agent or as root, write in-memory
//! files, copy a host tree in, attach a session). What happens inside the bottle is the same on
//! every backend and is provided: [`prepare`](BottleBackend::prepare) runs the common checks and
//! [`provision`](BottleBackend::provision) runs the recipe of [`crate::provision`] over the
//! handle's primitives.
//!
//! Methods are `async` through return-position `impl Future + Send` (no `async-trait`, no boxing):
//! implementors simply write `async fn`. The cost is that the trait is not object safe; the
//! [`registry`](crate::registry) erases it behind [`DynBackend`](crate::registry::DynBackend)
//! where a backend is chosen at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use crate::capability::Capabilities;
use crate::checks;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Step};
use crate::host::HostContext;
use crate::plan::{ActiveBottle, BottleCleanupPlan, BottlePlan, PreparedSpec};
use crate::provision;
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

/// Who a command runs as in the bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecUser {
    /// The agent user ([`agent::USER`](crate::agent::USER)), in the working directory.
    Agent,
    /// root, in `/`: only provisioning steps that change root-owned files (the trust store).
    /// The agent's container grants root no capabilities, so this is root on root's files and
    /// nothing more.
    Root,
}

/// The numeric owner of a file placed in the bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FileOwner {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
}

impl FileOwner {
    /// root:root.
    pub const ROOT: FileOwner = FileOwner { uid: 0, gid: 0 };
    /// The agent user ([`agent::USER`](crate::agent::USER), 1000:1000 in the agent image).
    pub const AGENT: FileOwner = FileOwner {
        uid: 1000,
        gid: 1000,
    };
}

impl fmt::Display for FileOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// What a [`BottleFile`] is.
#[derive(Clone, PartialEq, Eq)]
pub enum FileContents {
    /// A directory.
    Dir,
    /// A regular file with these bytes (which may be a secret, such as a sidecar's key).
    File(Vec<u8>),
}

/// A file or directory to place in a bottle (or a sidecar), made in memory: its absolute path,
/// mode and owner are decided by the writer, so nothing needs `chown` inside (the agent has no
/// `CAP_CHOWN`). Its `Debug` never shows the contents.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BottleFile {
    /// The absolute path inside.
    pub path: String,
    /// The permission bits (`0o644`).
    pub mode: u32,
    /// Its owner.
    pub owner: FileOwner,
    /// A directory or a file's bytes.
    pub contents: FileContents,
}

impl BottleFile {
    /// A regular file.
    pub fn file(
        path: impl Into<String>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
        owner: FileOwner,
    ) -> Self {
        BottleFile {
            path: path.into(),
            mode,
            owner,
            contents: FileContents::File(contents.into()),
        }
    }

    /// A directory.
    pub fn dir(path: impl Into<String>, mode: u32, owner: FileOwner) -> Self {
        BottleFile {
            path: path.into(),
            mode,
            owner,
            contents: FileContents::Dir,
        }
    }
}

impl fmt::Debug for FileContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileContents::Dir => f.write_str("Dir"),
            FileContents::File(bytes) => write!(f, "File(<{} bytes>)", bytes.len()),
        }
    }
}

impl fmt::Debug for BottleFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.contents {
            FileContents::Dir => "dir".to_owned(),
            FileContents::File(bytes) => format!("{} bytes", bytes.len()),
        };
        write!(f, "{} ({what}, {:o}, {})", self.path, self.mode, self.owner)
    }
}

/// A host file or folder to copy into a bottle ([`Bottle::cp_in`]), and the files under it whose
/// copy differs from the host's: the working tree's git configs, with their credentials
/// stripped ([`crate::cwd::workdir_copy`]). The host's files are never changed. Its `Debug` names
/// the replaced files, never their contents.
#[derive(Clone, PartialEq, Eq)]
pub struct HostTree {
    /// The host file or folder.
    pub path: PathBuf,
    /// Files under [`path`](Self::path), by their path relative to it, that are copied with
    /// these bytes instead of the host's (keeping the host file's mode). A replaced file is
    /// never read from the host by the copy.
    pub replaced: BTreeMap<PathBuf, Vec<u8>>,
}

impl HostTree {
    /// `path`, copied as it is.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HostTree {
            path: path.into(),
            replaced: BTreeMap::new(),
        }
    }

    /// The same tree with the file at `relative` copied as `contents`.
    pub fn replacing(mut self, relative: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.replaced.insert(relative.into(), contents.into());
        self
    }
}

impl fmt::Debug for HostTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTree")
            .field("path", &self.path)
            .field("replaced", &self.replaced.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What [`Bottle::cp_out`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum CopiedOut {
    /// The archive is complete.
    Copied {
        /// Its size.
        bytes: u64,
        /// Entries left out because they cannot be restored safely (devices, sockets, relative
        /// links pointing out of the folder, anything under a link).
        skipped: u64,
    },
    /// The folder is not in the bottle (no conversation was had, say).
    Missing,
    /// The archive reached the limit before it was complete; what was written is incomplete
    /// and must be thrown away.
    TooLarge,
}

/// A running bottle: the transport a backend provides, over which the provisioning recipe
/// ([`crate::provision`]) and the session run.
pub trait Bottle: Send + Sync + 'static {
    /// The bottle's main resource name (the agent container's name, a VM id, ...).
    fn name(&self) -> &str;

    /// Runs `claude <argv>` in the bottle attached to this process's stdin/stdout/stderr (with a
    /// terminal when `tty`), and returns its exit code when it ends.
    fn exec_claude(&self, argv: &[String], tty: bool) -> impl Future<Output = Result<i32>> + Send;

    /// Runs `script` with `sh -c` in the bottle attached to this process's streams (as
    /// `--exec 'CMD'` does), returning its exit code.
    fn exec_attached(&self, script: &str, tty: bool) -> impl Future<Output = Result<i32>> + Send;

    /// Runs `script` as a POSIX shell script in the bottle as `user`, with the bottle's
    /// environment, and captures its output. A non-zero exit is returned in [`ExecResult`], not
    /// as an error.
    fn exec(&self, user: ExecUser, script: &str)
    -> impl Future<Output = Result<ExecResult>> + Send;

    /// Places `files` in the bottle, in order (a directory before what it holds), each with its
    /// mode and owner. Missing parent directories are created owned by root.
    fn write_files(&self, files: &[BottleFile]) -> impl Future<Output = Result<()>> + Send;

    /// Copies the host file or folder `tree.path` to `bottle_path` in the bottle (a folder is
    /// copied with its contents to `bottle_path`), owned by the agent user, with each of
    /// `tree.replaced` in place of the host's file. Symbolic links are copied as links, never
    /// followed. A file that changes size while it is copied fails the copy: an archive is
    /// never sent with a file cut short or grown.
    fn cp_in(&self, tree: &HostTree, bottle_path: &str) -> impl Future<Output = Result<()>> + Send;

    /// Copies the folder `bottle_path` out of the bottle as a tar archive written to `to` (a
    /// file the caller opened, private to the user), streamed: never more than `limit` bytes
    /// are written, whatever the folder holds ([`CopiedOut::TooLarge`] past it).
    ///
    /// The archive is what [`cp_in_archive`](Bottle::cp_in_archive) can put back safely,
    /// whatever the agent made of the folder: its entries are named `<folder name>/…`, the
    /// first is that folder as a directory (a folder replaced by a link is refused), every
    /// entry is owned by the agent ([`FileOwner::AGENT`]) with no set-id or sticky bit, and
    /// only directories, regular files, hard links to earlier entries and symbolic links (a
    /// relative one only when it stays inside the folder) are kept; anything else, or anything
    /// under a kept link, is counted in `skipped` and left out.
    fn cp_out(
        &self,
        bottle_path: &str,
        to: std::fs::File,
        limit: u64,
    ) -> impl Future<Output = Result<CopiedOut>> + Send;

    /// Extracts an archive written by [`cp_out`](Bottle::cp_out) (read from `archive`,
    /// streamed) into the folder `bottle_dir` of the bottle, which must exist: the saved
    /// folder lands at `bottle_dir/<folder name>`, owned by the agent.
    fn cp_in_archive(
        &self,
        archive: std::fs::File,
        bottle_dir: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The certificate (PEM) of the per-bottle CA the bottle's egress signs with, which the
    /// agent must trust; `None` for a bottle whose egress does not intercept TLS (the CA step
    /// is then skipped).
    fn ca_pem(&self) -> Option<&str> {
        None
    }

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

    /// Provisions the running bottle. Provided: CA → Claude Code's configuration → prompt →
    /// skills → working tree → git → supervise, each reported as a step; a step with nothing to
    /// do for this bottle is
    /// skipped and not reported ([`PreparedSpec::needs`]; the CA step when the bottle has no
    /// [`ca_pem`](Bottle::ca_pem)). An error is wrapped in [`Error::Step`] naming the failing
    /// step.
    fn provision(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<Provisioned>> + Send {
        async move {
            let mut provisioned = Provisioned::default();
            for step in Step::PROVISION {
                let needed = match step {
                    Step::ProvisionCa => bottle.ca_pem().is_some(),
                    _ => plan.prepared().needs(step),
                };
                if !needed {
                    continue;
                }
                ctx.events.emit(Event::StepStarted { step });
                let result = match step {
                    Step::ProvisionCa => self.provision_ca(plan, bottle, ctx).await,
                    Step::ConfigureClaudeCode => {
                        self.configure_claude_code(plan, bottle, ctx).await
                    }
                    Step::ProvisionPrompt => self
                        .provision_prompt(plan, bottle, ctx)
                        .await
                        .map(|path| provisioned.prompt_path = path),
                    Step::ProvisionSkills => self.provision_skills(plan, bottle, ctx).await,
                    Step::CopyWorkdir => self.copy_workdir(plan, bottle, ctx).await,
                    Step::ProvisionGit => self.provision_git(plan, bottle, ctx).await,
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

    /// Makes the agent trust the per-bottle CA ([`Bottle::ca_pem`]). Default:
    /// [`provision::install_ca`].
    fn provision_ca(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (plan, ctx);
        async move {
            match bottle.ca_pem() {
                Some(pem) => provision::install_ca(bottle, pem).await,
                None => Ok(()),
            }
        }
    }

    /// Writes Claude Code's own configuration, so that it opens at its prompt with the
    /// agent's permission mode. Default: [`provision::configure_claude_code`].
    fn configure_claude_code(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        provision::configure_claude_code(bottle, &plan.prepared().agent)
    }

    /// Copies the prompt in; returns its path in the bottle when the agent has a prompt.
    /// Default: [`provision::copy_prompt`].
    fn provision_prompt(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<Option<String>>> + Send {
        let _ = ctx;
        provision::copy_prompt(bottle, &plan.prepared().agent.prompt)
    }

    /// Copies each skill folder in. Default: [`provision::copy_skills`].
    fn provision_skills(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        provision::copy_skills(bottle, &plan.prepared().skills)
    }

    /// Copies the user's working tree (with its `.git`, its git configs' credentials stripped)
    /// in, with `--cwd`. Default: [`provision::copy_workdir`].
    fn copy_workdir(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        provision::copy_workdir(bottle, &plan.prepared().user_cwd)
    }

    /// Points the agent's git at the git gate: installs the git config that rewrites each
    /// declared upstream to the gate, with the bottle's `git_user`. Runs only for a bottle with
    /// git entries on a backend whose [`capabilities`](BottleBackend::capabilities) include
    /// [`Feature::GitGate`](crate::Feature::GitGate). Default: [`provision::install_gitconfig`].
    fn provision_git(
        &self,
        plan: &Self::Plan,
        bottle: &Self::Bottle,
        ctx: &LaunchContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        let def = &plan.prepared().agent.bottle;
        provision::install_gitconfig(bottle, &def.git, &def.git_user)
    }

    /// Registers the supervise sidecar with Claude Code. Runs only for a backend whose
    /// [`capabilities`](BottleBackend::capabilities) include
    /// [`Feature::Supervise`](crate::Feature::Supervise), which then overrides it. Default:
    /// nothing.
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
