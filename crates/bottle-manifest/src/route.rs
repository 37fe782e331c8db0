//! Egress routes: the one route vocabulary of claude-bottle.
//!
//! A bottle manifest's `egress.routes` and the standalone egress proxy's `routes` are the same
//! YAML shape, read into the same validated types by the same code: [`RawRoute`] (a route as
//! written, each value with its position) is checked into a [`Route`] whose every field is a
//! validated word — [`HostPattern`], [`Port`], [`PathPrefix`], [`Method`], [`AuthHeader`],
//! [`TokenRef`]. A route one side accepts, the other accepts; a route one side refuses, the
//! other refuses with the same [`RouteError`] message.
//!
//! ```yaml
//! - host: api.github.com          # exact name, *.example.com, or an IP literal
//!   ports: [443]                  # default: 443, and 80 for plain http://
//!   path_allowlist: [/repos/me/]  # default: every path
//!   methods: [GET, POST]          # default: every method (WebDAV methods never)
//!   auth: {scheme: Bearer, token_ref: GH_PAT}   # or {header: x-api-key, token_ref: VAR}
//!   strip_client_credentials: true  # implied by `auth`
//!   websocket: false              # default: allowed unless `methods` is set
//!   allow_private: false          # private ranges; loopback/link-local only for a literal host
//!   trust: [~/certs/corp.pem]     # extra upstream roots for this route only
//!   dlp: off                      # or [known-secret, github-token]; default: every rule
//! - host: "*.example.com"
//!   auth: {header: x-api-key, token_ref: EXAMPLE_KEY}
//!   auth_every_subdomain: true    # required for `auth` on a wildcard
//! ```
//!
//! ```
//! use bottle_manifest::route::{Route, RouteError};
//!
//! let route: Route = bottle_manifest::yaml::parse("host: api.example.com\nmethods: [GET]\n")?;
//! assert_eq!(route.host, "api.example.com");
//! assert!(!route.allows_websocket());
//!
//! let err = bottle_manifest::yaml::parse::<Route>("host: \"*.com\"\n").unwrap_err();
//! assert!(err.message.contains("top-level domain"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod dlp;
mod error;
mod host;
mod raw;
mod words;

use std::fmt;
use std::ops::Not;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use address::{AddressClass, Reach};
pub use dlp::{Dlp, DlpRule, RawDlp};
pub use error::RouteError;
pub use host::{HostKind, HostPattern, INTROSPECTION_HOST};
pub use raw::{Position, RawRoute, RouteIssue};
pub use words::{
    AuthHeader, HOP_BY_HOP_HEADERS, Method, PathPrefix, PathProblem, Port, TokenRef,
    WEBDAV_METHODS, is_env_name, path_problem, percent_decode,
};

/// Credentials a client may send, all removed from a request on a route that strips client
/// credentials (every route with `auth`, every built-in route), so that only the egress's
/// own credential — or none — reaches the upstream.
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "api-key",
    "x-auth-token",
];

/// One egress route: which host may be reached, on which ports, paths and methods, with which
/// credential injected and which upstream roots trusted.
///
/// Every field is validated on its own by its type; [`Route::check`] adds the rules between
/// fields. Deserializing goes through [`RawRoute`], so it applies both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRoute")]
pub struct Route {
    /// An exact host name, a wildcard over sub-domains, or an IP literal.
    pub host: HostPattern,
    /// The ports the route allows; empty means 443 (and 80 for plain `http://`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Path prefixes the route allows; empty means every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_allowlist: Vec<PathPrefix>,
    /// HTTP methods the route allows; empty means every method but WebDAV's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<Method>,
    /// A credential the egress injects; the agent never holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
    /// Let a wildcard route carry `auth`, which then goes to every sub-domain.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub auth_every_subdomain: bool,
    /// Remove every [`CLIENT_CREDENTIAL_HEADERS`] header the client sends (always so with
    /// `auth`; see [`Route::strips_client_credentials`]).
    #[serde(default, skip_serializing_if = "Not::not")]
    pub strip_client_credentials: bool,
    /// Whether WebSocket upgrades are allowed; `None` means allowed unless `methods` is set
    /// (a WebSocket carries anything, whatever the methods say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<bool>,
    /// Let this route reach private addresses (RFC 1918, unique-local, carrier-grade NAT),
    /// which are refused otherwise (SSRF, DNS rebinding). Loopback, link-local and cloud
    /// metadata addresses stay refused unless `host` is that very literal.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub allow_private: bool,
    /// Extra root certificates (PEM files) trusted for this route's upstream, on top of the
    /// Mozilla roots. The bottle-wide (config-wide) `trust` applies only to routes without
    /// `auth`; a route with `auth` trusts only the roots it lists here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust: Vec<PathBuf>,
    /// What the egress looks for in this route's requests before they leave (secrets in the
    /// URL, header values and body): every rule by default, `off` or a narrower list for a
    /// host that must receive a secret. The route's own injected credential never counts.
    #[serde(default, skip_serializing_if = "Dlp::is_all")]
    pub dlp: Dlp,
}

