//! Address classes and the resolver that refuses non-public addresses (SSRF, DNS rebinding).
//!
//! The check runs on the addresses the upstream connection actually uses — inside the
//! connector's resolver — so a name that resolves to a public address when checked and to
//! `127.0.0.1` a moment later cannot slip through.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Fixed answers for names, like curl's `--resolve` (for embedding and tests).
pub(crate) type HostOverrides = Arc<HashMap<String, Vec<IpAddr>>>;

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
    } else if let Some(fixed) = overrides.get(host) {
        fixed.clone()
    } else {
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ResolveError::Dns {
                host: host.to_owned(),
                source,
            })?
            .map(|sa| sa.ip())
            .collect()
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
