//! Upstream connections: pooled clients, the protocol each request goes upstream in, and the
//! first connection to a host dialled while the client is still busy with its own handshake.
//!
//! A tunnel's first request would otherwise wait for a whole upstream TCP and TLS handshake
//! after the client's handshake with us. When a tunnel's ClientHello arrives for a host no
//! tunnel opened to within [`WARM_FOR`], [`Upstream::dial_ahead`] starts that handshake at
//! once, in the protocol the client offers; the pooled client's connector
//! ([`AheadConnector`]) hands the connection over when the first request asks for one. Hosts
//! with recent tunnels are left to the pool, so steady traffic opens no extra connections.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::task::JoinHandle;
use tower_service::Service;

use crate::net::{CheckedResolver, HostOverrides, check_literal};
use crate::proxy::UpBody;
use crate::{EgressError, tls};

/// A host a tunnel opened to this recently is assumed to have a pooled connection (the pool
/// keeps idle ones for [`POOL_IDLE`]), so no connection is dialled ahead for it.
pub(crate) const WARM_FOR: Duration = Duration::from_secs(60);
/// How long the pool keeps an idle upstream connection.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// A connection dialled ahead and not asked for within this time is closed. Clients send
/// their first request right after their handshake; short, because some servers close a
/// connection that carries no request for a few seconds, and hyper cannot retry a request on a
/// connection it believes new.
const AHEAD_TTL: Duration = Duration::from_secs(5);
/// Past this many remembered hosts, those without a tunnel within [`WARM_FOR`] are forgotten.
const REMEMBERED_MAX: usize = 4096;

type Dialer = HttpsConnector<HttpConnector<CheckedResolver>>;
type Conn = <Dialer as Service<Uri>>::Response;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type UpClient = Client<AheadConnector, UpBody>;

/// Pooled upstream clients, one set per distinct set of trusted roots (see
/// [`TrustSets`]), so that a root trusted for one route never verifies another route's
/// upstream.
pub(crate) struct Upstream {
    sets: Vec<Pools>,
    /// Requests sent upstream and waiting for their response head.
    waiting_heads: AtomicUsize,
}

/// The clients of one root set: public-only vs. private-allowed, HTTP/2-or-1.1 (by ALPN) vs.
/// HTTP/1.1 only. Each has its own connections dialled ahead.
struct Pools {
    public: Pooled,
    private: Pooled,
    public_h1: Pooled,
    private_h1: Pooled,
}

/// The distinct root sets of a route table and which one each route uses: the Mozilla roots
/// plus the route's own `trust`, plus the config-wide `trust` for a route without `auth`. A
/// credential-bearing upstream is therefore verified only against roots its route names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustSets {
    /// The extra root files of each set; set 0 has none (Mozilla roots only).
    pub(crate) sets: Vec<Vec<std::path::PathBuf>>,
    /// The set of each route, by route index.
    pub(crate) of_route: Vec<usize>,
}

impl TrustSets {
    pub(crate) fn new(global: &[std::path::PathBuf], routes: &[bottle_manifest::Route]) -> Self {
        // Set 0 is always the Mozilla roots alone: the strictest, and what a request whose
        // route has no set of its own (it cannot happen) would get.
        let mut sets: Vec<Vec<std::path::PathBuf>> = vec![Vec::new()];
        let mut of_route = Vec::with_capacity(routes.len());
        for route in routes {
            let mut roots: Vec<std::path::PathBuf> = Vec::new();
            let inherited = if route.auth.is_some() {
                &[][..]
            } else {
                global
            };
            for path in inherited.iter().chain(&route.trust) {
                if !roots.contains(path) {
                    roots.push(path.clone());
                }
            }
            roots.sort();
            let index = sets.iter().position(|s| *s == roots).unwrap_or_else(|| {
                sets.push(roots);
                sets.len() - 1
            });
            of_route.push(index);
        }
        TrustSets { sets, of_route }
    }
}

/// A pooled client and its connector (for dialling ahead).
struct Pooled {
    client: UpClient,
    connector: AheadConnector,
}

