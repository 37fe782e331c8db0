//! IP networks in CIDR notation, for the `clients` allowlists of the egress and the git gate.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP network in CIDR notation: `172.18.0.0/16`, `fd00::/8`, or a bare address (one host).
///
/// ```
/// use bottle_manifest::Cidr;
///
/// let net: Cidr = "172.18.0.0/16".parse().unwrap();
/// assert!(net.contains("172.18.3.4".parse().unwrap()));
/// assert!(net.contains("::ffff:172.18.3.4".parse().unwrap())); // IPv4-mapped, as dual-stack sockets report it
/// assert!(!net.contains("172.19.0.1".parse().unwrap()));
/// assert!("172.18.0.1/16".parse::<Cidr>().is_err()); // host bits set: ambiguous
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `network/prefix`.
    ///
    /// # Errors
    ///
    /// A sentence saying what is wrong: a prefix longer than the address, or host bits set.
    pub fn new(network: IpAddr, prefix: u8) -> Result<Self, String> {
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(format!(
                "`{network}/{prefix}`: the prefix length must be at most {bits}"
            ));
        }
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(format!(
                "`{network}/{prefix}` has host bits set; write the network, `{masked}/{prefix}`"
            ));
        }
        Ok(cidr)
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.masked(ip) == self.network
            }
            _ => false,
        }
    }

    /// `ip` with the host bits cleared (same family as `ip`).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        let host_bits = |bits: u8| u32::from(bits.saturating_sub(self.prefix));
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(host_bits(32)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(host_bits(128)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            format!(
                "`{s}` is not a network: write an address and prefix length, like `172.18.0.0/16`"
            )
        })?;
        let prefix = match prefix {
            None => match network {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            Some(p) => p.parse::<u8>().map_err(|_| {
                format!("`{s}`: the prefix length must be a number, like the 16 in `172.18.0.0/16`")
            })?,
        };
        Cidr::new(network, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn membership_by_prefix() {
        let v4: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(v4.contains(ip("10.255.0.1")));
        assert!(!v4.contains(ip("11.0.0.1")));
        assert!(!v4.contains(ip("fd00::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00:1::/32".parse().unwrap();
        assert!(v6.contains(ip("fd00:1:2::3")));
        assert!(!v6.contains(ip("fd00:2::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn malformed_networks_are_refused_with_the_fix() {
        for (text, expected) in [
            (
                "10.0.0.1/8",
                "has host bits set; write the network, `10.0.0.0/8`",
            ),
            ("10.0.0.0/33", "the prefix length must be at most 32"),
            ("10.0.0.0/x", "the prefix length must be a number"),
            ("example.com/8", "is not a network"),
            ("", "is not a network"),
        ] {
            let err = text.parse::<Cidr>().unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
