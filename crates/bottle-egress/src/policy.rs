//! Route policy: which host, path and method a route allows. Pure: decisions are data, made
//! without any I/O, so the whole table can be tested (and snapshotted) without a network.

use std::fmt;
use std::net::IpAddr;

use bottle_manifest::Route;
use serde::Serialize;

/// The introspection host, answered by the egress itself.
pub const INTROSPECTION_HOST: &str = "_egress.local";

/// A route's `host`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One DNS name, lower case, no trailing dot.
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix` (at any depth), never `suffix` itself.
    Wildcard(String),
    /// An IP literal; only a route naming the literal allows an IP-literal target.
    Ip(IpAddr),
}

impl HostPattern {
    /// Parse a route's `host`.
    ///
    /// # Errors
    ///
    /// A sentence saying what is wrong, for the config checker.
    pub fn parse(host: &str) -> Result<Self, String> {
        let trimmed = host.trim();
        if trimmed.is_empty() {
            return Err("the host is empty".to_owned());
        }
        if trimmed.contains("://") {
            return Err(format!(
                "`{host}` looks like a URL; write only the host name, e.g. `api.example.com`"
            ));
        }
        let unbracketed = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(HostPattern::Ip(ip));
        }
        if trimmed.contains('/') || trimmed.contains(':') {
            return Err(format!(
                "`{host}` is not a host name: routes name a host without a port or path"
            ));
        }
        let lower = normalize_host(trimmed);
        if let Some(suffix) = lower.strip_prefix("*.") {
            check_dns_name(suffix, host)?;
            if !suffix.contains('.') {
                return Err(format!(
                    "`{host}` would match a whole top-level domain; name at least two labels, e.g. `*.example.com`"
                ));
            }
            return Ok(HostPattern::Wildcard(suffix.to_owned()));
        }
        if lower.contains('*') {
            return Err(format!(
                "`{host}`: a wildcard is only allowed as the whole first label, as in `*.example.com`"
            ));
        }
        check_dns_name(&lower, host)?;
        Ok(HostPattern::Exact(lower))
    }

    /// Whether this pattern allows `host` (already normalized).
    pub fn matches(&self, host: &TargetHost) -> bool {
        match (self, host) {
            (HostPattern::Exact(name), TargetHost::Name(h)) => name == h,
            (HostPattern::Wildcard(suffix), TargetHost::Name(h)) => h
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostPattern::Ip(ip), TargetHost::Ip(h)) => ip == h,
            _ => false,
        }
    }
}

fn check_dns_name(name: &str, original: &str) -> Result<(), String> {
    let ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{original}` is not a valid host name"))
    }
}

/// Lower case without a trailing dot: the form every comparison uses.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The host a client asked for, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetHost {
    /// A DNS name, lower case.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl TargetHost {
    /// Parse the host part of an authority (`[::1]` brackets allowed).
    pub fn parse(host: &str) -> Self {
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(host);
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => TargetHost::Ip(ip),
            Err(_) => TargetHost::Name(normalize_host(host)),
        }
    }

    /// The name to mint a leaf for and to compare SNI with.
    pub fn as_cert_name(&self) -> String {
        match self {
            TargetHost::Name(n) => n.clone(),
            TargetHost::Ip(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Name(n) => f.write_str(n),
            TargetHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            TargetHost::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A validated route table.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<CompiledRoute>,
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    pattern: HostPattern,
    route: Route,
}

/// One route that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteIssue {
    /// Index in the route list.
    pub index: usize,
    /// Which field of the route.
    pub field: RouteField,
    /// What is wrong, one sentence with the fix.
    pub message: String,
}

/// A field of a route, to point an error at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteField {
    /// `host`.
    Host,
    /// `path_allowlist[i]`.
    Path(usize),
    /// `methods[i]`.
    Method(usize),
    /// `auth.header`.
    AuthHeader,
    /// `auth.token_ref`.
    TokenRef,
}

/// Headers a route may never inject: they are hop-by-hop or decide where a request goes.
const FORBIDDEN_AUTH_HEADERS: &[&str] = &[
    "host",
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "proxy-authorization",
];

