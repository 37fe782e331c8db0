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
//! assert_eq!(policy.request(&host, "GET", "/v1/models", ""), Decision::Allow { route: 0 });
//! assert!(matches!(
//!     policy.request(&host, "GET", "/admin", ""),
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
//! - `CONNECT host:port`: the host must match a route (exact, `*.suffix`, or the same IP
//!   literal); otherwise `403` before any TLS, with a plain-text body naming the host and the
//!   manifest key to add, and a `Proxy-Status` header (RFC 9209). The name is resolved and
//!   loopback, link-local, private and unique-local addresses are refused unless the route
//!   sets `allow_private: true`. There is no blind tunnel.
//! - The tunnel's TLS is terminated with a leaf minted for the host by the per-bottle
//!   [`CertificateAuthority`] (cached, minted once). The SNI must equal the CONNECT host, and
//!   every request's `Host`/`:authority` too. HTTP/1.1 and HTTP/2 (ALPN).
//! - Each request is matched by path prefix and method; `git push` over HTTP is always
//!   refused. Allowed requests lose hop-by-hop headers and, on routes with `auth`, any
//!   client-sent credential; the route's credential is injected. Bodies stream both ways
//!   (SSE arrives event by event); WebSocket upgrades are spliced.
//! - Upstream TLS is verified against the Mozilla roots plus the config's `trust` files.
//! - Requests to `_egress.local` are answered by the proxy: `GET /health`, `GET /routes`.

mod audit;
mod ca;
mod cidr;
mod config;
mod error;
mod net;
mod policy;
mod proxy;
mod server;
mod tls;
mod upstream;

pub use audit::{AuditEvent, AuditSink, JsonLines, Verdict};
pub use bottle_manifest::{AuthScheme, LogMode, Route, RouteAuth};
pub use ca::{CertificateAuthority, DEFAULT_CA_VALIDITY, LEAF_VALIDITY, Leaf};
pub use cidr::Cidr;
pub use config::{CaFiles, DEFAULT_LISTEN, EgressConfig};
pub use error::{ConfigError, ConfigIssue, EgressError};
pub use net::{ResolveError, non_public_class};
pub use policy::{
    ConnectDecision, Decision, DenyReason, HostPattern, INTROSPECTION_HOST, Policy, RouteField,
    RouteIssue, TargetHost,
};
pub use server::{DEFAULT_DRAIN_TIMEOUT, Egress, EgressBuilder, EgressHandle, TokenSource};
