//! Launch, provisioning, teardown, cleanup and runtime choice, against the recording fake.

use std::collections::BTreeMap;

use bottle_core::{
    BottleBackend, BottleCleanupPlan, BottlePlan, EventLog, HostContext, LaunchContext, Secrets,
    SkillSource,
};
use bottle_docker::fake::RecordingDocker;
use bottle_docker::image::ImageSettings;
use bottle_docker::names::label;
use bottle_docker::plan::{DockerOptions, Runtime};
use bottle_docker::{DockerBackend, DockerPlan};

use crate::common::{labels, prepared, started};

const ID: &str = "researcher-m3hxd";

fn backend(fake: &RecordingDocker) -> DockerBackend<RecordingDocker> {
    let options = DockerOptions::default();
    fake.add_image(&options.egress_image, "65532:65532");
    // The network the fixture's egress joins, made by someone else.
    fake.add_network("corp-services", BTreeMap::new());
    DockerBackend::new(
        fake.clone(),
        options,
        ImageSettings {
            build_ca_sources: Some(Vec::new()),
            ..Default::default()
        },
    )
}

fn host() -> HostContext {
    HostContext::new("/home/user", BTreeMap::new())
}

fn secrets() -> Secrets {
    Secrets::empty()
        .with_env("GH_HOST", "github.com")
        .with_env("DB_PASSWORD", "hunter2")
        .with_env("HTTPS_PROXY", "http://evil:1")
        .with_env("CLAUDE_CODE_OAUTH_TOKEN", "placeholder")
        .with_token("CLAUDE_CODE_OAUTH_TOKEN", "sk-real-token")
}

async fn plan(backend: &DockerBackend<RecordingDocker>) -> DockerPlan {
    backend.resolve_plan(prepared(ID), &host()).await.unwrap()
}

fn ctx<'a>(secrets: &'a Secrets, events: &'a EventLog) -> LaunchContext<'a> {
    LaunchContext {
        secrets,
        events,
        started: started(),
        labels: labels(ID),
    }
}

#[tokio::test]
async fn launch_creates_networks_then_a_healthy_egress_then_the_agent() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    fake.clear_calls();
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    insta::with_settings!({ filters => vec![
        (r"claude-bottle-agent:[0-9a-f]{16}", "claude-bottle-agent:[hash]"),
        (r"claude-bottle-egress:\d+\.\d+\.\d+", "claude-bottle-egress:[version]"),
    ]}, {
        insta::assert_yaml_snapshot!(fake.calls());
    });
    assert_eq!(
        fake.containers(),
        [
            "claude-bottle-egress-researcher-m3hxd",
            "claude-bottle-researcher-m3hxd"
        ]
    );
}

