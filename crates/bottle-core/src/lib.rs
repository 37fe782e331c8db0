//! The backend contract of claude-bottle: prepare → plan → launch → provision → guaranteed
//! teardown, with cleanup planning, listing, identities and resume state.
//!
//! Embed it like this (with the recording fake backend of the `testing` feature; a real tool
//! uses `bottle_docker::DockerBackend` the same way):
//!
//! ```
//! use std::sync::Arc;
//! use bottle_core::{
//!     AgentSpec, BottleBackend, BottleDef, BottlePlan, BottleSpec, HostContext, NoEvents,
//!     RunOptions, Secrets, Session, ShutdownSignal, StateStore, StaticManifest, run_bottle,
//! };
//! use bottle_core::testing::FakeBackend;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let home = tempfile::tempdir().unwrap();
//! let host = HostContext::new(home.path(), Default::default());
//! let manifest = StaticManifest::new()
//!     .with_agent(AgentSpec::new("researcher", BottleDef::new("default")));
//! let spec = BottleSpec::new(Arc::new(manifest), "researcher", home.path());
//!
//! let backend = FakeBackend::new();
//! // Checks and resolution only: nothing exists yet. Show `plan.summary()` as the preflight.
//! let plan = backend.prepare(spec, &host).await?;
//! assert_eq!(plan.summary().agent, "researcher");
//!
//! // After the y/N question: resolve secrets, then launch, run and tear down.
//! let secrets = Secrets::resolve(plan.prepared(), &host, |_| unreachable!("no `?` entries"))?;
//! let outcome = run_bottle(
//!     &backend,
//!     &plan,
//!     &secrets,
//!     Session::Claude { args: vec![], tty: false },
//!     RunOptions {
//!         state: &StateStore::new(&host.bottle_home),
//!         events: &NoEvents,
//!         shutdown: ShutdownSignal::os()?,
//!     },
//! )
//! .await?;
//! assert_eq!(outcome.exit_code(), 0);
//! assert!(outcome.resume_identity().is_none()); // clean exit: no state kept
//! assert!(backend.resources().is_empty()); // everything launch created is gone
//! # Ok::<(), bottle_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Map
//!
//! - [`BottleSpec`] is the caller's intent; it reaches the manifest only through
//!   [`ManifestSource`].
//! - [`BottleBackend::prepare`] runs the common [`checks`] and the backend's resolution into a
//!   [`BottlePlan`], whose [`PlanSummary`] is the preflight (data: the CLI renders it); [`cwd`]
//!   keeps the user's secret stores out of a copied working directory and finds the credentials
//!   its git config holds.
//! - [`run_bottle`] drives launch, provisioning and the [`Session`], and tears down on every
//!   path out, including Ctrl-C, SIGTERM and SIGHUP ([`ShutdownSignal`]).
//! - [`Identity`], [`labels`] and [`StateStore`] name, mark and remember bottles, for `cleanup`
//!   and `resume`.
//! - [`Registry`] picks a backend by name at run time through the object-safe [`DynBackend`].
//! - Progress is reported as [`Event`]s to an [`EventSink`]; nothing here writes to a terminal.
//! - What every backend does the same way is here once: the agent contract ([`agent`]: fixed
//!   environment, paths, Claude Code's flags), the provisioning recipe ([`provision`]) over the
//!   [`Bottle`] handle's transport, the optional [`capability`] model, and the [`labels`] and
//!   roles every resource carries.
//!
//! bottle-core has no Docker, TLS or terminal library; a test checks its dependency graph. A
//! terminal is a trait, [`TerminalHost`], that the embedder implements.

pub mod agent;
pub mod backend;
pub mod capability;
pub mod checks;
pub mod cwd;
pub mod error;
pub mod events;
pub mod host;
pub mod identity;
pub mod labels;
pub mod lifecycle;
mod manifest;
pub mod plan;
pub mod provision;
pub mod registry;
pub mod resume;
pub mod secret;
pub mod sidecar;
pub mod spec;
pub mod state;
pub mod terminal;
#[cfg(feature = "testing")]
pub mod testing;

pub use agent::{LaunchSecret, claude_argv};
pub use backend::{
    Bottle, BottleBackend, BottleFile, CopiedOut, ExecResult, ExecUser, FileContents, FileOwner,
    HostTree, LaunchContext, Provisioned,
};
pub use capability::{Capabilities, Feature, FeatureKind};
pub use cwd::{GitCredential, GitCredentialKind};
pub use error::{BoxError, Error, Result};
pub use events::{Event, EventLog, EventSink, NoEvents, Step, UnknownStep};
pub use host::{ENV_BACKEND, ENV_HOME, HostContext};
pub use identity::Identity;
pub use labels::Role;
pub use lifecycle::{
    Ended, Outcome, RunOptions, Session, ShutdownSignal, Signal, StateDisposition, run_bottle,
};
pub use plan::{
    ActiveBottle, ActiveState, BottleCleanupPlan, BottlePlan, CleanupItem, CleanupSummary, Detail,
    EnvLine, GitLine, PlanSummary, PreparedSpec, PromptPreview, RouteLine, SkillSource,
};
pub use registry::{
    AnyCleanupPlan, AnyPlan, BackendFactory, BoxFuture, DEFAULT_BACKEND, DynBackend, Registry,
};
pub use resume::{SaveProblem, SaveReport, Saved, SavedSession};
pub use secret::{SecretPrompt, SecretString, Secrets};
pub use sidecar::{Readiness, SidecarEnv, SidecarEnvValue, SidecarSpec};
pub use spec::{
    AgentSpec, BottleDef, BottleSpec, ClaudeSettings, EgressSpec, EnvEntry, EnvMode, EnvSource,
    GitEntry, GitUser, ManifestSource, StaticManifest,
};
pub use state::{BottleState, StateStore};
pub use terminal::{NoTerminal, TerminalHost};
