//! Names and labels of everything a bottle creates on the engine.
//!
//! Every object carries [`label::MANAGED`] and [`label::IDENTITY`], so that `cleanup` and
//! `list_active` find a bottle's objects with one label-filtered call per kind of resource, even
//! after the launching process was killed. Names all start with [`NAME_PREFIX`]; a name alone
//! never makes an object a bottle's to cleanup (a stranger may name anything so), only to the
//! teardown of the bottle whose topology names it.

use bottle_core::{Identity, Role};

use crate::error::{DockerError, Result};

/// The prefix of every container and network name a bottle creates.
pub const NAME_PREFIX: &str = "claude-bottle-";

/// Label keys: bottle-core's shared ones plus this backend's own, all under `claude-bottle.`.
pub mod label {
    pub use bottle_core::labels::{
        AGENT, BACKEND, IDENTITY, MANAGED, MANAGED_VALUE, ROLE, STARTED,
    };

    /// Which of a bottle's networks this is: `internal`, or the role of the sidecar whose
    /// upstream bridge it is (`egress`); networks all have role `network`.
    pub const NETWORK: &str = "claude-bottle.network";
    /// The runtime the agent runs under (`runc` or `runsc`), on the agent container.
    pub const RUNTIME: &str = "claude-bottle.runtime";
    /// Who launched the bottle (boot id, pid and process start time of the launching process),
    /// so cleanup can tell a live bottle from a leftover (see [`crate::liveness`]).
    pub const LAUNCHER: &str = "claude-bottle.launcher";
    /// On images: which image this is (`agent`, `egress`). Images carry only image labels —
    /// never [`MANAGED`], which every container made from them would inherit.
    pub const IMAGE: &str = "claude-bottle.image";
    /// On images: the content hash of the build inputs.
    pub const CONTENT_HASH: &str = "claude-bottle.content-hash";
}

/// What an engine object is to its bottle: bottle-core's [`Role`] for containers, and the
/// network kinds this backend makes. Names and labels derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectRole {
    /// A container: the agent, a sidecar or a probe.
    Container(Role),
    /// The internal network: the agent and the sidecars, no route out.
    InternalNetwork,
    /// The bridge through which one sidecar (the egress) reaches upstream; the agent never
    /// joins it.
    UpstreamNetwork(Role),
    /// A probe's throw-away network.
    ProbeNetwork,
}

impl ObjectRole {
    /// The labels that mark an object as this: [`label::ROLE`], plus [`label::NETWORK`] for
    /// the bottle's networks (`internal`, or the role of the sidecar a bridge serves).
    pub fn labels(self) -> Vec<(&'static str, &'static str)> {
        match self {
            ObjectRole::Container(role) => vec![(label::ROLE, role.as_str())],
            ObjectRole::InternalNetwork => vec![
                (label::ROLE, Role::Network.as_str()),
                (label::NETWORK, "internal"),
            ],
            ObjectRole::UpstreamNetwork(role) => vec![
                (label::ROLE, Role::Network.as_str()),
                (label::NETWORK, role.as_str()),
            ],
            ObjectRole::ProbeNetwork => vec![(label::ROLE, Role::Probe.as_str())],
        }
    }
}

/// The Docker object names of one bottle, derived from its identity and each object's role.
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

    /// The container of `role`: `claude-bottle-<identity>` for the agent,
    /// `claude-bottle-<role>-<identity>` for a sidecar (`claude-bottle-egress-<identity>`).
    pub fn container(&self, role: Role) -> String {
        match role {
            Role::Agent => format!("{NAME_PREFIX}{}", self.identity),
            other => format!("{NAME_PREFIX}{other}-{}", self.identity),
        }
    }

    /// `claude-bottle-<identity>`.
    pub fn agent_container(&self) -> String {
        self.container(Role::Agent)
    }

    /// `claude-bottle-net-<identity>`: the internal network.
    pub fn internal_network(&self) -> String {
        format!("{NAME_PREFIX}net-{}", self.identity)
    }

    /// `claude-bottle-<role>-net-<identity>`: the upstream bridge of sidecar `role`
    /// (`claude-bottle-egress-net-<identity>`).
    pub fn upstream_network(&self, role: Role) -> String {
        format!("{NAME_PREFIX}{role}-net-{}", self.identity)
    }
}

