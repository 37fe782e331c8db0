//! The planned topology, snapshotted.

use bottle_docker::plan::{self, DockerOptions, EnvValue, PlanInputs, Runtime};

use crate::common::{labels, prepared};

#[test]
fn the_topology_of_a_bottle() {
    let prepared = prepared("researcher-m3hxd");
    let labels = labels("researcher-m3hxd");
    let options = DockerOptions::default();
    let topology = plan::plan(
        &prepared,
        &PlanInputs {
            agent_image: "claude-bottle-agent:0123456789abcdef",
            runtime: Runtime::Runsc,
            options: &options,
            labels: &labels,
        },
    )
    .unwrap();
    insta::with_settings!({ filters => vec![(r"claude-bottle-egress:\d+\.\d+\.\d+", "claude-bottle-egress:[version]")] }, {
        insta::assert_yaml_snapshot!(topology);
    });
}

#[test]
fn the_agent_is_isolated_and_hardened() {
    let prepared = prepared("researcher-m3hxd");
    let labels = labels("researcher-m3hxd");
    let options = DockerOptions::default();
    let t = plan::plan(
        &prepared,
        &PlanInputs {
            agent_image: "img",
            runtime: Runtime::Runc,
            options: &options,
            labels: &labels,
        },
    )
    .unwrap();
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
            .all(|e| e.value == EnvValue::Fixed("http://egress:9099".into()))
    );
    // The credential goes to the egress by name, never to the agent.
    assert!(
        t.egress
            .env
            .iter()
            .any(|e| e.name == "CLAUDE_CODE_OAUTH_TOKEN" && e.value == EnvValue::Credential)
    );
    assert!(t.agent.env.iter().all(|e| e.value != EnvValue::Credential));
    // Every object carries the identity.
    for l in [
        &t.agent.labels,
        &t.egress.labels,
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
fn a_resolved_agent_gets_the_egress_as_its_only_resolver() {
    let prepared = prepared("researcher-m3hxd");
    let labels = labels("researcher-m3hxd");
    let options = DockerOptions::default();
    let t = plan::plan(
        &prepared,
        &PlanInputs {
            agent_image: "img",
            runtime: Runtime::Runc,
            options: &options,
            labels: &labels,
        },
    )
    .unwrap();
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let ip = "172.30.0.2".parse().unwrap();
    let config = t.agent.resolve(&value, Some(ip)).unwrap();
    assert_eq!(config.dns, ["172.30.0.2"]);
    assert_eq!(config.extra_hosts, ["egress:172.30.0.2"]);
    assert_eq!(format!("{:?}", config.env[0]), "HTTP_PROXY=<redacted>");
    let missing = t.agent.resolve(&|_, _| None, Some(ip)).unwrap_err();
    assert!(missing.to_string().contains("GH_HOST"), "{missing}");
    let no_ip = t.agent.resolve(&value, None).unwrap_err();
    assert!(no_ip.to_string().contains("egress"), "{no_ip}");
}

#[test]
fn limits_come_from_the_environment_and_reach_the_agent_container() {
    let prepared = prepared("researcher-m3hxd");
    let labels = labels("researcher-m3hxd");
    let options = DockerOptions::from_lookup(|name| match name {
        "CLAUDE_BOTTLE_MEMORY" => Some("2g".to_owned()),
        "CLAUDE_BOTTLE_PIDS_LIMIT" => Some("300".to_owned()),
        _ => None,
    })
    .unwrap();
    let t = plan::plan(
        &prepared,
        &PlanInputs {
            agent_image: "img",
            runtime: Runtime::Runc,
            options: &options,
            labels: &labels,
        },
    )
    .unwrap();
    let value = |name: &str, _: &EnvValue| Some(format!("value-of-{name}"));
    let config = t
        .agent
        .resolve(&value, Some("172.30.0.2".parse().unwrap()))
        .unwrap();
    assert_eq!(config.memory_bytes, Some(2 << 30));
    assert_eq!(config.pids_limit, Some(300));
    let bad = DockerOptions::from_lookup(|name| {
        (name == "CLAUDE_BOTTLE_MEMORY").then(|| "lots".to_owned())
    })
    .unwrap_err();
    assert!(bad.to_string().contains("CLAUDE_BOTTLE_MEMORY"), "{bad}");
}
