//! The one error type of this crate.

use std::path::PathBuf;

/// What can go wrong while making a bottle's sidecars. Each message says what, then what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// A host file a sidecar needs (an `egress.trust` certificate, a git entry's key) could not
    /// be read.
    #[error("cannot read {path} for the bottle: {source}; check that it exists and is readable")]
    HostFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The per-bottle CA could not be minted.
    #[error("could not mint the bottle's CA: {0}")]
    Ca(#[source] bottle_egress::EgressError),
    /// The operating system's random source failed (for the proxy token).
    #[error("could not mint the bottle's proxy token: the system's random source failed ({0})")]
    Random(String),
    /// A sidecar's config could not be written.
    #[error("could not write a sidecar's config: {0}")]
    Config(#[source] serde_json::Error),
}

/// The result type of this crate.
pub type Result<T, E = RecipeError> = std::result::Result<T, E>;
