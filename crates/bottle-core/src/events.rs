//! Progress as data. The lifecycle and backends report [`Event`]s to an [`EventSink`]; the CLI
//! renders them (spinners on a terminal, plain lines otherwise, nothing with `--quiet`), an
//! embedding tool may log them or forward them over a channel.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use crate::identity::Identity;
use crate::lifecycle::Signal;

/// A step of a bottle's life. Serialised as its [`id`](Step::id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Build or fetch images, create networks and containers (or a VM), start them.
    Launch,
    /// Install the per-bottle CA into the agent's trust store.
    ProvisionCa,
    /// Write Claude Code's own configuration (onboarding, trust, theme, permission mode).
    ConfigureClaudeCode,
    /// Copy the agent's prompt in.
    ProvisionPrompt,
    /// Copy the agent's skills in.
    ProvisionSkills,
    /// Copy the user's working tree (with its `.git`) in, with `--cwd`.
    CopyWorkdir,
    /// Point the agent's git at the git gate (`/etc/gitconfig`), for a bottle with git entries.
    ProvisionGit,
    /// Register the supervise sidecar with Claude Code.
    ProvisionSupervise,
    /// Provisioning as a whole (a backend that overrides `provision` entirely).
    Provision,
    /// Putting back what a kept bottle saved (its workspace and Claude Code's conversations),
    /// when resuming, before the session starts.
    Restore,
    /// Claude Code (or the `--exec` script) running in the bottle.
    Session,
    /// Saving what the agent would lose (workspace, conversations) into the state folder, when
    /// the state is kept, before teardown.
    Save,
    /// Removing what launch created.
    Teardown,
}

impl Step {
    /// The provisioning steps, in the order `provision` runs them.
    pub const PROVISION: [Step; 7] = [
        Step::ProvisionCa,
        Step::ConfigureClaudeCode,
        Step::ProvisionPrompt,
        Step::ProvisionSkills,
        Step::CopyWorkdir,
        Step::ProvisionGit,
        Step::ProvisionSupervise,
    ];

    /// Every step, in the order of a bottle's life.
    pub const ALL: [Step; 13] = [
        Step::Launch,
        Step::ProvisionCa,
        Step::ConfigureClaudeCode,
        Step::ProvisionPrompt,
        Step::ProvisionSkills,
        Step::CopyWorkdir,
        Step::ProvisionGit,
        Step::ProvisionSupervise,
        Step::Provision,
        Step::Restore,
        Step::Session,
        Step::Save,
        Step::Teardown,
    ];

    /// The step's stable identifier, as serialised (`provision-ca`, `copy-workdir`); the
    /// inverse of [`FromStr`](std::str::FromStr).
    pub fn id(self) -> &'static str {
        match self {
            Step::Launch => "launch",
            Step::ProvisionCa => "provision-ca",
            Step::ConfigureClaudeCode => "configure-claude-code",
            Step::ProvisionPrompt => "provision-prompt",
            Step::ProvisionSkills => "provision-skills",
            Step::CopyWorkdir => "copy-workdir",
            Step::ProvisionGit => "provision-git",
            Step::ProvisionSupervise => "provision-supervise",
            Step::Provision => "provision",
            Step::Restore => "restore",
            Step::Session => "session",
            Step::Save => "save",
            Step::Teardown => "teardown",
        }
    }

    /// A short human name: `launch`, `install CA`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Launch => "launch",
            Step::ProvisionCa => "install CA",
            Step::ConfigureClaudeCode => "configure Claude Code",
            Step::ProvisionPrompt => "copy prompt",
            Step::ProvisionSkills => "copy skills",
            Step::CopyWorkdir => "copy working tree",
            Step::ProvisionGit => "configure git",
            Step::ProvisionSupervise => "register supervise",
            Step::Provision => "provision",
            Step::Restore => "restore saved state",
            Step::Session => "session",
            Step::Save => "save state",
            Step::Teardown => "teardown",
        }
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl std::str::FromStr for Step {
    type Err = UnknownStep;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|step| step.id() == id)
            .ok_or_else(|| UnknownStep { id: id.to_owned() })
    }
}

/// A string that is no [`Step::id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{id}` is not a step; steps are {}", Step::ALL.map(Step::id).join(", "))]
pub struct UnknownStep {
    /// The rejected string.
    pub id: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened; no secret is ever carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// State for `resume` was written.
    StateWritten {
        /// The bottle.
        identity: Identity,
        /// Its state folder.
        dir: PathBuf,
    },
    /// A step began.
    StepStarted {
        /// The step.
        step: Step,
    },
    /// A step ended well.
    StepFinished {
        /// The step.
        step: Step,
    },
    /// A step failed (teardown follows).
    StepFailed {
        /// The step.
        step: Step,
        /// The error, as one line.
        message: String,
    },
    /// Progress within a step (an image build, a download).
    Progress {
        /// The step.
        step: Step,
        /// What is happening (`building image claude-bottle:latest`).
        message: String,
        /// Units done, when known.
        current: Option<u64>,
        /// Units in all, when known.
        total: Option<u64>,
    },
    /// A signal arrived; teardown follows.
    SignalReceived {
        /// The signal.
        signal: Signal,
    },
    /// A resource was removed (by teardown or cleanup).
    Removed {
        /// Kind of resource (`container`, `network`, ...).
        kind: String,
        /// Its name.
        name: String,
    },
    /// A host the bottle's egress refused during the session, reported by teardown before
    /// the egress goes (the agent's tools often say only `ERR_PROXY_TUNNEL`). Most refused
    /// first.
    Refused {
        /// The host (and port when not the default).
        host: String,
        /// How many requests to it were refused.
        count: u64,
        /// Why: the egress's deny reason codes (`host_not_allowed`, `path_not_allowed`, ...).
        reasons: Vec<String>,
    },
    /// Something the user should know that is not an error.
    Warning {
        /// One sentence.
        message: String,
    },
}

/// Where events go. Implementations must be cheap and must not block: they are called from the
/// lifecycle's task.
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn emit(&self, event: Event);
}

impl fmt::Debug for dyn EventSink + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}

/// Forwards to a channel (for a renderer on another task); a closed receiver drops events.
impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) {
        let _ = self.send(event);
    }
}

/// Keeps every event, in order (for tests and for tools that report at the end).
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_parse_back_and_are_what_serde_writes() {
        for step in Step::ALL {
            assert_eq!(step.id().parse::<Step>(), Ok(step));
            assert_eq!(serde_json::to_value(step).unwrap(), step.id());
        }
        let err = "provision-everything".parse::<Step>().unwrap_err();
        assert!(err.to_string().contains("copy-workdir"), "{err}");
    }
}
