//! Address classes and the resolver that refuses non-public addresses (SSRF, DNS rebinding).
//!
//! The check runs on the addresses the upstream connection actually uses — inside the
//! connector's resolver — so a name that resolves to a public address when checked and to
//! `127.0.0.1` a moment later cannot slip through.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bottle_manifest::route::AddressClass;
use hyper_util::client::legacy::connect::dns::Name;

use crate::policy::may_dial;

/// Where names are looked up: shared by the CONNECT-time check and the upstream connectors.
pub(crate) type HostOverrides = Arc<Addresses>;

/// How long a DNS answer is reused. It exists so that the connection opened right after an
/// allowed `CONNECT` does not ask the system resolver (a blocking-pool round trip) a second
/// time for the name it just checked; it is short so that no TTL is stretched much.
const RECENT_TTL: Duration = Duration::from_secs(10);
/// Past this many remembered names, expired ones are dropped (and all, if none expired).
const RECENT_MAX: usize = 4096;

/// Fixed answers for names, like curl's `--resolve` (for embedding and tests), and the DNS
/// answers of the last few seconds.
///
/// Reusing an answer keeps the DNS-rebinding defence intact: it is the raw answer that is
/// remembered, and every use filters it again, so the addresses dialled are always ones the
/// check passed.
#[derive(Debug, Default)]
pub(crate) struct Addresses {
    fixed: HashMap<String, Vec<IpAddr>>,
    recent: Mutex<Recent>,
}

/// Raw DNS answers by name, with when they were received.
type Recent = HashMap<String, (Instant, Arc<[IpAddr]>)>;

impl Addresses {
    pub(crate) fn new(fixed: HashMap<String, Vec<IpAddr>>) -> Self {
        Addresses {
            fixed,
            recent: Mutex::default(),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remembered(&self, host: &str) -> Option<Arc<[IpAddr]>> {
        let recent = self.recent();
        let (at, addrs) = recent.get(host)?;
        (at.elapsed() < RECENT_TTL).then(|| addrs.clone())
    }

    fn remember(&self, host: &str, addrs: Arc<[IpAddr]>) {
        let mut recent = self.recent();
        if recent.len() >= RECENT_MAX {
            recent.retain(|_, (at, _)| at.elapsed() < RECENT_TTL);
            if recent.len() >= RECENT_MAX {
                recent.clear();
            }
        }
        recent.insert(host.to_owned(), (Instant::now(), addrs));
    }
}

/// Why a name could not be resolved to an address the route may reach.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Every address was non-public and the route does not allow that.
    #[error("{host} resolves only to non-public addresses (e.g. {addr}, {class})")]
    NonPublic {
        /// The name.
        host: String,
        /// One refused address.
        addr: IpAddr,
        /// Its class.
        class: AddressClass,
        /// Whether the route names the address (a literal or a fixed answer): then
        /// `allow_private` would open it, whatever its class.
        named: bool,
    },
    /// DNS failed.
    #[error("cannot resolve {host}: {source}")]
    Dns {
        /// The name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
}

/// Resolve `host` (a name or literal) and keep only the addresses the route may reach (see
/// [`may_dial`]). A literal and a fixed answer count as addresses the route names; a DNS
/// answer does not.
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
    overrides: &HostOverrides,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let (addrs, named): (Vec<IpAddr>, bool) = if let Ok(ip) = host.parse::<IpAddr>() {
        (vec![ip], true)
    } else if let Some(fixed) = overrides.fixed.get(host) {
        (fixed.clone(), true)
    } else if let Some(recent) = overrides.remembered(host) {
        (recent.to_vec(), false)
    } else {
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ResolveError::Dns {
                host: host.to_owned(),
                source,
            })?
            .map(|sa| sa.ip())
            .collect();
        if !addrs.is_empty() {
            overrides.remember(host, addrs.as_slice().into());
        }
        (addrs, false)
    };
    filter(host, addrs, allow_private, named).map(|ips| {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    })
}

