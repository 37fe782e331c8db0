//! What a backend implements, declared rather than assumed.
//!
//! A bottle may ask for more than a backend can give: the manifest already parses `git:` remotes
//! and `supervise`, and the backends that run them come later. A backend states what it
//! implements as [`Capabilities`]; everything else a bottle asks for is shown as missing in the
//! preflight, and provisioning skips the steps of what is missing instead of reporting work it
//! did not do.
//!
//! Features come in two kinds ([`FeatureKind`]):
//!
//! - a **grant** opens a wall: it lets the agent reach or change something outside the bottle
//!   (`git:` remotes grant push access through the git gate; `egress.networks` let the egress
//!   reach existing networks). A bottle whose grant the backend does not implement would not be
//!   the bottle the user was shown, so launching it is refused unless the user accepts the
//!   smaller bottle explicitly ([`BottleSpec::allow_unimplemented`](crate::BottleSpec)).
//! - a **convenience** opens nothing: without `supervise` the agent simply cannot ask its human
//!   a question. A missing convenience is shown, never refused.
//!
//! Features every backend must provide — the env entries, skills, routes and their
//! credentials, trust roots, the working-tree copy — are not listed here: a backend that cannot
//! do them is not a bottle backend. The provisioning recipe ([`crate::provision`]) does the
//! in-bottle part of them for every backend.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::plan::PreparedSpec;

/// An optional feature of a bottle, which a backend may or may not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Feature {
    /// `git:` remotes the agent pushes to through the git-gate sidecar. A grant.
    GitGate,
    /// Existing networks the egress joins (`egress.networks`), to reach services on them. A
    /// grant.
    EgressNetworks,
    /// The supervise sidecar: an MCP server through which the agent asks its human. A
    /// convenience.
    Supervise,
}

/// Whether a missing feature makes the bottle smaller than shown (a grant) or only less
/// convenient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureKind {
    /// Opens a wall; launching without it is refused unless explicitly allowed.
    Grant,
    /// Opens nothing; its absence is shown, never refused.
    Convenience,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 3] = [
        Feature::GitGate,
        Feature::EgressNetworks,
        Feature::Supervise,
    ];

    /// Grant or convenience.
    pub fn kind(self) -> FeatureKind {
        match self {
            Feature::GitGate | Feature::EgressNetworks => FeatureKind::Grant,
            Feature::Supervise => FeatureKind::Convenience,
        }
    }

    /// How the user names it: the manifest key.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::GitGate => "git remotes (`git:`)",
            Feature::EgressNetworks => "egress networks (`egress.networks`)",
            Feature::Supervise => "supervise",
        }
    }

    /// The stable identifier, as serialised (`git-gate`, `egress-networks`, `supervise`).
    pub fn id(self) -> &'static str {
        match self {
            Feature::GitGate => "git-gate",
            Feature::EgressNetworks => "egress-networks",
            Feature::Supervise => "supervise",
        }
    }

    /// Whether `prepared` asks for this feature.
    pub fn requested_by(self, prepared: &PreparedSpec) -> bool {
        let bottle = &prepared.agent.bottle;
        match self {
            Feature::GitGate => !bottle.git.is_empty(),
            Feature::EgressNetworks => !bottle.egress.networks.is_empty(),
            Feature::Supervise => bottle.supervise,
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Feature {
    type Err = String;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Feature::ALL
            .into_iter()
            .find(|feature| feature.id() == id)
            .ok_or_else(|| {
                format!(
                    "`{id}` is not a feature; features are {}",
                    Feature::ALL.map(Feature::id).join(", ")
                )
            })
    }
}

/// The optional features a backend implements. The default is none: a backend claims only
/// what it does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    features: BTreeSet<Feature>,
}

impl Capabilities {
    /// No optional feature.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every optional feature (a complete backend, such as the recording fake by default).
    pub fn all() -> Self {
        Feature::ALL.into_iter().collect()
    }

    /// These capabilities and `feature`.
    pub fn with(mut self, feature: Feature) -> Self {
        self.features.insert(feature);
        self
    }

    /// Whether `feature` is implemented.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    /// The features `prepared` asks for that these capabilities lack, in [`Feature::ALL`]
    /// order.
    pub fn missing_for(&self, prepared: &PreparedSpec) -> Vec<Feature> {
        Feature::ALL
            .into_iter()
            .filter(|f| f.requested_by(prepared) && !self.has(*f))
            .collect()
    }
}

impl FromIterator<Feature> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Feature>>(iter: I) -> Self {
        Capabilities {
            features: iter.into_iter().collect(),
        }
    }
}
