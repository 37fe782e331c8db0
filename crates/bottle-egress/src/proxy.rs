//! The proxy itself: the front door (CONNECT and absolute-form HTTP), the intercepted tunnel,
//! request forwarding, WebSocket upgrades and introspection.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use bottle_manifest::route::{self, HostPattern, INTROSPECTION_HOST};

use crate::LogMode;
use crate::audit::{Exchange, Verdict};
use crate::net::{ResolveError, resolve_checked};
use crate::policy::{
    ConnectDecision, Decision, DenyReason, REWRITE_HEADERS, RequestPart, TargetHost,
};
use crate::server::{Runtime, Shared};
use crate::upstream::ClientProtocol;

/// The body every response of the proxy has.
pub(crate) type RespBody = BoxBody<Bytes, hyper::Error>;

/// Request headers larger than this are refused (hyper answers `431`).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// More header fields than this are refused.
const MAX_HEADERS: usize = 200;
/// A client must send a request's headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must finish the TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// [`route::HOP_BY_HOP_HEADERS`], never forwarded.
static HOP_BY_HOP: LazyLock<Vec<HeaderName>> =
    LazyLock::new(|| header_names(route::HOP_BY_HOP_HEADERS));
/// [`route::CLIENT_CREDENTIAL_HEADERS`], removed on routes that strip client credentials.
static CLIENT_CREDENTIALS: LazyLock<Vec<HeaderName>> =
    LazyLock::new(|| header_names(route::CLIENT_CREDENTIAL_HEADERS));

