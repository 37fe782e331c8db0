//! The server: builder, shared state, live reload and draining shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use base64::Engine;

use crate::audit::{Audit, AuditEvent, AuditSink};
use crate::ca::{CertificateAuthority, LeafCache};
use crate::config::{self, EgressConfig};
use crate::error::ConfigError;
use crate::net::{Addresses, HostOverrides};
use crate::policy::Policy;
use crate::upstream::{TrustSets, Upstream};
use crate::{EgressError, tls};

/// How long [`EgressHandle::shutdown`] waits for open connections by default: under the 10 s
/// `docker stop` grants before SIGKILL, so a drained exit is a clean one.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// Reads a credential by its `token_ref` name.
pub type TokenSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Entry point: `Egress::builder(config)`.
///
/// ```no_run
/// # async fn run() -> Result<(), bottle_egress::EgressError> {
/// use bottle_egress::{CertificateAuthority, Egress, EgressConfig, Route};
///
/// let mut config = EgressConfig::default();
/// config.routes.push(Route::host("api.example.com"));
/// let egress = Egress::builder(config)
///     .certificate_authority(CertificateAuthority::generate()?)
///     .start()
///     .await?;
/// println!("proxy on {}", egress.local_addr());
/// egress.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Egress;

impl Egress {
    /// A builder for a proxy serving `config`.
    pub fn builder(config: EgressConfig) -> EgressBuilder {
        EgressBuilder {
            config,
            ca: None,
            tokens: Arc::new(|name| std::env::var(name).ok()),
            audit: Arc::new(TracingAudit),
            overrides: HashMap::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Configures and starts an egress proxy.
pub struct EgressBuilder {
    config: EgressConfig,
    ca: Option<CertificateAuthority>,
    tokens: TokenSource,
    audit: Arc<dyn AuditSink>,
    overrides: HashMap<String, Vec<IpAddr>>,
    drain_timeout: Duration,
}

impl std::fmt::Debug for EgressBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EgressBuilder {
    /// Use this CA instead of the config's `ca` files.
    #[must_use]
    pub fn certificate_authority(mut self, ca: CertificateAuthority) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Where credentials come from (default: the process environment). Called at start and
    /// on every reload; a route whose `token_ref` has no value is a configuration error.
    #[must_use]
    pub fn tokens(
        mut self,
        source: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.tokens = Arc::new(source);
        self
    }

    /// Where audit events go (default: `tracing` events with target `bottle_egress::audit`).
    #[must_use]
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// Answer `host` with fixed addresses instead of DNS (like curl's `--resolve`; the
    /// config's `resolve` does the same). They count as addresses the route names: a route
    /// with `allow_private` reaches them even when they are loopback or link-local, a route
    /// without it only when they are public.
    #[must_use]
    pub fn resolve(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.overrides.insert(
            crate::policy::normalize_host(host),
            addrs.into_iter().collect(),
        );
        self
    }

    /// How long shutdown waits for open connections.
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Bind `config.listen` and start serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// A configuration error (invalid route, missing token, unreadable CA) or a bind error.
    pub async fn start(self) -> Result<EgressHandle, EgressError> {
        let addr = self.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EgressError::Bind { addr, source })?;
        self.start_on(listener)
    }

    /// Start serving on an already bound listener (its address wins over `config.listen`).
    ///
    /// # Errors
    ///
    /// A configuration error (invalid route, missing token, unreadable CA).
    pub fn start_on(self, listener: TcpListener) -> Result<EgressHandle, EgressError> {
        let local_addr = listener.local_addr().map_err(|source| EgressError::Bind {
            addr: self.config.listen,
            source,
        })?;
        let mut fixed = self.overrides;
        for (host, addrs) in &self.config.resolve {
            fixed
                .entry(host.to_string())
                .or_insert_with(|| addrs.clone());
        }
        let overrides: HostOverrides = Arc::new(Addresses::new(fixed));
        let leaves = match self.ca {
            Some(ca) => Arc::new(LeafCache::new(ca, tls::provider())),
            None => Arc::new(LeafCache::new(load_ca(&self.config)?, tls::provider())),
        };
        let runtime = Runtime::build(self.config, &self.tokens, leaves, None, &overrides)?;
        let shared = Arc::new(Shared {
            runtime: RwLock::new(Arc::new(runtime)),
            audit: Arc::new(Audit::new(self.audit)),
            overrides,
            tokens: self.tokens,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(accept_loop(accept_shared, listener));
        // Refusals repeated within a window are written as one summary when it closes.
        let audit = shared.audit.clone();
        let stop = shared.shutdown.clone();
        shared.tracker.spawn(async move {
            let mut tick = tokio::time::interval(crate::audit::REPEAT_WINDOW);
            loop {
                tokio::select! {
                    _ = tick.tick() => audit.flush_expired(),
                    () = stop.cancelled() => break,
                }
            }
        });
        tracing::info!(%local_addr, "bottle-egress listening");
        Ok(EgressHandle {
            local_addr,
            shared,
            task,
            drain_timeout: self.drain_timeout,
        })
    }
}

fn load_ca(config: &EgressConfig) -> Result<CertificateAuthority, EgressError> {
    let Some(files) = &config.ca else {
        return Err(ConfigError::single(
            "ca",
            "no CA configured; set `ca: {cert: …, key: …}` (create one with `bottle-egress mint-ca --out DIR`)",
        )
        .into());
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|source| EgressError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    CertificateAuthority::from_pem(&read(&files.cert)?, &read(&files.key)?)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let rt = shared.runtime();
                if !rt.config.admits(peer.ip()) {
                    // Closed unread: a stranger on a shared network learns nothing, not even
                    // that this is a proxy.
                    refuse_client(&shared, &rt, peer);
                    drop(stream);
                    continue;
                }
                drop(rt);
                let conn_shared = shared.clone();
                shared
                    .tracker
                    .spawn(crate::proxy::serve_client(conn_shared, stream, peer));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Audit a connection refused because its source is outside `clients`.
fn refuse_client(shared: &Shared, rt: &Runtime, peer: SocketAddr) {
    tracing::debug!(%peer, "refused a client outside `clients`");
    if rt.config.log == bottle_manifest::LogMode::Off {
        return;
    }
    shared.audit.record(AuditEvent {
        time: time::OffsetDateTime::now_utc(),
        host: String::new(),
        method: String::new(),
        path: String::new(),
        route: None,
        decision: crate::audit::Verdict::Deny,
        reason: Some("client_not_allowed".to_owned()),
        status: 0,
        bytes_up: 0,
        bytes_down: 0,
        duration_ms: 0,
        client: Some(peer.ip().to_canonical()),
        repeated: None,
    });
}

/// A running egress: its address, reload and shutdown.
#[derive(Debug)]
pub struct EgressHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    drain_timeout: Duration,
}

impl EgressHandle {
    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The interception CA certificate (PEM) clients must trust.
    pub fn ca_cert_pem(&self) -> String {
        self.shared.runtime().leaves.ca().cert_pem().to_owned()
    }

    /// How many leaf certificates were minted so far.
    pub fn leaves_minted(&self) -> u64 {
        self.shared.runtime().leaves.mint_count()
    }

    /// Replace the configuration. Open connections stay open; their next request is decided
    /// by the new routes. A `ca` of `None` keeps the current CA; `listen` cannot change
    /// without a restart (a different value is ignored with a warning).
    ///
    /// # Errors
    ///
    /// The new config is invalid; the old one stays in force.
    pub fn reload(&self, config: EgressConfig) -> Result<(), EgressError> {
        let current = self.shared.runtime();
        if config.listen != current.config.listen && config.listen != self.local_addr {
            tracing::warn!(
                old = %current.config.listen,
                new = %config.listen,
                "`listen` changed; restart bottle-egress to move it"
            );
        }
        let leaves = match &config.ca {
            None => current.leaves.clone(),
            Some(_) => {
                let ca = load_ca(&config)?;
                if ca.cert_pem() == current.leaves.ca().cert_pem()
                    && ca.key_pem() == current.leaves.ca().key_pem()
                {
                    current.leaves.clone()
                } else {
                    Arc::new(LeafCache::new(ca, tls::provider()))
                }
            }
        };
        if config.resolve != current.config.resolve {
            tracing::warn!("`resolve` changed; restart bottle-egress to apply it");
        }
        let trust = TrustSets::new(&config.trust, &config.routes);
        let reuse = (trust == current.trust).then(|| current.upstream.clone());
        let runtime = Runtime::build(
            config,
            &self.shared.tokens,
            leaves,
            reuse,
            &self.shared.overrides,
        )?;
        *self
            .shared
            .runtime
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(runtime);
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Stop accepting, let open connections finish (HTTP/2 gets GOAWAY, idle HTTP/1.1
    /// connections close) for up to the drain timeout, then return.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        let _ = self.task.await;
        self.shared.tracker.close();
        if tokio::time::timeout(self.drain_timeout, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.shared.tracker.len(),
                "drain timeout reached; closing the remaining connections"
            );
        }
        // Nothing counted is lost: the summaries of open windows are written now.
        self.shared.audit.flush_all();
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    pub(crate) audit: Arc<Audit>,
    pub(crate) overrides: HostOverrides,
    tokens: TokenSource,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The configuration in force now (cheap: an `Arc` clone under a read lock).
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// One configuration, compiled: what a reload swaps.
pub(crate) struct Runtime {
    pub(crate) config: EgressConfig,
    pub(crate) policy: Policy,
    /// What forwarding needs of each route, by route index.
    pub(crate) routes: Vec<RouteRuntime>,
    /// The credential every client must present, when the config asks for one.
    pub(crate) proxy_auth: Option<ProxyCredential>,
    pub(crate) trust: TrustSets,
    pub(crate) leaves: Arc<LeafCache>,
    pub(crate) upstream: Arc<Upstream>,
}

/// One route's forwarding, compiled.
pub(crate) struct RouteRuntime {
    /// The header the route injects (its value marked sensitive).
    pub(crate) injection: Option<Injection>,
    /// Remove every client credential header (see [`Route::strips_client_credentials`]).
    ///
    /// [`Route::strips_client_credentials`]: bottle_manifest::Route::strips_client_credentials
    pub(crate) strip_credentials: bool,
    /// Remove the headers that ask an origin to rewrite the method or path (the route limits
    /// paths or methods).
    pub(crate) strip_rewrites: bool,
    /// The route's set of upstream roots ([`TrustSets`]).
    pub(crate) trust_set: usize,
    /// What DLP looks for in the route's requests; `None` with `dlp: off`.
    pub(crate) dlp: Option<bottle_secrets::Scanner>,
}

pub(crate) struct Injection {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
}

/// `Proxy-Authorization: Basic …` as the config asks for it.
pub(crate) struct ProxyCredential {
    /// `base64(user:token)`.
    expected: Vec<u8>,
}

impl ProxyCredential {
    /// Whether `headers` carry the credential: one `Proxy-Authorization` of scheme `Basic`
    /// (any case) whose credentials equal the expected ones, compared in constant time.
    pub(crate) fn admits(&self, headers: &http::HeaderMap) -> bool {
        let mut values = headers.get_all(http::header::PROXY_AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let value = value.as_bytes();
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(space);
        scheme.eq_ignore_ascii_case(b"basic") && constant_time_eq(rest.trim_ascii(), &self.expected)
    }
}

/// The `Proxy-Authorization` header line a client of a proxy with `proxy_auth` sends:
/// `Proxy-Authorization: Basic base64(user:token)` and its CRLF.
pub fn proxy_authorization(user: &str, token: &str) -> String {
    format!(
        "Proxy-Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
    )
}

/// Whether `a == b`, in a time that depends only on the lengths (the length of a credential
/// is not the secret; its bytes are).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Runtime {
    fn build(
        config: EgressConfig,
        tokens: &TokenSource,
        leaves: Arc<LeafCache>,
        upstream: Option<Arc<Upstream>>,
        overrides: &HostOverrides,
    ) -> Result<Self, EgressError> {
        // The one place a configuration is compiled: a config read from a file was checked
        // with positions already; one built in code is checked here.
        let policy = Policy::new(&config.routes);
        let mut problems = match &policy {
            Ok(_) => Vec::new(),
            Err(route_problems) => config::route_problems(route_problems.clone()),
        };
        problems.extend(config.setting_problems());
        problems.extend(config.token_problems(tokens.as_ref()));
        let policy = match policy {
            Ok(policy) if problems.is_empty() => policy,
            _ => return Err(config::unlocated(problems).into()),
        };
        let trust = TrustSets::new(&config.trust, &config.routes);
        let known = crate::dlp::known_secrets(&config, tokens.as_ref())?;
        let mut scanners = crate::dlp::route_scanners(&config.routes, &known)?.into_iter();
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, route) in config.routes.iter().enumerate() {
            let injection = match &route.auth {
                None => None,
                Some(auth) => {
                    let token = tokens(auth.token_ref()).unwrap_or_default();
                    let name =
                        HeaderName::from_bytes(auth.header_name().as_bytes()).map_err(|_| {
                            ConfigError::single(
                                format!("routes[{i}].auth.header"),
                                "not a valid header name",
                            )
                        })?;
                    let mut value =
                        HeaderValue::from_str(&auth.header_value(&token)).map_err(|_| {
                            ConfigError::single(
                                format!("routes[{i}].auth.token_ref"),
                                format!(
                                    "the value of `{}` is not a valid header value (control characters?)",
                                    auth.token_ref()
                                ),
                            )
                        })?;
                    // Keeps it out of HPACK tables and debug output.
                    value.set_sensitive(true);
                    Some(Injection { name, value })
                }
            };
            routes.push(RouteRuntime {
                injection,
                strip_credentials: route.strips_client_credentials(),
                strip_rewrites: route.limits_requests(),
                trust_set: trust.of_route[i],
                dlp: scanners.next().flatten(),
            });
        }
        let proxy_auth = config.proxy_auth.as_ref().map(|auth| {
            let token = tokens(auth.token_ref.as_str()).unwrap_or_default();
            ProxyCredential {
                expected: base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{token}", auth.user))
                    .into_bytes(),
            }
        });
        let upstream = match upstream {
            Some(u) => u,
            None => Arc::new(Upstream::new(&trust, overrides)?),
        };
        Ok(Runtime {
            config,
            policy,
            routes,
            proxy_auth,
            trust,
            leaves,
            upstream,
        })
    }
}

/// The default audit sink: one `tracing` event per record, target `bottle_egress::audit`.
#[derive(Debug)]
struct TracingAudit;

impl AuditSink for TracingAudit {
    fn record(&self, event: &AuditEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            tracing::info!(target: "bottle_egress::audit", "{json}");
        }
    }
}
