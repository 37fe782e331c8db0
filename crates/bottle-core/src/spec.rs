//! What the caller asks for: [`BottleSpec`], and the small view of a manifest bottle-core needs
//! ([`ManifestSource`], [`AgentSpec`], [`BottleDef`]).
//!
//! bottle-core does not parse manifests. It sees an agent through [`ManifestSource`], which the
//! manifest crate (or a test, or an embedding tool) implements; the types here are the effective
//! agent and bottle *after* `extends` folding, which is the manifest's job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bottle_manifest::{AgentImage, LogMode, Origin, PermissionMode, Route};

use crate::error::BoxError;
use crate::identity::Identity;
use crate::secret::SecretString;

/// The caller's intent for one bottle. Backend-agnostic: a backend's `prepare` turns it into its
/// own plan. Resolved values (image, names, runtime) live on the plan, never here.
#[derive(Clone)]
pub struct BottleSpec {
    /// Where agents come from.
    pub manifest: Arc<dyn ManifestSource>,
    /// The agent to run.
    pub agent_name: String,
    /// Copy the user's working directory (and its `.git`) into the bottle.
    pub copy_cwd: bool,
    /// The user's working directory on the host.
    pub user_cwd: PathBuf,
    /// `Some` when resuming a kept bottle: `prepare` reuses this identity instead of minting one.
    pub identity: Option<Identity>,
    /// Pass Claude Code's `--remote-control` flag.
    pub remote_control: bool,
    /// Launch even when the backend does not implement a grant of the bottle (see
    /// [`crate::capability`]): the user accepts a smaller bottle than the manifest describes.
    pub allow_unimplemented: bool,
}

impl BottleSpec {
    /// A spec for a fresh bottle of `agent_name` (no `--cwd`, no remote control).
    pub fn new(
        manifest: Arc<dyn ManifestSource>,
        agent_name: impl Into<String>,
        user_cwd: impl Into<PathBuf>,
    ) -> Self {
        BottleSpec {
            manifest,
            agent_name: agent_name.into(),
            copy_cwd: false,
            user_cwd: user_cwd.into(),
            identity: None,
            remote_control: false,
            allow_unimplemented: false,
        }
    }
}

impl fmt::Debug for BottleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BottleSpec")
            .field("manifest", &self.manifest.agent_names())
            .field("agent_name", &self.agent_name)
            .field("copy_cwd", &self.copy_cwd)
            .field("user_cwd", &self.user_cwd)
            .field("identity", &self.identity)
            .field("remote_control", &self.remote_control)
            .field("allow_unimplemented", &self.allow_unimplemented)
            .finish()
    }
}

/// The seam between bottle-core and the manifest: the agents a manifest defines, and each one's
/// effective definition. Implemented for the manifest crate's loaded manifest, and by
/// [`StaticManifest`] for tests and embedders that build agents in code.
pub trait ManifestSource: Send + Sync {
    /// Every agent name the manifest defines, sorted; used in the "unknown agent" error.
    fn agent_names(&self) -> Vec<String>;

    /// The effective agent `name` with its bottle folded over its `extends` chain; `Ok(None)`
    /// when no such agent exists, `Err` when its files are invalid.
    fn agent(&self, name: &str) -> Result<Option<AgentSpec>, BoxError>;
}

/// A [`ManifestSource`] holding agents built in code.
#[derive(Debug, Clone, Default)]
pub struct StaticManifest {
    agents: BTreeMap<String, AgentSpec>,
}

impl StaticManifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an agent.
    pub fn with_agent(mut self, agent: AgentSpec) -> Self {
        self.agents.insert(agent.name.clone(), agent);
        self
    }
}

impl ManifestSource for StaticManifest {
    fn agent_names(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    fn agent(&self, name: &str) -> Result<Option<AgentSpec>, BoxError> {
        Ok(self.agents.get(name).cloned())
    }
}

/// An agent with its effective bottle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The agent's name (`[a-z][a-z0-9-]*`).
    pub name: String,
    /// Where the agent's file comes from. A repository agent's prompt was written by whoever
    /// wrote the repository, so the preflight says so.
    pub origin: Origin,
    /// The agent's file, `None` for agents built in (claude-bottle's `default`, or an agent an
    /// embedding tool builds in code).
    pub file: Option<PathBuf>,
    /// The system prompt (the agent file's body); empty means none.
    pub prompt: String,
    /// Names of folders under the host's skills folder (`~/.claude/skills/`).
    pub skills: Vec<String>,
    /// The agent's bottle, after `extends` folding.
    pub bottle: BottleDef,
    /// Claude Code's own settings in the bottle (see [`crate::provision::claude_code_files`]).
    pub claude: ClaudeSettings,
}

