//! Route policy: which route a host falls under and whether it allows a request. Pure:
//! decisions are data, made without any I/O, so the whole table can be tested (and
//! snapshotted) without a network.
//!
//! The routes are the manifest's validated [`Route`]s; nothing here re-validates them. What is
//! decided here is everything about a *request*: its host, port, path, method, upgrade, and
//! the writes (git push, WebDAV) no route may allow.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use bottle_manifest::Route;
use bottle_manifest::route::INTROSPECTION_HOST;
use bottle_manifest::route::{
    self, AddressClass, HostKind, PathProblem, Reach, RouteError, RouteKey,
};
use http::header::{self, HeaderMap, HeaderName};
use serde::Serialize;

/// Headers that ask an origin to treat a request as another method or another path. On a route
/// that limits paths or methods they would undo the limit, so they are removed there.
pub(crate) static REWRITE_HEADERS: [HeaderName; 5] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// The content type of a `git push` over smart HTTP.
const RECEIVE_PACK_REQUEST: &str = "application/x-git-receive-pack-request";

/// Lower case without a trailing dot: the form every comparison uses.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The host a client asked for, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetHost {
    /// A DNS name, lower case, without a trailing dot.
    Name(String),
    /// An IP literal, canonical (`::ffff:10.0.0.7` is `10.0.0.7`).
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
            Ok(ip) => TargetHost::Ip(ip.to_canonical()),
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

/// A compiled route table: one hash lookup for an exact name or an IP literal, and one per
/// label of the name for wildcards, however many routes there are.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
    ips: HashMap<IpAddr, usize>,
    /// By suffix: `*.example.com` is `example.com`.
    wildcards: HashMap<String, usize>,
}

/// A route the policy cannot use: which one, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routes[{index}].{key}: {error}")]
pub struct RouteProblem {
    /// Index in the route list.
    pub index: usize,
    /// The key at fault.
    pub key: RouteKey,
    /// What is wrong.
    pub error: RouteError,
}

