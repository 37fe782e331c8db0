//! Real bottles on a real engine. Built as ordinary tests only with
//! `CLAUDE_BOTTLE_DOCKER_TESTS=1` (see build.rs); otherwise they are listed as ignored. With the
//! variable set, a missing engine fails them. They need the images of `cargo xtask images`.
//!
//! Every object a test creates carries a per-test label, and a guard removes everything with
//! that label when the test ends, passed or failed. The tests share one engine: run them one at a
//! time (`--test-threads=1`, or the nextest test group for `docker::`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bottle_core::{
    Bottle, BottleBackend, BottleCleanupPlan, EventLog, HostContext, Identity, LaunchContext,
    PreparedSpec, Secrets, SkillSource,
};
use bottle_docker::api::{Attachment, ContainerConfig, DockerApi, ExecSpec, Filter, NetworkSpec};
use bottle_docker::engine::Engine;
use bottle_docker::image::{AgentImageRecipe, ImageSettings};
use bottle_docker::names::label;
use bottle_docker::plan::{DockerOptions, Runtime};
use bottle_docker::runtime::{self, ProbeImage};
use bottle_docker::tarball::TarBuilder;
use bottle_docker::{DockerBackend, DockerPlan};
use bottle_egress::CertificateAuthority;
use bottle_manifest::{Route, RouteAuth};

pub(crate) const TEST_LABEL: &str = "claude-bottle.test";
const TOKEN: &str = "sekrit-token-4f1c9a";

/// Removes everything labelled with this test's label when dropped.
pub(crate) struct Guard {
    pub(crate) value: String,
}

impl Guard {
    pub(crate) fn new() -> Self {
        let value = format!("t{}-{}", std::process::id(), rand_suffix());
        Guard { value }
    }

    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(TEST_LABEL.to_owned(), self.value.clone())])
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let value = self.value.clone();
        // Drop cannot await; a fresh runtime on its own thread can.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(engine) = Engine::connect().await else {
                    return;
                };
                let filter = Filter::label(TEST_LABEL, &value);
                for c in engine.list_containers(&filter).await.unwrap_or_default() {
                    let _ = engine.remove_container(&c.name).await;
                }
                for n in engine.list_networks(&filter).await.unwrap_or_default() {
                    let _ = engine.remove_network(&n.name).await;
                }
            });
        })
        .join();
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:08x}")
}

pub(crate) async fn engine() -> Engine {
    Engine::connect()
        .await
        .expect("CLAUDE_BOTTLE_DOCKER_TESTS=1 but no Docker engine answers")
}

pub(crate) fn agent_image() -> String {
    AgentImageRecipe::resolve(&ImageSettings::from_env())
        .unwrap()
        .tag()
}

pub(crate) fn backend(engine: &Engine, guard: &Guard) -> DockerBackend<Engine> {
    let mut options = DockerOptions {
        extra_labels: guard.labels(),
        ..DockerOptions::default()
    };
    // An engineer testing their own egress build tags it apart (CLAUDE_BOTTLE_EGRESS_IMAGE).
    if let Some(image) = std::env::var("CLAUDE_BOTTLE_EGRESS_IMAGE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        && let Some(egress) = options.sidecar_images.get_mut(&bottle_core::Role::Egress)
    {
        egress.reference = image;
    }
    // Likewise the git gate (CLAUDE_BOTTLE_GIT_GATE_IMAGE).
    if let Some(image) = std::env::var(bottle_recipe::git_gate::IMAGE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        && let Some(gate) = options.sidecar_images.get_mut(&bottle_core::Role::GitGate)
    {
        gate.reference = image;
    }
    DockerBackend::new(engine.clone(), options, ImageSettings::from_env())
}

pub(crate) fn host() -> HostContext {
    HostContext::new("/nonexistent-home", BTreeMap::new())
}

pub(crate) fn spec(identity: &Identity) -> PreparedSpec {
    let bottle = bottle_core::BottleDef::new("test");
    PreparedSpec {
        backend: "docker".to_owned(),
        identity: identity.clone(),
        resuming: false,
        agent: bottle_core::AgentSpec::new(identity.agent(), bottle),
        skills: Vec::new(),
        copy_cwd: false,
        cwd_credentials: Vec::new(),
        user_cwd: PathBuf::from("/nonexistent"),
        remote_control: false,
        allow_unimplemented: false,
        capabilities: Default::default(),
    }
}

pub(crate) fn ctx<'a>(
    identity: &Identity,
    secrets: &'a Secrets,
    events: &'a EventLog,
) -> LaunchContext<'a> {
    let started = time::OffsetDateTime::now_utc();
    LaunchContext {
        secrets,
        events,
        started,
        labels: bottle_core::labels::for_bottle(identity, "docker", started),
    }
}

