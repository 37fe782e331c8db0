//! [`HostPattern`]: what a route's `host` may say.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::RouteError;

/// The egress's own introspection host (`GET /health`, `GET /routes`); no route can name it.
pub const INTROSPECTION_HOST: &str = "_egress.local";

/// A route's `host`, validated: an exact DNS name (`api.example.com`), a wildcard over
/// sub-domains (`*.example.com`, which never matches `example.com` itself), or an IP literal.
///
/// Always lower case, without a trailing dot, scheme, port or path, so the text is the one form
/// every comparison uses. IP literals are kept in canonical form (`::ffff:10.0.0.7` is
/// `10.0.0.7`); `[::1]` is accepted for `::1`.
///
/// ```
/// use bottle_manifest::route::{HostKind, HostPattern};
///
/// let p: HostPattern = "*.example.com".parse()?;
/// assert_eq!(p.kind(), HostKind::Wildcard { suffix: "example.com" });
/// assert!("*.com".parse::<HostPattern>().is_err());
/// assert_eq!("[::ffff:10.0.0.7]".parse::<HostPattern>()?.to_string(), "10.0.0.7");
/// # Ok::<(), bottle_manifest::route::RouteError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern {
    /// The canonical text: `name`, `*.suffix` or the address.
    text: String,
    ip: Option<IpAddr>,
}

/// What a [`HostPattern`] matches, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind<'a> {
    /// Exactly this name.
    Exact(&'a str),
    /// Any name ending in `.suffix`, at any depth; never `suffix` itself.
    Wildcard {
        /// The part after `*.`.
        suffix: &'a str,
    },
    /// Exactly this address.
    Ip(IpAddr),
}

impl HostPattern {
    /// What the pattern matches.
    pub fn kind(&self) -> HostKind<'_> {
        match (self.ip, self.text.strip_prefix("*.")) {
            (Some(ip), _) => HostKind::Ip(ip),
            (None, Some(suffix)) => HostKind::Wildcard { suffix },
            (None, None) => HostKind::Exact(&self.text),
        }
    }

    /// Whether this is a `*.suffix` pattern.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.kind(), HostKind::Wildcard { .. })
    }

    /// The IP literal, if the pattern is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for HostPattern {
    type Err = RouteError;

    fn from_str(host: &str) -> Result<Self, RouteError> {
        let shown = || crate::escape::escape(host).into_owned();
        if host.is_empty() {
            return Err(RouteError::HostEmpty);
        }
        if host.contains("://") {
            return Err(RouteError::HostIsUrl { host: shown() });
        }
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return Ok(HostPattern {
                text: ip.to_string(),
                ip: Some(ip),
            });
        }
        if host.contains(['/', ':', '?', '#', '@']) {
            return Err(RouteError::HostHasPortOrPath { host: shown() });
        }
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(RouteError::HostNotLowerCase {
                host: shown(),
                lower: crate::escape::escape(&host.to_ascii_lowercase()).into_owned(),
            });
        }
        if host.len() > 1 && host.ends_with('.') {
            return Err(RouteError::HostTrailingDot {
                host: shown(),
                without: crate::escape::escape(host.trim_end_matches('.')).into_owned(),
            });
        }
        let name = match host.strip_prefix("*.") {
            Some(suffix) => {
                if suffix.contains('*') {
                    return Err(RouteError::WildcardMisplaced { host: shown() });
                }
                check_name(suffix, host)?;
                if !suffix.contains('.') {
                    return Err(RouteError::WildcardTooBroad { host: shown() });
                }
                suffix
            }
            None if host.contains('*') => {
                return Err(RouteError::WildcardMisplaced { host: shown() });
            }
            None => {
                check_name(host, host)?;
                host
            }
        };
        if name == INTROSPECTION_HOST {
            return Err(RouteError::HostIsIntrospection);
        }
        Ok(HostPattern {
            text: host.to_owned(),
            ip: None,
        })
    }
}

/// A DNS name: labels of letters, digits, `-` and `_`, not starting or ending with `-`, at
/// most 253 bytes; the last label is not all digits (that would be an IP address in another
/// notation, such as `127.1`, which getaddrinfo reads as `127.0.0.1`).
fn check_name(name: &str, host: &str) -> Result<(), RouteError> {
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(RouteError::HostInvalid {
            host: crate::escape::escape(host).into_owned(),
        });
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(RouteError::HostNumeric {
            host: crate::escape::escape(host).into_owned(),
        });
    }
    Ok(())
}

impl TryFrom<String> for HostPattern {
    type Error = RouteError;

    fn try_from(host: String) -> Result<Self, RouteError> {
        host.parse()
    }
}

impl TryFrom<&str> for HostPattern {
    type Error = RouteError;

    fn try_from(host: &str) -> Result<Self, RouteError> {
        host.parse()
    }
}

impl From<HostPattern> for String {
    fn from(host: HostPattern) -> String {
        host.text
    }
}

/// The text, quoted, like the string it is.
impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<str> for HostPattern {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for HostPattern {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}