fn header_names(names: &[&'static str]) -> Vec<HeaderName> {
    names.iter().map(|n| HeaderName::from_static(n)).collect()
}

/// The challenge of a `407`.
const PROXY_CHALLENGE: &str = "Basic realm=\"bottle-egress\"";

/// Where a request came from: the front door (plain HTTP) or a tunnel.
#[derive(Clone, Debug)]
struct Target {
    host: TargetHost,
    port: u16,
    https: bool,
    /// The client's address (for the audit log).
    client: IpAddr,
    /// `host[:port]` (the port only when not the scheme's default), for the upstream URI and
    /// the audit log; `None` if the host cannot be one (the request is then refused).
    authority: Option<http::uri::Authority>,
}

impl Target {
    fn new(host: TargetHost, port: u16, https: bool, client: IpAddr) -> Self {
        let default = if https { 443 } else { 80 };
        let text = if port == default {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        Target {
            authority: text.parse().ok(),
            host,
            port,
            https,
            client,
        }
    }

    /// The target a request's absolute URI or `CONNECT` authority names, the port defaulted
    /// by scheme.
    fn from_authority(authority: &http::uri::Authority, https: bool, client: IpAddr) -> Self {
        let default = if https { 443 } else { 80 };
        Target::new(
            TargetHost::parse(authority.host()),
            authority.port_u16().unwrap_or(default),
            https,
            client,
        )
    }

    fn authority(&self) -> String {
        match &self.authority {
            Some(a) => a.as_str().to_owned(),
            None => self.host.to_string(),
        }
    }
}

/// Serve one accepted client connection (the front door).
pub(crate) async fn serve_client(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    let svc_shared = shared.clone();
    let client = peer.ip().to_canonical();
    let service = service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(front(shared, client, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}

async fn front(shared: Arc<Shared>, client: IpAddr, req: Request<Incoming>) -> Response<RespBody> {
    // The configuration in force for this request, taken once.
    let rt = shared.runtime();
    if let Some(credential) = &rt.proxy_auth
        && !credential.admits(req.headers())
    {
        return proxy_auth_required(&shared, &rt, client, &req);
    }
    if req.method() == Method::CONNECT {
        return connect(shared, rt, client, req).await;
    }
    let Some(authority) = req.uri().authority().cloned() else {
        // Origin-form: addressed to the proxy itself, which answers only for its
        // introspection host (a web page reaching the port by DNS rebinding names another).
        return introspect_origin_form(&rt, &req);
    };
    if req.uri().scheme_str() != Some("http") {
        return plain(
            StatusCode::BAD_REQUEST,
            "bottle-egress forwards only http:// URLs in absolute form; use CONNECT for https.\n",
        );
    }
    let target = Target::from_authority(&authority, false, client);
    match check_authority(&req, &target) {
        Ok(()) => {}
        Err(AuthorityProblem::Invalid(message)) => {
            return plain(StatusCode::BAD_REQUEST, message);
        }
        Err(AuthorityProblem::Mismatch(_)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "The Host header does not match the request target.\n",
            );
        }
    }
    if matches!(&target.host, TargetHost::Name(n) if n == INTROSPECTION_HOST) {
        return introspect(&rt, &req);
    }
    forward(&shared, rt, &target, req).await
}

/// `CONNECT host:port`: decide on the authority before any TLS, then intercept.
async fn connect(
    shared: Arc<Shared>,
    rt: Arc<Runtime>,
    client: IpAddr,
    req: Request<Incoming>,
) -> Response<RespBody> {
    let Some(authority) = req.uri().authority().cloned() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "CONNECT needs a host:port target.\n",
        );
    };
    let target = Target::from_authority(&authority, true, client);
    let mut connect_route = None;
    // What the tunnel is for: the introspection endpoints, or an upstream host with the
    // route's address policy.
    let purpose = match rt.policy.connect(&target.host, target.port, true) {
        ConnectDecision::Deny(reason) => {
            return deny(&shared, &rt, &target, "CONNECT", "", reason);
        }
        ConnectDecision::Introspection => TunnelTo::Introspection,
        ConnectDecision::Allow {
            route,
            allow_private,
        } => {
            connect_route = rt.policy.route(route).map(|r| r.host.clone());
            // Check the addresses now, so a refused host gets a clear 403 before any TLS; the
            // connector checks again on the addresses it actually dials (DNS rebinding).
            let host = target.host.as_cert_name();
            match resolve_checked(&host, target.port, allow_private, &shared.overrides).await {
                Ok(_) => TunnelTo::Upstream,
                Err(ResolveError::NonPublic {
                    addr, class, named, ..
                }) => {
                    let reason = DenyReason::PrivateAddress { addr, class, named };
                    return deny(&shared, &rt, &target, "CONNECT", "", reason);
                }
                Err(e @ ResolveError::Dns { .. }) => {
                    return upstream_error(
                        &shared,
                        &rt,
                        &target,
                        "CONNECT",
                        StatusCode::BAD_GATEWAY,
                        "dns_error",
                        &e.to_string(),
                    );
                }
            }
        }
    };
    if purpose != TunnelTo::Introspection {
        let ex = exchange(
            &shared,
            &rt,
            &target,
            "CONNECT",
            "",
            Verdict::Allow,
            connect_route.as_ref().map(|r| r as &dyn RouteOrReason),
        );
        ex.set_status(200);
    }
    let tunnel_shared = shared.clone();
    shared.tracker.spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => tunnel(tunnel_shared, TokioIo::new(upgraded), target, purpose).await,
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    Response::new(empty())
}

/// Where an allowed tunnel's requests go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TunnelTo {
    /// `_egress.local`: answered by the proxy itself.
    Introspection,
    /// Upstream, under the route of the tunnel's host.
    Upstream,
}

