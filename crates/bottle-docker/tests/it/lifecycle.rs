//! Launch, provisioning, teardown, cleanup and runtime choice, against the recording fake.

use std::collections::BTreeMap;

use bottle_core::{
    BottleBackend, BottleCleanupPlan, BottlePlan, EventLog, HostContext, LaunchContext, Secrets,
    SkillSource,
};
use bottle_docker::api::DockerApi;
use bottle_docker::fake::RecordingDocker;
use bottle_docker::image::ImageSettings;
use bottle_docker::names::label;
use bottle_docker::plan::{DockerOptions, Runtime};
use bottle_docker::runtime;
use bottle_docker::{DockerBackend, DockerPlan};

use crate::common::{labels, prepared, started};

const ID: &str = "researcher-m3hxd";

fn backend(fake: &RecordingDocker) -> DockerBackend<RecordingDocker> {
    let options = DockerOptions::default();
    fake.add_image(options.egress_image(), "65532:65532");
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
async fn launch_creates_the_networks_then_the_egress_and_the_agent_at_once_and_waits_for_the_egress()
 {
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
    // The agent's proxy URL carries the bottle's proxy token, the one the egress checks.
    let proxy_token = egress
        .env
        .iter()
        .find(|e| e.name == "BOTTLE_EGRESS_PROXY_TOKEN")
        .unwrap()
        .value()
        .to_owned();
    assert_eq!(proxy_token.len(), 64);
    let proxy = agent.env.iter().find(|e| e.name == "HTTPS_PROXY").unwrap();
    assert_eq!(
        proxy.value(),
        format!("http://bottle:{proxy_token}@egress:9099"),
        "the manifest cannot bypass the egress"
    );
    assert!(
        !format!("{plan:?} {:?}", plan.summary()).contains(&proxy_token),
        "the token is in no plan"
    );
    // The agent's resolver forwards only to the internal network's gateway, which nothing
    // holds; `egress` is answered by the engine's resolver (runc), not by a hosts entry.
    assert_eq!(agent.dns.len(), 1, "{:?}", agent.dns);
    assert!(agent.dns[0].ends_with(".1"), "{:?}", agent.dns);
    assert!(agent.extra_hosts.is_empty(), "{:?}", agent.extra_hosts);
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
    // It serves the bottle's internal network (its subnet as the engine reports it) and
    // loopback (its readiness check runs inside it), never `corp-services`, where other
    // containers live, and not its own upstream bridge (10.1.0.0/16): nothing on the host
    // needs to reach it.
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["clients"],
        serde_json::json!(["10.0.0.0/16", "127.0.0.0/8", "::1/128"])
    );
}

#[tokio::test]
async fn a_failure_at_any_launch_step_leaves_nothing_after_teardown() {
    // Every engine call the launch makes, as the prefix of its recorded line.
    let steps = [
        "create network claude-bottle-net-",
        "create network claude-bottle-egress-net-",
        "inspect network claude-bottle-net-",
        "create container claude-bottle-egress-",
        "connect claude-bottle-egress-researcher-m3hxd to claude-bottle-egress-net",
        "connect claude-bottle-egress-researcher-m3hxd to corp-services",
        "upload to claude-bottle-egress-",
        "start claude-bottle-egress-",
        "exec in claude-bottle-egress-",
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
    // Under runc the agent may have started alongside the egress, but nothing ran in it.
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("exec in claude-bottle-researcher")),
        "nothing runs in an agent without a working egress: {:#?}",
        fake.calls()
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
        calls[0].starts_with("upload to claude-bottle-researcher-m3hxd:/ [/etc/claude-bottle/, "),
        "{calls:?}"
    );
    assert!(
        calls[1].starts_with("exec in claude-bottle-researcher-m3hxd as 0: sh"),
        "{calls:?}"
    );
}

/// The runtime the agent container was created with, from the fake's record.
fn agent_runtime(fake: &RecordingDocker) -> Option<String> {
    fake.container_config(&format!("claude-bottle-{ID}"))
        .expect("the agent container exists")
        .runtime
}