impl Route {
    /// A route that allows every path and method of `host` on the default ports, with no
    /// credential.
    pub fn new(host: HostPattern) -> Self {
        Route {
            host,
            ports: Vec::new(),
            path_allowlist: Vec::new(),
            methods: Vec::new(),
            auth: None,
            auth_every_subdomain: false,
            strip_client_credentials: false,
            websocket: None,
            allow_private: false,
            trust: Vec::new(),
            dlp: Dlp::All,
        }
    }

    /// [`Route::new`] for a host written in code, such as the built-in table's.
    ///
    /// # Panics
    ///
    /// If `host` is not a valid [`HostPattern`]; parse text from elsewhere with
    /// `host.parse::<HostPattern>()`.
    pub fn host(host: &str) -> Self {
        match host.parse() {
            Ok(host) => Route::new(host),
            Err(e) => panic!("`Route::host` was given an invalid host: {e}"),
        }
    }

    /// Whether client credentials are stripped: with `auth`, or `strip_client_credentials`.
    pub fn strips_client_credentials(&self) -> bool {
        self.auth.is_some() || self.strip_client_credentials
    }

    /// Whether WebSocket upgrades are allowed (see [`Route::websocket`]).
    pub fn allows_websocket(&self) -> bool {
        self.websocket.unwrap_or(self.methods.is_empty())
    }

    /// Whether `port` is allowed, for an `https` (CONNECT) or plain `http` target.
    pub fn allows_port(&self, port: u16, https: bool) -> bool {
        if self.ports.is_empty() {
            let default = if https { Port::HTTPS } else { Port::HTTP };
            return port == default.get();
        }
        self.ports.iter().any(|p| p.get() == port)
    }

    /// Whether the route limits paths or methods (so requests that ask an origin to rewrite
    /// them are refused or cleaned).
    pub fn limits_requests(&self) -> bool {
        !self.path_allowlist.is_empty() || !self.methods.is_empty()
    }

    /// The rules between fields, each problem with the key it is about. Every field is already
    /// valid by its type.
    pub fn check(&self) -> Vec<(RouteKey, RouteError)> {
        let mut problems = Vec::new();
        let host = || self.host.to_string();
        if self.auth.is_some() && self.host.is_wildcard() && !self.auth_every_subdomain {
            problems.push((RouteKey::Auth, RouteError::AuthOnWildcard { host: host() }));
        }
        if self.auth_every_subdomain && !(self.auth.is_some() && self.host.is_wildcard()) {
            problems.push((
                RouteKey::AuthEverySubdomain,
                RouteError::EverySubdomainMisplaced,
            ));
        }
        if let Some(ip) = self.host.ip() {
            let class = AddressClass::of(ip);
            if !class.is_public() && !self.allow_private {
                problems.push((
                    RouteKey::Host,
                    RouteError::PrivateLiteral {
                        host: host(),
                        class,
                    },
                ));
            }
        }
        if self.websocket == Some(true)
            && !self.methods.is_empty()
            && !self.methods.iter().any(|m| m == "GET")
        {
            problems.push((RouteKey::Websocket, RouteError::WebsocketWithoutGet));
        }
        problems
    }
}

