//! The Docker backend of claude-bottle: one isolated bottle per agent on a Docker engine, through
//! bollard (no docker CLI needed).
//!
//! ```
//! use std::sync::Arc;
//! use bottle_core::{
//!     AgentSpec, BottleBackend, BottleDef, BottlePlan, BottleSpec, HostContext, NoEvents,
//!     RunOptions, Secrets, Session, ShutdownSignal, StateStore, StaticManifest, run_bottle,
//! };
//! use bottle_docker::fake::RecordingDocker;
//! use bottle_docker::image::ImageSettings;
//! use bottle_docker::plan::DockerOptions;
//! use bottle_docker::DockerBackend;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A real tool uses `DockerBackend::from_env()?` (the local engine); the recording fake
//! // stands in for the engine here.
//! let docker = RecordingDocker::new();
//! let options = DockerOptions::default();
//! docker.add_image(options.egress_image(), "65532:65532");
//! let backend = DockerBackend::new(docker.clone(), options, ImageSettings::default());
//!
//! let home = tempfile::tempdir().unwrap();
//! let host = HostContext::new(home.path(), Default::default());
//! let manifest = StaticManifest::new()
//!     .with_agent(AgentSpec::new("researcher", BottleDef::new("default")));
//! let spec = BottleSpec::new(Arc::new(manifest), "researcher", home.path());
//!
//! let plan = backend.prepare(spec, &host).await?;
//! assert_eq!(plan.summary().runtime, "runc"); // no gVisor on this engine
//!
//! let outcome = run_bottle(
//!     &backend,
//!     &plan,
//!     &Secrets::empty(),
//!     Session::Claude { args: vec![], tty: false },
//!     RunOptions {
//!         state: &StateStore::new(&host.bottle_home),
//!         events: &NoEvents,
//!         shutdown: ShutdownSignal::never(),
//!     },
//! )
//! .await?;
//! assert_eq!(outcome.exit_code(), 0);
//! assert!(docker.containers().is_empty() && docker.networks().is_empty());
//! # Ok::<(), bottle_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # One bottle on the engine
//!
//! The agent plus the sidecars of bottle-recipe's [`sidecars`](bottle_recipe::sidecars), all
//! as data in a [`plan::Topology`]; names and labels derive from each object's
//! [`Role`](bottle_core::Role).
//!
//! - `claude-bottle-net-<id>`: an `internal` network, no route out; the agent's only network.
//! - `claude-bottle-<role>-net-<id>`: the upstream bridge of a sidecar that needs one (today
//!   `claude-bottle-egress-net-<id>`), plus the existing networks it joins (`egress.networks`).
//! - `claude-bottle-<role>-<id>`: each sidecar (today `claude-bottle-egress-<id>`, alias
//!   `egress`, with the routes, a per-bottle CA minted on the host at launch whose key lives
//!   only in that container, and the `auth` credentials as environment), started in order and
//!   ready — its readiness command passes *inside* it, through an exec — before the next.
//! - `claude-bottle-<id>`: the agent, as `node`, all capabilities dropped, no-new-privileges,
//!   memory and process limits, proxy and CA environment, DNS pointed at nothing that forwards
//!   (the sidecars' aliases answered by the engine's resolver under runc, written into its
//!   `/etc/hosts` under gVisor; see [`plan`]), under gVisor when the engine can run it
//!   ([`runtime`]). Under runc it starts alongside the sidecars.
//!
//! Everything carries bottle-core's labels, so teardown, `cleanup` and `list_active` find it.
//! Teardown removes the agent, then the sidecars in reverse start order, then the networks,
//! and waits first for creates in flight: a launch dropped mid-request does not stop the
//! engine from finishing a `create`, so teardown waits (bounded) for the creates the launch
//! issued, then lists and removes by label.
//!
//! # Map
//!
//! - [`plan`]: pure planning, prepared spec + sidecar specs → [`plan::Topology`].
//! - [`launch`]: the launch order (networks, each sidecar until ready, the agent) and
//!   teardown; [`cleanup`]: leftovers and listing; [`names`]: names and labels by role;
//!   [`liveness`]: whether a bottle's launcher still runs; [`runtime`]: runc or runsc.
//! - [`image`]: the agent image (the embedded Dockerfile, content-hash tags, build CAs) and the
//!   egress image's context.
//! - [`api::DockerApi`]: the engine seam; [`engine::Engine`] on bollard, [`fake::RecordingDocker`]
//!   for tests; [`endpoint`]: which engine (`DOCKER_HOST`, docker contexts, TLS), decided before
//!   anything is contacted.
//! - [`backend`]: bottle-core's [`BottleBackend`](bottle_core::BottleBackend) over all of it;
//!   [`bottle`]: the [`Bottle`](bottle_core::Bottle) handle, the transport bottle-core's
//!   provisioning recipe runs over (exec as agent or root, in-memory files, host trees,
//!   sessions); [`summary`]: the plans as bottle-core sees them (the preflight's lines).
//!
//! What is the same on every backend is not here: the agent's environment, paths and
//! provisioning are bottle-core's ([`bottle_core::agent`], [`bottle_core::provision`]); the
//! sidecars, the egress config and the CA are bottle-recipe's.
//!
//! Terminals stay out of this crate: TTY sessions take bottle-core's
//! [`TerminalHost`](bottle_core::TerminalHost) from the caller for raw mode and window sizes.

pub mod api;
pub mod backend;
pub mod bottle;
pub mod cleanup;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod fake;
pub mod image;
mod inflight;
pub mod launch;
pub mod liveness;
pub mod names;
pub mod plan;
pub mod remove;
pub mod runtime;
mod saved;
pub mod summary;
pub mod tarball;

pub use backend::DockerBackend;
pub use bottle::DockerBottle;
pub use error::{DockerError, Result};
pub use summary::{DockerCleanupPlan, DockerPlan};