/// The role and identity an unlabelled object's name implies, for a bottle's own teardown. Networks and containers are told apart by the caller; `is_network` picks the table.
/// Returns `None` for names without the prefix. A sidecar's name is recognised only when what
/// follows its role is itself an identity, so the agent of a bottle whose agent is called
/// `egress` is not taken for an egress.
pub fn parse_name(name: &str, is_network: bool) -> Option<(ObjectRole, String)> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let identity_after = |prefix: &str| {
        rest.strip_prefix(prefix)
            .filter(|id| Identity::parse(id).is_ok())
    };
    let (role, identity) = if is_network {
        let upstream = Role::SIDECARS.into_iter().find_map(|role| {
            identity_after(&format!("{role}-net-"))
                .map(|id| (ObjectRole::UpstreamNetwork(role), id))
        });
        match (upstream, rest.strip_prefix("net-")) {
            (Some(found), _) => found,
            (None, Some(id)) => (ObjectRole::InternalNetwork, id),
            (None, None) => (ObjectRole::ProbeNetwork, rest),
        }
    } else {
        let sidecar = Role::SIDECARS.into_iter().find_map(|role| {
            identity_after(&format!("{role}-")).map(|id| (ObjectRole::Container(role), id))
        });
        match (sidecar, rest.strip_prefix("probe-")) {
            (Some(found), _) => found,
            (None, Some(id)) => (ObjectRole::Container(Role::Probe), id),
            (None, None) => (ObjectRole::Container(Role::Agent), rest),
        }
    };
    (!identity.is_empty()).then(|| (role, identity.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_identity_and_role() {
        let n = Names::new("researcher-m3hxd").unwrap();
        assert_eq!(n.agent_container(), "claude-bottle-researcher-m3hxd");
        assert_eq!(
            n.container(Role::Egress),
            "claude-bottle-egress-researcher-m3hxd"
        );
        assert_eq!(
            n.container(Role::GitGate),
            "claude-bottle-git-gate-researcher-m3hxd"
        );
        assert_eq!(n.internal_network(), "claude-bottle-net-researcher-m3hxd");
        assert_eq!(
            n.upstream_network(Role::Egress),
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
        let id = || "dev-ab12c".to_owned();
        for role in Role::SIDECARS {
            assert_eq!(
                parse_name(&n.upstream_network(role), true),
                Some((ObjectRole::UpstreamNetwork(role), id()))
            );
            assert_eq!(
                parse_name(&format!("/{}", n.container(role)), false),
                Some((ObjectRole::Container(role), id()))
            );
        }
        assert_eq!(
            parse_name(&n.internal_network(), true),
            Some((ObjectRole::InternalNetwork, id()))
        );
        assert_eq!(
            parse_name(&n.agent_container(), false),
            Some((ObjectRole::Container(Role::Agent), id()))
        );
        assert_eq!(parse_name("other-thing", false), None);
        assert_eq!(parse_name("claude-bottle-", false), None);
    }

    #[test]
    fn an_agent_named_like_a_sidecar_is_still_an_agent() {
        let n = Names::new("egress-ab12c").unwrap();
        assert_eq!(
            parse_name(&n.agent_container(), false),
            Some((
                ObjectRole::Container(Role::Agent),
                "egress-ab12c".to_owned()
            ))
        );
        assert_eq!(
            parse_name(&n.container(Role::Egress), false),
            Some((
                ObjectRole::Container(Role::Egress),
                "egress-ab12c".to_owned()
            ))
        );
    }

    #[test]
    fn networks_are_told_apart_by_their_network_label() {
        let internal = ObjectRole::InternalNetwork.labels();
        let egress = ObjectRole::UpstreamNetwork(Role::Egress).labels();
        assert!(internal.contains(&(label::ROLE, "network")));
        assert!(internal.contains(&(label::NETWORK, "internal")));
        assert!(egress.contains(&(label::NETWORK, "egress")));
    }
}
