//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in the Docker backend. Each variant carries what a user needs to
/// act on it, and its message is one sentence plus the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The Docker engine does not answer (or its TLS handshake fails).
    #[error("cannot reach the Docker engine{} ({detail}); {fix}", at(engine))]
    EngineUnreachable {
        /// The endpoint, as the preflight shows it, when known.
        engine: Option<String>,
        /// What the client saw.
        detail: String,
        /// What to do, for that endpoint.
        fix: String,
    },
    /// The engine's address (`DOCKER_HOST`, a docker context) cannot be used: it does not parse,
    /// names a transport claude-bottle refuses, or its TLS material is missing.
    #[error("{setting} {problem}; {fix}")]
    EngineEndpoint {
        /// What named it, with its value: ``DOCKER_HOST `ssh://build-box` ``.
        setting: String,
        /// What is wrong, as the rest of the sentence.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// A call to the engine failed.
    #[error("Docker {operation} `{object}` failed: {detail}")]
    Engine {
        /// The operation, e.g. `create container`.
        operation: &'static str,
        /// The container, network or image it was about.
        object: String,
        /// The engine's message.
        detail: String,
    },
    /// An image build failed; the message is the builder's own error line.
    #[error("building image `{tag}` failed: {detail}; fix the Dockerfile or the network and retry")]
    Build {
        /// The tag being built.
        tag: String,
        /// The builder's error.
        detail: String,
    },
    /// An image the bottle needs is not there and this backend does not build it.
    #[error("image `{image}` is missing; {hint}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// How to get it.
        hint: String,
    },
    /// A host file could not be read (a Dockerfile override, a CA certificate, a skill).
    #[error("cannot read `{path}`: {source}")]
    HostFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bottle identity that cannot be a Docker object name.
    #[error(
        "`{identity}` is not a valid bottle identity; use lower-case letters, digits and `-`, \
         starting with a letter"
    )]
    InvalidIdentity {
        /// The rejected identity.
        identity: String,
    },
    /// A configuration value (environment or manifest) that does not parse.
    #[error("invalid {name} `{value}`: {hint}")]
    InvalidSetting {
        /// The setting's name, e.g. `CLAUDE_BOTTLE_MEMORY`.
        name: String,
        /// The rejected value.
        value: String,
        /// What is expected.
        hint: String,
    },
    /// A sidecar did not become ready, or stopped.
    #[error("the {role} sidecar `{container}` did not become ready: {detail}")]
    SidecarNotReady {
        /// Which sidecar.
        role: bottle_core::Role,
        /// Its container.
        container: String,
        /// What was seen, including the tail of its log when it exited.
        detail: String,
    },
    /// A value the launch needs was not supplied (a credential or env value named in the plan).
    #[error("no value for `{name}`, which the bottle needs; set it on the host and retry")]
    MissingValue {
        /// The variable name.
        name: String,
    },
    /// The recipe could not make a sidecar's files (a trust root unreadable, the CA not
    /// minted).
    #[error(transparent)]
    Recipe(#[from] bottle_recipe::RecipeError),
    /// A host file changed size while it was packed: the archive is abandoned, never sent with
    /// the file cut short or grown (its bytes would be read as the next entries' headers).
    #[error(
        "`{path}` changed while it was copied into the bottle ({detail}); copy again once \
         nothing writes to it, or move it out of the tree"
    )]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// How, e.g. `it grew past the 12 bytes it had when it was listed`.
        detail: String,
    },
    /// Building a tar stream failed.
    #[error("cannot pack `{path}` for the bottle: {source}")]
    Pack {
        /// What was being packed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl DockerError {
    /// Wraps a bollard error from `operation` on `object`, recognising an unreachable engine.
    pub(crate) fn engine(
        operation: &'static str,
        object: impl Into<String>,
        err: bollard::errors::Error,
    ) -> Self {
        use bollard::errors::Error as E;
        match err {
            E::DockerResponseServerError { message, .. } => DockerError::Engine {
                operation,
                object: object.into(),
                detail: message,
            },
            E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::SocketNotFoundError(_)
            | E::RequestTimeoutError => DockerError::unreachable(None, &err),
            E::HyperLegacyError { err: ref legacy } if legacy.is_connect() => {
                DockerError::unreachable(None, &err)
            }
            other => DockerError::Engine {
                operation,
                object: object.into(),
                detail: other.to_string(),
            },
        }
    }
}

impl DockerError {
    /// For an engine that cannot be used (it does not answer, or its address or certificates
    /// are wrong): the sentence without its fix, and the fix, for a caller that shows the fix
    /// apart (the CLI's `hint:`). `None` for every other error.
    pub fn engine_fix(&self) -> Option<(String, &str)> {
        match self {
            DockerError::EngineUnreachable {
                engine,
                detail,
                fix,
            } => Some((
                format!("cannot reach the Docker engine{} ({detail})", at(engine)),
                fix,
            )),
            DockerError::EngineEndpoint {
                setting,
                problem,
                fix,
            } => Some((format!("{setting} {problem}"), fix)),
            _ => None,
        }
    }

    /// Names `endpoint` in an unreachable-engine error that does not name one yet (and gives
    /// the fix for it); any other error unchanged.
    pub(crate) fn at(self, endpoint: &crate::endpoint::EngineEndpoint) -> Self {
        match self {
            DockerError::EngineUnreachable {
                engine: None,
                detail,
                ..
            } => DockerError::EngineUnreachable {
                engine: Some(endpoint.to_string()),
                detail,
                fix: endpoint.unreachable_fix(),
            },
            other => other,
        }
    }

    /// The engine at `engine` (the local default when `None`) did not answer: the innermost
    /// cause of `err` (`Connection refused`, a TLS alert) rather than the client's wrapping.
    pub(crate) fn unreachable(
        engine: Option<&crate::endpoint::EngineEndpoint>,
        err: &(dyn std::error::Error + 'static),
    ) -> Self {
        let mut cause = err;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let detail = cause.to_string();
        let detail = if detail.is_empty() {
            err.to_string()
        } else {
            detail
        };
        let fix = match engine {
            Some(endpoint) => endpoint.unreachable_fix(),
            None => crate::endpoint::EngineEndpoint::default().unreachable_fix(),
        };
        DockerError::EngineUnreachable {
            engine: engine.map(ToString::to_string),
            detail,
            fix,
        }
    }
}

/// ` at tcp://build-box:2376 (TLS, DOCKER_HOST)`, or nothing.
fn at(engine: &Option<String>) -> String {
    engine
        .as_deref()
        .map_or_else(String::new, |engine| format!(" at {engine}"))
}

/// The result type of this crate.
pub type Result<T, E = DockerError> = std::result::Result<T, E>;