/// Inside an allowed tunnel: TLS with a leaf for the CONNECT host, then HTTP/1.1 or HTTP/2.
async fn tunnel(
    shared: Arc<Shared>,
    io: TokioIo<hyper::upgrade::Upgraded>,
    target: Target,
    purpose: TunnelTo,
) {
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => {
            // Not TLS (or a broken hello): never fall back to a blind tunnel.
            tracing::debug!(host = %target.host, error = %e, "no TLS ClientHello in the tunnel");
            return;
        }
        Err(_) => return,
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(crate::policy::normalize_host);
    let sni_ok = match (&target.host, sni.as_deref()) {
        (TargetHost::Name(name), Some(sni)) => name == sni,
        // Clients send no SNI for IP literals.
        (TargetHost::Ip(ip), sni) => sni.is_none_or(|s| s == ip.to_string()),
        (TargetHost::Name(_), None) => false,
    };
    if !sni_ok {
        let rt = shared.runtime();
        let reason = DenyReason::SniMismatch { sni };
        tracing::debug!(host = %target.host, reason = reason.code(), "refused a TLS handshake");
        let ex = exchange(
            &shared,
            &rt,
            &target,
            "CONNECT",
            "",
            Verdict::Deny,
            Some(&reason),
        );
        ex.set_status(0);
        return;
    }
    let rt = shared.runtime();
    // The upstream handshake for the tunnel's first request starts now, in the protocol the
    // client offers, and runs while we mint the leaf and finish the client's handshake; with
    // the route's roots and address policy as the configuration in force has them.
    if purpose == TunnelTo::Upstream
        && let Some(authority) = &target.authority
        && let Some(route) = rt.policy.route_for(&target.host)
        && let (Some(compiled), Some(r)) = (rt.routes.get(route), rt.policy.route(route))
    {
        let offers_h2 = start
            .client_hello()
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == b"h2"));
        let protocol = if offers_h2 {
            ClientProtocol::Http2
        } else {
            ClientProtocol::Http1
        };
        rt.upstream
            .dial_ahead(authority, compiled.trust_set, r.allow_private, protocol);
    }
    let config = match rt.leaves.server_config(&target.host.as_cert_name()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(host = %target.host, error = %e, "cannot mint a leaf");
            return;
        }
    };
    drop(rt);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(host = %target.host, error = %e, "TLS handshake with the client failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let svc_shared = shared.clone();
    let svc_target = Arc::new(target.clone());
    let service = service_fn(move |req| {
        let shared = svc_shared.clone();
        let target = svc_target.clone();
        async move { Ok::<_, Infallible>(inner(&shared, &target, purpose, req).await) }
    });
    let result = if h2 {
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            () = shared.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            () = shared.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(host = %target.host, error = %e, "tunnel ended with an error");
    }
}

async fn inner(
    shared: &Arc<Shared>,
    target: &Target,
    purpose: TunnelTo,
    req: Request<Incoming>,
) -> Response<RespBody> {
    match check_authority(&req, target) {
        Ok(()) => {}
        Err(AuthorityProblem::Invalid(message)) => {
            return plain(StatusCode::BAD_REQUEST, message);
        }
        Err(AuthorityProblem::Mismatch(requested)) => {
            let rt = shared.runtime();
            let method = req.method().as_str().to_owned();
            let path = req.uri().path().to_owned();
            return deny(
                shared,
                &rt,
                target,
                &method,
                &path,
                DenyReason::HostMismatch { requested },
            );
        }
    }
    let rt = shared.runtime();
    if purpose == TunnelTo::Introspection {
        return introspect(&rt, &req);
    }
    forward(shared, rt, target, req).await
}

enum AuthorityProblem {
    /// Malformed: no host, several `Host` headers, unparsable.
    Invalid(&'static str),
    /// Names another host than the tunnel (domain fronting).
    Mismatch(String),
}

/// The request's `:authority`/absolute URI and `Host` must all name the target.
fn check_authority<B>(req: &Request<B>, target: &Target) -> Result<(), AuthorityProblem> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(h), None) => match h.to_str() {
            Ok(h) => Some(h),
            Err(_) => return Err(AuthorityProblem::Invalid("The Host header is invalid.\n")),
        },
        (Some(_), Some(_)) => {
            return Err(AuthorityProblem::Invalid("More than one Host header.\n"));
        }
    };
    let uri = req.uri().authority();
    if uri.is_none() && host.is_none() {
        return Err(AuthorityProblem::Invalid("The request names no host.\n"));
    }
    let same = |auth: &http::uri::Authority| {
        TargetHost::parse(auth.host()) == target.host
            && auth.port_u16().is_none_or(|p| p == target.port)
    };
    if let Some(auth) = uri
        && !same(auth)
    {
        return Err(AuthorityProblem::Mismatch(auth.as_str().to_owned()));
    }
    if let Some(h) = host {
        // The usual case, `Host` equal to the tunnel's own authority, needs no parsing.
        if target.authority.as_ref().is_some_and(|a| a == h) {
            return Ok(());
        }
        let Ok(auth) = h.parse::<http::uri::Authority>() else {
            return Err(AuthorityProblem::Invalid(
                "The request's host is invalid.\n",
            ));
        };
        if !same(&auth) {
            return Err(AuthorityProblem::Mismatch(h.to_owned()));
        }
    }
    Ok(())
}

