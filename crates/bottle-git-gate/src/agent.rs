//! What the agent sees of the gate: the git config that rewrites each declared upstream to
//! `http://git-gate:9419/<name>`, and the agent's `user.name` / `user.email`.
//!
//! The renderer lives with the git vocabulary in [`bottle_manifest::gitconfig`], because
//! bottle-core's provisioning installs it in the agent (as `/etc/gitconfig`) and bottle-core
//! does not depend on this crate; it is re-exported here, where the gate's docs and tests use
//! it.
//!
//! ```
//! use bottle_git_gate::agent::{GateEndpoint, render_gitconfig};
//! use bottle_manifest::{GitEntry, GitUser};
//!
//! let entry: GitEntry = bottle_manifest::yaml::parse(
//!     "Name: app\nUpstream: ssh://git@github.com/me/app.git\nIdentityFile: /k\nKnownHostKey: ssh-ed25519 AAAA\n",
//! )?;
//! let config = render_gitconfig(&GateEndpoint::in_bottle(), &[entry], &GitUser::default());
//! assert!(config.contains("[url \"http://git-gate:9419/app\"]"));
//! # Ok::<(), bottle_manifest::yaml::YamlError>(())
//! ```

pub use bottle_manifest::gitconfig::{
    FORGES, GATE_HOST, GATE_PORT, GateEndpoint, render_gitconfig, url_spellings,
};
