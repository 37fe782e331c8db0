//! Names and labels of everything a bottle creates on the engine.
//!
//! Every object carries [`label::MANAGED`] and [`label::IDENTITY`], so that `cleanup` and
//! `list_active` find a bottle's objects with one label-filtered call per kind of resource, even
//! after the launching process was killed. Names all start with [`NAME_PREFIX`], the fallback for
//! objects whose labels were lost (created by hand, or by an older version).

use crate::error::{DockerError, Result};

/// The prefix of every container and network name a bottle creates.
pub const NAME_PREFIX: &str = "claude-bottle-";

pub use bottle_core::agent::{EGRESS_ALIAS, EGRESS_PORT};

/// Label keys: bottle-core's shared ones plus this backend's own, all under `claude-bottle.`.
pub mod label {
    pub use bottle_core::labels::{
        AGENT, BACKEND, IDENTITY, MANAGED, MANAGED_VALUE, ROLE, STARTED,
    };

    /// Which of a bottle's networks this is: `internal` or `egress` (networks all have role
    /// `network`).
    pub const NETWORK: &str = "claude-bottle.network";
    /// The runtime the agent runs under (`runc` or `runsc`), on the agent container.
    pub const RUNTIME: &str = "claude-bottle.runtime";
    /// Who launched the bottle (boot id, pid and process start time of the launching process),
    /// so cleanup can tell a live bottle from a leftover (see [`crate::liveness`]).
    pub const LAUNCHER: &str = "claude-bottle.launcher";
    /// On images: which image this is (`agent`, `egress`).
    pub const IMAGE: &str = "claude-bottle.image";
    /// On images: the content hash of the build inputs.
    pub const CONTENT_HASH: &str = "claude-bottle.content-hash";
}

/// What an object is within its bottle; the value of [`label::ROLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The agent container.
    Agent,
    /// The egress sidecar.
    Egress,
    /// The internal network (agent and egress only, no route out).
    InternalNetwork,
    /// The bridge network of the egress's upstream side.
    EgressNetwork,
    /// A short-lived probe (runtime detection).
    Probe,
}

impl Role {
    /// The labels that mark an object as this role: [`label::ROLE`], plus [`label::NETWORK`]
    /// for networks.
    pub fn labels(self) -> Vec<(&'static str, &'static str)> {
        use bottle_core::labels::role;
        match self {
            Role::Agent => vec![(label::ROLE, role::AGENT)],
            Role::Egress => vec![(label::ROLE, role::EGRESS)],
            Role::InternalNetwork => {
                vec![(label::ROLE, role::NETWORK), (label::NETWORK, "internal")]
            }
            Role::EgressNetwork => vec![(label::ROLE, role::NETWORK), (label::NETWORK, "egress")],
            Role::Probe => vec![(label::ROLE, "probe")],
        }
    }

    /// A short name for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Egress => "egress",
            Role::InternalNetwork => "internal-network",
            Role::EgressNetwork => "egress-network",
            Role::Probe => "probe",
        }
    }
}

/// The Docker object names of one bottle, derived from its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    identity: String,
}

impl Names {
    /// Names for `identity`, which must be a valid Docker name component: lower-case ASCII
    /// letters, digits and `-`, starting with a letter, at most 63 characters (so every derived
    /// name stays a valid DNS label-ish name).
    pub fn new(identity: &str) -> Result<Self> {
        let ok = !identity.is_empty()
            && identity.len() <= 63
            && identity.starts_with(|c: char| c.is_ascii_lowercase())
            && identity
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Names {
                identity: identity.to_owned(),
            })
        } else {
            Err(DockerError::InvalidIdentity {
                identity: identity.to_owned(),
            })
        }
    }

    /// The identity these names derive from.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// `claude-bottle-<identity>`.
    pub fn agent_container(&self) -> String {
        format!("{NAME_PREFIX}{}", self.identity)
    }

    /// `claude-bottle-egress-<identity>`.
    pub fn egress_container(&self) -> String {
        format!("{NAME_PREFIX}egress-{}", self.identity)
    }

    /// `claude-bottle-net-<identity>`: the internal network.
    pub fn internal_network(&self) -> String {
        format!("{NAME_PREFIX}net-{}", self.identity)
    }

    /// `claude-bottle-egress-net-<identity>`: the egress's upstream bridge.
    pub fn egress_network(&self) -> String {
        format!("{NAME_PREFIX}egress-net-{}", self.identity)
    }
}

/// The role and identity an unlabelled object's name implies, for the name-prefix fallback of
/// cleanup. Networks and containers are told apart by the caller; `is_network` picks the table.
/// Returns `None` for names without the prefix.
pub fn parse_name(name: &str, is_network: bool) -> Option<(Role, String)> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (role, identity) = if is_network {
        if let Some(id) = rest.strip_prefix("egress-net-") {
            (Role::EgressNetwork, id)
        } else if let Some(id) = rest.strip_prefix("net-") {
            (Role::InternalNetwork, id)
        } else {
            (Role::Probe, rest)
        }
    } else if let Some(id) = rest.strip_prefix("egress-") {
        (Role::Egress, id)
    } else if let Some(id) = rest.strip_prefix("probe-") {
        (Role::Probe, id)
    } else {
        (Role::Agent, rest)
    };
    (!identity.is_empty()).then(|| (role, identity.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_identity() {
        let n = Names::new("researcher-m3hxd").unwrap();
        assert_eq!(n.agent_container(), "claude-bottle-researcher-m3hxd");
        assert_eq!(
            n.egress_container(),
            "claude-bottle-egress-researcher-m3hxd"
        );
        assert_eq!(n.internal_network(), "claude-bottle-net-researcher-m3hxd");
        assert_eq!(
            n.egress_network(),
            "claude-bottle-egress-net-researcher-m3hxd"
        );
    }

    #[test]
    fn identities_that_cannot_be_names_are_refused() {
        for bad in ["", "Upper", "1abc", "a b", "a/b", "a_b", &"a".repeat(64)] {
            assert!(Names::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_parse_back_to_role_and_identity() {
        let n = Names::new("dev-ab12c").unwrap();
        assert_eq!(
            parse_name(&n.egress_network(), true),
            Some((Role::EgressNetwork, "dev-ab12c".into()))
        );
        assert_eq!(
            parse_name(&n.internal_network(), true),
            Some((Role::InternalNetwork, "dev-ab12c".into()))
        );
        assert_eq!(
            parse_name(&format!("/{}", n.egress_container()), false),
            Some((Role::Egress, "dev-ab12c".into()))
        );
        assert_eq!(
            parse_name(&n.agent_container(), false),
            Some((Role::Agent, "dev-ab12c".into()))
        );
        assert_eq!(parse_name("other-thing", false), None);
        assert_eq!(parse_name("claude-bottle-", false), None);
    }

    #[test]
    fn networks_are_told_apart_by_their_network_label() {
        let internal = Role::InternalNetwork.labels();
        let egress = Role::EgressNetwork.labels();
        assert!(internal.contains(&(label::ROLE, "network")));
        assert!(internal.contains(&(label::NETWORK, "internal")));
        assert!(egress.contains(&(label::NETWORK, "egress")));
    }
}