/// An engine that does not answer fails `prepare` itself, before any plan (so before the
/// CLI keeps state or starts a launch that would then need a teardown), and whatever the
/// runtime setting: a forced `runc` reads no runtimes but still needs the engine.
#[tokio::test]
async fn prepare_fails_first_when_the_engine_does_not_answer() {
    for forced in [None, Some("runc")] {
        let fake = RecordingDocker::new();
        let backend = backend(&fake).with_forced_runtime(forced.map(str::to_owned));
        fake.clear_calls();
        fake.stop_answering();
        let err = backend
            .resolve_plan(prepared(ID), &host())
            .await
            .expect_err("an engine that does not answer cannot be planned for");
        assert!(
            err.to_string()
                .contains("cannot reach the Docker engine at tcp://fake:2376"),
            "{err}"
        );
        assert_eq!(fake.calls(), ["engine info"], "{forced:?}");
    }
}

#[tokio::test]
async fn prepare_creates_nothing_even_when_runsc_is_registered() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let backend = backend(&fake);
    fake.clear_calls();
    let plan = plan(&backend).await;
    let writes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("engine info") && !c.starts_with("inspect image"))
        .collect();
    assert!(writes.is_empty(), "prepare only reads: {writes:?}");
    assert!(fake.containers().is_empty());
    assert_eq!(fake.networks(), ["corp-services"]);
    // The plan says what launch will try, and that a probe decides.
    assert_eq!(plan.summary().runtime, "runsc");
    assert!(plan.runtime().probe_at_launch);
    assert!(plan.runtime().reason.contains("probe at launch"));
}

#[tokio::test]
async fn runsc_is_chosen_only_after_a_networked_probe_at_launch_succeeds() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    let calls = fake.calls();
    let probe_at = calls
        .iter()
        .position(|c| c.starts_with("create network claude-bottle-probe-"))
        .unwrap_or_else(|| panic!("a probe ran: {calls:?}"));
    let agent_at = calls
        .iter()
        .position(|c| c.starts_with(&format!("create container claude-bottle-{ID} ")))
        .unwrap_or_else(|| panic!("the agent was created: {calls:?}"));
    assert!(probe_at < agent_at, "probe before the agent: {calls:?}");
    assert_eq!(agent_runtime(&fake).as_deref(), Some("runsc"));
    // The probe's objects are gone, and carried the bottle's identity while they existed.
    assert!(
        fake.containers().iter().all(|c| !c.contains("probe")),
        "probe removed: {:?}",
        fake.containers()
    );
    assert!(fake.networks().iter().all(|n| !n.contains("probe")));
    let probe = fake
        .created_container("claude-bottle-probe-")
        .expect("the probe container was created");
    assert_eq!(
        probe.labels.get(label::IDENTITY).map(String::as_str),
        Some(ID)
    );
}

#[tokio::test]
async fn a_broken_runsc_falls_back_to_runc_at_launch_with_a_warning() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    fake.fail_on("start claude-bottle-probe-");
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    assert_eq!(agent_runtime(&fake).as_deref(), Some("runc"));
    let warning = events
        .events()
        .into_iter()
        .find_map(|e| match e {
            bottle_core::Event::Warning { message } if message.contains("runsc") => Some(message),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a warning says why: {:?}", events.events()));
    assert!(
        warning.contains("cannot run a networked container"),
        "{warning}"
    );
    assert!(
        !warning.contains('\n') && warning.len() <= 120 && !warning.contains("injected failure"),
        "one line, the engine's error left to -v: {warning}"
    );
    assert!(fake.containers().iter().all(|c| !c.contains("probe")));
    assert!(fake.networks().iter().all(|n| !n.contains("probe")));
    assert_eq!(
        backend
            .resolve_plan(prepared(ID), &host())
            .await
            .unwrap()
            .runtime()
            .runtime,
        Runtime::Runc,
        "a later prepare in the same process knows the probe's answer"
    );
}

/// Launches `plan`'s bottle on a fresh backend (a new process, as far as the in-memory cache
/// knows) keeping probe verdicts in `verdicts`; returns whether a probe ran and the agent's
/// runtime and the warnings about gVisor.
async fn launch_with_verdicts(
    fake: &RecordingDocker,
    verdicts: &std::path::Path,
) -> (bool, Option<String>, Vec<String>) {
    let backend = backend(fake).with_runtime_verdicts(runtime::Verdicts::at(verdicts));
    let plan = plan(&backend).await;
    fake.clear_calls();
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    let probed = fake
        .calls()
        .iter()
        .any(|c| c.starts_with("create network claude-bottle-probe-"));
    let runtime = agent_runtime(fake);
    let warnings = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            bottle_core::Event::Warning { message } if message.contains("runsc") => Some(message),
            _ => None,
        })
        .collect();
    backend.teardown(&plan, &events).await.unwrap();
    (probed, runtime, warnings)
}