impl Policy {
    /// Validate and compile `routes`.
    ///
    /// # Errors
    ///
    /// Every problem found, each pointing at a route and field.
    pub fn new(routes: &[Route]) -> Result<Self, Vec<RouteIssue>> {
        let mut issues = Vec::new();
        let mut compiled = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            let mut issue = |field, message: String| {
                issues.push(RouteIssue {
                    index,
                    field,
                    message,
                });
            };
            // The manifest's validators first, so a route the manifest accepts is a route the
            // egress accepts (and vice versa); then the egress's own stricter checks.
            let pattern = match bottle_manifest::route::validate_host(&route.host)
                .and_then(|()| HostPattern::parse(&route.host))
            {
                Ok(p) => Some(p),
                Err(m) => {
                    issue(RouteField::Host, m);
                    None
                }
            };
            for (i, path) in route.path_allowlist.iter().enumerate() {
                let checked = bottle_manifest::route::validate_path_prefix(path).and_then(|()| {
                    if has_dot_segment(path) || path.contains('?') || path.contains('#') {
                        Err(format!(
                            "path prefix `{path}` must be a plain path, without `.`/`..` segments, `?` or `#`"
                        ))
                    } else {
                        Ok(())
                    }
                });
                if let Err(m) = checked {
                    issue(RouteField::Path(i), m);
                }
            }
            for (i, method) in route.methods.iter().enumerate() {
                if let Err(m) = bottle_manifest::route::validate_method(method) {
                    issue(RouteField::Method(i), m);
                }
            }
            if let Some(auth) = &route.auth {
                if let Err(m) = bottle_manifest::route::validate_token_ref(auth.token_ref()) {
                    issue(RouteField::TokenRef, m);
                }
                if let bottle_manifest::RouteAuth::Header { header, .. } = auth {
                    let checked =
                        bottle_manifest::route::validate_header_name(header).and_then(|()| {
                            let lower = header.to_ascii_lowercase();
                            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                                Err(format!("`{header}` is not a valid header name"))
                            } else if FORBIDDEN_AUTH_HEADERS.contains(&lower.as_str()) {
                                Err(format!(
                                    "`{header}` cannot carry a credential: the proxy manages it"
                                ))
                            } else {
                                Ok(())
                            }
                        });
                    if let Err(m) = checked {
                        issue(RouteField::AuthHeader, m);
                    }
                }
            }
            if let Some(pattern) = pattern {
                compiled.push(CompiledRoute {
                    pattern,
                    route: route.clone(),
                });
            }
        }
        if issues.is_empty() {
            Ok(Policy { routes: compiled })
        } else {
            Err(issues)
        }
    }

    /// The routes, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|r| &r.route)
    }

    /// The route at `index`.
    pub fn route(&self, index: usize) -> Option<&Route> {
        self.routes.get(index).map(|r| &r.route)
    }

    fn host_routes<'a>(
        &'a self,
        host: &'a TargetHost,
    ) -> impl Iterator<Item = (usize, &'a Route)> + 'a {
        // Exact and IP routes first, then wildcards: the most specific route wins.
        let exact = self
            .routes
            .iter()
            .enumerate()
            .filter(move |(_, r)| !matches!(r.pattern, HostPattern::Wildcard(_)))
            .filter(move |(_, r)| r.pattern.matches(host));
        let wild = self
            .routes
            .iter()
            .enumerate()
            .filter(move |(_, r)| matches!(r.pattern, HostPattern::Wildcard(_)))
            .filter(move |(_, r)| r.pattern.matches(host));
        exact.chain(wild).map(|(i, r)| (i, &r.route))
    }

    /// Decide a `CONNECT` (or the host of an absolute-form request): is any route for this
    /// host? Returns whether any matching route allows private addresses.
    pub fn connect(&self, host: &TargetHost) -> ConnectDecision {
        if matches!(host, TargetHost::Name(n) if n == INTROSPECTION_HOST) {
            return ConnectDecision::Introspection;
        }
        let mut first = None;
        let mut allow_private = false;
        for (index, route) in self.host_routes(host) {
            first = first.or(Some(index));
            allow_private |= route.allow_private;
        }
        match (first, host) {
            (Some(route), _) => ConnectDecision::Allow {
                route,
                allow_private,
            },
            (None, TargetHost::Ip(ip)) => ConnectDecision::Deny(DenyReason::IpLiteral { ip: *ip }),
            (None, TargetHost::Name(_)) => ConnectDecision::Deny(DenyReason::HostNotAllowed),
        }
    }

    /// Decide one request.
    pub fn request(&self, host: &TargetHost, method: &str, path: &str, query: &str) -> Decision {
        if is_git_push(path, query) {
            return Decision::Deny(DenyReason::GitPush);
        }
        if has_dot_segment(path) {
            return Decision::Deny(DenyReason::DotSegments);
        }
        let mut path_rules: Vec<String> = Vec::new();
        let mut method_rules: Vec<String> = Vec::new();
        let mut any_host = false;
        for (index, route) in self.host_routes(host) {
            any_host = true;
            let path_ok = route.path_allowlist.is_empty()
                || route.path_allowlist.iter().any(|p| path_matches(p, path));
            if !path_ok {
                path_rules.extend(route.path_allowlist.iter().cloned());
                continue;
            }
            let method_ok = route.methods.is_empty()
                || route.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
            if !method_ok {
                method_rules.extend(route.methods.iter().map(|m| m.to_ascii_uppercase()));
                continue;
            }
            return Decision::Allow { route: index };
        }
        if !any_host {
            return Decision::Deny(match host {
                TargetHost::Ip(ip) => DenyReason::IpLiteral { ip: *ip },
                TargetHost::Name(_) => DenyReason::HostNotAllowed,
            });
        }
        // A route whose path matched but whose method did not is the closer miss.
        if !method_rules.is_empty() {
            method_rules.dedup();
            Decision::Deny(DenyReason::MethodNotAllowed {
                allowed: method_rules,
            })
        } else {
            path_rules.dedup();
            Decision::Deny(DenyReason::PathNotAllowed {
                allowed: path_rules,
            })
        }
    }
}