impl Upstream {
    pub(crate) fn new(trust: &TrustSets, overrides: &HostOverrides) -> Result<Self, EgressError> {
        let sets = trust
            .sets
            .iter()
            .map(|extra| Pools::new(extra, overrides))
            .collect::<Result<_, _>>()?;
        Ok(Upstream {
            sets,
            waiting_heads: AtomicUsize::new(0),
        })
    }

    /// The pool a request of `client` goes to, given whether others are in flight.
    fn pool(
        &self,
        set: usize,
        allow_private: bool,
        client: ClientProtocol,
        alone: bool,
    ) -> &Pooled {
        let pools = self.sets.get(set).unwrap_or(&self.sets[0]);
        let h1 = match client {
            ClientProtocol::Upgrade => true,
            ClientProtocol::Http1 => alone,
            ClientProtocol::Http2 => false,
        };
        match (allow_private, h1) {
            (false, false) => &pools.public,
            (true, false) => &pools.private,
            (false, true) => &pools.public_h1,
            (true, true) => &pools.private_h1,
        }
    }
}

impl Pools {
    fn new(extra: &[std::path::PathBuf], overrides: &HostOverrides) -> Result<Self, EgressError> {
        let roots = tls::root_store(extra)?;
        let pooled = |allow_private: bool, h1_only: bool| -> Result<Pooled, EgressError> {
            let mut http = HttpConnector::new_with_resolver(CheckedResolver {
                allow_private,
                overrides: overrides.clone(),
            });
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            // hyper-rustls sets ALPN itself: h2 + http/1.1, or http/1.1 alone.
            let tls_config = tls::client_config(roots.clone())?;
            let builder = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config)
                .https_or_http();
            let dial = if h1_only {
                builder.enable_http1().wrap_connector(http)
            } else {
                builder.enable_all_versions().wrap_connector(http)
            };
            let connector = AheadConnector {
                dial,
                allow_private,
                ahead: Arc::default(),
            };
            let client = Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE)
                .build(connector.clone());
            Ok(Pooled { client, connector })
        };
        Ok(Pools {
            public: pooled(false, false)?,
            private: pooled(true, false)?,
            public_h1: pooled(false, true)?,
            private_h1: pooled(true, true)?,
        })
    }
}

impl Upstream {
    /// Send `req` upstream and wait for the response head.
    ///
    /// Which protocol: an upgrade needs HTTP/1.1. Otherwise an HTTP/2 client's request goes
    /// over HTTP/2 when the origin offers it (trailers, gRPC). An HTTP/1.1 client's request
    /// goes over HTTP/1.1 when it is the only one in flight — the cheapest round trip, no
    /// stream bookkeeping — and over the shared HTTP/2 connection when others are in flight,
    /// so that at concurrency many requests leave in one write and their answers come back in
    /// one read, instead of one system call per request each way (measured in
    /// docs/performance.md: each choice alone loses at the other concurrency).
    /// `set` is the route's root set ([`TrustSets::of_route`]).
    pub(crate) async fn request(
        &self,
        req: http::Request<UpBody>,
        set: usize,
        allow_private: bool,
        client: ClientProtocol,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        let alone = self.waiting_heads.fetch_add(1, Ordering::Relaxed) == 0;
        let _head = HeadWait(&self.waiting_heads);
        self.pool(set, allow_private, client, alone)
            .client
            .request(req)
            .await
    }

    /// Start dialling `https://{authority}` now for the pool the first request of a `client`
    /// tunnel goes to (a request alone), unless a tunnel of that protocol opened to this host
    /// within [`WARM_FOR`]. Must run inside a tokio runtime.
    pub(crate) fn dial_ahead(
        &self,
        authority: &http::uri::Authority,
        set: usize,
        allow_private: bool,
        client: ClientProtocol,
    ) {
        self.pool(set, allow_private, client, true)
            .connector
            .dial_ahead(authority);
    }
}

/// What the client asked for, which bounds the upstream protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientProtocol {
    /// An HTTP/1.1 upgrade (WebSocket): HTTP/1.1 upstream.
    Upgrade,
    /// A plain HTTP/1.x request.
    Http1,
    /// An HTTP/2 request.
    Http2,
}

/// Counts a request out of [`Upstream::waiting_heads`] when its head arrives or it fails.
struct HeadWait<'a>(&'a AtomicUsize);

