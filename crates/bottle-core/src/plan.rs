//! Plans: what `prepare` resolved ([`PreparedSpec`] and a backend's [`BottlePlan`]), what
//! `prepare_cleanup` found ([`BottleCleanupPlan`]), what is running ([`ActiveBottle`]) — all as
//! data with structured summaries the CLI renders (text or JSON).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use bottle_manifest::Origin;

use crate::capability::{Capabilities, Feature, FeatureKind};
use crate::cwd::GitCredential;
use crate::error::{Error, Result};
use crate::events::Step;
use crate::identity::Identity;
use crate::spec::{AgentSpec, EnvMode};

/// The backend-independent result of `prepare`'s checks: the effective agent, the identity
/// (fresh or resumed) and host paths resolved. Every backend plan carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedSpec {
    /// The backend preparing it.
    pub backend: String,
    /// The bottle's identity.
    pub identity: Identity,
    /// Whether `identity` came from kept state (`resume`).
    pub resuming: bool,
    /// The effective agent and bottle. Git entries' `identity_file` are `~`-expanded.
    pub agent: AgentSpec,
    /// Each skill with its host folder, in the agent's order.
    pub skills: Vec<SkillSource>,
    /// Copy the user's working directory in.
    pub copy_cwd: bool,
    /// The user's working directory.
    pub user_cwd: PathBuf,
    /// With `copy_cwd`: the credentials in the tree's git config that a copy would carry in,
    /// by file and line (see [`crate::cwd`]), for the preflight to warn about and the copy
    /// step to act on. Empty without `copy_cwd`.
    pub cwd_credentials: Vec<GitCredential>,
    /// Pass `--remote-control` to Claude Code.
    pub remote_control: bool,
    /// Launch even if a grant is not implemented by the backend.
    pub allow_unimplemented: bool,
    /// What the preparing backend implements (set by [`BottleBackend::prepare`]).
    ///
    /// [`BottleBackend::prepare`]: crate::BottleBackend::prepare
    pub capabilities: Capabilities,
}

impl PreparedSpec {
    /// A prepared spec for a fresh bottle of `agent` under `identity`, as a backend's own
    /// tests and tools build one: no skills, no `--cwd` (working directory `user_cwd`), no
    /// remote control, and no optional capability. `prepare` builds the real one.
    pub fn new(
        backend: impl Into<String>,
        identity: Identity,
        agent: AgentSpec,
        user_cwd: impl Into<PathBuf>,
    ) -> Self {
        PreparedSpec {
            backend: backend.into(),
            identity,
            resuming: false,
            agent,
            skills: Vec::new(),
            copy_cwd: false,
            user_cwd: user_cwd.into(),
            cwd_credentials: Vec::new(),
            remote_control: false,
            allow_unimplemented: false,
            capabilities: Capabilities::none(),
        }
    }

    /// The features this bottle asks for that its backend does not implement.
    pub fn unimplemented(&self) -> Vec<Feature> {
        self.capabilities.missing_for(self)
    }

    /// Refuses a bottle whose backend lacks one of its grants, unless the user allowed it
    /// ([`allow_unimplemented`](PreparedSpec::allow_unimplemented)); a missing convenience is
    /// never refused. [`run_bottle`](crate::run_bottle) calls it before anything is created.
    pub fn check_implemented(&self) -> Result<()> {
        let grants: Vec<Feature> = self
            .unimplemented()
            .into_iter()
            .filter(|f| f.kind() == FeatureKind::Grant)
            .collect();
        if grants.is_empty() || self.allow_unimplemented {
            return Ok(());
        }
        Err(Error::Unimplemented {
            backend: self.backend.clone(),
            features: grants,
        })
    }

    /// Whether provisioning step `step` has work to do for this bottle: a step with nothing
    /// to do is skipped, and so never reported as done. The CA step depends on the bottle
    /// (whether its egress intercepts TLS) and is decided by the provided
    /// [`provision`](crate::BottleBackend::provision).
    pub fn needs(&self, step: Step) -> bool {
        match step {
            Step::ProvisionPrompt => !self.agent.prompt.trim().is_empty(),
            Step::ProvisionSkills => !self.skills.is_empty(),
            Step::CopyWorkdir => self.copy_cwd,
            Step::ProvisionGit => {
                !self.agent.bottle.git.is_empty() && self.capabilities.has(Feature::GitGate)
            }
            Step::ProvisionSupervise => {
                self.agent.bottle.supervise && self.capabilities.has(Feature::Supervise)
            }
            _ => true,
        }
    }
}

