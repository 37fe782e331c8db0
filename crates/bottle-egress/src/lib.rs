//! A TLS-bumping egress proxy: every request is decided by a route table, HTTPS is decrypted
//! to do so, credentials the client must never hold are injected on the way out, and every
//! decision can be audited.
//!
//! ```
//! use bottle_egress::{CertificateAuthority, Decision, DenyReason, Egress, EgressConfig, Policy, TargetHost};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bottle_egress::EgressError> {
//! let mut config = EgressConfig::from_yaml(
//!     r"
//! log: full
//! routes:
//!   - host: api.example.com
//!     path_allowlist: [/v1/]
//!     auth: { scheme: Bearer, token_ref: EXAMPLE_TOKEN }
//! ",
//!     None,
//! )?;
//!
//! // Decisions are plain data.
//! let policy = Policy::new(&config.routes).expect("valid routes");
//! let host = TargetHost::parse("api.example.com");
//! let get = |path: &str| http::Request::get(path).body(()).expect("a request");
//! assert_eq!(
//!     policy.request(&host, 443, true, &get("/v1/models")),
//!     Decision::Allow { route: 0, websocket: false }
//! );
//! assert!(matches!(
//!     policy.request(&host, 443, true, &get("/admin")),
//!     Decision::Deny(DenyReason::PathNotAllowed { .. })
//! ));
//!
//! // The proxy: clients trust `ca.cert_pem()` and use it as their HTTPS proxy.
//! config.listen = "127.0.0.1:0".parse().expect("an address");
//! let egress = Egress::builder(config)
//!     .certificate_authority(CertificateAuthority::generate()?)
//!     .tokens(|name| (name == "EXAMPLE_TOKEN").then(|| "s3cret".to_owned()))
//!     .start()
//!     .await?;
//! assert_ne!(egress.local_addr().port(), 0);
//! egress.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! What it does, in order, for every client:
//!
//! - With `proxy_auth` set, every request to the proxy itself (`CONNECT`, absolute-form
//!   `http://`, introspection) must carry `Proxy-Authorization: Basic base64(user:token)`;
//!   otherwise `407`. The credential is never forwarded.
//! - `CONNECT host:port`: the host must fall under a route (exact name — final when present —
//!   else the longest `*.suffix`, or the same IP literal) and the port must be one the route
//!   allows (443 by default); otherwise `403` before any TLS, with a plain-text body naming the
//!   host and the manifest key to add, and a `Proxy-Status` header (RFC 9209). The name is
//!   resolved; private addresses need `allow_private: true`, and loopback, link-local and
//!   cloud-metadata addresses are reached only by a route whose host is that very literal.
//!   There is no blind tunnel.
//! - The tunnel's TLS is terminated with a leaf minted for the host by the per-bottle
//!   [`CertificateAuthority`] (cached, minted once). The SNI must equal the CONNECT host, and
//!   every request's `Host`/`:authority` too. HTTP/1.1 and HTTP/2 (ALPN).
//! - Each request is matched by path prefix and method. `git push` over HTTP (however
//!   escaped), WebDAV methods, `.`/`..` segments (also encoded or with `;` parameters),
//!   backslashes and upgrades other than WebSocket are refused on every route; WebSockets need
//!   `websocket: true` on a route that limits `methods`. On a route that limits paths or
//!   methods, method/URL-override headers are removed and `_method=` is refused. Allowed
//!   requests lose hop-by-hop headers and, on routes with `auth` or
//!   `strip_client_credentials`, every client credential header; the route's credential is
//!   injected. Bodies stream both ways (SSE arrives event by event); WebSockets are spliced.
//! - On a route whose `dlp` is on (the default), the URL, the forwarded header values and the
//!   body (decoded when `gzip`/`deflate`; `br`/`zstd` refused) are scanned for secrets before
//!   the credential is injected: a body streams with only a short tail held back, and a match
//!   is a `403` naming the rule ([`DenyReason::SecretInRequest`]), with nothing of the secret
//!   sent (a streaming body's upstream request is reset first).
//! - Upstream TLS is verified against the Mozilla roots plus the route's `trust` files (and
//!   the config-wide `trust`, for routes without `auth`); the connector checks IP literals
//!   itself, since it dials them without a resolver.
//! - Requests to `_egress.local` are answered by the proxy: `GET /health`, `GET /routes`; an
//!   origin-form request naming any other `Host` is refused.
//! - Refusals are audited; repeats of one client for one reason within 10 s are written as one
//!   summary record.

mod audit;
mod ca;
mod config;
mod dlp;
mod error;
mod net;
mod policy;
mod proxy;
mod server;
mod tls;
mod upstream;

pub use audit::{AuditEvent, AuditSink, JsonLines, RefusedHost, Verdict, refused_hosts};
pub use bottle_manifest::route::{
    AddressClass, HostPattern, INTROSPECTION_HOST, RouteError, RouteKey,
};
pub use bottle_manifest::{AuthScheme, Cidr, LogMode, Route, RouteAuth};
pub use ca::{CertificateAuthority, DEFAULT_CA_VALIDITY, LEAF_VALIDITY, Leaf};
pub use config::{CaFiles, DEFAULT_LISTEN, EgressConfig, ProxyAuth};
pub use error::{ConfigError, ConfigIssue, EgressError};
pub use net::ResolveError;
pub use policy::{
    ConnectDecision, Decision, DenyReason, Policy, RequestPart, RouteProblem, TargetHost,
};
pub use server::{
    DEFAULT_DRAIN_TIMEOUT, Egress, EgressBuilder, EgressHandle, TokenSource, proxy_authorization,
};
