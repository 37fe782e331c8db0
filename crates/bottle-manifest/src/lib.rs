//! Agent and bottle manifests for claude-bottle.
//!
//! A user says what an agent may do in Markdown files with a YAML front matter:
//! `$CLAUDE_BOTTLE_HOME/bottles/<name>.md` grant env, git remotes and egress routes (only from
//! the home: a cloned repository must never define one), and `agents/<name>.md` (home or
//! `<cwd>/.claude-bottle/agents/`) name a bottle, skills and a system prompt. A repository's
//! agent is written by whoever wrote the repository: it never replaces one of the user's agents
//! and runs only in the built-in bottle or one that says `repository_agents: allow`. This crate reads
//! them — it does no network or Docker I/O — and gives the rest of claude-bottle one
//! validated [`Manifest`] per agent, with every error pointing at file, line and column.
//!
//! ```
//! use bottle_manifest::{ClaudeAuth, EnvMode, Layout, ManifestIndex, Origin, RepositoryAgents};
//!
//! let home = tempfile::tempdir()?;
//! let cwd = tempfile::tempdir()?;
//! std::fs::create_dir_all(home.path().join("bottles"))?;
//! std::fs::create_dir_all(cwd.path().join(".claude-bottle/agents"))?;
//! std::fs::write(
//!     home.path().join("bottles/work.md"),
//!     "---\nrepository_agents: allow\nenv:\n  GH_TOKEN: \"${GH_PAT}\"\negress:\n  routes:\n    - host: api.github.com\n---\nNotes.\n",
//! )?;
//! std::fs::write(
//!     cwd.path().join(".claude-bottle/agents/reviewer.md"),
//!     "---\nbottle: work\n---\nReview the diff.\n",
//! )?;
//!
//! let layout = Layout::new(home.path(), None, cwd.path());
//! let index = ManifestIndex::load(&layout, ClaudeAuth::detect(|_| false));
//! let manifest = index.manifest("reviewer")?;
//!
//! assert_eq!(manifest.agent.origin, Origin::Repo); // written by the repository...
//! assert_eq!(manifest.bottle.repository_agents, RepositoryAgents::Allow); // ...and let in
//! assert_eq!(manifest.bottle.chain, ["work"]);
//! assert_eq!(manifest.bottle.env[0].name, "GH_TOKEN");
//! assert_eq!(manifest.bottle.env[0].value.mode(), EnvMode::Host);
//! let hosts: Vec<&str> = manifest.bottle.egress.routes.iter().map(|r| r.route.host.as_str()).collect();
//! assert!(hosts.contains(&"api.anthropic.com") && hosts.contains(&"api.github.com"));
//! assert!(index.check().errors.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All YAML goes through [`yaml::parse`], which the egress proxy's config uses too. The git
//! gate's vocabulary (upstreams, `PushRefs` patterns, the agent's git identity and the rules
//! over git entries) is in [`git`], shared with the gate's own config; what the agent's git
//! config says about them is [`gitconfig`].

pub mod agent_env;
mod builtin;
mod cidr;
mod error;
mod escape;
mod file;
pub mod git;
pub mod gitconfig;
mod index;
mod layout;
mod model;
pub mod route;
pub mod yaml;

pub use builtin::{
    ANTHROPIC_API_HOST, BuiltinRoute, CLAUDE_CODE_HOSTS, CLAUDE_CODE_ROUTES, ClaudeAuth,
    DEFAULT_NAME, PLACEHOLDER, claude_code_routes, claude_route_auth,
};
pub use cidr::Cidr;
pub use error::{Diagnostic, ManifestError, Warning};
pub use escape::{escape, escape_path};
pub use file::is_valid_name;
pub use git::{GitUser, RefPattern};
pub use index::{CheckReport, Entry, ManifestIndex};
pub use layout::Layout;
pub use model::{
    Agent, AgentImage, Bottle, EffectiveRoute, Egress, EnvMode, EnvValue, EnvVar, GitEntry,
    GitUpstream, Literal, Manifest, Origin, PermissionMode, RepositoryAgents, RouteSource,
};
pub use route::{AuthScheme, HostPattern, LogMode, Route, RouteAuth, RouteError};
