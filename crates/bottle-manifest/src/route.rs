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
///
/// Written `{scheme: Bearer|token, token_ref: VAR}` or `{header: NAME, token_ref: VAR}`.
/// Deserialising goes through a strict intermediate so that `auth: {}` or both `scheme` and
/// `header` get a precise message instead of serde's "did not match any variant".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawRouteAuth")]
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

/// The wire shape of [`RouteAuth`], checked by `TryFrom`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteAuth {
    scheme: Option<AuthScheme>,
    header: Option<String>,
    token_ref: Option<String>,
}

impl TryFrom<RawRouteAuth> for RouteAuth {
    type Error = String;

    fn try_from(raw: RawRouteAuth) -> Result<Self, Self::Error> {
        const SHAPE: &str =
            "write `{scheme: Bearer, token_ref: VAR}` or `{header: x-api-key, token_ref: VAR}`";
        let Some(token_ref) = raw.token_ref else {
            return Err(format!(
                "`auth` needs `token_ref`, the host variable holding the credential; {SHAPE}"
            ));
        };
        match (raw.scheme, raw.header) {
            (Some(scheme), None) => Ok(RouteAuth::Scheme { scheme, token_ref }),
            (None, Some(header)) => Ok(RouteAuth::Header { header, token_ref }),
            (Some(_), Some(_)) => Err(format!(
                "`auth` takes either `scheme` or `header`, not both; {SHAPE}"
            )),
            (None, None) => Err(format!("`auth` needs `scheme` or `header`; {SHAPE}")),
        }
    }
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

/// Why a [`Route`] is not usable; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRoute {
    /// The route key at fault: `host`, `path_allowlist`, `methods` or `auth`.
    pub field: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl std::fmt::Display for InvalidRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidRoute {}

impl Route {
    /// Check every field, so the manifest and the egress config reject the same routes.
    ///
    /// # Errors
    ///
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), InvalidRoute> {
        let bad = |field, message: String| InvalidRoute { field, message };
        validate_host(&self.host).map_err(|m| bad("host", m))?;
        for path in &self.path_allowlist {
            validate_path_prefix(path).map_err(|m| bad("path_allowlist", m))?;
        }
        for method in &self.methods {
            validate_method(method).map_err(|m| bad("methods", m))?;
        }
        if let Some(auth) = &self.auth {
            if let RouteAuth::Header { header, .. } = auth {
                validate_header_name(header).map_err(|m| bad("auth", m))?;
            }
            validate_token_ref(auth.token_ref()).map_err(|m| bad("auth", m))?;
        }
        Ok(())
    }
}

/// A route host: a lower-case DNS name, `*.` followed by one, or an IP literal. No scheme, port
/// or path: the route matches the host the client asks for, on any port the egress serves.
///
/// # Errors
///
/// A one-sentence reason.
pub fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if host.contains("://") {
        return Err(format!(
            "`{}` is a URL; give the bare host name, without scheme",
            host.escape_debug()
        ));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!(
            "`{}` is not a host name: use lower-case letters, digits, `-` and `.`, \
             optionally starting with `*.` (no scheme, port or path)",
            host.escape_debug()
        ));
    }
    Ok(())
}

/// A path prefix: starts with `/`, no whitespace, no control characters.
///
/// # Errors
///
/// A one-sentence reason.
pub fn validate_path_prefix(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` is not a path prefix: it must start with `/` and contain no spaces",
            path.escape_debug()
        ));
    }
    Ok(())
}

/// An HTTP method: an upper-case token such as `GET`.
///
/// # Errors
///
/// A one-sentence reason.
pub fn validate_method(method: &str) -> Result<(), String> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "`{}` is not an HTTP method: write it in upper case, like `GET` or `POST`",
            method.escape_debug()
        ));
    }
    Ok(())
}

/// A header name the egress may set: an HTTP token, and not one that frames the request.
///
/// # Errors
///
/// A one-sentence reason.
pub fn validate_header_name(header: &str) -> Result<(), String> {
    let token = !header.is_empty()
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!(
            "`{}` is not a valid header name",
            header.escape_debug()
        ));
    }
    const FRAMING: &[&str] = &[
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "keep-alive",
    ];
    if FRAMING.contains(&header.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "the egress cannot inject `{header}`: it is a hop-by-hop or framing header"
        ));
    }
    Ok(())
}

/// A `token_ref`: the name of a host environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
///
/// # Errors
///
/// A one-sentence reason.
pub fn validate_token_ref(name: &str) -> Result<(), String> {
    if is_env_name(name) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an environment variable name (letters, digits and `_`, not starting with a digit)",
            name.escape_debug()
        ))
    }
}

/// Whether `name` is a portable environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