/// For each route whose host an earlier route already names: its index and the error. One
/// route per host keeps matching simple to read: an exact route is final, and of the wildcards
/// the longest suffix is.
pub fn duplicate_hosts<'a>(
    hosts: impl IntoIterator<Item = &'a HostPattern>,
) -> Vec<(usize, RouteError)> {
    let mut seen = std::collections::HashSet::new();
    hosts
        .into_iter()
        .enumerate()
        .filter(|(_, h)| !seen.insert(*h))
        .map(|(i, h)| {
            (
                i,
                RouteError::DuplicateHost {
                    host: h.to_string(),
                },
            )
        })
        .collect()
}

/// A credential injected by the egress, read from the egress process's environment by name.
///
/// Written `{scheme: Bearer|token, token_ref: VAR}` or `{header: NAME, token_ref: VAR}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "raw::RawAuth")]
pub enum RouteAuth {
    /// `Authorization: <scheme> <token>`.
    Scheme {
        /// `Bearer` or `token`.
        scheme: AuthScheme,
        /// The variable holding the credential.
        token_ref: TokenRef,
    },
    /// `<header>: <token>`, for APIs keyed by a header such as `x-api-key`.
    Header {
        /// The header.
        header: AuthHeader,
        /// The variable holding the credential.
        token_ref: TokenRef,
    },
}

impl RouteAuth {
    /// The name of the variable holding the credential.
    pub fn token_ref(&self) -> &str {
        match self {
            RouteAuth::Scheme { token_ref, .. } | RouteAuth::Header { token_ref, .. } => {
                token_ref.as_str()
            }
        }
    }

    /// The header the egress sets (lower case): `authorization` or the route's own header.
    pub fn header_name(&self) -> &str {
        match self {
            RouteAuth::Scheme { .. } => "authorization",
            RouteAuth::Header { header, .. } => header.as_str(),
        }
    }

    /// The header value for a credential.
    pub fn header_value(&self, token: &str) -> String {
        match self {
            RouteAuth::Scheme { scheme, .. } => format!("{} {token}", scheme.as_str()),
            RouteAuth::Header { .. } => token.to_owned(),
        }
    }

    /// A short mark for summaries: `Bearer`, `token` or the header name. Never the value.
    pub fn mark(&self) -> String {
        match self {
            RouteAuth::Scheme { scheme, .. } => scheme.as_str().to_owned(),
            RouteAuth::Header { header, .. } => header.to_string(),
        }
    }
}

/// The `Authorization` scheme of a [`RouteAuth::Scheme`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: token <token>` (GitHub's older form).
    Token,
}

impl AuthScheme {
    /// The scheme as it appears in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Token => "token",
        }
    }
}

impl FromStr for AuthScheme {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, RouteError> {
        match s {
            "Bearer" => Ok(AuthScheme::Bearer),
            "token" => Ok(AuthScheme::Token),
            _ => Err(RouteError::AuthSchemeUnknown {
                scheme: crate::escape::escape(s).into_owned(),
            }),
        }
    }
}

impl TryFrom<String> for AuthScheme {
    type Error = RouteError;

    fn try_from(s: String) -> Result<Self, RouteError> {
        s.parse()
    }
}

impl From<AuthScheme> for &'static str {
    fn from(s: AuthScheme) -> &'static str {
        s.as_str()
    }
}

/// What the egress writes to its audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogMode {
    /// Nothing.
    Off,
    /// Only refused requests.
    #[default]
    Blocks,
    /// Every decision.
    Full,
}

/// The key of a route a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// `host`.
    Host,
    /// `ports` as a whole.
    Ports,
    /// `ports[i]`.
    Port(usize),
    /// `path_allowlist[i]`.
    Path(usize),
    /// `methods[i]`.
    Method(usize),
    /// `auth` as a whole.
    Auth,
    /// `auth.scheme`.
    AuthScheme,
    /// `auth.header`.
    AuthHeader,
    /// `auth.token_ref`.
    AuthTokenRef,
    /// `auth_every_subdomain`.
    AuthEverySubdomain,
    /// `strip_client_credentials`.
    StripClientCredentials,
    /// `websocket`.
    Websocket,
    /// `allow_private`.
    AllowPrivate,
    /// `trust[i]`.
    Trust(usize),
    /// `dlp`.
    Dlp,
}

