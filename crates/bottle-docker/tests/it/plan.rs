//! The planned topology, snapshotted: the agent plus the recipe's sidecars, as data.

use bottle_core::{PreparedSpec, Role};
use bottle_docker::plan::{
    self, DockerOptions, EnvValue, LaunchAddresses, PlanInputs, Runtime, Topology,
};

use crate::common::{labels, prepared, prepared_with_every_grant};

fn topology(prepared: &PreparedSpec, runtime: Runtime, options: &DockerOptions) -> Topology {
    let labels = labels(prepared.identity.as_str());
    let sidecars = bottle_recipe::sidecars(prepared);
    plan::plan(
        prepared,
        &PlanInputs {
            agent_image: "claude-bottle-agent:0123456789abcdef",
            runtime,
            options,
            labels: &labels,
            sidecars: &sidecars,
            engine: None,
        },
    )
    .unwrap()
}

fn snapshot(name: &str, topology: &Topology) {
    insta::with_settings!({ filters => vec![(r"claude-bottle-egress:\d+\.\d+\.\d+", "claude-bottle-egress:[version]")] }, {
        insta::assert_yaml_snapshot!(name, topology);
    });
}

#[test]
fn the_topology_of_a_bottle() {
    let t = topology(
        &prepared("researcher-m3hxd"),
        Runtime::Runsc,
        &DockerOptions::default(),
    );
    snapshot("the_topology_of_a_bottle", &t);
}

/// Env of each mode, skills, a git remote, routes with both kinds of auth, a trust root,
/// `egress.networks`, supervise and `--cwd`: what reaches the engine's objects, and what
/// stays out of them (skills, the tree, the prompt are provisioned later). The git remote
/// brings the git gate; supervise has no sidecar on this backend yet and is marked in the
/// preflight instead.
#[test]
fn the_topology_of_a_bottle_with_every_kind_of_grant() {
    let prepared = prepared_with_every_grant("coder-k2p9q");
    let t = topology(&prepared, Runtime::Runc, &DockerOptions::default());
    snapshot("the_topology_of_a_bottle_with_every_kind_of_grant", &t);
    assert_eq!(
        t.sidecars.iter().map(|s| s.role).collect::<Vec<_>>(),
        [Role::Egress, Role::GitGate]
    );
    // The gate's upstream bridge is its own: no other container of the bottle is on it.
    let bridge = "claude-bottle-git-gate-net-coder-k2p9q";
    let on_bridge: Vec<&str> = t
        .containers()
        .filter(|c| c.connect.iter().any(|a| a.network == bridge) || c.network.network == bridge)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(on_bridge, ["claude-bottle-git-gate-coder-k2p9q"]);
}

#[test]
fn the_agent_is_isolated_and_hardened() {
    let t = topology(
        &prepared("researcher-m3hxd"),
        Runtime::Runc,
        &DockerOptions::default(),
    );
    let internal = &t.networks[0];
    assert!(internal.internal, "the agent's network has no route out");
    assert!(!t.networks[1].internal);
    assert_eq!(t.agent.network.network, internal.name);
    assert!(
        t.agent.connect.is_empty(),
        "the agent joins no other network"
    );
    assert_eq!(t.agent.cap_drop, ["ALL"]);
    assert!(t.agent.cap_add.is_empty());
    assert_eq!(t.agent.security_opt, ["no-new-privileges"]);
    assert_eq!(t.agent.user.as_deref(), Some("node"));
    let proxy: Vec<_> = t
        .agent
        .env
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case("https_proxy"))
        .collect();
    assert_eq!(
        proxy.len(),
        2,
        "one upper and one lower case, no manifest override"
    );
    assert!(
        proxy
            .iter()
            .all(|e| e.value == EnvValue::Launch(bottle_core::LaunchSecret::ProxyUrl))
    );
    let egress = t.sidecar(Role::Egress).expect("an egress");
    // The credential goes to the egress by name, never to the agent.
    assert!(
        egress
            .env
            .iter()
            .any(|e| e.name == "CLAUDE_CODE_OAUTH_TOKEN" && e.value == EnvValue::Credential)
    );
    assert!(t.agent.env.iter().all(|e| e.value != EnvValue::Credential));
    // Every object carries the identity.
    for l in [
        &t.agent.labels,
        &egress.labels,
        &internal.labels,
        &t.networks[1].labels,
    ] {
        assert_eq!(
            l.get("claude-bottle.identity").map(String::as_str),
            Some("researcher-m3hxd")
        );
    }
}