#[tokio::test]
async fn the_credential_reaches_only_the_egress_and_the_key_only_its_user() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    let egress = fake
        .container_config("claude-bottle-egress-researcher-m3hxd")
        .unwrap();
    let agent = fake
        .container_config("claude-bottle-researcher-m3hxd")
        .unwrap();
    let token = egress
        .env
        .iter()
        .find(|e| e.name == "CLAUDE_CODE_OAUTH_TOKEN")
        .unwrap();
    assert_eq!(token.value(), "sk-real-token");
    assert!(
        agent.env.iter().all(|e| e.value() != "sk-real-token"),
        "the agent never holds the credential"
    );
    let placeholder = agent
        .env
        .iter()
        .find(|e| e.name == "CLAUDE_CODE_OAUTH_TOKEN")
        .unwrap();
    assert_eq!(placeholder.value(), "placeholder");
    let proxy = agent.env.iter().find(|e| e.name == "HTTPS_PROXY").unwrap();
    assert_eq!(
        proxy.value(),
        "http://egress:9099",
        "the manifest cannot bypass the egress"
    );
    // The agent resolves through the egress's address only.
    let egress_ip = agent.dns[0].clone();
    assert_eq!(agent.extra_hosts, [format!("egress:{egress_ip}")]);
    assert_eq!(agent.runtime.as_deref(), Some("runc"));
    // The egress's files: key readable by its user only, config naming the CA files.
    let files = fake.files("claude-bottle-egress-researcher-m3hxd");
    let key = files
        .keys()
        .find(|k| k.starts_with("/etc/bottle-egress/ca.key"))
        .unwrap();
    assert!(key.ends_with("(65532:65532 400)"), "{key}");
    let config = files
        .iter()
        .find(|(k, _)| k.starts_with("/etc/bottle-egress/config.json"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap();
    assert!(config.contains("\"0.0.0.0:9099\""), "{config}");
    assert!(
        config.contains("CLAUDE_CODE_OAUTH_TOKEN"),
        "names the token_ref"
    );
    assert!(!config.contains("sk-real-token"), "never the value");
}

#[tokio::test]
async fn a_failure_at_any_launch_step_leaves_nothing_after_teardown() {
    // Every engine call the launch makes, as the prefix of its recorded line.
    let steps = [
        "create network claude-bottle-net-",
        "create network claude-bottle-egress-net-",
        "create container claude-bottle-egress-",
        "connect claude-bottle-egress-researcher-m3hxd to claude-bottle-egress-net",
        "connect claude-bottle-egress-researcher-m3hxd to corp-services",
        "upload to claude-bottle-egress-",
        "start claude-bottle-egress-",
        "health ",
        "create container claude-bottle-researcher-",
        "start claude-bottle-researcher-",
    ];
    for step in steps {
        let fake = RecordingDocker::new();
        let backend = backend(&fake);
        let plan = plan(&backend).await;
        fake.fail_on(step);
        let (secrets, events) = (secrets(), EventLog::new());
        let err = backend
            .launch(&plan, &ctx(&secrets, &events))
            .await
            .expect_err(step);
        assert!(err.to_string().contains("launch bottle"), "{step}: {err}");
        backend.teardown(&plan, &events).await.unwrap();
        assert!(
            fake.containers().is_empty(),
            "{step}: {:?}",
            fake.containers()
        );
        assert_eq!(
            fake.networks(),
            ["corp-services"],
            "{step}: joined network kept"
        );
    }
}

#[tokio::test]
async fn an_egress_that_exits_stops_the_launch_with_its_log() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    fake.exit_on_start("claude-bottle-egress-researcher-m3hxd");
    let (secrets, events) = (secrets(), EventLog::new());
    let err = backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap_err();
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(text.contains("exited with code 1"), "{text}");
    assert!(text.contains("fake log line"), "{text}");
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("create container claude-bottle-researcher")),
        "no agent without a working egress"
    );
}

#[tokio::test]
async fn teardown_removes_containers_before_networks_and_is_idempotent() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    fake.clear_calls();
    backend.teardown(&plan, &events).await.unwrap();
    let removals: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("remove"))
        .collect();
    assert_eq!(
        removals,
        [
            "remove container claude-bottle-researcher-m3hxd",
            "remove container claude-bottle-egress-researcher-m3hxd",
            "remove network claude-bottle-egress-net-researcher-m3hxd",
            "remove network claude-bottle-net-researcher-m3hxd",
        ]
    );
    assert!(fake.containers().is_empty());
    assert_eq!(
        fake.networks(),
        ["corp-services"],
        "a joined network is not ours"
    );
    backend.teardown(&plan, &events).await.unwrap();
}