/// Decide and forward one request.
async fn forward(
    shared: &Arc<Shared>,
    rt: Arc<Runtime>,
    target: &Target,
    mut req: Request<Incoming>,
) -> Response<RespBody> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let (route_index, websocket) =
        match rt
            .policy
            .request(&target.host, target.port, target.https, &req)
        {
            Decision::Deny(reason) => return deny(shared, &rt, target, &method, &path, reason),
            Decision::Allow { route, websocket } => (route, websocket),
        };
    let (Some(route), Some(compiled)) = (rt.policy.route(route_index), rt.routes.get(route_index))
    else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "route table changed\n");
    };
    // The audit record of an allowed request, only when it will be written: with `log: blocks`
    // (the default) an allowed request costs the audit nothing; a refusal found later (the
    // upstream address) creates its record then, in `forward_error`.
    let allowed = || {
        exchange(
            shared,
            &rt,
            target,
            &method,
            &path,
            Verdict::Allow,
            Some(&route.host),
        )
    };
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // The absolute URI from its parts: the tunnel's authority (parsed once per tunnel) and the
    // request's own path and query, moved rather than formatted and parsed again.
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(if target.https {
        http::uri::Scheme::HTTPS
    } else {
        http::uri::Scheme::HTTP
    });
    uri.authority.clone_from(&target.authority);
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = match Uri::from_parts(uri) {
        Ok(u) => u,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "The request target is invalid.\n"),
    };
    let protocol = if websocket {
        ClientProtocol::Upgrade
    } else if parts.version == Version::HTTP_2 {
        ClientProtocol::Http2
    } else {
        ClientProtocol::Http1
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    if compiled.strip_credentials {
        for name in CLIENT_CREDENTIALS.iter() {
            parts.headers.remove(name);
        }
    }
    if compiled.strip_rewrites {
        for name in &REWRITE_HEADERS {
            parts.headers.remove(name);
        }
    }
    // DLP sees what the client sends on (after the removals, before the injection: the
    // route's own credential never counts). A secret in the path keeps the path out of the
    // audit record and the answer.
    if let Some(scanner) = &compiled.dlp
        && let Err(reason) = crate::dlp::inspect_head(scanner, &parts)
    {
        let logged = match &reason {
            DenyReason::SecretInRequest {
                part: RequestPart::Path,
                ..
            } => "",
            _ => path.as_str(),
        };
        return deny(shared, &rt, target, &method, logged, reason);
    }
    // Created now, after the head's DLP check; for a DLP route always, so that a body refused
    // while it streams is audited.
    let ex = (rt.config.log == LogMode::Full || compiled.dlp.is_some()).then(allowed);
    // After every removal, so that nothing the client sent (`Connection: authorization`
    // included) can take the injected header out again.
    if let Some(injection) = &compiled.injection {
        parts.headers.remove(&injection.name);
        parts
            .headers
            .insert(injection.name.clone(), injection.value.clone());
    }
    if websocket {
        // The policy checked the handshake: `Upgrade: websocket` and nothing else.
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts
            .headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let mut body = match crate::dlp::Inspected::new(
        body,
        compiled.dlp.as_ref(),
        &mut parts.headers,
        ex.clone(),
    ) {
        Ok(body) => body,
        Err(reason) => return deny_marked(ex.as_ref(), target, &method, &path, reason),
    };
    if let Err(reason) = body.prefetch().await {
        return deny_marked(ex.as_ref(), target, &method, &path, reason);
    }
    let blocked = body.blocked();
    let body = Counted {
        inner: body,
        exchange: ex.clone(),
        up: true,
    };
    let upstream_req = Request::from_parts(parts, body);
    let mut resp = match rt
        .upstream
        .request(
            upstream_req,
            compiled.trust_set,
            route.allow_private,
            protocol,
        )
        .await
    {
        Ok(resp) => resp,
        // DLP stopped the body as it streamed: the upstream request was reset for it.
        Err(_) if let Some(reason) = blocked.as_ref().and_then(|b| b.get()) => {
            return deny_marked(ex.as_ref(), target, &method, &path, reason.clone());
        }
        Err(e) => {
            let ex = ex.unwrap_or_else(allowed);
            return forward_error(target, &method, &path, &ex, &e);
        }
    };
    let status = resp.status();
    if let Some(ex) = &ex {
        ex.set_status(status.as_u16());
    }

    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return plain(
                StatusCode::BAD_GATEWAY,
                "The upstream switched protocols unasked.\n",
            );
        };
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let splice_ex = ex.clone();
        shared.tracker.spawn(async move {
            let (Ok(client_io), Ok(upstream_io)) = tokio::join!(client_upgrade, upstream_upgrade)
            else {
                return;
            };
            let mut client_io = TokioIo::new(client_io);
            let mut upstream_io = TokioIo::new(upstream_io);
            let copied = tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await;
            if let (Ok((up, down)), Some(ex)) = (copied, splice_ex) {
                ex.add_up(up);
                ex.add_down(down);
            }
        });
        let (mut parts, _) = resp.into_parts();
        let upgrade = parts.headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(up) = upgrade {
            parts.headers.insert(header::UPGRADE, up);
        }
        return Response::from_parts(parts, empty());
    }

    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Counted {
        inner: body,
        exchange: ex,
        up: false,
    };
    Response::from_parts(parts, BoxBody::new(body))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let te_trailers = headers
        .get(header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in &named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
    if te_trailers {
        // `TE: trailers` is end-to-end in practice (gRPC needs it).
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

fn forward_error(
    target: &Target,
    method: &str,
    path: &str,
    ex: &Arc<Exchange>,
    err: &hyper_util::client::legacy::Error,
) -> Response<RespBody> {
    // Walk the cause chain (through io::Error payloads too) for the resolver's verdict or a
    // TLS verification failure.
    let chain = error_chain(err);
    for e in &chain {
        if let Some(resolve) = e.downcast_ref::<ResolveError>() {
            return match resolve {
                ResolveError::NonPublic {
                    addr, class, named, ..
                } => {
                    let reason = DenyReason::PrivateAddress {
                        addr: *addr,
                        class: *class,
                        named: *named,
                    };
                    ex.set_denied();
                    ex.set_reason(reason.code());
                    ex.set_status(403);
                    deny_response(target, method, path, &reason)
                }
                ResolveError::Dns { .. } => {
                    ex.set_reason("dns_error");
                    ex.set_status(502);
                    gateway_response(StatusCode::BAD_GATEWAY, "dns_error", &resolve.to_string())
                }
            };
        }
    }
    for e in &chain {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            ex.set_reason("tls_certificate_error");
            ex.set_status(502);
            return gateway_response(
                StatusCode::BAD_GATEWAY,
                "tls_certificate_error",
                &format!("the upstream's TLS certificate was rejected: {tls}"),
            );
        }
    }
    for e in &chain {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let (kind, error, status, details) = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => (
                    "connection_refused",
                    "connection_refused",
                    StatusCode::BAD_GATEWAY,
                    "the upstream refused the connection",
                ),
                std::io::ErrorKind::TimedOut => (
                    "connection_timeout",
                    "connection_timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    "connecting to the upstream timed out",
                ),
                _ => continue,
            };
            ex.set_reason(kind);
            ex.set_status(status.as_u16());
            return gateway_response(status, error, details);
        }
    }
    tracing::info!(host = %target.host, error = %err, "upstream request failed");
    ex.set_reason("upstream_error");
    ex.set_status(502);
    gateway_response(
        StatusCode::BAD_GATEWAY,
        "destination_unavailable",
        "the upstream request failed",
    )
}