/// `prefix` allows `path` at a segment boundary: `/v1` allows `/v1` and `/v1/x` but not
/// `/v1x`; a prefix ending in `/` is a plain string prefix.
pub(crate) fn path_matches(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `.` or `..` segments, literal or percent-encoded: an origin would resolve them and escape
/// the path prefix the policy checked.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    }) || path.to_ascii_lowercase().contains("%2f")
}

/// `git push` over smart HTTP: `GET …/info/refs?service=git-receive-pack` and
/// `POST …/git-receive-pack`.
pub(crate) fn is_git_push(path: &str, query: &str) -> bool {
    path.ends_with("/git-receive-pack")
        || path == "git-receive-pack"
        || query
            .split('&')
            .any(|kv| kv.eq_ignore_ascii_case("service=git-receive-pack"))
}

/// The answer for a `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Intercept; `allow_private` if a route for this host allows private addresses.
    Allow {
        /// The most specific route for the host (for the audit log).
        route: usize,
        /// Whether private addresses may be reached for this host.
        allow_private: bool,
    },
    /// The egress's own introspection host.
    Introspection,
    /// Refuse before any TLS.
    Deny(DenyReason),
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward under the route at this index.
    Allow {
        /// Index into the route table.
        route: usize,
    },
    /// Refuse.
    Deny(DenyReason),
}

/// Why a request was refused. Each reason renders a status, a `Proxy-Status` and a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DenyReason {
    /// No route names the host.
    HostNotAllowed,
    /// An IP-literal target no route names.
    IpLiteral {
        /// The literal.
        ip: IpAddr,
    },
    /// The host's routes allow other paths.
    PathNotAllowed {
        /// The prefixes that are allowed.
        allowed: Vec<String>,
    },
    /// The host's routes allow other methods on this path.
    MethodNotAllowed {
        /// The methods that are allowed.
        allowed: Vec<String>,
    },
    /// `git push` over HTTP; pushes go through the git gate.
    GitPush,
    /// The path has `.`/`..` segments (literal or encoded), which could escape a path prefix.
    DotSegments,
    /// The request's `Host`/`:authority` is not the tunnel's host (domain fronting).
    HostMismatch {
        /// The host the request named.
        requested: String,
    },
    /// The TLS ClientHello named another server than the `CONNECT`.
    SniMismatch {
        /// The SNI the client sent (`None` if it sent none).
        sni: Option<String>,
    },
    /// The host resolved only to addresses the route may not reach.
    PrivateAddress {
        /// One refused address.
        addr: IpAddr,
        /// Its class (`loopback`, `private`, …).
        class: &'static str,
    },
    /// A credential would be injected into a plain-HTTP request.
    CredentialOverPlainHttp,
}