#[tokio::test]
async fn the_probe_verdict_is_kept_across_runs_so_a_second_start_does_not_probe() {
    let dir = tempfile::tempdir().unwrap();
    let verdicts = dir.path().join("cache/runtime-verdicts.json");
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    fake.fail_on("start claude-bottle-probe-");

    let (probed, runtime, warnings) = launch_with_verdicts(&fake, &verdicts).await;
    assert!(probed, "the first start on an engine probes");
    assert_eq!(runtime.as_deref(), Some("runc"));
    assert!(verdicts.is_file(), "the verdict was kept");

    let (probed, runtime, again) = launch_with_verdicts(&fake, &verdicts).await;
    assert!(!probed, "the second start takes the kept verdict");
    assert_eq!(runtime.as_deref(), Some("runc"));
    assert_eq!(again, warnings, "the user is told the same, every start");

    // A passing probe is kept too.
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let elsewhere = dir.path().join("other.json");
    assert!(launch_with_verdicts(&fake, &elsewhere).await.0);
    let (probed, runtime, _) = launch_with_verdicts(&fake, &elsewhere).await;
    assert!(!probed);
    assert_eq!(runtime.as_deref(), Some("runsc"));
}

#[tokio::test]
async fn a_verdict_is_not_used_for_a_changed_engine_when_stale_or_when_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let verdicts = dir.path().join("runtime-verdicts.json");
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    fake.fail_on("start claude-bottle-probe-");
    assert!(launch_with_verdicts(&fake, &verdicts).await.0);

    // Another runtime registered: the engine is not the one that was probed.
    fake.add_runtime("kata");
    assert!(
        launch_with_verdicts(&fake, &verdicts).await.0,
        "changed engine"
    );
    assert!(
        !launch_with_verdicts(&fake, &verdicts).await.0,
        "kept again"
    );

    // Older than a day (and the one from the future a clock set back would make).
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&verdicts).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for probed_at in [now - runtime::VERDICT_TTL.as_secs() - 1, now + 3600] {
        let mut aged = kept.clone();
        for verdict in aged.as_array_mut().unwrap() {
            verdict["probed_at"] = probed_at.into();
        }
        std::fs::write(&verdicts, serde_json::to_vec(&aged).unwrap()).unwrap();
        assert!(
            launch_with_verdicts(&fake, &verdicts).await.0,
            "a verdict probed at {probed_at} (now {now}) is not used"
        );
    }

    std::fs::write(&verdicts, b"{ not json").unwrap();
    assert!(launch_with_verdicts(&fake, &verdicts).await.0, "unreadable");
    assert!(!launch_with_verdicts(&fake, &verdicts).await.0, "rewritten");
}