impl Policy {
    /// Compile `routes`: their values are valid by type; this checks the rules between a
    /// route's fields ([`Route::check`]) and between routes (one route per host), the same
    /// checks the manifest makes.
    ///
    /// # Errors
    ///
    /// Every problem found.
    pub fn new(routes: &[Route]) -> Result<Self, Vec<RouteProblem>> {
        let mut problems: Vec<RouteProblem> = routes
            .iter()
            .enumerate()
            .flat_map(|(index, r)| {
                r.check()
                    .into_iter()
                    .map(move |(key, error)| RouteProblem { index, key, error })
            })
            .collect();
        problems.extend(
            route::duplicate_hosts(routes.iter().map(|r| &r.host))
                .into_iter()
                .map(|(index, error)| RouteProblem {
                    index,
                    key: RouteKey::Host,
                    error,
                }),
        );
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.index);
            return Err(problems);
        }
        let mut policy = Policy {
            routes: routes.to_vec(),
            exact: HashMap::new(),
            ips: HashMap::new(),
            wildcards: HashMap::new(),
        };
        for (i, r) in routes.iter().enumerate() {
            match r.host.kind() {
                HostKind::Exact(name) => policy.exact.insert(name.to_owned(), i),
                HostKind::Wildcard { suffix } => policy.wildcards.insert(suffix.to_owned(), i),
                HostKind::Ip(ip) => policy.ips.insert(ip, i),
            };
        }
        Ok(policy)
    }

    /// The routes, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route at `index`.
    pub fn route(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    /// The one route `host` falls under: its exact route if it has one — final, even when
    /// that route refuses the request — else the wildcard with the longest suffix.
    pub fn route_for(&self, host: &TargetHost) -> Option<usize> {
        match host {
            TargetHost::Ip(ip) => self.ips.get(ip).copied(),
            TargetHost::Name(name) => self.exact.get(name.as_str()).copied().or_else(|| {
                // `a.b.example.com`: try `b.example.com`, then `example.com`, then `com`. The
                // part before the suffix is never empty, so `*.x.com` never matches `.x.com`.
                name.match_indices('.')
                    .filter(|(i, _)| *i > 0)
                    .find_map(|(i, _)| self.wildcards.get(&name[i + 1..]).copied())
            }),
        }
    }

    /// Decide a `CONNECT` to `host:port` (or the target of an absolute-form request).
    pub fn connect(&self, host: &TargetHost, port: u16, https: bool) -> ConnectDecision {
        if matches!(host, TargetHost::Name(n) if n == INTROSPECTION_HOST) {
            return ConnectDecision::Introspection;
        }
        let Some(index) = self.route_for(host) else {
            return ConnectDecision::Deny(not_routed(host));
        };
        let route = &self.routes[index];
        if !route.allows_port(port, https) {
            return ConnectDecision::Deny(DenyReason::PortNotAllowed {
                port,
                allowed: allowed_ports(route, https),
            });
        }
        ConnectDecision::Allow {
            route: index,
            allow_private: route.allow_private,
        }
    }

    /// Decide one request to `host:port` (`https` inside a tunnel, plain `http` at the front
    /// door).
    pub fn request<B>(
        &self,
        host: &TargetHost,
        port: u16,
        https: bool,
        req: &http::Request<B>,
    ) -> Decision {
        let index = match self.connect(host, port, https) {
            ConnectDecision::Allow { route, .. } => route,
            ConnectDecision::Deny(reason) => return Decision::Deny(reason),
            // A route can never name the introspection host; the proxy answers it earlier.
            ConnectDecision::Introspection => return Decision::Deny(DenyReason::HostNotAllowed),
        };
        let route = &self.routes[index];
        let method = req.method().as_str();
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        if route::WEBDAV_METHODS.contains(&method) {
            return Decision::Deny(DenyReason::WebDavMethod);
        }
        if is_git_push(path, query, req.headers()) {
            return Decision::Deny(DenyReason::GitPush);
        }
        match route::path_problem(path) {
            None => {}
            Some(PathProblem::DotSegment) => return Decision::Deny(DenyReason::DotSegments),
            Some(PathProblem::Backslash) => return Decision::Deny(DenyReason::Backslash),
        }
        let websocket = match upgrade_of(req) {
            Upgrade::None => false,
            Upgrade::WebSocket => true,
            Upgrade::Other(protocol) => {
                return Decision::Deny(DenyReason::UpgradeNotAllowed { protocol });
            }
        };
        if !route.path_allowlist.is_empty() && !route.path_allowlist.iter().any(|p| p.allows(path))
        {
            return Decision::Deny(DenyReason::PathNotAllowed {
                allowed: route
                    .path_allowlist
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        if !route.methods.is_empty() && !route.methods.iter().any(|m| m.allows(method)) {
            return Decision::Deny(DenyReason::MethodNotAllowed {
                allowed: route.methods.iter().map(ToString::to_string).collect(),
            });
        }
        if websocket && !route.allows_websocket() {
            return Decision::Deny(DenyReason::WebSocketNotAllowed);
        }
        if route.limits_requests() && has_method_parameter(query) {
            return Decision::Deny(DenyReason::MethodOverride);
        }
        if route.auth.is_some() && !https {
            return Decision::Deny(DenyReason::CredentialOverPlainHttp);
        }
        Decision::Allow {
            route: index,
            websocket,
        }
    }
}

fn not_routed(host: &TargetHost) -> DenyReason {
    match host {
        TargetHost::Ip(ip) => DenyReason::IpLiteral { ip: *ip },
        TargetHost::Name(_) => DenyReason::HostNotAllowed,
    }
}

fn allowed_ports(route: &Route, https: bool) -> Vec<u16> {
    if route.ports.is_empty() {
        vec![if https { 443 } else { 80 }]
    } else {
        route.ports.iter().map(|p| p.get()).collect()
    }
}

/// `git push` over smart HTTP: `GET …/info/refs?service=git-receive-pack`,
/// `POST …/git-receive-pack` (however the path is escaped or slashed) or a receive-pack body.
pub(crate) fn is_git_push(path: &str, query: &str, headers: &HeaderMap) -> bool {
    let receive_pack = |s: &str| s.eq_ignore_ascii_case("git-receive-pack");
    fn decoded(s: &str) -> std::borrow::Cow<'_, str> {
        if s.contains('%') {
            std::borrow::Cow::Owned(route::percent_decode(s))
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    }
    let path = decoded(path);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if receive_pack(last) {
        return true;
    }
    if !query.is_empty()
        && query.split('&').any(|kv| {
            let kv = decoded(kv);
            kv.split_once('=').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("service") && receive_pack(v.trim_end_matches('/'))
            })
        })
    {
        return true;
    }
    headers.get_all(header::CONTENT_TYPE).iter().any(|v| {
        v.as_bytes()
            .get(..RECEIVE_PACK_REQUEST.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(RECEIVE_PACK_REQUEST.as_bytes()))
    })
}

/// `_method=…` in a query: Rails, Laravel and others then treat a POST as that method.
fn has_method_parameter(query: &str) -> bool {
    !query.is_empty()
        && query.split('&').any(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            key.eq_ignore_ascii_case("_method")
                || (key.contains('%') && route::percent_decode(key).eq_ignore_ascii_case("_method"))
        })
}