impl Drop for HeadWait<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A pooled client's connector: a connection dialled ahead for the request's host if one is
/// waiting, otherwise a fresh dial. An IP-literal host is checked here, since the dialler
/// connects to literals without asking the resolver (which checks names).
#[derive(Clone)]
pub(crate) struct AheadConnector {
    dial: Dialer,
    allow_private: bool,
    ahead: Arc<Ahead>,
}

/// Connections dialled ahead, by `host:port`, and when each host was last dialled ahead.
#[derive(Default)]
struct Ahead {
    waiting: Mutex<HashMap<String, Waiting>>,
    dialled: Mutex<HashMap<String, Instant>>,
    next_id: AtomicU64,
}

struct Waiting {
    id: u64,
    dial: JoinHandle<Result<Conn, BoxError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `host:port` of an `https` URI, the port defaulted; `None` for anything else.
fn https_key(uri: &Uri) -> Option<String> {
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return None;
    }
    Some(format!("{}:{}", uri.host()?, uri.port_u16().unwrap_or(443)))
}

impl AheadConnector {
    fn dial_ahead(&self, authority: &http::uri::Authority) {
        let Ok(uri) = Uri::builder()
            .scheme(http::uri::Scheme::HTTPS)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
        else {
            return;
        };
        let Some(key) = https_key(&uri) else { return };
        if check_literal(authority.host(), self.allow_private).is_err() || !self.ahead.claim(&key) {
            return;
        }
        let mut dial = self.dial.clone();
        let handle = tokio::spawn(async move {
            std::future::poll_fn(|cx| dial.poll_ready(cx)).await?;
            dial.call(uri).await
        });
        let id = self.ahead.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.ahead.waiting).insert(key.clone(), Waiting { id, dial: handle });
        // Not asked for in time: closed, so an idle tunnel holds no upstream connection.
        let ahead = self.ahead.clone();
        tokio::spawn(async move {
            tokio::time::sleep(AHEAD_TTL).await;
            let mut waiting = lock(&ahead.waiting);
            if waiting.get(&key).is_some_and(|w| w.id == id)
                && let Some(w) = waiting.remove(&key)
            {
                w.dial.abort();
            }
        });
    }

    /// How many connections dialled ahead are waiting for their first request.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.ahead.waiting).len()
    }
}

impl Ahead {
    /// Whether to dial `key` ahead now: not when a tunnel to it opened within [`WARM_FOR`]
    /// (its connection is likely pooled). Every call counts as such a tunnel.
    fn claim(&self, key: &str) -> bool {
        let mut dialled = lock(&self.dialled);
        let now = Instant::now();
        if let Some(at) = dialled.get_mut(key) {
            let warm = now.duration_since(*at) < WARM_FOR;
            *at = now;
            return !warm;
        }
        if dialled.len() >= REMEMBERED_MAX {
            dialled.retain(|_, at| now.duration_since(*at) < WARM_FOR);
        }
        dialled.insert(key.to_owned(), now);
        true
    }

    fn take(&self, key: &str) -> Option<Waiting> {
        lock(&self.waiting).remove(key)
    }
}

