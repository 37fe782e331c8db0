//! Address classes and the resolver that refuses non-public addresses (SSRF, DNS rebinding).
//!
//! The check runs on the addresses the upstream connection actually uses — inside the
//! connector's resolver — so a name that resolves to a public address when checked and to
//! `127.0.0.1` a moment later cannot slip through.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::dns::Name;

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

/// The class of an address the egress refuses by default, or `None` for a public one.
pub fn non_public_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_class(v4);
            }
            v6_class(v6)
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() || ip.is_unspecified() || a == 0 {
        // 0.0.0.0 reaches the local host on Linux.
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() || ip.is_unspecified() {
        Some("loopback")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if ip.is_unique_local() {
        Some("unique-local")
    } else if ip.is_multicast() {
        Some("reserved")
    } else {
        None
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
        class: &'static str,
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

/// Resolve `host` (a name or literal) and keep only the addresses the route may reach.
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
    overrides: &HostOverrides,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let addrs: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![ip]
    } else if let Some(fixed) = overrides.fixed.get(host) {
        fixed.clone()
    } else if let Some(recent) = overrides.remembered(host) {
        recent.to_vec()
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
        addrs
    };
    filter(host, addrs, allow_private).map(|ips| {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    })
}

fn filter(
    host: &str,
    addrs: Vec<IpAddr>,
    allow_private: bool,
) -> Result<Vec<IpAddr>, ResolveError> {
    if allow_private {
        if addrs.is_empty() {
            return Err(ResolveError::Dns {
                host: host.to_owned(),
                source: std::io::Error::other("no addresses"),
            });
        }
        return Ok(addrs);
    }
    let mut refused = None;
    let mut kept = Vec::new();
    for ip in addrs {
        match non_public_class(ip) {
            None => kept.push(ip),
            Some(class) => refused = refused.or(Some((ip, class))),
        }
    }
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some((addr, class))) => Err(ResolveError::NonPublic {
            host: host.to_owned(),
            addr,
            class,
        }),
        (true, None) => Err(ResolveError::Dns {
            host: host.to_owned(),
            source: std::io::Error::other("no addresses"),
        }),
    }
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

    #[test]
    fn classes() {
        let c = |s: &str| non_public_class(s.parse().unwrap());
        assert_eq!(c("127.0.0.1"), Some("loopback"));
        assert_eq!(c("0.0.0.0"), Some("loopback"));
        assert_eq!(c("169.254.169.254"), Some("link-local"));
        assert_eq!(c("10.1.2.3"), Some("private"));
        assert_eq!(c("172.16.0.1"), Some("private"));
        assert_eq!(c("192.168.1.1"), Some("private"));
        assert_eq!(c("100.64.0.1"), Some("shared (carrier-grade NAT)"));
        assert_eq!(c("::1"), Some("loopback"));
        assert_eq!(c("fe80::1"), Some("link-local"));
        assert_eq!(c("fd00::1"), Some("unique-local"));
        assert_eq!(c("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(c("93.184.216.34"), None);
        assert_eq!(c("2606:4700::1111"), None);
    }

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
                class: "private",
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
        )
        .unwrap();
        assert_eq!(kept, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
        assert!(matches!(
            filter("x", vec!["127.0.0.1".parse().unwrap()], false),
            Err(ResolveError::NonPublic {
                class: "loopback",
                ..
            })
        ));
    }
}
