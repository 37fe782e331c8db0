use std::sync::Arc;

/// Why a [`Scanner`](crate::Scanner) could not be built. Only known secrets can make it fail:
/// the built-in detectors always build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A known secret is too short to be told apart from ordinary text.
    #[error(
        "the known secret `{name}` is {len} bytes long; at least {min} are needed to find it without false alarms: leave it out of the scan, or use a longer secret"
    )]
    KnownSecretTooShort {
        /// The name it was given.
        name: Arc<str>,
        /// Its length in bytes.
        len: usize,
        /// The shortest length accepted.
        min: usize,
    },
    /// A known secret is longer than a stream may hold back.
    #[error(
        "the known secret `{name}` is {len} bytes long; at most {max} are supported, so that a stream's hold-back stays bounded: give a distinctive part of it (up to {max} bytes) instead"
    )]
    KnownSecretTooLong {
        /// The name it was given.
        name: Arc<str>,
        /// Its length in bytes.
        len: usize,
        /// The longest length accepted.
        max: usize,
    },
    /// The literals of all known secrets together are more than the automaton can hold.
    #[error(
        "the known secrets make a matcher too large to build ({source}): give fewer or shorter secrets"
    )]
    TooManyKnownSecrets {
        /// What the automaton builder reported.
        #[source]
        source: aho_corasick::BuildError,
    },
}