#[tokio::test]
async fn provisioning_places_ca_prompt_skills_and_tree_with_their_owners() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let skills = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(skills.path().join("review")).unwrap();
    std::fs::write(skills.path().join("review/SKILL.md"), "# review").unwrap();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cwd.path().join(".git")).unwrap();
    std::fs::write(cwd.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(cwd.path().join("main.rs"), "fn main() {}").unwrap();
    let mut spec = prepared(ID);
    spec.skills = vec![SkillSource {
        name: "review".to_owned(),
        host_dir: skills.path().join("review"),
    }];
    spec.copy_cwd = true;
    spec.user_cwd = cwd.path().to_path_buf();
    let plan = backend.resolve_plan(spec, &host()).await.unwrap();
    let (secrets, events) = (secrets(), EventLog::new());
    let ctx = ctx(&secrets, &events);
    let bottle = backend.launch(&plan, &ctx).await.unwrap();
    fake.clear_calls();
    let provisioned = backend.provision(&plan, &bottle, &ctx).await.unwrap();
    assert_eq!(
        provisioned.prompt_path.as_deref(),
        Some("/home/node/.claude-bottle/prompt.md")
    );
    let files: Vec<String> = fake
        .files("claude-bottle-researcher-m3hxd")
        .into_keys()
        .collect();
    for expected in [
        "/etc/claude-bottle/ca.pem (0:0 644)",
        "/usr/local/share/ca-certificates/claude-bottle.crt (0:0 644)",
        "/home/node/.claude-bottle/prompt.md (1000:1000 644)",
        "/home/node/.claude/skills/review/SKILL.md (1000:1000 644)",
        "/home/node/workspace/.git/HEAD (1000:1000 644)",
        "/home/node/workspace/main.rs (1000:1000 644)",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} in {files:#?}"
        );
    }
    // CA first, and the trust store is updated as root before anything else runs.
    let calls = fake.calls();
    assert!(
        calls[0].starts_with("upload to claude-bottle-researcher-m3hxd:/etc ["),
        "{calls:?}"
    );
    assert!(
        calls[2].starts_with("exec in claude-bottle-researcher-m3hxd as 0: sh"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn runsc_is_chosen_only_after_a_networked_probe_succeeds() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    assert_eq!(plan.runtime().runtime, Runtime::Runsc);
    assert_eq!(plan.summary().runtime, "runsc");
    let probe: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.contains("probe"))
        .collect();
    assert!(
        probe[0].starts_with("create network claude-bottle-probe-"),
        "{probe:?}"
    );
    assert!(fake.containers().is_empty(), "probe removed");
    assert_eq!(fake.networks(), ["corp-services"], "probe network removed");
}

#[tokio::test]
async fn a_broken_runsc_falls_back_to_runc_with_a_warning() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    fake.fail_on("start claude-bottle-probe-");
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    assert_eq!(plan.runtime().runtime, Runtime::Runc);
    let warning = plan.runtime().warning.clone().unwrap();
    assert!(
        warning.contains("cannot run a networked container"),
        "{warning}"
    );
    assert!(fake.containers().is_empty(), "probe removed");
    assert_eq!(fake.networks(), ["corp-services"], "probe network removed");
    let summary = plan.summary();
    assert!(summary.details.iter().any(|d| d.label == "warning"));
}

#[tokio::test]
async fn cleanup_takes_dead_bottles_and_unlabelled_leftovers_but_spares_live_ones() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let me = bottle_docker::liveness::current().unwrap();
    let bottle = |id: &str, launcher: &str| {
        let mut l = labels(id);
        l.insert(label::LAUNCHER.to_owned(), launcher.to_owned());
        l
    };
    // A live bottle (this process launched it), a dead one, and an unlabelled stray.
    fake.add_container("claude-bottle-live-aaaaa", bottle("live-aaaaa", &me), true);
    fake.add_network("claude-bottle-net-live-aaaaa", bottle("live-aaaaa", &me));
    let boot = me.split(':').next().unwrap();
    let dead = format!("{boot}:4000000:1");
    fake.add_container(
        "claude-bottle-dead-bbbbb",
        bottle("dead-bbbbb", &dead),
        true,
    );
    fake.add_network("claude-bottle-net-dead-bbbbb", bottle("dead-bbbbb", &dead));
    fake.add_network("claude-bottle-net-stray-ccccc", BTreeMap::new());
    fake.add_container("someone-else", BTreeMap::new(), true);

    let plan = backend.prepare_cleanup().await.unwrap();
    let names: Vec<_> = plan.summary().items.into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "claude-bottle-dead-bbbbb",
            "claude-bottle-net-dead-bbbbb",
            "claude-bottle-net-stray-ccccc"
        ]
    );
    let events = EventLog::new();
    backend.cleanup(&plan, &events).await.unwrap();
    assert_eq!(
        fake.containers(),
        ["claude-bottle-live-aaaaa", "someone-else"]
    );
    assert_eq!(
        fake.networks(),
        ["claude-bottle-net-live-aaaaa", "corp-services"]
    );
    // Idempotent: the same plan again removes nothing and does not fail.
    backend.cleanup(&plan, &events).await.unwrap();
    assert!(backend.prepare_cleanup().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_active_reports_bottles_from_their_agent_containers() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    fake.clear_calls();
    let active = backend.list_active().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].identity.as_str(), ID);
    assert_eq!(active[0].agent, "researcher");
    assert_eq!(active[0].started, Some(started()));
    assert_eq!(fake.calls().len(), 1, "one call: {:?}", fake.calls());
}

