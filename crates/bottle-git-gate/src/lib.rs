//! A git push gateway for claude-bottle, useful on its own: it serves the upstream
//! repositories a bottle declares to the agent over smart HTTP, and stands between the agent
//! and every push.
//!
//! - **Fetch reflects upstream.** Before each ref advertisement (the first request of every
//!   clone, fetch, pull, ls-remote and push) the gate fetches from the upstream; when the
//!   upstream cannot be reached, the agent gets one sentence naming it and the cause, never an
//!   older answer.
//! - **Push is checked, then forwarded.** A `pre-receive` hook ([`hook`]) refuses refs outside
//!   the entry's policy ([`policy`]: `PushRefs`, `AllowForce`, `AllowDelete`, `AllowTags`) and
//!   any secret in what the push brings ([`scan`], with [`bottle_secrets`] and the bottle's
//!   known secrets), then pushes upstream as one compare-and-swap with the entry's key. Only
//!   when the upstream accepted do the gate's refs move.
//! - **The key stays in the gate.** ssh runs with `-F /dev/null`, the entry's key only, no
//!   agent, and the pinned `KnownHostKey` checked strictly ([`upstream`]). The agent holds no
//!   key and sees the gate only through the URLs its git config rewrites ([`agent`]).
//!
//! ```no_run
//! use bottle_git_gate::{Gate, GateConfig};
//!
//! # async fn run() -> Result<(), bottle_git_gate::GateError> {
//! let path = std::path::Path::new("/etc/bottle-git-gate/config.yaml");
//! let env = |name: &str| std::env::var(name).ok();
//! let config = GateConfig::check(path, &env)?;
//! let exe = std::env::current_exe().map_err(|source| bottle_git_gate::GateError::Io {
//!     path: "bottle-git-gate".into(),
//!     source,
//! })?;
//! let gate = Gate::prepare(&config, path, &exe, &env)?;
//! gate.warm_up();
//! let listener = bottle_git_gate::server::bind(config.listen).await?;
//! gate.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The agent's side is data: [`agent::render_gitconfig`] gives the `~/.gitconfig` that
//! rewrites each declared upstream to `http://git-gate:9419/<name>`.

#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
mod error;
pub mod hook;
pub mod policy;
pub mod protocol;
pub mod repo;
pub mod scan;
pub mod server;
pub mod upstream;

pub use config::{DEFAULT_LISTEN, DEFAULT_PORT, DEFAULT_STATE, GateConfig};
pub use error::{ConfigError, ConfigProblem, GateError};
pub use server::Gate;

/// The repository (image name without tag) of the gate's image.
pub const IMAGE_REPO: &str = "claude-bottle-git-gate";

/// The environment variable that replaces the gate image's reference (to build and test
/// with a tag of one's own).
pub const IMAGE_ENV: &str = "CLAUDE_BOTTLE_GIT_GATE_IMAGE";

/// `claude-bottle-git-gate:<version of this crate>`.
pub fn default_image() -> String {
    format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// The gate image's Dockerfile, for the tools that build it.
pub const DOCKERFILE: &str = include_str!("../Dockerfile");
