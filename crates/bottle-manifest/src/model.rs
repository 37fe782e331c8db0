//! The validated, resolved manifest handed to the rest of claude-bottle.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::builtin::ClaudeAuth;
use crate::git::{GitUser, RefPattern};
use crate::route::{Route, RouteAuth};

/// One agent with its effective bottle: everything a backend needs to start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The agent.
    pub agent: Agent,
    /// The agent's bottle with its `extends` chain folded in and the effective route table.
    pub bottle: Bottle,
}

impl Manifest {
    /// The size of the system prompt in bytes.
    pub fn prompt_bytes(&self) -> usize {
        self.agent.prompt.len()
    }

    /// Every host environment variable the bottle reads at launch, sorted and without
    /// duplicates: `${VAR}` env entries and the `token_ref` of `auth` routes. Launch checks that
    /// each is set, and names only the variable when one is not.
    pub fn host_vars(&self) -> Vec<&str> {
        let mut vars: Vec<&str> = self
            .bottle
            .env
            .iter()
            .filter_map(|e| match &e.value {
                EnvValue::Host { var } => Some(var.as_str()),
                _ => None,
            })
            .chain(
                self.bottle
                    .egress
                    .routes
                    .iter()
                    .filter_map(|r| r.route.auth.as_ref().map(RouteAuth::token_ref)),
            )
            .collect();
        vars.sort_unstable();
        vars.dedup();
        vars
    }
}

/// Where a manifest entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Origin {
    /// Built into claude-bottle (the `default` agent and bottle), or built in code by a tool
    /// embedding it.
    #[serde(rename = "built-in")]
    BuiltIn,
    /// `$CLAUDE_BOTTLE_HOME/agents/` or `$CLAUDE_BOTTLE_HOME/bottles/`: the user's own files.
    #[serde(rename = "home")]
    Home,
    /// `<cwd>/.claude-bottle/agents/`: written by whoever wrote the repository.
    #[serde(rename = "repository")]
    Repo,
}

impl Origin {
    /// `built-in`, `home` or `repository`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::BuiltIn => "built-in",
            Origin::Home => "home",
            Origin::Repo => "repository",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent: a system prompt, skills, and the bottle it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The name (the file stem).
    pub name: String,
    /// Where it was read from.
    pub origin: Origin,
    /// The file, `None` for the built-in agent.
    pub path: Option<PathBuf>,
    /// The bottle's name.
    pub bottle: String,
    /// Names of folders under the host's `~/.claude/skills/` to copy in.
    pub skills: Vec<String>,
    /// The system prompt: the file's body after the front matter.
    pub prompt: String,
    /// `permission_mode:` Claude Code's permission mode in the bottle (default
    /// [`PermissionMode::BypassPermissions`]: the bottle is the sandbox).
    pub permission_mode: PermissionMode,
}

/// Claude Code's permission mode (`permissions.defaultMode` of its settings), as an agent's
/// `permission_mode:` chooses it. Inside a bottle the walls are the bottle's, so the default is
/// to ask nothing; an agent may ask for prompts back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PermissionMode {
    /// `default`: Claude Code asks before each tool use it considers risky.
    #[serde(rename = "default")]
    Default,
    /// `acceptEdits`: file edits without asking, other tools as `default`.
    #[serde(rename = "acceptEdits")]
    AcceptEdits,
    /// `plan`: read-only planning until the user approves a plan.
    #[serde(rename = "plan")]
    Plan,
    /// `auto`: Claude Code's classifier decides what needs asking.
    #[serde(rename = "auto")]
    Auto,
    /// `bypassPermissions`: no prompts (the default in a bottle).
    #[default]
    #[serde(rename = "bypassPermissions")]
    BypassPermissions,
}

impl PermissionMode {
    /// Every mode, in the order Claude Code's docs list them.
    pub const ALL: [PermissionMode; 5] = [
        PermissionMode::Default,
        PermissionMode::AcceptEdits,
        PermissionMode::Plan,
        PermissionMode::Auto,
        PermissionMode::BypassPermissions,
    ];

    /// The value Claude Code's settings use, which is also the manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Plan => "plan",
            PermissionMode::Auto => "auto",
            PermissionMode::BypassPermissions => "bypassPermissions",
        }
    }
}

impl fmt::Display for PermissionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PermissionMode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        PermissionMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(())
    }
}

