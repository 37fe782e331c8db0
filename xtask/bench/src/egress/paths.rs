//! The ways the benchmark reaches its origin, as typed records instead of positional arrays:
//! a figure for bottle-egress is `x.egress`, never `x[1]`.

use serde::{Deserialize, Serialize};

/// Every path compared side by side: no hop, and the three intercepting proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Path {
    Direct,
    Egress,
    Mitmdump,
    Squid,
}

impl Path {
    pub(crate) const ALL: [Path; 4] = [Path::Direct, Path::Egress, Path::Mitmdump, Path::Squid];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Egress => "bottle-egress",
            Path::Mitmdump => "mitmdump",
            Path::Squid => "Squid (ssl-bump)",
        }
    }
}

/// One `T` per [`Path`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PerPath<T> {
    pub(crate) direct: T,
    pub(crate) egress: T,
    pub(crate) mitmdump: T,
    pub(crate) squid: T,
}

impl<T> PerPath<T> {
    pub(crate) fn from_fn(mut f: impl FnMut(Path) -> T) -> Self {
        PerPath {
            direct: f(Path::Direct),
            egress: f(Path::Egress),
            mitmdump: f(Path::Mitmdump),
            squid: f(Path::Squid),
        }
    }

    pub(crate) fn get(&self, path: Path) -> &T {
        match path {
            Path::Direct => &self.direct,
            Path::Egress => &self.egress,
            Path::Mitmdump => &self.mitmdump,
            Path::Squid => &self.squid,
        }
    }

    pub(crate) fn get_mut(&mut self, path: Path) -> &mut T {
        match path {
            Path::Direct => &mut self.direct,
            Path::Egress => &mut self.egress,
            Path::Mitmdump => &mut self.mitmdump,
            Path::Squid => &mut self.squid,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Path, &T)> {
        Path::ALL.into_iter().map(move |p| (p, self.get(p)))
    }

    pub(crate) fn map<U>(self, mut f: impl FnMut(Path, T) -> U) -> PerPath<U> {
        PerPath {
            direct: f(Path::Direct, self.direct),
            egress: f(Path::Egress, self.egress),
            mitmdump: f(Path::Mitmdump, self.mitmdump),
            squid: f(Path::Squid, self.squid),
        }
    }
}

/// The paths with a proxy process of their own (memory is measured for these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Proxies<T> {
    pub(crate) egress: T,
    pub(crate) mitmdump: T,
    pub(crate) squid: T,
}

impl<T> Proxies<T> {
    pub(crate) const PATHS: [Path; 3] = [Path::Egress, Path::Mitmdump, Path::Squid];

    /// The proxy of `path`; `None` for [`Path::Direct`].
    pub(crate) fn get_mut(&mut self, path: Path) -> Option<&mut T> {
        match path {
            Path::Direct => None,
            Path::Egress => Some(&mut self.egress),
            Path::Mitmdump => Some(&mut self.mitmdump),
            Path::Squid => Some(&mut self.squid),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Path, &T)> {
        [
            (Path::Egress, &self.egress),
            (Path::Mitmdump, &self.mitmdump),
            (Path::Squid, &self.squid),
        ]
        .into_iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (Path, &mut T)> {
        [
            (Path::Egress, &mut self.egress),
            (Path::Mitmdump, &mut self.mitmdump),
            (Path::Squid, &mut self.squid),
        ]
        .into_iter()
    }
}

/// The reference hops (`relay.rs`), which do less than any intercepting proxy can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Relay {
    Blind,
    Tls,
}

impl Relay {
    pub(crate) const ALL: [Relay; 2] = [Relay::Blind, Relay::Tls];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Relay::Blind => "blind relay",
            Relay::Tls => "TLS relay",
        }
    }
}

/// One `T` per [`Relay`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Relays<T> {
    pub(crate) blind: T,
    pub(crate) tls: T,
}

impl<T> Relays<T> {
    pub(crate) fn get(&self, relay: Relay) -> &T {
        match relay {
            Relay::Blind => &self.blind,
            Relay::Tls => &self.tls,
        }
    }

    pub(crate) fn get_mut(&mut self, relay: Relay) -> &mut T {
        match relay {
            Relay::Blind => &mut self.blind,
            Relay::Tls => &mut self.tls,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Relay, &T)> {
        Relay::ALL.into_iter().map(move |r| (r, self.get(r)))
    }
}

/// A figure, or why this path has none in this build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Cell<T> {
    Measured(T),
    /// The path cannot do this (Squid does not speak HTTP/2 to clients), or the feature is not
    /// in this build: the reason, shown in the report instead of a number.
    Unavailable(String),
}