pub(crate) async fn sh<B: Bottle>(bottle: &B, script: &str) -> bottle_core::ExecResult {
    bottle
        .exec(bottle_core::ExecUser::Agent, script)
        .await
        .unwrap()
}

/// Every object of `identity`, by label.
pub(crate) async fn objects_of(engine: &Engine, identity: &str) -> Vec<String> {
    let f = Filter::label(label::IDENTITY, identity);
    let mut out: Vec<String> = engine
        .list_containers(&f)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    out.extend(
        engine
            .list_networks(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name),
    );
    out.extend(
        engine
            .list_volumes(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.name),
    );
    out
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn runtime_detection_proves_runsc_or_falls_back_to_runc() {
    let engine = engine().await;
    let guard = Guard::new();
    let info = engine.engine_info().await.unwrap();
    assert!(
        info.runtimes.iter().any(|r| r == "runsc"),
        "run .ci/docker-setup.sh first: it registers runsc, which this test is about"
    );
    let backend = backend(&engine, &guard);
    let identity = Identity::generate("probe").unwrap();
    let plan: DockerPlan = backend
        .resolve_plan(spec(&identity), &host())
        .await
        .unwrap();
    // `prepare` creates nothing: with runsc registered it defers the proof to launch.
    assert_eq!(plan.runtime().runtime, Runtime::Runsc);
    assert!(plan.runtime().probe_at_launch);
    let created = engine
        .list_networks(&Filter::label(TEST_LABEL, &guard.value))
        .await
        .unwrap();
    assert!(created.is_empty(), "prepare created {created:?}");
    // The probe launch runs, on the egress image (a static binary, always built).
    let probe_image = ProbeImage {
        image: DockerOptions::default().egress_image().to_owned(),
        cmd: vec!["--version".to_owned()],
    };
    let mut labels = guard.labels();
    labels.insert(label::IDENTITY.to_owned(), identity.to_string());
    let choice = runtime::detect(&engine, Some(&probe_image), &labels, None).await;
    // Debian's runsc cannot run a networked container: the probe must catch that.
    match choice.runtime {
        Runtime::Runc => {
            let warning = choice.warning.clone().expect("a fallback says why");
            assert!(warning.contains("runsc"), "{warning}");
        }
        Runtime::Runsc => assert!(choice.warning.is_none()),
    }
    // The probe leaves nothing behind.
    let probes = engine
        .list_containers(&Filter::label(TEST_LABEL, &guard.value))
        .await
        .unwrap();
    assert!(probes.is_empty(), "{probes:?}");
    let nets = engine
        .list_networks(&Filter::label(TEST_LABEL, &guard.value))
        .await
        .unwrap();
    assert!(nets.is_empty(), "{nets:?}");
}

/// An HTTPS origin on its own network under a DNS alias, with a certificate from a test CA.
/// It answers `/echo` with the request's headers and 404 elsewhere.
async fn start_origin(engine: &Engine, guard: &Guard, alias: &str) -> (String, String) {
    let ca =
        CertificateAuthority::generate_named("bottle test CA", Duration::from_secs(3600)).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(
        ca.cert_der(),
        rcgen::KeyPair::from_pem(ca.key_pem()).unwrap(),
    )
    .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![alias.to_owned()]).unwrap();
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
    // Not named or labelled like a bottle's objects: other engineers' cleanup tests on the same
    // engine must not take the origin for a leftover.
    let network = format!("bottle-test-net-{}", guard.value);
    let labels = guard.labels();
    engine
        .create_network(&NetworkSpec {
            name: network.clone(),
            internal: false,
            labels: labels.clone(),
        })
        .await
        .unwrap();
    let name = format!("bottle-test-origin-{}", guard.value);
    let script = r#"
import http.server, ssl, json
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/echo'):
            body = json.dumps(dict(self.headers)).encode()
            self.send_response(200)
        else:
            body = b'not here'
            self.send_response(404)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(('0.0.0.0', 443), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain('/tmp/origin/cert.pem', '/tmp/origin/key.pem')
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;
    engine
        .create_container(&ContainerConfig {
            name: name.clone(),
            image: agent_image(),
            cmd: Some(vec!["python3".into(), "-c".into(), script.into()]),
            user: Some("0".into()),
            labels,
            network: Some(Attachment {
                network: network.clone(),
                aliases: vec![alias.to_owned()],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tar = TarBuilder::new("origin");
    tar.dir("origin", 0o755, bottle_core::FileOwner::ROOT)
        .unwrap();
    tar.file(
        "origin/cert.pem",
        leaf.pem().as_bytes(),
        0o644,
        bottle_core::FileOwner::ROOT,
    )
    .unwrap();
    tar.file(
        "origin/key.pem",
        leaf_key.serialize_pem().as_bytes(),
        0o600,
        bottle_core::FileOwner::ROOT,
    )
    .unwrap();
    engine
        .upload(&name, "/tmp", tar.finish().unwrap())
        .await
        .unwrap();
    engine.start_container(&name).await.unwrap();
    (network, ca.cert_pem().to_owned())
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn a_bottle_reaches_allowed_origins_only_and_never_holds_the_credential() {
    let engine = engine().await;
    let guard = Guard::new();
    let alias = "origin.bottle.test";
    let (network, ca_pem) = start_origin(&engine, &guard, alias).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("test-ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    // Skills and a working tree to copy in.
    std::fs::create_dir_all(dir.path().join("skills/review")).unwrap();
    std::fs::write(dir.path().join("skills/review/SKILL.md"), "# review\n").unwrap();
    let tree = dir.path().join("project");
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    std::fs::write(tree.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(tree.join("README.md"), "hello\n").unwrap();

    let identity = Identity::generate("e2e").unwrap();
    let mut prepared = spec(&identity);
    let mut route = Route::host(alias);
    route.allow_private = true; // the test origin sits on a private Docker network
    route.auth = Some(RouteAuth::Header {
        header: "x-test-token".parse().unwrap(),
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    // A route with `auth` trusts only the roots it names (the bottle-wide `trust` is for
    // routes without a credential).
    route.trust = vec![ca_path];
    prepared.agent.bottle.egress.routes = vec![route];
    prepared.agent.bottle.egress.networks = vec![network];
    prepared.agent.prompt = "You are a test.\n".to_owned();
    prepared.skills = vec![SkillSource {
        name: "review".to_owned(),
        host_dir: dir.path().join("skills/review"),
    }];
    prepared.copy_cwd = true;
    prepared.user_cwd = tree;

    let backend = backend(&engine, &guard);
    let plan = backend.resolve_plan(prepared, &host()).await.unwrap();
    let secrets = Secrets::empty().with_token("TEST_TOKEN", TOKEN);
    let events = EventLog::new();
    let ctx = ctx(&identity, &secrets, &events);
    let launched = backend.launch(&plan, &ctx).await;
    let bottle = match launched {
        Ok(b) => b,
        Err(e) => {
            let _ = backend.teardown(&plan, &events).await;
            panic!("launch failed: {e} ({:?})", std::error::Error::source(&e));
        }
    };
    let provisioned = backend.provision(&plan, &bottle, &ctx).await.unwrap();
    assert_eq!(
        provisioned.prompt_path.as_deref(),
        Some("/home/node/.claude-bottle/prompt.md")
    );

    // Allowed origin, through the egress, with the credential injected on the way.
    let r = sh(&bottle, &format!("curl -sS https://{alias}/echo")).await;
    assert!(r.success(), "{r:?}");
    assert!(
        r.stdout.contains(TOKEN),
        "the origin saw the injected credential: {r:?}"
    );
    // A host no route allows: the egress answers the CONNECT with 403.
    let r = sh(
        &bottle,
        "curl -s -o /dev/null -w '%{http_connect}' https://denied.example/",
    )
    .await;
    assert_eq!(r.stdout, "403", "{r:?}");
    // No way around the egress: direct TCP fails, to the origin and to the internet.
    let r = sh(
        &bottle,
        &format!(
            "curl --noproxy '*' -sS -m 5 https://{alias}/echo; echo rc=$?; \
             python3 -c \"import socket; socket.create_connection(('1.1.1.1', 443), timeout=5)\" \
             2>&1 | tail -1"
        ),
    )
    .await;
    assert!(!r.stdout.contains(TOKEN), "{r:?}");
    assert!(!r.stdout.contains("rc=0"), "direct curl failed: {r:?}");
    assert!(
        r.stdout.contains("Error") || r.stdout.contains("error"),
        "direct socket failed: {r:?}"
    );
    // No resolver that reaches outside: external names do not resolve, `egress` does.
    let r = sh(
        &bottle,
        "getent hosts example.com >/dev/null && echo resolved-external; \
         getent hosts egress >/dev/null && echo resolved-egress",
    )
    .await;
    assert_eq!(r.stdout.trim(), "resolved-egress", "{r:?}");
    // curl, git, node and python3 trust the per-bottle CA.
    let r = sh(
        &bottle,
        &format!("git ls-remote https://{alias}/repo.git 2>&1; true"),
    )
    .await;
    assert!(
        r.stdout.contains("not found"),
        "git reached the origin over TLS: {r:?}"
    );
    assert!(!r.stdout.to_lowercase().contains("certificate"), "{r:?}");
    let r = sh(
        &bottle,
        &format!(
            "python3 -c \"import urllib.request; print(urllib.request.urlopen('https://{alias}/echo').status)\""
        ),
    )
    .await;
    assert_eq!(r.stdout.trim(), "200", "{r:?}");
    let node = format!(
        "const http=require('http'),tls=require('tls');\
         http.request({{host:'egress',port:9099,method:'CONNECT',path:'{alias}:443'}})\
         .on('connect',(res,sock)=>{{const t=tls.connect({{socket:sock,servername:'{alias}'}},()=>\
         {{console.log('authorized',t.authorized);t.end();process.exit(0)}});\
         t.on('error',e=>{{console.log('tls error',e.message);process.exit(1)}})}}).end()"
    );
    let r = sh(&bottle, &format!("node -e \"{node}\"")).await;
    assert!(r.stdout.contains("authorized true"), "{r:?}");

    // The egress serves its bottle only: the origin shares a network with it (`egress.networks`)
    // and reaches its port, but the connection is closed unanswered, so no one there can borrow
    // the route and its injected credential.
    let egress = bottle_docker::names::Names::new(identity.as_str())
        .unwrap()
        .container(bottle_core::Role::Egress);
    let origin = format!("bottle-test-origin-{}", guard.value);
    let probe = format!(
        "curl -sS -m 10 -x http://{egress}:9099 https://{alias}/echo; echo rc=$?; \
         curl -sS -m 10 -x http://{egress}:9099 http://_egress.local/health; echo rc=$?"
    );
    let out = engine
        .exec(
            &origin,
            &ExecSpec {
                cmd: vec!["sh".into(), "-c".into(), probe],
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(TOKEN), "{stdout} {stderr}");
    // 52: empty reply, 56: reset. Not 6/7 (no name, no route): the port was reached.
    let codes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("rc="))
        .collect();
    assert_eq!(codes.len(), 2, "{stdout} {stderr}");
    assert!(
        codes.iter().all(|c| *c == "52" || *c == "56"),
        "closed without an answer: {stdout} {stderr}"
    );

    // The credential is nowhere in the agent: not in env, not in any process's environment,
    // not on disk.
    let r = sh(
        &bottle,
        &format!(
            "env | grep -c {TOKEN}; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {TOKEN}; \
             grep -rIls --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev {TOKEN} / | wc -l"
        ),
    )
    .await;
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "0"],
        "{r:?}"
    );

    // The bottle CA's key stays in the egress: no private key anywhere the agent can look.
    let r = sh(
        &bottle,
        "grep -rlsI -e '-----BEGIN PRIVATE KEY' -e '-----BEGIN EC PRIVATE KEY' \
         /etc /home /tmp /root /run /var /usr/local | wc -l",
    )
    .await;
    assert_eq!(r.stdout.trim(), "0", "{r:?}");

    // Prompt, skills and working tree arrive owned by the agent user.
    let r = sh(
        &bottle,
        "stat -c '%U %n' /home/node/.claude-bottle/prompt.md \
         /home/node/.claude/skills/review/SKILL.md /home/node/workspace/README.md \
         /home/node/workspace/.git/HEAD",
    )
    .await;
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("node ")).count(),
        4,
        "{r:?}"
    );
    let r = sh(&bottle, "id -un; cat /proc/1/status | grep CapEff").await;
    assert!(r.stdout.starts_with("node\n"), "{r:?}");
    assert!(
        r.stdout.contains("0000000000000000"),
        "no capabilities: {r:?}"
    );

    // Teardown leaves nothing of the bottle.
    bottle.close().await.unwrap();
    backend.teardown(&plan, &events).await.unwrap();
    assert!(
        objects_of(&engine, identity.as_str()).await.is_empty(),
        "left behind: {:?}",
        objects_of(&engine, identity.as_str()).await
    );
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn two_bottles_cannot_reach_each_other() {
    let engine = engine().await;
    let guard = Guard::new();
    let backend = backend(&engine, &guard);
    let events = EventLog::new();
    let secrets = Secrets::empty();
    let a_id = Identity::generate("alpha").unwrap();
    let b_id = Identity::generate("beta").unwrap();
    let a_plan = backend.resolve_plan(spec(&a_id), &host()).await.unwrap();
    let b_plan = backend.resolve_plan(spec(&b_id), &host()).await.unwrap();
    let a = backend
        .launch(&a_plan, &ctx(&a_id, &secrets, &events))
        .await
        .unwrap();
    let b = backend
        .launch(&b_plan, &ctx(&b_id, &secrets, &events))
        .await
        .unwrap();
    // B's agent and egress addresses, as the engine knows them.
    let mut targets = Vec::new();
    let b_egress = b_plan
        .topology()
        .sidecar(bottle_core::Role::Egress)
        .unwrap();
    for name in [b.name().to_owned(), b_egress.name.clone()] {
        let info = engine.inspect_container(&name).await.unwrap().unwrap();
        targets.extend(info.addresses.values().map(|ip| ip.to_string()));
    }
    assert!(targets.len() >= 3, "{targets:?}");
    let probe = targets
        .iter()
        .map(|ip| {
            format!(
                "python3 -c \"import socket; socket.create_connection(('{ip}', 9099), timeout=3)\" \
                 >/dev/null 2>&1 && echo reached {ip} || echo blocked {ip}"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let r = sh(&a, &probe).await;
    assert!(!r.stdout.contains("reached"), "{r:?}");
    assert_eq!(r.stdout.lines().count(), targets.len(), "{r:?}");
    backend.teardown(&a_plan, &events).await.unwrap();
    backend.teardown(&b_plan, &events).await.unwrap();
    assert!(objects_of(&engine, a_id.as_str()).await.is_empty());
    assert!(objects_of(&engine, b_id.as_str()).await.is_empty());
}

/// The child half of the SIGKILL test: launches a bottle, says so, and waits to be killed.
#[tokio::test]
#[ignore = "helper: run in a child process by cleanup_finds_what_a_killed_launcher_left"]
#[allow(clippy::print_stdout)] // stdout is how the child tells its parent it has launched
async fn sigkill_child() {
    let identity = Identity::parse(&std::env::var("BOTTLE_TEST_IDENTITY").unwrap()).unwrap();
    let guard_value = std::env::var("BOTTLE_TEST_GUARD").unwrap();
    let engine = engine().await;
    let options = DockerOptions {
        extra_labels: BTreeMap::from([(TEST_LABEL.to_owned(), guard_value)]),
        ..DockerOptions::default()
    };
    let backend = DockerBackend::new(engine, options, ImageSettings::from_env());
    let plan = backend
        .resolve_plan(spec(&identity), &host())
        .await
        .unwrap();
    let (secrets, events) = (Secrets::empty(), EventLog::new());
    backend
        .launch(&plan, &ctx(&identity, &secrets, &events))
        .await
        .unwrap();
    println!("LAUNCHED");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn cleanup_finds_what_a_killed_launcher_left() {
    use std::io::BufRead;
    let engine = engine().await;
    let guard = Guard::new();
    let identity = Identity::generate("killed").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "docker::sigkill_child",
            "--ignored",
            "--nocapture",
        ])
        .env("BOTTLE_TEST_IDENTITY", identity.as_str())
        .env("BOTTLE_TEST_GUARD", &guard.value)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let launched = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("LAUNCHED"))
    })
    .join()
    .unwrap();
    // SIGKILL: no handler runs, nothing is torn down.
    child.kill().unwrap();
    let _ = child.wait();
    assert!(launched, "the child launched a bottle");
    let left = objects_of(&engine, identity.as_str()).await;
    assert_eq!(
        left.len(),
        4,
        "agent, egress and two networks remain: {left:?}"
    );

    let backend = backend(&engine, &guard);
    let plan = backend.prepare_cleanup().await.unwrap();
    let found: Vec<String> = plan
        .summary()
        .items
        .into_iter()
        .filter(|i| i.identity.as_ref() == Some(&identity))
        .map(|i| i.name)
        .collect();
    assert_eq!(found.len(), 4, "{found:?}");
    // Only this test's bottle: the engine is shared, and other leftovers are not ours to
    // remove.
    let ours = |items: &[bottle_docker::cleanup::Leftover]| -> Vec<_> {
        items
            .iter()
            .filter(|l| l.identity.as_deref() == Some(identity.as_str()))
            .cloned()
            .collect()
    };
    let plan = bottle_docker::DockerCleanupPlan(bottle_docker::cleanup::CleanupPlan {
        containers: ours(&plan.0.containers),
        volumes: ours(&plan.0.volumes),
        networks: ours(&plan.0.networks),
    });
    backend.cleanup(&plan, &EventLog::new()).await.unwrap();
    assert!(objects_of(&engine, identity.as_str()).await.is_empty());
}

/// A plain container of the agent image on no network, labelled for the guard.
async fn scratch_container(engine: &Engine, guard: &Guard, suffix: &str) -> String {
    let name = format!("bottle-test-{suffix}-{}", guard.value);
    engine
        .create_container(&ContainerConfig {
            name: name.clone(),
            image: agent_image(),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            labels: guard.labels(),
            init: true,
            ..Default::default()
        })
        .await
        .unwrap();
    engine.start_container(&name).await.unwrap();
    name
}

/// Reads from `reader` into `seen` until `needle` appears (or 20 s pass).
async fn read_until(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    seen: &mut String,
    needle: &str,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, reader.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"))
            .unwrap();
        assert!(n > 0, "output ended before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn a_terminal_session_pumps_both_ways_follows_resizes_and_returns_the_exit_code() {
    use bottle_docker::api::{ExecSpec, Interactive};
    use tokio::io::AsyncWriteExt;
    let engine = engine().await;
    let guard = Guard::new();
    let name = scratch_container(&engine, &guard, "tty").await;
    let (mut keyboard, stdin) = tokio::io::duplex(1024);
    let (stdout, mut screen) = tokio::io::duplex(64 * 1024);
    let (resize, resizes) = tokio::sync::mpsc::channel(2);
    let spec = ExecSpec {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "[ -t 0 ] && echo tty-yes; stty size; read line; stty size; echo got:$line; exit 7"
                .into(),
        ],
        user: Some("node".into()),
        ..Default::default()
    };
    let io = Interactive {
        tty: true,
        stdin: Some(Box::pin(stdin)),
        stdout: Box::pin(stdout),
        stderr: Box::pin(tokio::io::sink()),
        size: Some((30, 100)),
        resize: Some(resizes),
    };
    let session = tokio::spawn({
        let engine = engine.clone();
        let name = name.clone();
        async move { engine.exec_interactive(&name, &spec, io).await }
    });
    let mut seen = String::new();
    read_until(&mut screen, &mut seen, "30 100").await;
    assert!(seen.contains("tty-yes"), "{seen:?}");
    resize.send((40, 120)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    keyboard.write_all(b"hello\r").await.unwrap();
    read_until(&mut screen, &mut seen, "got:hello").await;
    assert!(
        seen.contains("40 120"),
        "the resize reached the terminal: {seen:?}"
    );
    let code = session.await.unwrap().unwrap();
    assert_eq!(code, 7);
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn a_session_without_a_terminal_keeps_streams_apart_and_ends_stdin() {
    use bottle_docker::api::{ExecSpec, Interactive};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let engine = engine().await;
    let guard = Guard::new();
    let name = scratch_container(&engine, &guard, "pipe").await;
    let (mut keyboard, stdin) = tokio::io::duplex(1024);
    let (stdout, mut out) = tokio::io::duplex(64 * 1024);
    let (stderr, mut err) = tokio::io::duplex(64 * 1024);
    let spec = ExecSpec {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "cat; echo oops >&2; exit 3".into(),
        ],
        user: Some("node".into()),
        ..Default::default()
    };
    let io = Interactive {
        tty: false,
        stdin: Some(Box::pin(stdin)),
        stdout: Box::pin(stdout),
        stderr: Box::pin(stderr),
        size: None,
        resize: None,
    };
    keyboard.write_all(b"piped data\n").await.unwrap();
    drop(keyboard); // end of our stdin → end of theirs, or `cat` never returns
    let code = tokio::time::timeout(
        Duration::from_secs(30),
        engine.exec_interactive(&name, &spec, io),
    )
    .await
    .expect("stdin's end reached the command")
    .unwrap();
    assert_eq!(code, 3);
    let (mut o, mut e) = (String::new(), String::new());
    out.read_to_string(&mut o).await.unwrap();
    err.read_to_string(&mut e).await.unwrap();
    assert_eq!(o, "piped data\n");
    assert_eq!(e, "oops\n");
}