/// A bottle with its `extends` chain folded in: what the agent is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bottle {
    /// The bottle's name.
    pub name: String,
    /// Where it was read from.
    pub origin: Origin,
    /// The file, `None` for the built-in bottle.
    pub path: Option<PathBuf>,
    /// Every bottle folded in, in fold order, ending with this one: `extends: [a, b]` on `c`
    /// gives `[a, b, c]` (each parent preceded by its own parents).
    pub chain: Vec<String>,
    /// Environment entries, sorted by name.
    pub env: Vec<EnvVar>,
    /// Git-gate entries, sorted by name.
    pub git: Vec<GitEntry>,
    /// `git_user`: the agent's `user.name` and `user.email` (each field last-wins along the
    /// chain).
    pub git_user: GitUser,
    /// Egress settings and the effective route table.
    pub egress: Egress,
    /// Whether the supervisor runs (default true).
    pub supervise: bool,
    /// Overrides of the agent image (each field last-wins along the chain).
    pub image: AgentImage,
    /// Whether repository agents may run in this bottle: this bottle's own
    /// `repository_agents` key, never inherited through `extends` (a bottle built on an
    /// allowing one grants more, and must say so itself).
    pub repository_agents: RepositoryAgents,
}

/// `repository_agents:` in a bottle: may an agent from a working directory's
/// `.claude-bottle/agents/` run in this bottle? Such an agent's prompt is written by whoever
/// wrote the repository, and runs with everything the bottle grants.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryAgents {
    /// Only the user's own agents (the default). The built-in `default` bottle, which grants
    /// nothing but Claude Code's own hosts, takes repository agents regardless.
    #[default]
    Deny,
    /// Repository agents too.
    Allow,
}

impl RepositoryAgents {
    /// `deny` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepositoryAgents::Deny => "deny",
            RepositoryAgents::Allow => "allow",
        }
    }
}

/// `image:` in a bottle: how the agent image is built, for people with their own base. Unset
/// fields fall back to the backend's environment settings and then its defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentImage {
    /// `image.base`: the base image the Dockerfile starts `FROM` (an image reference).
    pub base: Option<String>,
    /// `image.dockerfile`: a host Dockerfile replacing the built-in one (absolute, `~` expanded).
    pub dockerfile: Option<PathBuf>,
    /// `image.claude_code_version`: the npm version of `@anthropic-ai/claude-code` the image
    /// installs (`2.1.332`); unset, the backend's pinned default.
    pub claude_code_version: Option<String>,
}

/// One environment variable of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable name.
    pub name: String,
    /// Where its value comes from.
    pub value: EnvValue,
}

/// Where an environment variable's value comes from. `Debug` never shows a literal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A value written in the manifest.
    Literal(Literal),
    /// `${VAR}`: copied from the host environment at launch.
    Host {
        /// The host variable.
        var: String,
    },
    /// `?` or `?message`: asked for on the terminal at launch, not echoed.
    Prompt {
        /// The question to show, if the manifest gave one.
        message: Option<String>,
    },
}

impl EnvValue {
    /// The mode without the value.
    pub fn mode(&self) -> EnvMode {
        match self {
            EnvValue::Literal(_) => EnvMode::Literal,
            EnvValue::Host { .. } => EnvMode::Host,
            EnvValue::Prompt { .. } => EnvMode::Prompt,
        }
    }
}

/// A literal environment value. Its `Debug` and `Display` are redacted so that it cannot end
/// up in a log or a plan by accident; [`Literal::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Literal(String);

impl Literal {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Literal(value.into())
    }

    /// The value, for the one place that passes it to the bottle.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Literal(<redacted>)")
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How an environment variable gets its value, without the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvMode {
    /// Written in the manifest.
    Literal,
    /// Copied from the host.
    Host,
    /// Asked for at launch.
    Prompt,
}

impl EnvMode {
    /// `literal`, `host` or `prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvMode::Literal => "literal",
            EnvMode::Host => "host",
            EnvMode::Prompt => "prompt",
        }
    }
}

