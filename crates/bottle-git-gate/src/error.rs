//! The crate's one error type.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use bottle_manifest::Diagnostic;

/// Everything that can go wrong setting up or running the gate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The configuration is invalid; every problem is listed with its position.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or directory could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A git command the gate runs for itself failed (preparing a repository).
    #[error("`{command}` failed: {message}")]
    Git {
        /// The command, without secrets (the gate never puts one on a command line).
        command: String,
        /// git's own last words.
        message: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free address with `listen:` or `--listen`")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The secret scanner could not be built from the known secrets.
    #[error("the known secrets cannot be scanned for: {0}")]
    Scanner(#[from] bottle_secrets::Error),
    /// `bottle-git-gate pre-receive` was started outside a push (no entry, no config).
    #[error("{0}")]
    Hook(String),
    /// A running gate did not answer its health check.
    #[error("the gate at {addr} is not healthy: {reason}")]
    Unhealthy {
        /// Where it was asked.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

impl GateError {
    /// `map_err(GateError::io("git rev-list"))`: an I/O failure on a file or a program.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GateError {
        let path = path.into();
        move |source| GateError::Io { path, source }
    }
}

/// An invalid configuration: one or more problems, each a [`Diagnostic`] pointing at the
/// file, line and column (the manifest's own renderer, so every config error of the project
/// reads the same), or a field path when the config did not come from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<ConfigProblem>,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// At a place in the file.
    At(Diagnostic),
    /// In a config built in code: the key path (`entries[0].KnownHostKey`) and the message.
    Field {
        /// The key path.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    /// One problem after the other, separated by a blank line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            match problem {
                ConfigProblem::At(d) => write!(f, "{d}")?,
                ConfigProblem::Field { field, message } => write!(f, "{field}: {message}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