/// What a request asks to be upgraded to.
enum Upgrade {
    None,
    /// A complete WebSocket handshake: HTTP/1.1 GET, `Connection: upgrade`,
    /// `Upgrade: websocket`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`.
    WebSocket,
    /// Anything else with an `Upgrade` header (`h2c`, a malformed WebSocket handshake, …).
    Other(String),
}

fn upgrade_of<B>(req: &http::Request<B>) -> Upgrade {
    let headers = req.headers();
    let Some(upgrade) = headers.get(header::UPGRADE) else {
        return Upgrade::None;
    };
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let websocket = req.version() == http::Version::HTTP_11
        && req.method() == http::Method::GET
        && connection_upgrade
        && headers.get_all(header::UPGRADE).iter().count() == 1
        && upgrade.as_bytes().eq_ignore_ascii_case(b"websocket")
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
    if websocket {
        Upgrade::WebSocket
    } else {
        Upgrade::Other(String::from_utf8_lossy(upgrade.as_bytes()).into_owned())
    }
}

/// Whether an address may be dialled for a route: public ones always; private ranges with
/// `allow_private`; loopback, link-local, cloud metadata and reserved ones only when the route
/// named the very address (`named`: an IP-literal target, or a fixed answer the embedder set).
pub(crate) fn may_dial(ip: IpAddr, allow_private: bool, named: bool) -> Result<(), AddressClass> {
    let class = AddressClass::of(ip);
    match class.reach() {
        Reach::Public => Ok(()),
        Reach::WithAllowPrivate if allow_private => Ok(()),
        Reach::OnlyNamedLiteral if allow_private && named => Ok(()),
        _ => Err(class),
    }
}

/// The answer for a `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Intercept, under the route at this index.
    Allow {
        /// Index into the route table.
        route: usize,
        /// Whether the route may reach private addresses.
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
        /// Whether it is a WebSocket handshake (spliced after the `101`).
        websocket: bool,
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
    /// The host's route allows other ports.
    PortNotAllowed {
        /// The port asked for.
        port: u16,
        /// The ports the route allows.
        allowed: Vec<u16>,
    },
    /// The host's route allows other paths.
    PathNotAllowed {
        /// The prefixes that are allowed.
        allowed: Vec<String>,
    },
    /// The host's route allows other methods.
    MethodNotAllowed {
        /// The methods that are allowed.
        allowed: Vec<String>,
    },
    /// `_method=` in the query of a route that limits paths or methods.
    MethodOverride,
    /// `git push` over HTTP; pushes go through the git gate.
    GitPush,
    /// A WebDAV method (PROPFIND, MKCOL, MOVE, …), never forwarded.
    WebDavMethod,
    /// The path has `.`/`..` segments (literal, encoded or with `;` parameters) or an encoded
    /// `/`, which could escape a path prefix.
    DotSegments,
    /// The path has a backslash (literal or encoded) or a full-width `.`, `/` or `\`.
    Backslash,
    /// An `Upgrade` other than a complete WebSocket handshake (`h2c` smuggling).
    UpgradeNotAllowed {
        /// What the request asked to upgrade to.
        protocol: String,
    },
    /// A WebSocket on a route that does not allow them.
    WebSocketNotAllowed,
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
        /// Its class.
        class: AddressClass,
        /// Whether the route names the address (then `allow_private` opens it).
        #[serde(skip)]
        named: bool,
    },
    /// A credential would be injected into a plain-HTTP request.
    CredentialOverPlainHttp,
    /// DLP found a secret in the request: the rule that matched (never the secret) and where.
    SecretInRequest {
        /// The rule, as [`bottle_secrets::Rule`] displays it: `github-token`, or
        /// ``known-secret `DB_PASSWORD` (base64)`` (a known secret by its name, never its value).
        rule: String,
        /// The part of the request it was in.
        part: RequestPart,
    },
    /// DLP cannot read the body: an encoding it does not decode, or a body that does not
    /// decode.
    BodyNotInspectable {
        /// The `Content-Encoding` as sent.
        encoding: String,
        /// Why it cannot be read.
        why: &'static str,
    },
}