#[test]
fn under_runc_the_agents_only_resolver_is_the_internal_gateway_that_nothing_holds() {
    let t = topology(
        &prepared("researcher-m3hxd"),
        Runtime::Runc,
        &DockerOptions::default(),
    );
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let addresses = LaunchAddresses {
        internal_gateway: Some("172.30.0.1".parse().unwrap()),
        ..Default::default()
    };
    let config = t.agent.resolve(&value, &addresses).unwrap();
    assert!(!t.agent.needs_sidecar_addresses());
    assert_eq!(config.dns, ["172.30.0.1"]);
    assert!(config.extra_hosts.is_empty(), "{:?}", config.extra_hosts);
    assert_eq!(format!("{:?}", config.env[0]), "HTTP_PROXY=<redacted>");
    let missing = t.agent.resolve(&|_, _| None, &addresses).unwrap_err();
    assert!(missing.to_string().contains("HTTP_PROXY"), "{missing}");
    let no_ip = t.agent.resolve(&value, &Default::default()).unwrap_err();
    assert!(no_ip.to_string().contains("gateway"), "{no_ip}");
}

#[test]
fn under_gvisor_the_agent_finds_the_egress_by_its_hosts_entry_and_waits_for_its_address() {
    let t = topology(
        &prepared("researcher-m3hxd"),
        Runtime::Runsc,
        &DockerOptions::default(),
    );
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let ip = "172.30.0.2".parse().unwrap();
    let addresses = LaunchAddresses {
        sidecars: [(Role::Egress, ip)].into_iter().collect(),
        internal_gateway: Some("172.30.0.1".parse().unwrap()),
    };
    assert!(t.agent.needs_sidecar_addresses());
    let config = t.agent.resolve(&value, &addresses).unwrap();
    assert_eq!(config.dns, ["172.30.0.2"]);
    assert_eq!(config.extra_hosts, ["egress:172.30.0.2"]);
    let no_ip = t.agent.resolve(&value, &Default::default()).unwrap_err();
    assert!(no_ip.to_string().contains("egress"), "{no_ip}");
}

#[test]
fn limits_come_from_the_environment_and_reach_the_agent_container() {
    let options = DockerOptions::from_lookup(|name| match name {
        "CLAUDE_BOTTLE_MEMORY" => Some("2g".to_owned()),
        "CLAUDE_BOTTLE_PIDS_LIMIT" => Some("300".to_owned()),
        _ => None,
    })
    .unwrap();
    let t = topology(&prepared("researcher-m3hxd"), Runtime::Runc, &options);
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let addresses = LaunchAddresses {
        internal_gateway: Some("172.30.0.1".parse().unwrap()),
        ..Default::default()
    };
    let config = t.agent.resolve(&value, &addresses).unwrap();
    assert_eq!(config.memory_bytes, Some(2 << 30));
    assert_eq!(config.pids_limit, Some(300));
    let bad = DockerOptions::from_lookup(|name| {
        (name == "CLAUDE_BOTTLE_MEMORY").then(|| "lots".to_owned())
    })
    .unwrap_err();
    assert!(bad.to_string().contains("CLAUDE_BOTTLE_MEMORY"), "{bad}");
}

#[test]
fn the_agent_gets_the_engines_cpus_at_most_and_a_disk_bound_where_the_storage_can_hold_one() {
    let prepared = prepared("researcher-m3hxd");
    let labels = labels(prepared.identity.as_str());
    let sidecars = bottle_recipe::sidecars(&prepared);
    let plan_on = |engine: &bottle_docker::api::EngineInfo| {
        plan::plan(
            &prepared,
            &PlanInputs {
                agent_image: "claude-bottle-agent:0123456789abcdef",
                runtime: Runtime::Runc,
                options: &DockerOptions::default(),
                labels: &labels,
                sidecars: &sidecars,
                engine: Some(engine),
            },
        )
        .unwrap()
    };
    let xfs_one_cpu = bottle_docker::api::EngineInfo {
        storage_driver: "overlay2".to_owned(),
        backing_filesystem: Some("xfs".to_owned()),
        cpus: Some(1),
        ..Default::default()
    };
    let t = plan_on(&xfs_one_cpu);
    assert_eq!(t.agent.limits.millicpus, 1000);
    assert_eq!(t.agent.storage_bytes, Some(32 << 30));
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let addresses = LaunchAddresses {
        internal_gateway: Some("172.30.0.1".parse().unwrap()),
        ..Default::default()
    };
    let config = t.agent.resolve(&value, &addresses).unwrap();
    assert_eq!(config.nano_cpus, Some(1_000_000_000));
    assert_eq!(config.storage_bytes, Some(32 << 30));
    // The sidecars are never given a disk bound (they write nothing).
    assert!(t.sidecars.iter().all(|s| s.storage_bytes.is_none()));
    let extfs = bottle_docker::api::EngineInfo {
        storage_driver: "overlay2".to_owned(),
        backing_filesystem: Some("extfs".to_owned()),
        cpus: Some(16),
        ..Default::default()
    };
    let t = plan_on(&extfs);
    assert_eq!(t.agent.limits.millicpus, 2000);
    assert_eq!(t.agent.storage_bytes, None);
}
