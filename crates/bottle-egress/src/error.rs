//! The crate's one error type.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong setting up or running the egress.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The configuration is invalid; every problem is listed with its position.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key could not be minted or parsed.
    #[error("certificate error: {message}")]
    Certificate {
        /// What failed.
        message: String,
    },
    /// The TLS stack could not be configured.
    #[error("TLS setup failed: {message}")]
    Tls {
        /// What failed.
        message: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free address with `listen:`")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The egress task ended before it could answer.
    #[error("the egress server has stopped")]
    Stopped,
}

/// An invalid configuration: one or more problems, each pointing at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The key path, e.g. `routes[2].auth.token_ref`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            issues: vec![ConfigIssue {
                position: None,
                field: field.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    /// One line per problem: `file:line:col: message` (or `field: message` when the config
    /// did not come from a file).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match (&self.file, issue.position) {
                (Some(file), Some((line, col))) => {
                    write!(f, "{}:{line}:{col}: {}", file.display(), issue.message)?;
                }
                (Some(file), None) => {
                    write!(f, "{}: {}: {}", file.display(), issue.field, issue.message)?;
                }
                (None, Some((line, col))) => write!(f, "{line}:{col}: {}", issue.message)?,
                (None, None) => write!(f, "{}: {}", issue.field, issue.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
