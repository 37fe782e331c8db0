//! The one error type of bottle-core.

use std::path::PathBuf;

use bottle_manifest::{escape, escape_path};

/// A boxed error from a collaborator (a backend, the manifest, a prompt), kept as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in bottle-core. Each message is one sentence saying what is wrong,
/// then what to do about it. Paths and names that a user or a repository chose are shown
/// through [`escape_path`]/[`escape`], so that no message carries a terminal escape.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec names an agent the manifest does not define.
    #[error(
        "agent `{name}` is not defined; known agents: {known}. Create `agents/{name}.md` under \
         $CLAUDE_BOTTLE_HOME or `.claude-bottle/agents/` in the project, or pick a known one.",
        name = escape(name),
        known = list_or_none(known)
    )]
    UnknownAgent {
        /// The requested agent.
        name: String,
        /// The agents the manifest defines.
        known: Vec<String>,
    },

    /// The manifest could not produce the agent's effective definition.
    #[error("the manifest for agent `{agent}` is invalid: {source}")]
    Manifest {
        /// The requested agent.
        agent: String,
        /// The manifest's own error (it names file, line and column).
        source: BoxError,
    },

    /// A skill name that is not a single folder name (it would escape the skills folder).
    #[error(
        "skill name `{skill}` of agent `{agent}` is not a folder name; name a folder directly \
         under ~/.claude/skills/ (no `/`, `.` or `..`).",
        skill = escape(skill)
    )]
    InvalidSkillName {
        /// The agent naming the skill.
        agent: String,
        /// The offending name.
        skill: String,
    },

    /// A skill the agent names is not a folder on the host.
    #[error(
        "skill `{skill}` of agent `{agent}` was not found at {path}; create that folder (or remove \
         the skill from the agent), then run again.",
        skill = escape(skill),
        path = escape_path(path)
    )]
    SkillNotFound {
        /// The agent naming the skill.
        agent: String,
        /// The skill name.
        skill: String,
        /// Where it was looked for.
        path: PathBuf,
    },

    /// A git entry's `IdentityFile` is not a file on the host.
    #[error(
        "the IdentityFile of git entry `{entry}` was not found at {path}; create the key there or \
         point `IdentityFile` at an existing key in the bottle's `git` entry.",
        path = escape_path(path)
    )]
    GitIdentityFileMissing {
        /// The git entry's `Name`.
        entry: String,
        /// The expanded path.
        path: PathBuf,
    },

    /// An egress `trust` certificate is not a file on the host.
    #[error(
        "the CA certificate {path} listed in the bottle's `egress.trust` was not found; put the \
         certificate there or remove it from `trust`.",
        path = escape_path(path)
    )]
    TrustFileMissing {
        /// The path.
        path: PathBuf,
    },

    /// Copying the working directory would hand the agent one of the user's secret stores.
    #[error(
        "copying the working directory {cwd} into the bottle would hand the agent {what} \
         ({holds}); cd into the project folder the agent should see, or start without copying \
         the working directory.",
        cwd = escape_path(cwd),
        holds = escape_path(holds)
    )]
    CwdHoldsSecrets {
        /// The working directory.
        cwd: PathBuf,
        /// The secret store it is or holds.
        holds: PathBuf,
        /// What that is, for people (`your SSH keys`).
        what: &'static str,
    },

    /// A git config of the working tree cannot be copied without its credentials.
    #[error(
        "the git config {path} cannot be copied into the bottle with its credentials removed: \
         {reason}; fix or remove that file (the copy never carries a git config it could not \
         check), then run again.",
        path = escape_path(path)
    )]
    GitConfigCopy {
        /// The config file on the host.
        path: PathBuf,
        /// Why, for people.
        reason: String,
    },

    /// A `${VAR}` env entry names a host variable that is not set.
    #[error(
        "env entry `{name}` copies host variable `{var}`, which is not set; export {var} in the \
         shell that runs claude-bottle, or change the entry."
    )]
    HostEnvMissing {
        /// The env entry's name inside the bottle.
        name: String,
        /// The host variable it copies.
        var: String,
    },

    /// An egress route's credential names a host variable that is not set.
    #[error(
        "egress route `{host}` injects a credential from host variable `{token_ref}`, which is not \
         set; export {token_ref} in the shell that runs claude-bottle, or remove the route's `auth`."
    )]
    TokenRefMissing {
        /// The route's host.
        host: String,
        /// The variable named by `token_ref`.
        token_ref: String,
    },

    /// An egress route's credential uses the name the bottle's own proxy token goes by.
    #[error(
        "egress route `{host}` takes its credential from `{token_ref}`, the name the egress reads \
         the bottle's own proxy token from; export the credential under another name and point \
         the route's `token_ref` at it."
    )]
    TokenRefReserved {
        /// The route's host.
        host: String,
        /// The variable named by `token_ref`.
        token_ref: String,
    },

    /// Asking for a `?` env entry failed (no terminal, input closed, ...).
    #[error("could not read a value for env entry `{name}`: {source}")]
    Prompt {
        /// The env entry's name.
        name: String,
        /// Why the prompt failed.
        source: BoxError,
    },

    /// A string that is not an identity (`<agent>-<5 base36 chars>`).
    #[error(
        "`{value}` is not a bottle identity; identities look like `researcher-m3hxd` (see \
         `claude-bottle list active`).",
        value = escape(value)
    )]
    InvalidIdentity {
        /// The rejected string.
        value: String,
    },

    /// An agent name that cannot start an identity.
    #[error(
        "agent name `{name}` cannot name a bottle; use lower-case letters, digits and `-`, \
         starting with a letter.",
        name = escape(name)
    )]
    InvalidAgentName {
        /// The rejected name.
        name: String,
    },

    /// `resume` for an identity with no kept state.
    #[error(
        "no kept state for bottle `{identity}` at {dir}; only bottles that crashed or were \
         interrupted can be resumed.",
        dir = escape_path(dir)
    )]
    StateNotFound {
        /// The identity asked for.
        identity: String,
        /// Where the state was looked for.
        dir: PathBuf,
    },

    /// `CLAUDE_BOTTLE_SAVE_LIMIT` is not a size.
    #[error(
        "CLAUDE_BOTTLE_SAVE_LIMIT=`{value}` is not a size; give bytes or a size such as 512MiB \
         or 2GiB.",
        value = escape(value)
    )]
    SaveLimit {
        /// The rejected value.
        value: String,
    },

    /// Reading or writing the state directory failed.
    #[error(
        "could not {action} bottle state at {path}: {source}; check the permissions of that folder.",
        path = escape_path(path)
    )]
    StateIo {
        /// What was being done (`write`, `read`, `remove`, `list`).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A state file that does not parse.
    #[error(
        "bottle state at {path} is corrupt: {source}; remove that folder to forget the bottle.",
        path = escape_path(path)
    )]
    StateFormat {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },

    /// `CLAUDE_BOTTLE_BACKEND` or `--backend` names a backend that is not registered.
    #[error(
        "unknown backend `{name}` (from {origin}); known backends: {known}. Choose one of them \
         with --backend or CLAUDE_BOTTLE_BACKEND.",
        name = escape(name),
        known = list_or_none(known)
    )]
    UnknownBackend {
        /// The requested backend.
        name: String,
        /// Where the name came from: `--backend`, `CLAUDE_BOTTLE_BACKEND`, `the default`, or the
        /// caller's own origin (such as a resume state).
        origin: &'static str,
        /// The registered backends.
        known: Vec<String>,
    },

    /// A plan was handed to a backend other than the one that prepared it.
    #[error(
        "a plan prepared by backend `{prepared_by}` was given to backend `{given_to}`; prepare \
         the plan with the backend that launches it."
    )]
    PlanMismatch {
        /// The backend that made the plan.
        prepared_by: String,
        /// The backend it was given to.
        given_to: String,
    },

    /// Installing the Ctrl-C / SIGTERM / SIGHUP handlers failed.
    #[error("could not install the signal handlers that guarantee teardown: {source}")]
    Signals {
        /// The I/O error from the runtime.
        source: std::io::Error,
    },

    /// The bottle grants something its backend does not implement (see
    /// [`crate::capability`]), and the user did not accept launching without it.
    #[error(
        "the {backend} backend does not implement {}, which this bottle grants; nothing was \
         launched",
        list_features(features)
    )]
    Unimplemented {
        /// The backend.
        backend: String,
        /// The grants it lacks.
        features: Vec<crate::capability::Feature>,
    },

    /// A provisioning command inside the bottle failed.
    #[error("could not {action} (exit code {exit_code} inside the bottle): {detail}")]
    InBottle {
        /// What was being done, as a verb phrase.
        action: String,
        /// The command's exit code.
        exit_code: i32,
        /// Its standard error, trimmed.
        detail: String,
    },

    /// A step of the lifecycle failed; `source` says why.
    #[error("{step} failed: {source}")]
    Step {
        /// The failing step.
        step: crate::events::Step,
        /// The step's error.
        source: Box<Error>,
    },

    /// A backend operation failed.
    #[error("{backend}: could not {action}: {source}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What it was doing, as a verb phrase (`create network claude-bottle-net-x`).
        action: String,
        /// The backend's own error.
        source: BoxError,
    },
}

impl Error {
    /// Wraps a backend's own error; `action` is a verb phrase ("start container claude-bottle-x").
    pub fn backend(
        backend: impl Into<String>,
        action: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            action: action.into(),
            source: source.into(),
        }
    }

    /// The lifecycle step this error came from, if it was raised by one.
    pub fn step(&self) -> Option<crate::events::Step> {
        match self {
            Error::Step { step, .. } => Some(*step),
            _ => None,
        }
    }
}

fn list_features(features: &[crate::capability::Feature]) -> String {
    let names: Vec<&str> = features.iter().map(|f| f.as_str()).collect();
    names.join(" and ")
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// `Result` with bottle-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