impl Service<Uri> for AheadConnector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.dial.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Err(refused) = check_literal(uri.host().unwrap_or(""), self.allow_private) {
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        let waiting = https_key(&uri).and_then(|key| self.ahead.take(&key));
        let mut dial = self.dial.clone();
        Box::pin(async move {
            if let Some(waiting) = waiting
                && let Ok(Ok(conn)) = waiting.dial.await
            {
                return Ok(conn);
            }
            // No connection dialled ahead, or its dial failed: dial now, so a failure
            // reaches the client with its cause.
            std::future::poll_fn(|cx| dial.poll_ready(cx)).await?;
            dial.call(uri).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_dialled_ahead_once_per_warm_window() {
        let ahead = Ahead::default();
        assert!(ahead.claim("api.example.com:443"));
        assert!(!ahead.claim("api.example.com:443"));
        assert!(ahead.claim("api.example.com:8443"));
        // A tunnel opening now and then keeps the host warm...
        lock(&ahead.dialled).insert(
            "api.example.com:443".to_owned(),
            Instant::now() - WARM_FOR + Duration::from_secs(1),
        );
        assert!(!ahead.claim("api.example.com:443"));
        assert!(!ahead.claim("api.example.com:443"));
        // ...and after a quiet spell the next one dials ahead again.
        lock(&ahead.dialled).insert(
            "api.example.com:443".to_owned(),
            Instant::now() - WARM_FOR - Duration::from_secs(1),
        );
        assert!(ahead.claim("api.example.com:443"));
    }

    #[test]
    fn keys_are_https_host_and_port() {
        let key = |s: &str| https_key(&s.parse().unwrap());
        assert_eq!(key("https://a.example/x").as_deref(), Some("a.example:443"));
        assert_eq!(
            key("https://a.example:8443/").as_deref(),
            Some("a.example:8443")
        );
        assert_eq!(key("https://[::1]/").as_deref(), Some("[::1]:443"));
        assert_eq!(key("http://a.example/"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_dialled_ahead_and_never_asked_for_is_dropped() {
        let upstream = Upstream::new(&TrustSets::new(&[], &[]), &Arc::default()).unwrap();
        // Nothing listens on port 9 of loopback: the dial fails fast, which does not matter
        // here; what matters is that the waiting entry goes away on its own.
        let authority = "127.0.0.1:9".parse().unwrap();
        let waiting = |u: &Upstream| u.sets[0].private_h1.connector.waiting();
        upstream.dial_ahead(&authority, 0, true, ClientProtocol::Http1);
        assert_eq!(waiting(&upstream), 1);
        // Each pool dials ahead for itself: an HTTP/2 tunnel's goes to the other pool.
        upstream.dial_ahead(&authority, 0, true, ClientProtocol::Http2);
        assert_eq!(upstream.sets[0].private.connector.waiting(), 1);
        tokio::time::sleep(AHEAD_TTL + Duration::from_secs(1)).await;
        assert_eq!(waiting(&upstream), 0);
        // And the host counts as dialled: a second tunnel right away dials nothing.
        upstream.dial_ahead(&authority, 0, true, ClientProtocol::Http1);
        assert_eq!(waiting(&upstream), 0);
        // A literal the pool may not reach is never dialled, ahead or not.
        upstream.dial_ahead(&authority, 0, false, ClientProtocol::Http1);
        assert_eq!(upstream.sets[0].public_h1.connector.waiting(), 0);
    }

    #[tokio::test]
    async fn the_connector_refuses_a_literal_its_pool_may_not_reach() {
        // A listener that would accept, so a refusal can only come from the connector.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = Upstream::new(&TrustSets::new(&[], &[]), &Arc::default()).unwrap();
        let mut connector = upstream.sets[0].public_h1.connector.clone();
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let err = match connector.call(uri).await {
            Ok(_) => panic!("the public pool dialled loopback"),
            Err(e) => e,
        };
        assert!(
            matches!(
                err.downcast_ref::<crate::net::ResolveError>(),
                Some(crate::net::ResolveError::NonPublic { .. })
            ),
            "{err}"
        );
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected to the listener");
    }

    #[test]
    fn credential_routes_trust_only_their_own_roots() {
        use std::path::PathBuf;
        let global = vec![PathBuf::from("/company-ca.pem")];
        let mut keyed = bottle_manifest::Route::host("api.example.com");
        keyed.auth = Some(bottle_manifest::RouteAuth::Scheme {
            scheme: bottle_manifest::AuthScheme::Bearer,
            token_ref: "T".parse().unwrap(),
        });
        let mut own = keyed.clone();
        own.host = "own.example.com".parse().unwrap();
        own.trust = vec![PathBuf::from("/own-ca.pem")];
        let bare = bottle_manifest::Route::host("cdn.example.com");
        let sets = TrustSets::new(&global, &[keyed, own, bare]);
        let roots = |route: usize| &sets.sets[sets.of_route[route]];
        assert!(roots(0).is_empty(), "Mozilla roots only");
        assert_eq!(sets.of_route[0], 0);
        assert_eq!(roots(1), &[PathBuf::from("/own-ca.pem")]);
        assert_eq!(roots(2), &global);
    }
}