#[tokio::test]
async fn a_missing_egress_image_is_a_clear_error() {
    let fake = RecordingDocker::new();
    let backend = DockerBackend::new(
        fake.clone(),
        DockerOptions::default(),
        ImageSettings {
            build_ca_sources: Some(Vec::new()),
            ..Default::default()
        },
    );
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    let err = backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap_err();
    let text = format!("{:?}", err);
    assert!(text.contains("cargo xtask images egress"), "{text}");
}

#[tokio::test]
async fn a_forced_runc_prepares_without_touching_the_engine() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let backend = backend(&fake).with_forced_runtime(Some("runc".to_owned()));
    fake.clear_calls();
    let plan = plan(&backend).await;
    assert_eq!(plan.runtime().runtime, Runtime::Runc);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn a_session_cut_off_by_a_dead_egress_says_so() {
    use bottle_core::Bottle;
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    let bottle = backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    // A healthy egress: the session's own exit code comes back.
    fake.set_exec_exit(3);
    assert_eq!(bottle.exec_claude(&[], false).await.unwrap(), 3);
    // The egress died: the error names it and shows its log.
    fake.stop("claude-bottle-egress-researcher-m3hxd", 137);
    let err = bottle.exec_claude(&[], false).await.unwrap_err();
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(text.contains("exit code 137"), "{text}");
    assert!(text.contains("fake log line"), "{text}");
}

#[tokio::test]
async fn resuming_clears_what_a_killed_launcher_left_under_the_identity() {
    let fake = RecordingDocker::new();
    let first = backend(&fake);
    let me = bottle_docker::liveness::current().unwrap();
    let boot = me.split(':').next().unwrap().to_owned();
    let mut stale = labels(ID);
    stale.insert(label::LAUNCHER.to_owned(), format!("{boot}:4000000:1"));
    fake.add_container("claude-bottle-researcher-m3hxd", stale.clone(), true);
    fake.add_network("claude-bottle-net-researcher-m3hxd", stale);
    let mut spec = prepared(ID);
    spec.resuming = true;
    let plan = first.resolve_plan(spec, &host()).await.unwrap();
    let (secrets, events) = (secrets(), EventLog::new());
    first.launch(&plan, &ctx(&secrets, &events)).await.unwrap();
    assert_eq!(
        fake.containers(),
        [
            "claude-bottle-egress-researcher-m3hxd",
            "claude-bottle-researcher-m3hxd"
        ]
    );

    // While the launcher of the kept bottle still runs, resuming it is refused.
    let fake = RecordingDocker::new();
    let second = backend(&fake);
    let mut live = labels(ID);
    live.insert(label::LAUNCHER.to_owned(), me);
    fake.add_container("claude-bottle-researcher-m3hxd", live, true);
    let mut spec = prepared(ID);
    spec.resuming = true;
    let plan = second.resolve_plan(spec, &host()).await.unwrap();
    let err = second
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap_err();
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(text.contains("still running"), "{text}");
    assert_eq!(fake.containers(), ["claude-bottle-researcher-m3hxd"]);
}
