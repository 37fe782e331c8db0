//! The small validated words of a route: [`PathPrefix`], [`Method`], [`Port`],
//! [`AuthHeader`], [`TokenRef`], and the path rules the egress applies to requests too.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::RouteError;

/// Implements the string plumbing of a validated word: `FromStr` (the one validator),
/// `TryFrom<String>`/`TryFrom<&str>`, `Display`, `as_str`, `Borrow<str>` and `PartialEq<str>`.
macro_rules! word {
    ($ty:ident) => {
        impl $ty {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $ty {
            type Error = RouteError;
            fn try_from(s: String) -> Result<Self, RouteError> {
                s.parse()
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = RouteError;
            fn try_from(s: &str) -> Result<Self, RouteError> {
                s.parse()
            }
        }
        impl From<$ty> for String {
            fn from(w: $ty) -> String {
                w.0
            }
        }
        /// The text, quoted: a word reads like the string it is.
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// A `path_allowlist` entry: a path prefix starting with `/`, ASCII without spaces, control
/// characters, `?`, `#` or `\`, and without `.`/`..` segments (literal, percent-encoded or with
/// `;` parameters) — the same segments the egress refuses in requests, so a prefix can always
/// match.
///
/// `/v1` allows `/v1` and `/v1/…` but not `/v1x`; a prefix ending in `/` is a plain string
/// prefix ([`PathPrefix::allows`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathPrefix(String);
word!(PathPrefix);

impl FromStr for PathPrefix {
    type Err = RouteError;

    fn from_str(path: &str) -> Result<Self, RouteError> {
        let shown = || crate::escape::escape(path).into_owned();
        if !path.starts_with('/') {
            return Err(RouteError::PathNotAbsolute { path: shown() });
        }
        if path
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b'#' | b'\\'))
        {
            return Err(RouteError::PathInvalidChar { path: shown() });
        }
        match path_problem(path) {
            None => Ok(PathPrefix(path.to_owned())),
            Some(_) => Err(RouteError::PathDotSegment { path: shown() }),
        }
    }
}

impl PathPrefix {
    /// Whether the prefix allows `path` (as sent): at a segment boundary, or as a plain string
    /// prefix when the prefix ends in `/`.
    pub fn allows(&self, path: &str) -> bool {
        if self.0.ends_with('/') {
            return path.starts_with(self.0.as_str());
        }
        path.strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// What makes a request path unsafe to check against path prefixes: an origin would read it as
/// another path than the one the prefixes were compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// A segment that is `.` or `..` once its `;` parameters are dropped and its
    /// percent-escapes decoded (`..;`, `%2e%2e`, `.%2E`), or an encoded `/` (`%2f`).
    DotSegment,
    /// A backslash, literal or encoded (`%5c`), or a full-width `.`, `/` or `\`: servers that
    /// normalize them turn them into path separators or dots.
    Backslash,
}

/// Why `path` (as sent, percent-encoded) cannot be checked against path prefixes, if it
/// cannot. Allocates only for segments holding `%`.
pub fn path_problem(path: &str) -> Option<PathProblem> {
    if path.contains('\\') {
        return Some(PathProblem::Backslash);
    }
    for segment in path.split('/') {
        if !segment.contains('%') {
            let bare = segment.split(';').next().unwrap_or("");
            if bare == "." || bare == ".." {
                return Some(PathProblem::DotSegment);
            }
            continue;
        }
        // Decode until nothing changes (an origin or a framework may decode twice).
        let mut decoded = percent_decode(segment);
        for _ in 0..3 {
            if !decoded.contains('%') {
                break;
            }
            let again = percent_decode(&decoded);
            if again == decoded {
                break;
            }
            decoded = again;
        }
        if decoded.contains(['\\', '\u{ff3c}', '\u{ff0f}', '\u{ff0e}']) {
            return Some(PathProblem::Backslash);
        }
        if decoded.contains('/') {
            return Some(PathProblem::DotSegment);
        }
        let bare = decoded.split(';').next().unwrap_or("");
        if bare == "." || bare == ".." {
            return Some(PathProblem::DotSegment);
        }
    }
    None
}

/// `%XX` escapes decoded (invalid ones and non-UTF-8 results kept as they are, lossily).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: at most 255.
            out.push(u8::try_from(h * 16 + l).unwrap_or(u8::MAX));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Methods of WebDAV, which can write to a server (a dumb-HTTP git push among others): the
/// egress never forwards them, so no route can list them.
pub const WEBDAV_METHODS: &[&str] = &[
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];

/// A `methods` entry: an upper-case HTTP method token (`GET`, `POST`), not a WebDAV method.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Method(String);
word!(Method);

impl FromStr for Method {
    type Err = RouteError;

    fn from_str(method: &str) -> Result<Self, RouteError> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(RouteError::MethodInvalid {
                method: crate::escape::escape(method).into_owned(),
            });
        }
        if WEBDAV_METHODS.contains(&method) {
            return Err(RouteError::MethodWebDav {
                method: method.to_owned(),
            });
        }
        Ok(Method(method.to_owned()))
    }
}

impl Method {
    /// Whether a request's method is this one (compared ASCII case-insensitively: only the same
    /// token matches).
    pub fn allows(&self, method: &str) -> bool {
        self.0.eq_ignore_ascii_case(method)
    }
}

/// A `ports` entry: 1 to 65535.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u16")]
pub struct Port(u16);

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Port {
    /// HTTPS's port, allowed when a route lists no `ports`.
    pub const HTTPS: Port = Port(443);
    /// Plain HTTP's port, allowed when a route lists no `ports`.
    pub const HTTP: Port = Port(80);

    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Port {
    type Error = RouteError;

    fn try_from(n: i64) -> Result<Self, RouteError> {
        u16::try_from(n)
            .ok()
            .filter(|p| *p != 0)
            .map(Port)
            .ok_or(RouteError::PortInvalid { port: n })
    }
}

impl TryFrom<u16> for Port {
    type Error = RouteError;

    fn try_from(n: u16) -> Result<Self, RouteError> {
        Port::try_from(i64::from(n))
    }
}

impl From<Port> for u16 {
    fn from(p: Port) -> u16 {
        p.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Headers that belong to one hop (RFC 9110 §7.6.1) plus the proxy's own credentials: the
/// egress never forwards them, and no route can inject one.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Headers that frame or route a request, which the egress sets itself: no route can inject
/// one either.
const FRAMING_HEADERS: &[&str] = &["host", "content-length"];

/// The header of an `auth: {header: …}` route: an HTTP token, stored lower case, and neither
/// one of [`HOP_BY_HOP_HEADERS`] nor `host` or `content-length`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AuthHeader(String);
word!(AuthHeader);

impl FromStr for AuthHeader {
    type Err = RouteError;

    fn from_str(header: &str) -> Result<Self, RouteError> {
        let token = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(RouteError::HeaderInvalid {
                header: crate::escape::escape(header).into_owned(),
            });
        }
        let lower = header.to_ascii_lowercase();
        if HOP_BY_HOP_HEADERS
            .iter()
            .chain(FRAMING_HEADERS)
            .any(|h| *h == lower)
        {
            return Err(RouteError::HeaderManaged { header: lower });
        }
        Ok(AuthHeader(lower))
    }
}

/// A `token_ref`: the name of the environment variable holding a credential
/// (`[A-Za-z_][A-Za-z0-9_]*`). Only the name is ever written down; the value stays in the
/// environment of whoever reads it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenRef(String);
word!(TokenRef);

impl FromStr for TokenRef {
    type Err = RouteError;

    fn from_str(name: &str) -> Result<Self, RouteError> {
        if is_env_name(name) {
            Ok(TokenRef(name.to_owned()))
        } else {
            Err(RouteError::TokenRefInvalid {
                name: crate::escape::escape(name).into_owned(),
            })
        }
    }
}

/// Whether `name` is a portable environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_at_segment_boundaries() {
        let p = |s: &str| s.parse::<PathPrefix>().unwrap();
        assert!(p("/health").allows("/health"));
        assert!(p("/health").allows("/health/x"));
        assert!(!p("/health").allows("/healthz"));
        assert!(p("/v1/").allows("/v1/messages"));
        assert!(!p("/v1/").allows("/v1"));
    }

    #[test]
    fn dot_segments_are_found_however_they_are_written() {
        for bad in [
            "/v1/../admin",
            "/v1/./x",
            "/v1/..",
            "/v1/..;/admin",
            "/v1/..;jsessionid=1/admin",
            "/v1/%2e%2e/admin",
            "/v1/%2E./admin",
            "/v1/.%2e;x/admin",
            "/v1/%252e%252e/admin",
            "/v1/..%3b/admin",
            "/v1/a%2fb",
        ] {
            assert_eq!(path_problem(bad), Some(PathProblem::DotSegment), "{bad}");
        }
        for bad in [
            "/v1\\..\\admin",
            "/v1/..%5c..%5cadmin",
            "/v1/%5C",
            "/v1/%EF%BC%8F",
        ] {
            assert_eq!(path_problem(bad), Some(PathProblem::Backslash), "{bad}");
        }
        for good in [
            "/",
            "/v1/messages",
            "/a..b/",
            "/v1/.well-known",
            "/x;y=1",
            "/%41",
        ] {
            assert_eq!(path_problem(good), None, "{good}");
        }
    }
}