fn filter(
    host: &str,
    addrs: Vec<IpAddr>,
    allow_private: bool,
    named: bool,
) -> Result<Vec<IpAddr>, ResolveError> {
    let mut refused = None;
    let mut kept = Vec::with_capacity(addrs.len());
    for ip in addrs {
        match may_dial(ip, allow_private, named) {
            Ok(()) => kept.push(ip),
            Err(class) => refused = refused.or(Some((ip, class))),
        }
    }
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some((addr, class))) => Err(ResolveError::NonPublic {
            host: host.to_owned(),
            addr,
            class,
            named,
        }),
        (true, None) => Err(ResolveError::Dns {
            host: host.to_owned(),
            source: std::io::Error::other("no addresses"),
        }),
    }
}

/// The refusal for an IP-literal upstream the route may not reach, if it may not: the check
/// the connector makes itself, since it dials literals without asking the resolver.
pub(crate) fn check_literal(host: &str, allow_private: bool) -> Result<(), ResolveError> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let Ok(ip) = unbracketed.parse::<IpAddr>() else {
        return Ok(());
    };
    may_dial(ip, allow_private, true).map_err(|class| ResolveError::NonPublic {
        host: host.to_owned(),
        addr: ip,
        class,
        named: true,
    })
}

/// The upstream connector's resolver: DNS, then the address check.
#[derive(Clone, Debug)]
pub(crate) struct CheckedResolver {
    pub(crate) allow_private: bool,
    pub(crate) overrides: HostOverrides,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // The connector sets the port itself; 0 here is replaced.
            let addrs =
                resolve_checked(name.as_str(), 0, this.allow_private, &this.overrides).await?;
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_remembered_answer_is_reused_and_still_checked() {
        let addresses: HostOverrides = Arc::default();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        addresses.remember("cached.test", vec![private].into());
        // No DNS is asked (the name does not exist): the answer of the check is reused...
        let got = resolve_checked("cached.test", 443, true, &addresses)
            .await
            .unwrap();
        assert_eq!(got, vec![SocketAddr::new(private, 443)]);
        // ...and filtered again on every use, so the connector never dials what the check
        // refuses.
        assert!(matches!(
            resolve_checked("cached.test", 443, false, &addresses).await,
            Err(ResolveError::NonPublic {
                class: AddressClass::Private,
                ..
            })
        ));
    }

    #[test]
    fn mixed_answers_keep_only_public_addresses() {
        let kept = filter(
            "x",
            vec![
                "127.0.0.1".parse().unwrap(),
                "93.184.216.34".parse().unwrap(),
            ],
            false,
            false,
        )
        .unwrap();
        assert_eq!(kept, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
        assert!(matches!(
            filter("x", vec!["127.0.0.1".parse().unwrap()], false, false),
            Err(ResolveError::NonPublic {
                class: AddressClass::Loopback,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn allow_private_never_opens_loopback_or_metadata_to_a_dns_answer() {
        let addresses: HostOverrides = Arc::default();
        for (ip, class) in [
            ("169.254.169.254", AddressClass::CloudMetadata),
            ("127.0.0.1", AddressClass::Loopback),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            // NAT64 to the host itself.
            ("64:ff9b::7f00:1", AddressClass::Loopback),
        ] {
            // What DNS answered a moment ago, for a route with `allow_private`.
            addresses.remember("rebound.test", vec![ip.parse().unwrap()].into());
            let got = resolve_checked("rebound.test", 80, true, &addresses).await;
            assert!(
                matches!(&got, Err(ResolveError::NonPublic { class: c, .. }) if *c == class),
                "{ip}: {got:?}"
            );
            // A route naming the literal reaches it.
            assert!(
                resolve_checked(ip, 80, true, &addresses).await.is_ok(),
                "{ip}"
            );
        }
        // Private ranges do open.
        addresses.remember("rebound.test", vec!["10.1.2.3".parse().unwrap()].into());
        assert!(
            resolve_checked("rebound.test", 80, true, &addresses)
                .await
                .is_ok()
        );
    }

    #[test]
    fn literals_are_checked_without_a_resolver() {
        assert!(check_literal("127.0.0.1", false).is_err());
        assert!(check_literal("[::1]", false).is_err());
        assert!(check_literal("127.0.0.1", true).is_ok());
        assert!(check_literal("93.184.216.34", false).is_ok());
        assert!(check_literal("example.com", false).is_ok());
    }
}
