//! Labels every backend puts on every resource it creates (containers, networks, volumes, VMs),
//! so that `cleanup` finds what a SIGKILL left behind and `teardown` removes exactly one bottle's
//! resources. Keys are namespaced `claude-bottle.*`; values are plain strings.

use std::collections::BTreeMap;

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
/// What the resource is to the bottle: see [`role`].
pub const ROLE: &str = "claude-bottle.role";

/// Values of [`ROLE`].
pub mod role {
    /// The container (or VM) running the agent.
    pub const AGENT: &str = "agent";
    /// The egress proxy sidecar.
    pub const EGRESS: &str = "egress";
    /// The git-gate sidecar.
    pub const GIT_GATE: &str = "git-gate";
    /// The supervise sidecar.
    pub const SUPERVISE: &str = "supervise";
    /// A network.
    pub const NETWORK: &str = "network";
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