#[tokio::test]
async fn cleanup_takes_dead_bottles_and_spares_live_ones_and_everything_it_did_not_create() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let me = bottle_docker::liveness::current().unwrap();
    let bottle = |id: &str, launcher: &str, role: bottle_core::Role| {
        let mut l = labels(id);
        l.insert(label::LAUNCHER.to_owned(), launcher.to_owned());
        l.insert(label::ROLE.to_owned(), role.as_str().to_owned());
        l
    };
    let (agent, network) = (bottle_core::Role::Agent, bottle_core::Role::Network);
    // A live bottle (this process launched it), a dead one; a stray merely named like a
    // bottle's network, and a stranger's container from a claude-bottle image, which inherits
    // the image's labels (older images carried the managed label).
    fake.add_container(
        "claude-bottle-live-aaaaa",
        bottle("live-aaaaa", &me, agent),
        true,
    );
    fake.add_network(
        "claude-bottle-net-live-aaaaa",
        bottle("live-aaaaa", &me, network),
    );
    let boot = me.split(':').next().unwrap();
    let dead = format!("{boot}:4000000:1");
    fake.add_container(
        "claude-bottle-dead-bbbbb",
        bottle("dead-bbbbb", &dead, agent),
        true,
    );
    fake.add_network(
        "claude-bottle-net-dead-bbbbb",
        bottle("dead-bbbbb", &dead, network),
    );
    fake.add_network("claude-bottle-net-stray-ccccc", BTreeMap::new());
    fake.add_container("someone-else", BTreeMap::new(), true);
    fake.add_container(
        "claude-bottle-mine",
        BTreeMap::from([
            (label::MANAGED.to_owned(), "true".to_owned()),
            (label::IMAGE.to_owned(), "agent".to_owned()),
        ]),
        true,
    );

    let plan = backend.prepare_cleanup().await.unwrap();
    let names: Vec<_> = plan.summary().items.into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        ["claude-bottle-dead-bbbbb", "claude-bottle-net-dead-bbbbb"]
    );
    let events = EventLog::new();
    backend.cleanup(&plan, &events).await.unwrap();
    assert_eq!(
        fake.containers(),
        [
            "claude-bottle-live-aaaaa",
            "claude-bottle-mine",
            "someone-else"
        ]
    );
    assert_eq!(
        fake.networks(),
        [
            "claude-bottle-net-live-aaaaa",
            "claude-bottle-net-stray-ccccc",
            "corp-services"
        ]
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

/// A forced runc ignores a registered runsc and probes nothing; the one call is the check that
/// the engine answers (see `prepare_fails_first_when_the_engine_does_not_answer`).
#[tokio::test]
async fn a_forced_runc_prepares_with_one_read_of_the_engine_and_no_probe() {
    let fake = RecordingDocker::new();
    fake.add_runtime("runsc");
    let backend = backend(&fake).with_forced_runtime(Some("runc".to_owned()));
    fake.clear_calls();
    let plan = plan(&backend).await;
    assert_eq!(plan.runtime().runtime, Runtime::Runc);
    // Its CPUs and storage, for the limits; nothing created, no probe.
    assert_eq!(fake.calls(), ["engine info"]);
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

#[tokio::test]
async fn building_the_agent_image_reports_progress_events_and_a_second_launch_reuses_it() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let (secrets, events) = (secrets(), EventLog::new());
    backend
        .launch(&plan, &ctx(&secrets, &events))
        .await
        .unwrap();
    let build_steps: Vec<(String, Option<u64>, Option<u64>)> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            bottle_core::Event::Progress {
                message,
                current,
                total,
                ..
            } if message.starts_with("building ") => Some((message, current, total)),
            _ => None,
        })
        .collect();
    assert_eq!(
        build_steps.len(),
        1,
        "one event per Dockerfile step: {build_steps:?}"
    );
    assert!(build_steps[0].0.contains(&plan.topology().agent.image));
    assert_eq!((build_steps[0].1, build_steps[0].2), (Some(1), Some(1)));

    // Same inputs, same content-hash tag: the image is not built again.
    backend
        .teardown(&plan, &bottle_core::NoEvents)
        .await
        .unwrap();
    fake.clear_calls();
    backend
        .launch(&plan, &ctx(&secrets, &EventLog::new()))
        .await
        .unwrap();
    assert!(
        fake.calls().iter().all(|c| !c.starts_with("build image")),
        "{:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn the_manifest_overrides_the_agent_image_over_the_environment() {
    let fake = RecordingDocker::new();
    let with_env = |base: Option<&str>| {
        let options = DockerOptions::default();
        fake.add_image(options.egress_image(), "65532:65532");
        DockerBackend::new(
            fake.clone(),
            options,
            ImageSettings {
                base_image: base.map(str::to_owned),
                build_ca_sources: Some(Vec::new()),
                ..Default::default()
            },
        )
    };
    let tag = |backend: DockerBackend<RecordingDocker>, prepared| async move {
        backend
            .resolve_plan(prepared, &host())
            .await
            .map(|plan| plan.topology().agent.image.clone())
    };

    let default_tag = tag(with_env(None), prepared(ID)).await.unwrap();
    let env_tag = tag(with_env(Some("env/base:1")), prepared(ID))
        .await
        .unwrap();
    let corp_tag = tag(with_env(Some("corp/debian:12")), prepared(ID))
        .await
        .unwrap();
    assert_ne!(env_tag, default_tag);

    // `image.base` in the manifest wins over CLAUDE_BOTTLE_BASE_IMAGE.
    let mut with_base = prepared(ID);
    with_base.agent.bottle.image.base = Some("corp/debian:12".to_owned());
    let manifest_tag = tag(with_env(Some("env/base:1")), with_base).await.unwrap();
    assert_eq!(manifest_tag, corp_tag);

    // `image.dockerfile` replaces the embedded Dockerfile...
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("agent.Dockerfile");
    std::fs::write(
        &dockerfile,
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nUSER node\n",
    )
    .unwrap();
    let mut with_file = prepared(ID);
    with_file.agent.bottle.image.dockerfile = Some(dockerfile);
    let file_tag = tag(with_env(None), with_file).await.unwrap();
    assert_ne!(file_tag, default_tag);

    // ...and a missing one fails `prepare`, naming the file.
    let mut missing = prepared(ID);
    missing.agent.bottle.image.dockerfile = Some(dir.path().join("nope.Dockerfile"));
    let err = tag(with_env(None), missing).await.unwrap_err();
    assert!(format!("{err:?}").contains("nope.Dockerfile"), "{err:?}");
}

