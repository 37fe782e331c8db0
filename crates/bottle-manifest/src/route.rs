//! Egress routes: the one route shape shared by bottle manifests (`egress.routes`) and the
//! standalone egress proxy's config (`routes`), so the two cannot drift.

use serde::{Deserialize, Serialize};

/// One egress route: which host may be reached, on which paths, with which methods, and which
/// credential the egress injects on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// An exact host name (`api.example.com`), a wildcard over sub-domains (`*.example.com`,
    /// which does not match `example.com` itself), or an IP literal.
    pub host: String,
    /// Path prefixes the route allows; empty means every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_allowlist: Vec<String>,
    /// HTTP methods the route allows (upper case); empty means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// A credential the egress injects; the agent never holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
    /// Let this route reach loopback, link-local, private and unique-local addresses, which are
    /// refused otherwise (SSRF and DNS rebinding).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
}

impl Route {
    /// A route that allows every path and method on `host`, with no credential.
    pub fn host(host: impl Into<String>) -> Self {
        Route {
            host: host.into(),
            path_allowlist: Vec::new(),
            methods: Vec::new(),
            auth: None,
            allow_private: false,
        }
    }
}

/// A credential injected by the egress, read from the egress process's environment by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RouteAuth {
    /// `Authorization: <scheme> <token>`.
    Scheme {
        /// `Bearer` or `token`.
        scheme: AuthScheme,
        /// The name of the variable holding the credential.
        token_ref: String,
    },
    /// `<header>: <token>`, for APIs keyed by a header such as `x-api-key`.
    Header {
        /// The header name.
        header: String,
        /// The name of the variable holding the credential.
        token_ref: String,
    },
}

impl RouteAuth {
    /// The name of the environment variable holding the credential.
    pub fn token_ref(&self) -> &str {
        match self {
            RouteAuth::Scheme { token_ref, .. } | RouteAuth::Header { token_ref, .. } => token_ref,
        }
    }

    /// The header the egress sets (lower case): `authorization` or the route's own header.
    pub fn header_name(&self) -> String {
        match self {
            RouteAuth::Scheme { .. } => "authorization".to_owned(),
            RouteAuth::Header { header, .. } => header.to_ascii_lowercase(),
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
            RouteAuth::Header { header, .. } => header.clone(),
        }
    }
}

/// The `Authorization` scheme of a [`RouteAuth::Scheme`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: token <token>` (GitHub's older form).
    #[serde(rename = "token")]
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