/// Where in a request DLP found a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestPart {
    /// The URL's path.
    Path,
    /// The URL's query.
    Query,
    /// The value of this header.
    Header(String),
    /// The body (decoded, when it was compressed).
    Body,
    /// The value of this trailer.
    Trailer(String),
}

impl std::fmt::Display for RequestPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestPart::Path => f.write_str("URL path"),
            RequestPart::Query => f.write_str("URL query"),
            RequestPart::Header(name) => write!(f, "`{name}` header"),
            RequestPart::Body => f.write_str("body"),
            RequestPart::Trailer(name) => write!(f, "`{name}` trailer"),
        }
    }
}

impl DenyReason {
    /// A short, stable code for logs and `Proxy-Status` details.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::HostNotAllowed => "host_not_allowed",
            DenyReason::IpLiteral { .. } => "ip_literal",
            DenyReason::PortNotAllowed { .. } => "port_not_allowed",
            DenyReason::PathNotAllowed { .. } => "path_not_allowed",
            DenyReason::MethodNotAllowed { .. } => "method_not_allowed",
            DenyReason::MethodOverride => "method_override",
            DenyReason::GitPush => "git_push",
            DenyReason::WebDavMethod => "webdav_method",
            DenyReason::DotSegments => "dot_segments",
            DenyReason::Backslash => "backslash",
            DenyReason::UpgradeNotAllowed { .. } => "upgrade_not_allowed",
            DenyReason::WebSocketNotAllowed => "websocket_not_allowed",
            DenyReason::HostMismatch { .. } => "host_mismatch",
            DenyReason::SniMismatch { .. } => "sni_mismatch",
            DenyReason::PrivateAddress { .. } => "private_address",
            DenyReason::CredentialOverPlainHttp => "credential_over_plain_http",
            DenyReason::SecretInRequest { .. } => "secret_in_request",
            DenyReason::BodyNotInspectable { .. } => "body_not_inspectable",
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
        let name = host.as_cert_name();
        let route_hint = |extra: &str| {
            format!(
                "To allow it, add to the bottle manifest (or to `routes` in the egress config):\n\n  egress:\n    routes:\n      - host: {name}\n{extra}"
            )
        };
        let list = |items: &[String]| items.join(", ");
        match self {
            DenyReason::HostNotAllowed => format!(
                "bottle-egress refused {host}: no egress route allows this host.\n{}",
                route_hint("")
            ),
            DenyReason::IpLiteral { ip } => format!(
                "bottle-egress refused {host}: IP-literal targets are refused unless a route names the literal {ip}.\n{}",
                route_hint("")
            ),
            DenyReason::PortNotAllowed { port, allowed } => format!(
                "bottle-egress refused {host}:{port}: the route for {name} allows port{} {}.\nTo allow it, add {port} to `ports` of the route for {name} under `egress.routes` (listing `ports` replaces the defaults, 443 and 80).\n",
                if allowed.len() == 1 { "" } else { "s" },
                list(&allowed.iter().map(ToString::to_string).collect::<Vec<_>>()),
            ),
            DenyReason::PathNotAllowed { allowed } => format!(
                "bottle-egress refused {method} {path} on {host}: the path is not in the route's `path_allowlist` (allowed: {}).\nTo allow it, add a prefix of {path} to `path_allowlist` of the route for {name} under `egress.routes`.\n",
                list(allowed)
            ),
            DenyReason::MethodNotAllowed { allowed } => format!(
                "bottle-egress refused {method} {path} on {host}: the method is not in the route's `methods` (allowed: {}).\nTo allow it, add {method} to `methods` of the route for {name} under `egress.routes`.\n",
                list(allowed)
            ),
            DenyReason::MethodOverride => format!(
                "bottle-egress refused {method} {path} on {host}: a `_method` query parameter asks the origin for another method than the route allows. Send the request with its real method.\n"
            ),
            DenyReason::GitPush => format!(
                "bottle-egress refused {method} {path} on {host}: git push over HTTP is never allowed; pushes go through the bottle's git gate.\n"
            ),
            DenyReason::WebDavMethod => format!(
                "bottle-egress refused {method} {path} on {host}: WebDAV methods are never forwarded (they can write to a server, a git push among others).\n"
            ),
            DenyReason::DotSegments => format!(
                "bottle-egress refused {method} {path} on {host}: the path has `.` or `..` segments (also encoded or with `;` parameters) or an encoded `/`, which could escape a path rule. Send the normalized path.\n"
            ),
            DenyReason::Backslash => format!(
                "bottle-egress refused {method} {path} on {host}: the path has a backslash (or `%5c`, or a full-width `.`, `/` or `\\`), which some servers read as a path separator. Send the path with `/` only.\n"
            ),
            DenyReason::UpgradeNotAllowed { protocol } => format!(
                "bottle-egress refused {method} {path} on {host}: only WebSocket upgrades are forwarded (a GET with `Upgrade: websocket`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`), not `Upgrade: {}`. Send the request without `Upgrade` (for curl, without --http2 on http:// URLs).\n",
                protocol.escape_debug()
            ),
            DenyReason::WebSocketNotAllowed => format!(
                "bottle-egress refused a WebSocket to {path} on {host}: the route does not allow WebSockets (one that limits `methods` allows them only when it says so, since a WebSocket carries anything). To allow it, set `websocket: true` on the route for {name} under `egress.routes`.\n"
            ),
            DenyReason::HostMismatch { requested } => format!(
                "bottle-egress refused a request for {requested} inside the tunnel to {host}: every request in a tunnel must name the tunnel's host. Open a tunnel to {requested} instead.\n"
            ),
            DenyReason::SniMismatch { sni } => format!(
                "bottle-egress refused the TLS handshake in the tunnel to {host}: the client asked for {}. The TLS server name must be the tunnel's host.\n",
                sni.as_deref().unwrap_or("no server name")
            ),
            DenyReason::PrivateAddress { addr, class, named } => match class.reach() {
                Reach::OnlyNamedLiteral if !named => format!(
                    "bottle-egress refused {host}: it resolves to {addr}, a {class} address, which only a route naming that very address can reach (`host: {addr}` with `allow_private: true`); `allow_private` on a name never opens it.\n"
                ),
                _ => format!(
                    "bottle-egress refused {host}: it resolves to {addr}, a {class} address, and the route does not allow private addresses.\nIf this is intended, set `allow_private: true` on the route for {name} under `egress.routes`.\n"
                ),
            },
            DenyReason::CredentialOverPlainHttp => format!(
                "bottle-egress refused {method} {path} on {host}: the route injects a credential, which is never sent over plain HTTP. Use https://{name}.\n"
            ),
            // Never the path: the secret may be in it.
            DenyReason::SecretInRequest { rule, part } => format!(
                "bottle-egress refused a {method} request to {host}: its {part} holds a secret ({rule}), which was not sent.\nIf {name} must receive it, set `dlp: off` on its route under `egress.routes`, or list only the rules to keep (`dlp: [...]`).\n"
            ),
            DenyReason::BodyNotInspectable { encoding, why } => format!(
                "bottle-egress refused a {method} request to {host}: its body (`Content-Encoding: {}`) {why}, so it cannot be checked for secrets. Send it uncompressed, gzip or deflate; or, if {name} may receive anything, set `dlp: off` on its route under `egress.routes`.\n",
                encoding.escape_debug()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottle_manifest::{AuthScheme, RouteAuth};

    fn route(host: &str) -> Route {
        Route::host(host)
    }

    fn policy() -> Policy {
        let mut api = route("api.example.com");
        api.path_allowlist = vec!["/v1/".parse().unwrap(), "/health".parse().unwrap()];
        api.methods = vec!["GET".parse().unwrap(), "POST".parse().unwrap()];
        api.auth = Some(RouteAuth::Scheme {
            scheme: AuthScheme::Bearer,
            token_ref: "API_TOKEN".parse().unwrap(),
        });
        let mut literal = route("10.0.0.7");
        literal.allow_private = true;
        Policy::new(&[
            api,
            route("*.cdn.example.com"),
            literal,
            route("*.example.com"),
        ])
        .unwrap()
    }

    fn name(s: &str) -> TargetHost {
        TargetHost::parse(s)
    }

    fn req(method: &str, target: &str) -> http::Request<()> {
        http::Request::builder()
            .method(method)
            .uri(target)
            .body(())
            .unwrap()
    }

    fn decide(p: &Policy, host: &str, method: &str, target: &str) -> Decision {
        p.request(&name(host), 443, true, &req(method, target))
    }

    #[test]
    fn hosts_match_exactly_by_the_longest_wildcard_or_by_literal() {
        let p = policy();
        assert_eq!(p.route_for(&name("API.example.com.")), Some(0));
        assert_eq!(p.route_for(&name("a.b.cdn.example.com")), Some(1));
        assert_eq!(p.route_for(&name("cdn.example.com")), Some(3));
        assert_eq!(p.route_for(&name("x.example.com")), Some(3));
        assert_eq!(p.route_for(&name("example.com")), None);
        assert_eq!(p.route_for(&name("evilexample.com")), None);
        assert_eq!(p.route_for(&name(".example.com")), None);
        assert_eq!(p.route_for(&name("10.0.0.7")), Some(2));
        assert_eq!(p.route_for(&name("[::ffff:10.0.0.7]")), Some(2));
        assert_eq!(
            p.connect(&name("10.0.0.8"), 443, true),
            ConnectDecision::Deny(DenyReason::IpLiteral {
                ip: "10.0.0.8".parse().unwrap()
            })
        );
        assert_eq!(
            p.connect(&name("_egress.local"), 443, true),
            ConnectDecision::Introspection
        );
    }

    #[test]
    fn an_exact_route_is_final_even_when_it_refuses() {
        // `*.example.com` would allow `/admin`; `api.example.com`'s own limits decide.
        let p = policy();
        assert!(matches!(
            decide(&p, "api.example.com", "GET", "/admin"),
            Decision::Deny(DenyReason::PathNotAllowed { .. })
        ));
        assert!(matches!(
            decide(&p, "www.example.com", "GET", "/admin"),
            Decision::Allow { route: 3, .. }
        ));
    }

    #[test]
    fn ports_default_to_the_scheme_and_are_exact_when_listed() {
        let mut r = route("ports.example.com");
        let p0 = Policy::new(std::slice::from_ref(&r)).unwrap();
        let h = name("ports.example.com");
        assert!(matches!(
            p0.connect(&h, 443, true),
            ConnectDecision::Allow { .. }
        ));
        assert!(matches!(
            p0.connect(&h, 80, false),
            ConnectDecision::Allow { .. }
        ));
        assert_eq!(
            p0.connect(&h, 22, true),
            ConnectDecision::Deny(DenyReason::PortNotAllowed {
                port: 22,
                allowed: vec![443]
            })
        );
        assert!(matches!(p0.connect(&h, 80, true), ConnectDecision::Deny(_)));
        r.ports = vec![8443_u16.try_into().unwrap()];
        let p1 = Policy::new(&[r]).unwrap();
        assert!(matches!(
            p1.connect(&h, 8443, true),
            ConnectDecision::Allow { .. }
        ));
        assert!(matches!(
            p1.connect(&h, 443, true),
            ConnectDecision::Deny(_)
        ));
    }

    #[test]
    fn requests_are_decided_by_path_then_method() {
        let p = policy();
        let h = "api.example.com";
        assert_eq!(
            decide(&p, h, "GET", "/v1/messages"),
            Decision::Allow {
                route: 0,
                websocket: false
            }
        );
        assert_eq!(
            decide(&p, h, "DELETE", "/v1/messages"),
            Decision::Deny(DenyReason::MethodNotAllowed {
                allowed: vec!["GET".into(), "POST".into()]
            })
        );
        for bad in ["/v1/../admin", "/v1/%2E%2e/admin", "/v1/..;/admin"] {
            assert_eq!(
                decide(&p, h, "GET", bad),
                Decision::Deny(DenyReason::DotSegments)
            );
        }
        assert_eq!(
            decide(&p, h, "GET", "/v1/..%5cadmin"),
            Decision::Deny(DenyReason::Backslash)
        );
        assert_eq!(
            decide(&p, h, "POST", "/v1/x?_method=DELETE"),
            Decision::Deny(DenyReason::MethodOverride)
        );
        assert_eq!(
            decide(&p, h, "POST", "/v1/x?a=1&%5Fmethod=DELETE"),
            Decision::Deny(DenyReason::MethodOverride)
        );
        // A route without limits has nothing a `_method` could undo.
        assert!(matches!(
            decide(&p, "www.example.com", "POST", "/x?_method=DELETE"),
            Decision::Allow { .. }
        ));
        assert_eq!(
            p.request(&name(h), 80, false, &req("GET", "/v1/x")),
            Decision::Deny(DenyReason::CredentialOverPlainHttp)
        );
        assert_eq!(
            p.request(&name(h), 8080, false, &req("GET", "/v1/x")),
            Decision::Deny(DenyReason::PortNotAllowed {
                port: 8080,
                allowed: vec![80]
            })
        );
    }

    #[test]
    fn git_push_and_webdav_are_refused_on_every_route() {
        let p = Policy::new(&[route("git.example.com")]).unwrap();
        let h = "git.example.com";
        for (method, target) in [
            ("GET", "/r.git/info/refs?service=git-receive-pack"),
            ("GET", "/r.git/info/refs?service=git%2Dreceive-pack"),
            ("GET", "/r.git/info/refs?service%3Dgit-receive-pack"),
            ("POST", "/r.git/git-receive-pack"),
            ("POST", "/r.git/git-receive-pack/"),
            ("POST", "/r.git/git%2Dreceive-pack"),
            ("POST", "/r.git/GIT-RECEIVE-PACK//"),
        ] {
            assert_eq!(
                decide(&p, h, method, target),
                Decision::Deny(DenyReason::GitPush),
                "{method} {target}"
            );
        }
        let mut body = req("POST", "/r.git/anything");
        body.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/x-git-receive-pack-request".parse().unwrap(),
        );
        assert_eq!(
            p.request(&name(h), 443, true, &body),
            Decision::Deny(DenyReason::GitPush)
        );
        for method in route::WEBDAV_METHODS {
            assert_eq!(
                decide(&p, h, method, "/r.git/"),
                Decision::Deny(DenyReason::WebDavMethod),
                "{method}"
            );
        }
        assert!(matches!(
            decide(&p, h, "GET", "/r.git/info/refs?service=git-upload-pack"),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            decide(&p, h, "PUT", "/r.git/x"),
            Decision::Allow { .. }
        ));
    }

    fn upgrade(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut r = req("GET", "/ws");
        for (k, v) in headers {
            r.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        r
    }

    #[test]
    fn only_complete_websocket_handshakes_upgrade() {
        let p = Policy::new(&[route("ws.example.com")]).unwrap();
        let h = name("ws.example.com");
        let ws = [
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ];
        assert_eq!(
            p.request(&h, 443, true, &upgrade(&ws)),
            Decision::Allow {
                route: 0,
                websocket: true
            }
        );
        for bad in [
            vec![
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "h2c"),
            ],
            vec![("upgrade", "websocket")],
            ws[..3].to_vec(),
            vec![ws[0], ws[1], ws[2], ("sec-websocket-version", "8")],
        ] {
            assert!(
                matches!(
                    p.request(&h, 443, true, &upgrade(&bad)),
                    Decision::Deny(DenyReason::UpgradeNotAllowed { .. })
                ),
                "{bad:?}"
            );
        }
        let mut limited = route("ws.example.com");
        limited.methods = vec!["GET".parse().unwrap()];
        let p = Policy::new(std::slice::from_ref(&limited)).unwrap();
        assert_eq!(
            p.request(&h, 443, true, &upgrade(&ws)),
            Decision::Deny(DenyReason::WebSocketNotAllowed)
        );
        limited.websocket = Some(true);
        let p = Policy::new(&[limited]).unwrap();
        assert!(matches!(
            p.request(&h, 443, true, &upgrade(&ws)),
            Decision::Allow {
                websocket: true,
                ..
            }
        ));
    }

    #[test]
    fn loopback_and_metadata_need_the_route_to_name_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(may_dial(ip("93.184.216.34"), false, false), Ok(()));
        assert_eq!(
            may_dial(ip("10.0.0.7"), false, false),
            Err(AddressClass::Private)
        );
        assert_eq!(may_dial(ip("10.0.0.7"), true, false), Ok(()));
        for local in [
            "127.0.0.1",
            "169.254.169.254",
            "fd00:ec2::254",
            "::1",
            "fe80::1",
        ] {
            assert!(may_dial(ip(local), true, false).is_err(), "{local}");
            assert_eq!(may_dial(ip(local), true, true), Ok(()), "{local}");
            assert!(may_dial(ip(local), false, true).is_err(), "{local}");
        }
    }
}