/// A skill and the host folder it is copied from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillSource {
    /// The skill's name.
    pub name: String,
    /// Its folder on the host.
    pub host_dir: PathBuf,
}

/// A backend's resolved plan: everything needed to launch, nothing created yet.
pub trait BottlePlan: fmt::Debug + Send + Sync + 'static {
    /// The backend-independent part.
    fn prepared(&self) -> &PreparedSpec;

    /// The preflight: what the bottle will be granted and how it will run.
    fn summary(&self) -> PlanSummary;

    /// The image (or equivalent) the bottle runs, recorded in resume state.
    fn image(&self) -> Option<String> {
        None
    }
}

/// The preflight summary of a plan, as data. Never contains a secret or an env value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// The backend.
    pub backend: String,
    /// The bottle's identity.
    pub identity: Identity,
    /// Whether this continues a kept bottle.
    pub resuming: bool,
    /// The agent.
    pub agent: String,
    /// Where the agent's file comes from (`repository`: its prompt was written by whoever
    /// wrote the working directory).
    pub agent_origin: Origin,
    /// The agent's file, `None` for a built-in agent.
    pub agent_file: Option<PathBuf>,
    /// The start of the agent's system prompt.
    pub prompt: PromptPreview,
    /// The bottle.
    pub bottle: String,
    /// The bottle's `extends` chain, parents first.
    pub extends: Vec<String>,
    /// Env entries by name and mode.
    pub env: Vec<EnvLine>,
    /// Skill names.
    pub skills: Vec<String>,
    /// git-gate upstreams.
    pub git: Vec<GitLine>,
    /// Egress routes.
    pub egress: Vec<RouteLine>,
    /// Whether the bottle asks for the supervise sidecar (see `unimplemented` for whether the
    /// backend runs one).
    pub supervise: bool,
    /// What the bottle asks for that the backend does not implement: shown as such, and the
    /// grants among them refused at launch unless `allow_unimplemented`.
    pub unimplemented: Vec<Feature>,
    /// The user accepts launching without the unimplemented grants.
    pub allow_unimplemented: bool,
    /// Existing networks the egress joins (`egress.networks`).
    pub networks: Vec<String>,
    /// Whether the working directory is copied in, and which.
    pub copy_cwd: Option<PathBuf>,
    /// Credentials in the copied tree's git config (names and places, never values).
    pub cwd_credentials: Vec<GitCredential>,
    /// The host variable whose credential the egress injects for Claude Code (the
    /// `api.anthropic.com` route's `token_ref`); `None` when that route injects nothing, so
    /// Claude Code in the bottle would have no credential but one it logs in for itself.
    pub claude_credential: Option<String>,
    /// Whether Claude Code runs with `--remote-control`.
    pub remote_control: bool,
    /// Claude Code's permission mode in the bottle.
    pub permission_mode: bottle_manifest::PermissionMode,
    /// The isolation runtime (`runc`, `runsc`, `vm`...).
    pub runtime: String,
    /// The image.
    pub image: String,
    /// Further backend-specific lines, in order.
    pub details: Vec<Detail>,
}

impl PlanSummary {
    /// The backend-independent part of a summary; the backend sets `runtime`, `image` and
    /// `details`.
    pub fn from_prepared(prepared: &PreparedSpec) -> Self {
        let bottle = &prepared.agent.bottle;
        PlanSummary {
            backend: prepared.backend.clone(),
            identity: prepared.identity.clone(),
            resuming: prepared.resuming,
            agent: prepared.agent.name.clone(),
            agent_origin: prepared.agent.origin,
            agent_file: prepared.agent.file.clone(),
            prompt: PromptPreview::of(&prepared.agent.prompt),
            bottle: bottle.name.clone(),
            extends: bottle.extends.clone(),
            env: bottle
                .env
                .iter()
                .map(|e| EnvLine {
                    name: e.name.clone(),
                    mode: e.source.mode(),
                })
                .collect(),
            skills: prepared.skills.iter().map(|s| s.name.clone()).collect(),
            git: bottle
                .git
                .iter()
                .map(|g| GitLine {
                    name: g.name.clone(),
                    upstream: g.upstream.to_string(),
                    address: g.upstream.address(),
                    policy: g.policy_summary(),
                })
                .collect(),
            egress: bottle
                .egress
                .routes
                .iter()
                .map(|r| RouteLine {
                    host: r.host.to_string(),
                    ports: r.ports.iter().map(|p| p.get()).collect(),
                    auth: r.auth.as_ref().map(|a| a.mark()),
                    auth_every_subdomain: r.auth_every_subdomain,
                    paths: r.path_allowlist.iter().map(ToString::to_string).collect(),
                    methods: r.methods.iter().map(ToString::to_string).collect(),
                    allow_private: r.allow_private,
                })
                .collect(),
            supervise: bottle.supervise,
            unimplemented: prepared.unimplemented(),
            allow_unimplemented: prepared.allow_unimplemented,
            networks: bottle.egress.networks.clone(),
            copy_cwd: prepared.copy_cwd.then(|| prepared.user_cwd.clone()),
            cwd_credentials: prepared.cwd_credentials.clone(),
            claude_credential: bottle_manifest::claude_route_auth(&bottle.egress.routes)
                .map(|auth| auth.token_ref().to_owned()),
            remote_control: prepared.remote_control,
            permission_mode: prepared.agent.claude.permission_mode,
            runtime: String::new(),
            image: String::new(),
            details: Vec::new(),
        }
    }
}