/// Every error in `err`'s cause chain, looking inside `io::Error` payloads (which hide
/// their payload from `source()`).
fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        if out.len() > 32 {
            break;
        }
        out.push(e);
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    out
}

fn gateway_response(status: StatusCode, error: &str, details: &str) -> Response<RespBody> {
    let mut resp = plain(status, &format!("bottle-egress: {details}.\n"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "bottle-egress; error={error}; details={}",
        quoted(details)
    )) {
        resp.headers_mut().insert("proxy-status", v);
    }
    resp
}

fn upstream_error(
    shared: &Shared,
    rt: &Runtime,
    target: &Target,
    method: &str,
    status: StatusCode,
    error: &str,
    details: &str,
) -> Response<RespBody> {
    let ex = exchange(shared, rt, target, method, "", Verdict::Deny, None);
    ex.set_reason(error);
    ex.set_status(status.as_u16());
    gateway_response(status, error, details)
}

fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect();
    format!("\"{clean}\"")
}

/// A refusal: audit it, and answer `403` with a `Proxy-Status` and the explaining body.
fn deny(
    shared: &Shared,
    rt: &Runtime,
    target: &Target,
    method: &str,
    path: &str,
    reason: DenyReason,
) -> Response<RespBody> {
    tracing::debug!(host = %target.host, method, path, reason = reason.code(), "refused");
    let ex = exchange(
        shared,
        rt,
        target,
        method,
        path,
        Verdict::Deny,
        Some(&reason),
    );
    ex.set_status(403);
    deny_response(target, method, path, &reason)
}