impl fmt::Display for RouteKey {
    /// The key path inside the route: `host`, `methods[1]`, `auth.token_ref`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Host => f.write_str("host"),
            RouteKey::Ports => f.write_str("ports"),
            RouteKey::Port(i) => write!(f, "ports[{i}]"),
            RouteKey::Path(i) => write!(f, "path_allowlist[{i}]"),
            RouteKey::Method(i) => write!(f, "methods[{i}]"),
            RouteKey::Auth => f.write_str("auth"),
            RouteKey::AuthScheme => f.write_str("auth.scheme"),
            RouteKey::AuthHeader => f.write_str("auth.header"),
            RouteKey::AuthTokenRef => f.write_str("auth.token_ref"),
            RouteKey::AuthEverySubdomain => f.write_str("auth_every_subdomain"),
            RouteKey::StripClientCredentials => f.write_str("strip_client_credentials"),
            RouteKey::Websocket => f.write_str("websocket"),
            RouteKey::AllowPrivate => f.write_str("allow_private"),
            RouteKey::Trust(i) => write!(f, "trust[{i}]"),
            RouteKey::Dlp => f.write_str("dlp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Route, Vec<RouteIssue>> {
        crate::yaml::parse::<RawRoute>(yaml).unwrap().check()
    }

    #[test]
    fn every_problem_of_a_route_is_listed_with_its_position() {
        let issues = parse("host: Bad\nmethods: [GET, get]\nports: [0]\n").unwrap_err();
        let got: Vec<_> = issues
            .iter()
            .map(|i| (i.key, i.position.map(|p| (p.line, p.column))))
            .collect();
        assert_eq!(
            got,
            vec![
                (RouteKey::Host, Some((1, 7))),
                (RouteKey::Port(0), Some((3, 9))),
                (RouteKey::Method(1), Some((2, 16))),
            ]
        );
    }

    #[test]
    fn rules_between_fields_point_at_their_key() {
        let issues =
            parse("host: \"*.example.com\"\nauth: {scheme: Bearer, token_ref: T}\n").unwrap_err();
        assert_eq!(issues[0].key, RouteKey::Auth);
        assert_eq!(issues[0].position, Some(Position { line: 2, column: 7 }));
        assert!(matches!(issues[0].error, RouteError::AuthOnWildcard { .. }));
        let ok = parse(
            "host: \"*.example.com\"\nauth: {scheme: Bearer, token_ref: T}\nauth_every_subdomain: true\n",
        )
        .unwrap();
        assert!(ok.strips_client_credentials());
    }

    #[test]
    fn a_route_round_trips_through_its_serialized_form() {
        let route = parse(
            "host: api.example.com\nports: [443, 8443]\npath_allowlist: [/v1/]\nmethods: [GET]\n\
             auth: {header: X-Api-Key, token_ref: KEY}\nwebsocket: true\ntrust: [/etc/ca.pem]\n\
             dlp: [known-secret]\n",
        )
        .unwrap();
        let json = serde_json::to_string(&route).unwrap();
        assert_eq!(
            json,
            r#"{"host":"api.example.com","ports":[443,8443],"path_allowlist":["/v1/"],"methods":["GET"],"auth":{"header":"x-api-key","token_ref":"KEY"},"websocket":true,"trust":["/etc/ca.pem"],"dlp":["known-secret"]}"#
        );
        let back: Route = crate::yaml::parse(&json).unwrap();
        assert_eq!(back, route);
        let from_json: Route = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json, route);
    }

    #[test]
    fn duplicate_hosts_are_found() {
        let hosts: Vec<HostPattern> = ["a.example.com", "*.example.com", "a.example.com"]
            .iter()
            .map(|h| h.parse().unwrap())
            .collect();
        let dups = duplicate_hosts(&hosts);
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].0, 2);
    }
}