#[tokio::test]
async fn teardown_waits_for_a_create_that_a_cancelled_launch_left_in_flight() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let network = plan.topology().networks[0].name.clone();
    let create = format!("create network {network}");
    let gate = fake.hold(&create);
    let (secrets, events) = (secrets(), EventLog::new());
    // Ctrl-C while the engine works on the network: the launch future is dropped mid-request.
    {
        let ctx = ctx(&secrets, &events);
        tokio::select! {
            _ = backend.launch(&plan, &ctx) => panic!("the launch cannot finish while its network is held"),
            () = gate.reached() => {}
        }
    }
    assert!(
        fake.networks().iter().all(|n| *n != network),
        "not created yet"
    );
    // The engine completes the request only after teardown has started (the opener yields
    // once, so teardown is polled first).
    let teardown_events = EventLog::new();
    let (torn, ()) = tokio::join!(backend.teardown(&plan, &teardown_events), async {
        tokio::task::yield_now().await;
        gate.open();
    });
    torn.unwrap();
    gate.done().await;
    let calls = fake.calls();
    let created = calls.iter().position(|c| c.starts_with(&create));
    let removed = calls
        .iter()
        .position(|c| *c == format!("remove network {network}"));
    assert!(
        matches!((created, removed), (Some(c), Some(r)) if c < r),
        "created, then removed: {calls:#?}"
    );
    assert_eq!(fake.networks(), ["corp-services"], "nothing left behind");
}

