//! Bottle identities: `<agent>-<5 random base36 chars>`, e.g. `researcher-m3hxd`.
//!
//! The identity names every resource of one bottle (and labels it, see [`crate::labels`]), names
//! its state folder, and is what `resume` takes. The random suffix lets one agent run in several
//! bottles at once; five base36 characters (60 million values) keep collisions negligible for
//! the handful of bottles a machine runs.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The identity of one bottle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identity(String);

impl Identity {
    /// Length of the random suffix.
    pub const SUFFIX_LEN: usize = 5;

    /// A fresh identity for `agent` with a random suffix.
    pub fn generate(agent: &str) -> Result<Self> {
        let mut rng = rand::rng();
        let suffix: String = (0..Self::SUFFIX_LEN)
            .map(|_| char::from(BASE36[rng.random_range(0..BASE36.len())]))
            .collect();
        Self::from_parts(agent, &suffix)
    }

    /// The identity `<agent>-<suffix>`, validated (for tests and tools that pick the suffix).
    pub fn from_parts(agent: &str, suffix: &str) -> Result<Self> {
        if !is_agent_name(agent) {
            return Err(Error::InvalidAgentName {
                name: agent.to_owned(),
            });
        }
        Self::parse(&format!("{agent}-{suffix}"))
    }

    /// Parses an identity given by a user (`resume <identity>`).
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = || Error::InvalidIdentity {
            value: value.to_owned(),
        };
        let (agent, suffix) = value.rsplit_once('-').ok_or_else(invalid)?;
        let suffix_ok =
            suffix.len() == Self::SUFFIX_LEN && suffix.bytes().all(|b| BASE36.contains(&b));
        if !suffix_ok || !is_agent_name(agent) {
            return Err(invalid());
        }
        Ok(Identity(value.to_owned()))
    }

    /// The identity as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The agent part.
    pub fn agent(&self) -> &str {
        &self.0[..self.0.len() - Self::SUFFIX_LEN - 1]
    }

    /// The random part.
    pub fn suffix(&self) -> &str {
        &self.0[self.0.len() - Self::SUFFIX_LEN..]
    }
}

/// `[a-z][a-z0-9-]*`: the manifest's rule for names, which also makes identities valid container,
/// network and folder names.
pub fn is_agent_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Identity {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        Identity::parse(&value)
    }
}

impl From<Identity> for String {
    fn from(value: Identity) -> Self {
        value.0
    }
}

impl std::str::FromStr for Identity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Identity::parse(s)
    }
}