/// The first lines of a system prompt, for the preflight: enough to see what the agent is told,
/// with the size of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptPreview {
    /// Up to [`PromptPreview::LINES`] first non-blank lines, each cut at
    /// [`PromptPreview::WIDTH`] characters (`…` marks a cut). Raw text: escape it to show it.
    pub head: Vec<String>,
    /// How many lines the prompt has.
    pub lines: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

impl PromptPreview {
    /// How many lines `head` holds at most.
    pub const LINES: usize = 3;
    /// How many characters of each line `head` keeps.
    pub const WIDTH: usize = 100;

    /// The preview of `prompt`.
    pub fn of(prompt: &str) -> Self {
        let head = prompt
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.trim().is_empty())
            .take(Self::LINES)
            .map(|line| {
                let mut cut: String = line.chars().take(Self::WIDTH).collect();
                if cut.len() < line.len() {
                    cut.push('…');
                }
                cut
            })
            .collect();
        PromptPreview {
            head,
            lines: prompt.lines().count(),
            bytes: prompt.len(),
        }
    }
}

/// An env entry in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvLine {
    /// The variable's name.
    pub name: String,
    /// Where its value comes from.
    pub mode: EnvMode,
}

/// A git-gate upstream in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitLine {
    /// The entry's name.
    pub name: String,
    /// The upstream URL.
    pub upstream: String,
    /// Where the gate dials: `host:port`.
    pub address: String,
    /// What a push may do, in one line ([`GitEntry::policy_summary`](crate::GitEntry)):
    /// `push refs/heads/agent/*; no force, no delete, no tags`, or `fetch only`.
    pub policy: String,
}

/// An egress route in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteLine {
    /// The host pattern.
    pub host: String,
    /// The allowed ports (empty: the defaults, 443 and 80 for plain HTTP).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// The injected credential's mark (`Bearer`, `token`, `x-api-key`), never its value.
    pub auth: Option<String>,
    /// Whether a wildcard route sends its credential to every sub-domain.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_every_subdomain: bool,
    /// Allowed path prefixes (empty: all).
    pub paths: Vec<String>,
    /// Allowed methods (empty: all).
    pub methods: Vec<String>,
    /// Whether private addresses are reachable.
    pub allow_private: bool,
}

/// A labelled backend-specific line of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// The label (`network`, `egress image`).
    pub label: String,
    /// The value.
    pub value: String,
}

/// What `prepare_cleanup` found: leftovers of earlier bottles.
pub trait BottleCleanupPlan: fmt::Debug + Send + Sync + 'static {
    /// Nothing to remove: the CLI skips the y/N question.
    fn is_empty(&self) -> bool;

    /// What would be removed.
    fn summary(&self) -> CleanupSummary;
}

/// A cleanup plan as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupSummary {
    /// The backend.
    pub backend: String,
    /// The resources, in removal order.
    pub items: Vec<CleanupItem>,
}

/// One leftover resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupItem {
    /// `container`, `network`, `volume`, `vm`, ...
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The bottle it belonged to (from its label), when known.
    pub identity: Option<Identity>,
}

/// A bottle running (or stopped but present) on a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveBottle {
    /// The backend.
    pub backend: String,
    /// The identity.
    pub identity: Identity,
    /// The agent.
    pub agent: String,
    /// When it started, if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    /// Its state.
    pub state: ActiveState,
}

/// The state of an active bottle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveState {
    /// Running.
    Running,
    /// Created or stopped, not running.
    Stopped,
    /// Something else the backend reports.
    Other(String),
}