#[tokio::test(start_paused = true)]
async fn teardown_gives_up_on_a_create_that_never_finishes_with_a_warning() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let plan = plan(&backend).await;
    let network = plan.topology().networks[0].name.clone();
    let gate = fake.hold(&format!("create network {network}"));
    let (secrets, events) = (secrets(), EventLog::new());
    {
        let ctx = ctx(&secrets, &events);
        tokio::select! {
            _ = backend.launch(&plan, &ctx) => panic!("the launch cannot finish while its network is held"),
            () = gate.reached() => {}
        }
    }
    // The gate never opens: teardown waits its bounded time (paused clock), then goes on.
    let teardown_events = EventLog::new();
    backend.teardown(&plan, &teardown_events).await.unwrap();
    let warning = teardown_events.events().into_iter().find_map(|e| match e {
        bottle_core::Event::Warning { message } => Some(message),
        _ => None,
    });
    let warning = warning.expect("a warning says the engine did not finish");
    assert!(
        warning.contains("within 30 s") && warning.contains("claude-bottle cleanup"),
        "{warning}"
    );
    assert!(
        fake.calls().iter().any(|c| c.starts_with("list ")),
        "teardown went on"
    );
}

#[tokio::test]
async fn the_docker_preflight_marks_the_grants_this_backend_lacks() {
    let fake = RecordingDocker::new();
    let backend = backend(&fake);
    let mut prepared = crate::common::prepared_with_every_grant("coder-k2p9q");
    // What `prepare` records: this backend's capabilities.
    prepared.capabilities = backend.capabilities();
    let plan = backend.resolve_plan(prepared, &host()).await.unwrap();
    let summary = plan.summary();
    assert_eq!(
        summary.unimplemented,
        [bottle_core::Feature::Supervise],
        "egress networks and the git gate are implemented here; supervise is not"
    );
    // Supervise is a convenience: its absence is shown, never refused.
    plan.prepared().check_implemented().unwrap();
    insta::with_settings!({ filters => vec![
        (r"claude-bottle-agent:[0-9a-f]{16}", "claude-bottle-agent:[hash]"),
        (r"claude-bottle-egress:\d+\.\d+\.\d+", "claude-bottle-egress:[version]"),
    ]}, {
        insta::assert_yaml_snapshot!(summary.details);
    });
}

/// The preflight names the engine when it is not the local default socket: which address,
/// whether TLS, and what chose it.
#[tokio::test]
async fn the_preflight_names_an_engine_that_is_not_the_local_default() {
    use bottle_docker::endpoint::{EngineEndpoint, Origin, TlsFiles, Transport};
    let fake = RecordingDocker::new();
    let remote = EngineEndpoint {
        transport: Transport::Tcp {
            host: "build-box".to_owned(),
            port: 2376,
            tls: Some(TlsFiles {
                ca: "/home/me/.docker/ca.pem".into(),
                client: None,
            }),
        },
        origin: Origin::Context {
            name: "build-box".to_owned(),
        },
    };
    let remote_backend = backend(&fake).with_endpoint(remote);
    let summary = remote_backend
        .resolve_plan(prepared(ID), &host())
        .await
        .unwrap()
        .summary();
    insta::with_settings!({ filters => vec![
        (r"claude-bottle-agent:[0-9a-f]{16}", "claude-bottle-agent:[hash]"),
        (r"claude-bottle-egress:\d+\.\d+\.\d+", "claude-bottle-egress:[version]"),
    ]}, {
        insta::assert_yaml_snapshot!(summary.details);
    });
    // The local default is not mentioned.
    let local = backend(&fake).with_endpoint(EngineEndpoint::default());
    let summary = local
        .resolve_plan(prepared(ID), &host())
        .await
        .unwrap()
        .summary();
    assert!(
        summary.details.iter().all(|d| d.label != "engine"),
        "{:?}",
        summary.details
    );
}

/// Adding a sidecar is adding data: a second spec and its image, and the launch starts it
/// after the egress is ready, and teardown removes it after the agent and before the egress.
/// Under runsc the agent waits for both and has their aliases in its hosts; under runc it
/// starts alongside them and its resolver's dead end is the internal gateway. No launch code
/// names the sidecar.
#[tokio::test]
async fn a_second_sidecar_is_data_started_in_order_and_torn_down_in_reverse() {
    for runtime in [Runtime::Runsc, Runtime::Runc] {
        a_second_sidecar_under(runtime).await;
    }
}

