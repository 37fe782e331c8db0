//! [`AddressClass`]: which addresses a route may reach. Route validation uses it for IP-literal
//! hosts; the egress uses it on every address it is about to dial.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an IP address, as far as the egress's address policy is concerned.
///
/// Forms that carry an IPv4 address inside an IPv6 one (IPv4-mapped, SIIT, IPv4-compatible,
/// NAT64 `64:ff9b::/96`, 6to4, Teredo) are classified by the IPv4 address they lead to.
///
/// ```
/// use bottle_manifest::route::{AddressClass, Reach};
///
/// let class = |s: &str| AddressClass::of(s.parse().unwrap());
/// assert_eq!(class("10.0.0.7"), AddressClass::Private);
/// assert_eq!(class("64:ff9b::a00:7").reach(), Reach::WithAllowPrivate); // NAT64 to 10.0.0.7
/// assert_eq!(class("169.254.169.254").reach(), Reach::OnlyNamedLiteral);
/// assert_eq!(class("2606:4700::1111"), AddressClass::Public);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Reachable by every route.
    Public,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`).
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedNat,
    /// Benchmarking, `198.18.0.0/15`.
    Benchmarking,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// IPv6 site-local, `fec0::/10` (deprecated, still routed by some networks).
    SiteLocal,
    /// `127/8`, `::1`.
    Loopback,
    /// `0.0.0.0/8`, `::`: "this host" (reaches the local host on Linux).
    Unspecified,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's metadata or host-agent service (`169.254.169.254`, `fd00:ec2::254`,
    /// `168.63.129.16`, `100.100.100.200`): the instance's credentials.
    CloudMetadata,
    /// Multicast, broadcast, documentation, protocol-assignment and other special-purpose
    /// ranges (`192.0.0.0/24`, `192.88.99.0/24`, `240/4`, local-use NAT64 `64:ff9b:1::/48`, …).
    Reserved,
}

/// Which routes may reach an address of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every route.
    Public,
    /// Routes with `allow_private: true`.
    WithAllowPrivate,
    /// Only a route whose `host` is this very address (with `allow_private: true`); a name
    /// that resolves to it is always refused.
    OnlyNamedLiteral,
}

impl AddressClass {
    /// Classify `ip`.
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(v4) => v4_class(v4),
            IpAddr::V6(v6) => v6_class(v6),
        }
    }

    /// Which routes may reach it.
    pub fn reach(self) -> Reach {
        match self {
            AddressClass::Public => Reach::Public,
            AddressClass::Private
            | AddressClass::SharedNat
            | AddressClass::Benchmarking
            | AddressClass::UniqueLocal
            | AddressClass::SiteLocal => Reach::WithAllowPrivate,
            AddressClass::Loopback
            | AddressClass::Unspecified
            | AddressClass::LinkLocal
            | AddressClass::CloudMetadata
            | AddressClass::Reserved => Reach::OnlyNamedLiteral,
        }
    }

    /// Whether it is anything but public.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// A short name for messages: `private`, `loopback`, `cloud metadata`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Private => "private",
            AddressClass::SharedNat => "shared (carrier-grade NAT)",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Loopback => "loopback",
            AddressClass::Unspecified => "unspecified (this host)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::CloudMetadata => "cloud metadata",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// Serialized as its name (`"private"`, `"loopback"`, …).
impl serde::Serialize for AddressClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn v4_class(ip: Ipv4Addr) -> AddressClass {
    const METADATA: [Ipv4Addr; 3] = [
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::new(168, 63, 129, 16),
        Ipv4Addr::new(100, 100, 100, 200),
    ];
    let [a, b, c, _] = ip.octets();
    if METADATA.contains(&ip) {
        AddressClass::CloudMetadata
    } else if a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_private() {
        AddressClass::Private
    } else if a == 100 && (b & 0xc0) == 64 {
        AddressClass::SharedNat
    } else if a == 198 && (b & 0xfe) == 18 {
        AddressClass::Benchmarking
    } else if (a, b, c) == (192, 0, 0)
        || (a, b, c) == (192, 88, 99)
        || ip.is_documentation()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn v6_class(ip: Ipv6Addr) -> AddressClass {
    const EC2_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254);
    let seg = ip.segments();
    let o = ip.octets();
    let low_v4 = || Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if ip == EC2_METADATA {
        return AddressClass::CloudMetadata;
    }
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (SIIT, IPv4-translated).
    if (seg[..5] == [0; 5] && seg[5] == 0xffff)
        || (seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0)
    {
        return v4_class(low_v4());
    }
    // ::a.b.c.d, IPv4-compatible (deprecated: never routed as such).
    if seg[..6] == [0; 6] {
        return non_public_or(v4_class(low_v4()), AddressClass::Reserved);
    }
    // NAT64: the well-known prefix carries the address in the low 32 bits; the local-use
    // prefix may carry it anywhere, so it cannot be classified and is refused.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(low_v4());
    }
    if seg[..3] == [0x64, 0xff9b, 1] {
        return AddressClass::Reserved;
    }
    // 6to4: 2002:AABB:CCDD::/48 leads to AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return v4_class(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    // Teredo: 2001:0::/32, the server in bits 32..64, the client's address inverted in the low
    // 32 bits.
    if seg[0] == 0x2001 && seg[1] == 0 {
        let server = Ipv4Addr::new(o[4], o[5], o[6], o[7]);
        let client = Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]);
        return non_public_or(v4_class(client), v4_class(server));
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        AddressClass::SiteLocal
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        AddressClass::UniqueLocal
    } else if ip.is_multicast()
        // Documentation (2001:db8::/32) and discard-only (100::/64).
        || (seg[0], seg[1]) == (0x2001, 0x0db8)
        || seg[..4] == [0x100, 0, 0, 0]
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// `first` unless it is public, then `second`.
fn non_public_or(first: AddressClass, second: AddressClass) -> AddressClass {
    if first.is_public() { second } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_range_is_classified() {
        let c = |s: &str| AddressClass::of(s.parse().unwrap());
        for (addr, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::CloudMetadata),
            ("168.63.129.16", AddressClass::CloudMetadata),
            ("100.100.100.200", AddressClass::CloudMetadata),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedNat),
            ("198.18.0.1", AddressClass::Benchmarking),
            ("198.19.255.255", AddressClass::Benchmarking),
            ("198.20.0.1", AddressClass::Public),
            ("192.0.0.8", AddressClass::Reserved),
            ("192.88.99.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Reserved),
            ("224.0.0.1", AddressClass::Reserved),
            ("255.255.255.255", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("93.184.216.34", AddressClass::Public),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fd00::1", AddressClass::UniqueLocal),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            ("fec0::1", AddressClass::SiteLocal),
            ("ff02::1", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
            ("100::1", AddressClass::Reserved),
            ("2606:4700::1111", AddressClass::Public),
            // IPv4 inside IPv6: classified by the IPv4 address.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:0:169.254.169.254", AddressClass::CloudMetadata),
            ("::10.0.0.7", AddressClass::Private),
            ("::8.8.8.8", AddressClass::Reserved),
            ("64:ff9b::a00:7", AddressClass::Private),
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("64:ff9b::808:808", AddressClass::Public),
            ("64:ff9b:1::808:808", AddressClass::Reserved),
            ("2002:a00:7::1", AddressClass::Private),
            ("2002:a9fe:a9fe::1", AddressClass::CloudMetadata),
            ("2002:808:808::1", AddressClass::Public),
            // Teredo with client 10.0.0.7 (inverted: f5ff:fff8) behind server 8.8.8.8.
            ("2001:0:808:808::f5ff:fff8", AddressClass::Private),
            ("2001:0:a00:7::f7f7:f7f7", AddressClass::Private),
            ("2001:0:808:808::f7f7:f7f7", AddressClass::Public),
        ] {
            assert_eq!(c(addr), class, "{addr}");
        }
    }

    #[test]
    fn only_private_ranges_open_with_allow_private() {
        let reach = |s: &str| AddressClass::of(s.parse().unwrap()).reach();
        assert_eq!(reach("10.0.0.1"), Reach::WithAllowPrivate);
        assert_eq!(reach("fd12::1"), Reach::WithAllowPrivate);
        assert_eq!(reach("127.0.0.1"), Reach::OnlyNamedLiteral);
        assert_eq!(reach("169.254.169.254"), Reach::OnlyNamedLiteral);
        assert_eq!(reach("fd00:ec2::254"), Reach::OnlyNamedLiteral);
        assert_eq!(reach("fe80::1"), Reach::OnlyNamedLiteral);
        assert_eq!(reach("1.1.1.1"), Reach::Public);
    }
}