impl fmt::Display for EnvMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One git-gate entry: a remote the agent may fetch from and push to through the gate.
///
/// The same shape (and keys) in a bottle's `git:` list and in the gate's own config file, where
/// `IdentityFile` is the key's path inside the gate. Validate a list with
/// [`git::check_entries`](crate::git::check_entries).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitEntry {
    /// Unique name within the bottle (one bare repository each; the agent's URL is
    /// `http://git-gate:<port>/<name>.git`).
    #[serde(rename = "Name")]
    pub name: String,
    /// The SSH upstream.
    #[serde(rename = "Upstream")]
    pub upstream: GitUpstream,
    /// The private key (`~` expanded in a manifest). Its existence is checked at launch, not here.
    #[serde(rename = "IdentityFile")]
    pub identity_file: PathBuf,
    /// The upstream's host key (`ssh-ed25519 AAAA…`); the gate refuses to connect without it.
    #[serde(rename = "KnownHostKey")]
    pub known_host_key: String,
    /// `host → ip`: the address the gate dials for the upstream's host (the agent never
    /// resolves it).
    #[serde(
        rename = "ExtraHosts",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extra_hosts: BTreeMap<String, IpAddr>,
    /// The refs a push may create, update or delete; `None` means every branch (and every tag
    /// with `allow_tags`), see [`GitEntry::effective_push_refs`]. `Some([])` is fetch-only.
    #[serde(rename = "PushRefs", default, skip_serializing_if = "Option::is_none")]
    pub push_refs: Option<Vec<RefPattern>>,
    /// Non-fast-forward updates (and moving an existing tag) are allowed.
    #[serde(rename = "AllowForce", default, skip_serializing_if = "is_false")]
    pub allow_force: bool,
    /// Deleting a ref is allowed.
    #[serde(rename = "AllowDelete", default, skip_serializing_if = "is_false")]
    pub allow_delete: bool,
    /// Creating tags (`refs/tags/…`) is allowed; moving or deleting one also needs
    /// `allow_force` or `allow_delete`.
    #[serde(rename = "AllowTags", default, skip_serializing_if = "is_false")]
    pub allow_tags: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A parsed `ssh://user@host[:port]/path` upstream ([`GitUpstream::parse`]); its `Display`
/// writes it back in that form (brackets around an IPv6 host, no `:22`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitUpstream {
    /// The SSH user.
    pub user: String,
    /// The host name or IP (an IPv6 address without brackets).
    pub host: String,
    /// The port (22 when absent).
    pub port: u16,
    /// The repository path, starting with `/`.
    pub path: String,
}

impl fmt::Display for GitUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://{}@", self.user)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if self.port != 22 {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)
    }
}

/// Egress settings of a bottle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// The effective route table: Claude Code's required hosts, then the bottle's routes; a
    /// bottle route replaces a required one for the same host.
    pub routes: Vec<EffectiveRoute>,
    /// What the egress logs.
    pub log: crate::route::LogMode,
    /// Extra CA certificates (host paths, `~` expanded) the egress trusts upstream for the
    /// routes **without** `auth`; a route with `auth` trusts only its own `trust`.
    pub trust: Vec<PathBuf>,
    /// Existing Docker networks the egress joins.
    pub networks: Vec<String>,
}

impl Egress {
    /// The routes alone, in table order, as the egress config wants them.
    pub fn route_table(&self) -> Vec<Route> {
        self.routes.iter().map(|r| r.route.clone()).collect()
    }
}

/// A route of the effective table and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRoute {
    /// The route.
    pub route: Route,
    /// Where it comes from.
    pub source: RouteSource,
}

/// Where an effective route comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteSource {
    /// A host Claude Code itself needs; its `auth`, if any, carries the host's Claude credential
    /// (see [`ClaudeAuth`]).
    ClaudeCode,
    /// The named bottle (this one or one it extends).
    Bottle(String),
}

impl RouteSource {
    /// `claude-code` or the bottle's name.
    pub fn label(&self) -> &str {
        match self {
            RouteSource::ClaudeCode => "claude-code",
            RouteSource::Bottle(name) => name,
        }
    }
}

/// The placeholder credential variable the agent holds so that Claude Code sends requests (the
/// egress swaps in the real one): `(name, value)`, derived from the effective
/// `api.anthropic.com` route's auth.
pub(crate) fn placeholder_for(routes: &[EffectiveRoute]) -> Option<(&'static str, &'static str)> {
    let auth = crate::builtin::claude_route_auth(routes.iter().map(|r| &r.route))?;
    Some(match auth {
        RouteAuth::Scheme { .. } => ClaudeAuth::OAuthToken.placeholder_env(),
        RouteAuth::Header { .. } => ClaudeAuth::ApiKey.placeholder_env(),
    })
}

impl Bottle {
    /// The variable the agent must hold as a placeholder so Claude Code talks to the API through
    /// the egress, which injects the real credential: `Some(("CLAUDE_CODE_OAUTH_TOKEN", "…"))`
    /// for a Bearer route, `Some(("ANTHROPIC_API_KEY", "…"))` for a header route, `None` when
    /// the `api.anthropic.com` route injects nothing. Not a secret.
    pub fn claude_placeholder_env(&self) -> Option<(&'static str, &'static str)> {
        placeholder_for(&self.egress.routes)
    }
}