async fn a_second_sidecar_under(runtime: Runtime) {
    use bottle_core::{Readiness, Role, SidecarSpec, agent};
    use bottle_docker::launch::{self, LaunchValues};
    use bottle_docker::plan::{self, PlanInputs, SidecarImage};

    let fake = RecordingDocker::new();
    let mut options = DockerOptions::default();
    options.sidecar_images.insert(
        Role::Supervise,
        SidecarImage {
            reference: "claude-bottle-supervise:test".to_owned(),
            hint: "a test image".to_owned(),
        },
    );
    fake.add_network("corp-services", BTreeMap::new());
    let prepared = prepared(ID);
    let mut sidecars = bottle_recipe::sidecars(&prepared);
    let mut supervise = SidecarSpec::new(Role::Supervise, agent::DEFAULT_LIMITS);
    supervise.alias = Some("supervise".to_owned());
    supervise.readiness = Readiness::Exec(vec!["/supervise".to_owned(), "ready".to_owned()]);
    sidecars.push(supervise);
    let labels = labels(ID);
    let topology = plan::plan(
        &prepared,
        &PlanInputs {
            agent_image: "agent:test",
            runtime,
            options: &options,
            labels: &labels,
            sidecars: &sidecars,
            engine: None,
        },
    )
    .unwrap();
    let value = |_: &str, _: &bottle_docker::plan::EnvValue| Some("v".to_owned());
    let files = |_: bottle_core::Role, _: &[bottle_egress::Cidr]| Ok(Vec::new());
    let values = LaunchValues {
        value: &value,
        files: &files,
        ready_timeout: std::time::Duration::from_secs(5),
    };
    let launched = launch::launch(&fake, &topology, &values, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        launched
            .sidecars
            .iter()
            .map(|(r, _)| *r)
            .collect::<Vec<_>>(),
        [Role::Egress, Role::Supervise]
    );
    let calls = fake.calls();
    let at = |line: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(line))
            .unwrap_or_else(|| panic!("{line} in {calls:#?}"))
    };
    let supervise = format!("claude-bottle-supervise-{ID}");
    assert!(
        at(&format!("exec in claude-bottle-egress-{ID}"))
            < at(&format!("create container {supervise}"))
    );
    let agent = fake
        .container_config(&format!("claude-bottle-{ID}"))
        .unwrap();
    let egress_ip = fake
        .inspect_container(&format!("claude-bottle-egress-{ID}"))
        .await
        .unwrap()
        .unwrap()
        .addresses[&format!("claude-bottle-net-{ID}")]
        .to_string();
    match runtime {
        Runtime::Runsc => {
            assert!(
                at(&format!("exec in {supervise} as -: /supervise"))
                    < at(&format!("create container claude-bottle-{ID} "))
            );
            assert_eq!(agent.extra_hosts.len(), 2, "{:?}", agent.extra_hosts);
            assert!(
                agent
                    .extra_hosts
                    .iter()
                    .any(|h| h.starts_with("supervise:"))
            );
            assert_eq!(agent.dns, [egress_ip], "the egress stays the only resolver");
        }
        Runtime::Runc => {
            assert!(agent.extra_hosts.is_empty(), "{:?}", agent.extra_hosts);
            assert_eq!(agent.dns.len(), 1, "one resolver: {:?}", agent.dns);
            assert_ne!(agent.dns, [egress_ip]);
            assert!(agent.dns[0].ends_with(".1"), "the gateway: {:?}", agent.dns);
        }
    }
    let supervise_labels = fake.container_config(&supervise).unwrap().labels;
    assert_eq!(supervise_labels[label::ROLE], "supervise");

    fake.clear_calls();
    launch::teardown(&fake, &topology, &|_| {}).await.unwrap();
    let removals: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("remove container"))
        .collect();
    assert_eq!(
        removals,
        [
            format!("remove container claude-bottle-{ID}"),
            format!("remove container {supervise}"),
            format!("remove container claude-bottle-egress-{ID}"),
        ]
    );
    assert!(fake.containers().is_empty());
}