/// A refusal of a request whose audit record exists (`ex`, when audited): marked refused.
fn deny_marked(
    ex: Option<&Arc<Exchange>>,
    target: &Target,
    method: &str,
    path: &str,
    reason: DenyReason,
) -> Response<RespBody> {
    tracing::debug!(host = %target.host, method, reason = reason.code(), "refused");
    if let Some(ex) = ex {
        ex.set_denied();
        ex.set_reason(reason.code());
        ex.set_status(403);
    }
    deny_response(target, method, path, &reason)
}

fn deny_response(
    target: &Target,
    method: &str,
    path: &str,
    reason: &DenyReason,
) -> Response<RespBody> {
    let mut resp = plain(
        StatusCode::FORBIDDEN,
        &reason.body(&target.host, method, path),
    );
    if let Ok(v) = HeaderValue::from_str(&reason.proxy_status()) {
        resp.headers_mut().insert("proxy-status", v);
    }
    resp
}

fn exchange(
    shared: &Shared,
    rt: &Runtime,
    target: &Target,
    method: &str,
    path: &str,
    verdict: Verdict,
    route_or_reason: Option<&dyn RouteOrReason>,
) -> Arc<Exchange> {
    exchange_for(
        shared,
        rt,
        target.authority(),
        target.client,
        method,
        path,
        verdict,
        route_or_reason,
    )
}

#[allow(clippy::too_many_arguments)]
fn exchange_for(
    shared: &Shared,
    rt: &Runtime,
    host: String,
    client: IpAddr,
    method: &str,
    path: &str,
    verdict: Verdict,
    route_or_reason: Option<&dyn RouteOrReason>,
) -> Arc<Exchange> {
    let (route, reason) = match route_or_reason {
        Some(x) => x.split(),
        None => (None, None),
    };
    Arc::new(Exchange {
        audit: shared.audit.clone(),
        client: Some(client),
        mode: rt.config.log,
        host,
        method: method.to_owned(),
        path: path.to_owned(),
        route,
        denied: (verdict == Verdict::Deny).into(),
        reason: std::sync::Mutex::new(reason),
        status: 0.into(),
        bytes_up: 0.into(),
        bytes_down: 0.into(),
        started: Instant::now(),
        time: time::OffsetDateTime::now_utc(),
    })
}