/// Claude Code's own settings in the bottle: what the agent chose and what the host's Claude
/// Code shows. Nothing here is secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeSettings {
    /// The permission mode (the agent's `permission_mode:`; default
    /// [`PermissionMode::BypassPermissions`]: the bottle is the sandbox).
    pub permission_mode: PermissionMode,
    /// The theme of the host's Claude Code (`~/.claude/settings.json` `theme`, else
    /// `~/.claude.json` `theme`), read by `prepare`; only that key, and only a plain name.
    pub theme: Option<String>,
}

impl AgentSpec {
    /// An agent built in code, with no prompt and no skills, in `bottle`.
    pub fn new(name: impl Into<String>, bottle: BottleDef) -> Self {
        AgentSpec {
            name: name.into(),
            origin: Origin::BuiltIn,
            file: None,
            prompt: String::new(),
            skills: Vec::new(),
            bottle,
            claude: ClaudeSettings::default(),
        }
    }
}

/// An effective bottle: what the agent is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BottleDef {
    /// The bottle's name.
    pub name: String,
    /// The `extends` chain in fold order (parents first), without the bottle itself.
    pub extends: Vec<String>,
    /// Environment entries, in manifest order.
    pub env: Vec<EnvEntry>,
    /// Non-secret variables the agent must hold so that Claude Code sends requests whose real
    /// credential the egress injects (e.g. a placeholder `CLAUDE_CODE_OAUTH_TOKEN`). Handed to
    /// the backend with the env (see [`Secrets`](crate::Secrets)), left out of the preflight.
    pub placeholder_env: Vec<(String, String)>,
    /// git-gate upstreams.
    pub git: Vec<GitEntry>,
    /// The agent's git identity (`git_user`), written into its git config with the entries.
    pub git_user: GitUser,
    /// The egress policy.
    pub egress: EgressSpec,
    /// Run the supervise sidecar.
    pub supervise: bool,
    /// The manifest's `image:` overrides (base image, replacement Dockerfile) for backends that
    /// build an agent image; they win over the backend's environment settings.
    pub image: AgentImage,
}

impl BottleDef {
    /// A bottle granting nothing (supervise on, as the manifest's default).
    pub fn new(name: impl Into<String>) -> Self {
        BottleDef {
            name: name.into(),
            extends: Vec::new(),
            env: Vec::new(),
            placeholder_env: Vec::new(),
            git: Vec::new(),
            git_user: GitUser::default(),
            egress: EgressSpec::default(),
            supervise: true,
            image: AgentImage::default(),
        }
    }
}

/// One environment variable of the bottle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable's name inside the bottle.
    pub name: String,
    /// Where its value comes from.
    pub source: EnvSource,
}

impl EnvEntry {
    /// Shorthand for building entries in code.
    pub fn new(name: impl Into<String>, source: EnvSource) -> Self {
        EnvEntry {
            name: name.into(),
            source,
        }
    }
}

/// Where an env entry's value comes from. Even literals are treated as secret: never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// A literal value from the manifest.
    Literal(SecretString),
    /// `${VAR}`: the host variable `VAR`, read at launch.
    Host(String),
    /// `?` / `?message`: asked for on the terminal at launch.
    Prompt(Option<String>),
}

impl EnvSource {
    /// The mode shown in summaries.
    pub fn mode(&self) -> EnvMode {
        match self {
            EnvSource::Literal(_) => EnvMode::Literal,
            EnvSource::Host(_) => EnvMode::Host,
            EnvSource::Prompt(_) => EnvMode::Prompt,
        }
    }
}

/// How an env entry gets its value, as shown in a preflight (never the value): the manifest's
/// own type, so the two cannot drift.
pub use bottle_manifest::EnvMode;

/// A git-gate entry, the manifest's own type: one vocabulary for the bottle, the gate's config
/// and the preflight. `identity_file` is a host path (`~`-expanded by `prepare`).
pub use bottle_manifest::GitEntry;

/// The agent's `user.name` / `user.email` (the manifest's `git_user`).
pub use bottle_manifest::GitUser;

/// The egress policy of a bottle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EgressSpec {
    /// The effective route table (Claude Code's required hosts plus the manifest's routes).
    pub routes: Vec<Route>,
    /// What the egress logs.
    pub log: LogMode,
    /// Host paths of extra CA certificates the egress trusts upstream (checked by `prepare`).
    pub trust: Vec<PathBuf>,
    /// Existing networks the egress joins.
    pub networks: Vec<String>,
}