impl DenyReason {
    /// A short, stable code for logs and `Proxy-Status` details.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::HostNotAllowed => "host_not_allowed",
            DenyReason::IpLiteral { .. } => "ip_literal",
            DenyReason::PathNotAllowed { .. } => "path_not_allowed",
            DenyReason::MethodNotAllowed { .. } => "method_not_allowed",
            DenyReason::GitPush => "git_push",
            DenyReason::DotSegments => "dot_segments",
            DenyReason::HostMismatch { .. } => "host_mismatch",
            DenyReason::SniMismatch { .. } => "sni_mismatch",
            DenyReason::PrivateAddress { .. } => "private_address",
            DenyReason::CredentialOverPlainHttp => "credential_over_plain_http",
        }
    }

    /// The RFC 9209 `Proxy-Status` error type.
    pub fn proxy_status_error(&self) -> &'static str {
        match self {
            DenyReason::PrivateAddress { .. } => "destination_ip_prohibited",
            _ => "http_request_denied",
        }
    }

    /// The `Proxy-Status` header value.
    pub fn proxy_status(&self) -> String {
        format!(
            "bottle-egress; error={}; details=\"{}\"",
            self.proxy_status_error(),
            self.code()
        )
    }

    /// The plain-text body of the `403`: what was refused, and how to allow it.
    pub fn body(&self, host: &TargetHost, method: &str, path: &str) -> String {
        let route_hint = |extra: &str| {
            format!(
                "To allow it, add to the bottle manifest (or to `routes` in the egress config):\n\n  egress:\n    routes:\n      - host: {}\n{extra}",
                host.as_cert_name()
            )
        };
        match self {
            DenyReason::HostNotAllowed => format!(
                "bottle-egress refused {host}: no egress route allows this host.\n{}",
                route_hint("")
            ),
            DenyReason::IpLiteral { ip } => format!(
                "bottle-egress refused {host}: IP-literal targets are refused unless a route names the literal {ip}.\n{}",
                route_hint("")
            ),
            DenyReason::PathNotAllowed { allowed } => format!(
                "bottle-egress refused {method} {path} on {host}: the path is not in the route's `path_allowlist` (allowed: {}).\nTo allow it, add a prefix of {path} to `path_allowlist` of the route for {} under `egress.routes`.\n",
                allowed.join(", "),
                host.as_cert_name()
            ),
            DenyReason::MethodNotAllowed { allowed } => format!(
                "bottle-egress refused {method} {path} on {host}: the method is not in the route's `methods` (allowed: {}).\nTo allow it, add {method} to `methods` of the route for {} under `egress.routes`.\n",
                allowed.join(", "),
                host.as_cert_name()
            ),
            DenyReason::GitPush => format!(
                "bottle-egress refused {method} {path} on {host}: git push over HTTP is never allowed; pushes go through the bottle's git gate.\n"
            ),
            DenyReason::DotSegments => format!(
                "bottle-egress refused {method} {path} on {host}: the path has `.` or `..` segments (or an encoded `/`), which could escape a path rule. Send the normalized path.\n"
            ),
            DenyReason::HostMismatch { requested } => format!(
                "bottle-egress refused a request for {requested} inside the tunnel to {host}: every request in a tunnel must name the tunnel's host. Open a tunnel to {requested} instead.\n"
            ),
            DenyReason::SniMismatch { sni } => format!(
                "bottle-egress refused the TLS handshake in the tunnel to {host}: the client asked for {}. The TLS server name must be the tunnel's host.\n",
                sni.as_deref().unwrap_or("no server name")
            ),
            DenyReason::PrivateAddress { addr, class } => format!(
                "bottle-egress refused {host}: it resolves to {addr}, a {class} address, and the route does not allow private addresses.\nIf this is intended, set `allow_private: true` on the route for {} under `egress.routes`.\n",
                host.as_cert_name()
            ),
            DenyReason::CredentialOverPlainHttp => format!(
                "bottle-egress refused {method} {path} on {host}: the route injects a credential, which is never sent over plain HTTP. Use https://{}.\n",
                host.as_cert_name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_manifest::{AuthScheme, RouteAuth};

    fn policy() -> Policy {
        let mut api = Route::host("api.example.com");
        api.path_allowlist = vec!["/v1/".into(), "/health".into()];
        api.methods = vec!["GET".into(), "POST".into()];
        api.auth = Some(RouteAuth::Scheme {
            scheme: AuthScheme::Bearer,
            token_ref: "API_TOKEN".into(),
        });
        Policy::new(&[
            api,
            Route::host("*.cdn.example.com"),
            Route::host("10.0.0.7"),
        ])
        .unwrap()
    }

    fn name(s: &str) -> TargetHost {
        TargetHost::parse(s)
    }

    #[test]
    fn hosts_match_exactly_by_wildcard_or_by_literal() {
        let p = policy();
        assert!(matches!(
            p.connect(&name("API.example.com.")),
            ConnectDecision::Allow { .. }
        ));
        assert!(matches!(
            p.connect(&name("a.b.cdn.example.com")),
            ConnectDecision::Allow { .. }
        ));
        assert_eq!(
            p.connect(&name("cdn.example.com")),
            ConnectDecision::Deny(DenyReason::HostNotAllowed)
        );
        assert_eq!(
            p.connect(&name("evilcdn.example.com")),
            ConnectDecision::Deny(DenyReason::HostNotAllowed)
        );
        assert!(matches!(
            p.connect(&name("10.0.0.7")),
            ConnectDecision::Allow { .. }
        ));
        assert!(matches!(
            p.connect(&name("10.0.0.8")),
            ConnectDecision::Deny(DenyReason::IpLiteral { .. })
        ));
        assert_eq!(
            p.connect(&name("_egress.local")),
            ConnectDecision::Introspection
        );
    }

    #[test]
    fn paths_match_at_segment_boundaries() {
        assert!(path_matches("/health", "/health"));
        assert!(path_matches("/health", "/health/x"));
        assert!(!path_matches("/health", "/healthz"));
        assert!(path_matches("/v1/", "/v1/messages"));
        assert!(!path_matches("/v1/", "/v1"));
    }

    #[test]
    fn requests_are_decided_by_path_then_method() {
        let p = policy();
        let h = name("api.example.com");
        assert_eq!(
            p.request(&h, "GET", "/v1/messages", ""),
            Decision::Allow { route: 0 }
        );
        assert_eq!(
            p.request(&h, "POST", "/v1/messages", ""),
            Decision::Allow { route: 0 }
        );
        assert_eq!(
            p.request(&h, "DELETE", "/v1/messages", ""),
            Decision::Deny(DenyReason::MethodNotAllowed {
                allowed: vec!["GET".into(), "POST".into()]
            })
        );
        assert!(matches!(
            p.request(&h, "GET", "/admin", ""),
            Decision::Deny(DenyReason::PathNotAllowed { .. })
        ));
        assert_eq!(
            p.request(&h, "GET", "/v1/../admin", ""),
            Decision::Deny(DenyReason::DotSegments)
        );
        assert_eq!(
            p.request(&h, "GET", "/v1/%2E%2e/admin", ""),
            Decision::Deny(DenyReason::DotSegments)
        );
    }

    #[test]
    fn git_push_is_refused_on_every_route() {
        let p = Policy::new(&[Route::host("git.example.com")]).unwrap();
        let h = name("git.example.com");
        assert_eq!(
            p.request(&h, "GET", "/r.git/info/refs", "service=git-receive-pack"),
            Decision::Deny(DenyReason::GitPush)
        );
        assert_eq!(
            p.request(&h, "POST", "/r.git/git-receive-pack", ""),
            Decision::Deny(DenyReason::GitPush)
        );
        assert_eq!(
            p.request(&h, "GET", "/r.git/info/refs", "service=git-upload-pack"),
            Decision::Allow { route: 0 }
        );
    }

    #[test]
    fn bad_routes_are_reported_per_field() {
        let mut r = Route::host("https://x.example.com/");
        r.path_allowlist = vec!["v1".into()];
        r.methods = vec!["G ET".into()];
        r.auth = Some(RouteAuth::Header {
            header: "Host".into(),
            token_ref: "1BAD".into(),
        });
        let issues = Policy::new(&[r, Route::host("*.com"), Route::host("a.*.com")]).unwrap_err();
        let fields: Vec<_> = issues.iter().map(|i| (i.index, i.field)).collect();
        assert_eq!(
            fields,
            vec![
                (0, RouteField::Host),
                (0, RouteField::Path(0)),
                (0, RouteField::Method(0)),
                (0, RouteField::TokenRef),
                (0, RouteField::AuthHeader),
                (1, RouteField::Host),
                (2, RouteField::Host),
            ]
        );
    }
}