trait RouteOrReason {
    fn split(&self) -> (Option<String>, Option<String>);
}

impl RouteOrReason for HostPattern {
    fn split(&self) -> (Option<String>, Option<String>) {
        (Some(self.to_string()), None)
    }
}

/// A refusal known only by its code (the proxy credential is missing).
impl RouteOrReason for &'static str {
    fn split(&self) -> (Option<String>, Option<String>) {
        (None, Some((*self).to_owned()))
    }
}

impl RouteOrReason for DenyReason {
    fn split(&self) -> (Option<String>, Option<String>) {
        (None, Some(self.code().to_owned()))
    }
}

/// An origin-form request, answered only when its `Host` is the introspection host.
fn introspect_origin_form<B>(rt: &Runtime, req: &Request<B>) -> Response<RespBody> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok());
    if host.is_some_and(|h| h.host().eq_ignore_ascii_case(INTROSPECTION_HOST)) {
        return introspect(rt, req);
    }
    plain(
        StatusCode::BAD_REQUEST,
        "bottle-egress is a proxy: send requests through it in absolute form (GET http://host/…) \
         or with CONNECT. It answers for itself only with `Host: _egress.local` \
         (GET http://_egress.local/health, /routes).\n",
    )
}

/// Answer `407`: the config asks every client for the proxy credential and this request
/// lacks it (or has another). Audited; the answer says how to send it.
fn proxy_auth_required(
    shared: &Shared,
    rt: &Runtime,
    client: IpAddr,
    req: &Request<Incoming>,
) -> Response<RespBody> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            let host = req.headers().get(header::HOST)?;
            Some(String::from_utf8_lossy(host.as_bytes()).into_owned())
        })
        .unwrap_or_default();
    let path = if req.method() == Method::CONNECT {
        ""
    } else {
        req.uri().path()
    };
    let ex = exchange_for(
        shared,
        rt,
        host,
        client,
        req.method().as_str(),
        path,
        Verdict::Deny,
        Some(&"proxy_auth_required"),
    );
    ex.set_status(407);
    let mut resp = plain(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "bottle-egress needs the proxy credential: send `Proxy-Authorization: Basic \
         base64(user:token)` with every request to the proxy, or put the credential in the \
         proxy URL (http://USER:TOKEN@HOST:PORT). In a bottle the agent's proxy variables \
         carry it.\n",
    );
    resp.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static(PROXY_CHALLENGE),
    );
    resp
}

/// The `_egress.local` endpoints: `GET /health` and `GET /routes`.
fn introspect<B>(rt: &Runtime, req: &Request<B>) -> Response<RespBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET is answered here.\n",
        );
    }
    match req.uri().path() {
        "/health" => plain(StatusCode::OK, "ok\n"),
        "/routes" => {
            // `Route` serializes `token_ref` names, never a token value (the egress holds
            // values elsewhere).
            let routes: Vec<_> = rt.policy.routes().collect();
            let body = serde_json::to_vec_pretty(&serde_json::json!({ "routes": routes }))
                .unwrap_or_default();
            let mut resp = Response::new(full(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "bottle-egress answers GET /health and GET /routes here.\n",
        ),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<RespBody> {
    let mut resp = Response::new(full(text.as_bytes().to_vec()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn full(bytes: Vec<u8>) -> RespBody {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> RespBody {
    full(Vec::new())
}

/// A body that counts its data bytes into the exchange (up or down), if it is audited.
pub(crate) struct Counted<B> {
    inner: B,
    exchange: Option<Arc<Exchange>>,
    up: bool,
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(exchange) = &self.exchange
        {
            let n = data.len() as u64;
            if self.up {
                exchange.add_up(n);
            } else {
                exchange.add_down(n);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pub(crate) type UpBody = Counted<crate::dlp::Inspected>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("proxy-authorization", "Basic YQ=="),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-end-to-end", "kept"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["te", "x-end-to-end"]);
    }
}
