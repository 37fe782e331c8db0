//! Labels every backend puts on every resource it creates (containers, networks, volumes, VMs),
//! so that `cleanup` finds what a SIGKILL left behind and `teardown` removes exactly one bottle's
//! resources. Keys are namespaced `claude-bottle.*`; values are plain strings.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::identity::Identity;

/// Present (value [`MANAGED_VALUE`]) on everything claude-bottle creates: the cleanup filter.
pub const MANAGED: &str = "claude-bottle.managed";
/// The value of [`MANAGED`].
pub const MANAGED_VALUE: &str = "true";
/// The bottle's identity (`researcher-m3hxd`): the teardown filter.
pub const IDENTITY: &str = "claude-bottle.identity";
/// The agent's name.
pub const AGENT: &str = "claude-bottle.agent";
/// The backend that created the resource.
pub const BACKEND: &str = "claude-bottle.backend";
/// When the bottle started, RFC 3339 UTC.
pub const STARTED: &str = "claude-bottle.started";
/// What the resource is to the bottle: a [`Role`].
pub const ROLE: &str = "claude-bottle.role";

/// What a resource is to its bottle: the value of [`ROLE`].
///
/// Backends derive their own object names and cleanup rules from it, so a new sidecar is a new
/// variant here (and its spec in the recipe), not a name pattern in every backend. Not
/// `#[non_exhaustive]` on purpose: each backend's `match` must decide what a new role means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The container (or VM, or pod container) running the agent.
    Agent,
    /// The egress proxy sidecar: the agent's only way out.
    Egress,
    /// The git-gate sidecar: pushes to the bottle's `git:` remotes.
    GitGate,
    /// The supervise sidecar: the MCP server through which the agent asks its human.
    Supervise,
    /// A network (backends tell their networks apart with labels of their own).
    Network,
    /// A short-lived probe (a backend testing what its engine can run).
    Probe,
}

impl Role {
    /// Every sidecar role, in start order: the egress first (the others reach out through it
    /// or beside it), supervise last. Teardown removes them in the reverse order.
    pub const SIDECARS: [Role; 3] = [Role::Egress, Role::GitGate, Role::Supervise];

    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Agent,
        Role::Egress,
        Role::GitGate,
        Role::Supervise,
        Role::Network,
        Role::Probe,
    ];

    /// The label value (and name part): `agent`, `egress`, `git-gate`, `supervise`, `network`,
    /// `probe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Egress => "egress",
            Role::GitGate => "git-gate",
            Role::Supervise => "supervise",
            Role::Network => "network",
            Role::Probe => "probe",
        }
    }

    /// The role a label value names.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// Whether this is one of [`Role::SIDECARS`].
    pub fn is_sidecar(self) -> bool {
        Role::SIDECARS.contains(&self)
    }

    /// The order container removals start in (a backend may run them at once): the agent
    /// first (it is the untrusted one, and depends on everything else), then the sidecars in
    /// reverse start order, then probes.
    pub fn removal_rank(self) -> usize {
        match self {
            Role::Agent => 0,
            Role::Probe | Role::Network => Role::SIDECARS.len() + 1,
            sidecar => {
                let start = Role::SIDECARS
                    .iter()
                    .position(|r| *r == sidecar)
                    .unwrap_or(0);
                Role::SIDECARS.len() - start
            }
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The labels shared by every resource of one bottle (add [`ROLE`] per resource).
pub fn for_bottle(
    identity: &Identity,
    backend: &str,
    started: OffsetDateTime,
) -> BTreeMap<String, String> {
    let started = started
        .format(&Rfc3339)
        .unwrap_or_else(|_| started.unix_timestamp().to_string());
    BTreeMap::from([
        (MANAGED.to_owned(), MANAGED_VALUE.to_owned()),
        (IDENTITY.to_owned(), identity.to_string()),
        (AGENT.to_owned(), identity.agent().to_owned()),
        (BACKEND.to_owned(), backend.to_owned()),
        (STARTED.to_owned(), started),
    ])
}

/// Parses a [`STARTED`] label value.
pub fn parse_started(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_the_agent_goes_first_the_egress_last_of_the_sidecars() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        let mut order = Role::SIDECARS.to_vec();
        order.push(Role::Agent);
        order.sort_by_key(|r| r.removal_rank());
        assert_eq!(
            order,
            [Role::Agent, Role::Supervise, Role::GitGate, Role::Egress]
        );
    }
}
