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
    Bottle, BottleBackend, BottleCleanupPlan, BottlePlan, EventLog, HostContext, Identity,
    LaunchContext, PreparedSpec, Secrets, SkillSource,
};
use bottle_docker::api::{Attachment, ContainerConfig, DockerApi, ExecSpec, Filter, NetworkSpec};
use bottle_docker::engine::Engine;
use bottle_docker::image::{AgentImageRecipe, ImageSettings};
use bottle_docker::names::label;
use bottle_docker::plan::{DockerOptions, Runtime};
use bottle_docker::runtime::{self, ProbeImage};
use bottle_docker::tarball::TarBuilder;
use bottle_docker::{DockerBackend, DockerBottle, DockerPlan};
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

/// Launches `plan`'s bottle; if the launch fails, tears down what it made and fails the test
/// with the error and its cause.
pub(crate) async fn launch_or_fail(
    backend: &DockerBackend<Engine>,
    plan: &DockerPlan,
    ctx: &LaunchContext<'_>,
    events: &EventLog,
) -> DockerBottle<Engine> {
    match backend.launch(plan, ctx).await {
        Ok(bottle) => bottle,
        Err(e) => {
            let _ = backend.teardown(plan, events).await;
            panic!("launch failed: {e} ({:?})", std::error::Error::source(&e));
        }
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
    let choice = runtime::detect(&engine, Some(&probe_image), &labels, None, None).await;
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
pub(crate) async fn start_origin(engine: &Engine, guard: &Guard, alias: &str) -> (String, String) {
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
        .create_network(&NetworkSpec::bridge(network.clone(), labels.clone()))
        .await
        .unwrap();
    let name = format!("bottle-test-origin-{}", guard.value);
    let script = r#"
import http.server, ssl, json, os
class H(http.server.BaseHTTPRequestHandler):
    # The TLS handshake runs in the connection's own thread: done in accept (the default), one
    # slow or idle client would hold up every other connection.
    def setup(self):
        self.request.do_handshake()
        super().setup()
    def do_GET(self):
        path = self.path.split('?')[0]
        if path.startswith('/echo'):
            body = json.dumps(dict(self.headers)).encode()
            self.send_response(200)
        elif path.startswith('/git/') and '..' not in path and os.path.isfile('/srv' + path):
            body = open('/srv' + path, 'rb').read()
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
s.socket = c.wrap_socket(s.socket, server_side=True, do_handshake_on_connect=False)
s.serve_forever()
"#;
    engine
        .create_container(&ContainerConfig {
            name: name.clone(),
            image: agent_image(),
            // A repository served over git's dumb HTTP, for clones through the egress.
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                "set -e; git init -q /tmp/w; cd /tmp/w; echo hi > f; git add f; \
                 git -c user.email=t@example.com -c user.name=t commit -qm init; \
                 mkdir -p /srv/git; git clone -q --bare /tmp/w /srv/git/app.git; \
                 git -C /srv/git/app.git update-server-info; exec python3 -c \"$0\""
                    .into(),
                script.into(),
            ]),
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
    // The credentials a CI checkout or a hand-made remote leaves in the tree's git config.
    let git_config = "[core]\n\tbare = false\n\
        [remote \"origin\"]\n\turl = https://x-access-token:ghs_cwdsecret1234@github.com/me/app.git\n\
        [http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic Y3dkc2VjcmV0\n";
    std::fs::write(tree.join(".git/config"), git_config).unwrap();

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
    let bottle = launch_or_fail(&backend, &plan, &ctx, &events).await;
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
    // OpenSSL's CApath lookup finds the CA by its subject hash, not only through the bundle.
    let r = sh(
        &bottle,
        "openssl verify -no-CAfile -CApath /etc/ssl/certs /etc/claude-bottle/ca.pem 2>&1",
    )
    .await;
    assert_eq!(r.stdout.trim(), "/etc/claude-bottle/ca.pem: OK", "{r:?}");
    let node = format!(
        "const http=require('http'),tls=require('tls');\
         const u=new URL(process.env.HTTPS_PROXY);\
         http.request({{host:'egress',port:9099,method:'CONNECT',path:'{alias}:443',\
         headers:{{'proxy-authorization':'Basic '+Buffer.from(u.username+':'+u.password).toString('base64')}}}})\
         .on('connect',(res,sock)=>{{const t=tls.connect({{socket:sock,servername:'{alias}'}},()=>\
         {{console.log('authorized',t.authorized);t.end();process.exit(0)}});\
         t.on('error',e=>{{console.log('tls error',e.message);process.exit(1)}})}}).end()"
    );
    let r = sh(&bottle, &format!("node -e \"{node}\"")).await;
    assert!(r.stdout.contains("authorized true"), "{r:?}");

    // The egress admits only the bottle's proxy credential: without it, or with another
    // token, 407 (CONNECT and plain requests alike); git clones through it, answering the 407
    // with the credential of its proxy URL.
    let r = sh(
        &bottle,
        &format!(
            "curl -s -o /dev/null -w '%{{http_connect}}\\n' -x http://egress:9099 https://{alias}/echo; \
             curl -s -o /dev/null -w '%{{http_connect}}\\n' -x http://bottle:wrong@egress:9099 https://{alias}/echo; \
             curl -s -o /dev/null -w '%{{http_code}}\\n' -x http://egress:9099 http://{alias}/echo"
        ),
    )
    .await;
    assert_eq!(r.stdout, "407\n407\n407\n", "{r:?}");
    let r = sh(
        &bottle,
        &format!("git clone -q https://{alias}/git/app.git /tmp/app 2>&1 && cat /tmp/app/f"),
    )
    .await;
    assert_eq!(r.stdout, "hi\n", "git clones through the egress: {r:?}");
    // The proxy token is the agent's own, in its proxy variables, and nowhere in the plan.
    let r = sh(&bottle, "printenv HTTPS_PROXY http_proxy").await;
    let urls: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(urls.len(), 2, "{r:?}");
    assert_eq!(urls[0], urls[1]);
    let token = urls[0]
        .strip_prefix("http://bottle:")
        .and_then(|rest| rest.strip_suffix("@egress:9099"))
        .unwrap_or_else(|| panic!("proxy URL with the credential: {r:?}"));
    assert_eq!(token.len(), 64, "{r:?}");
    let shown = format!(
        "{plan:?} {} {:?}",
        serde_json::to_string(plan.topology()).unwrap(),
        plan.summary()
    );
    assert!(!shown.contains(token), "the plan shows the proxy token");

    // From the host, no address of the egress serves a CONNECT while the bottle runs: on the
    // internal network the host has no route, on the upstream bridge the egress closes on a
    // client that is not its bottle's (and would answer 407 without the credential).
    let egress_name = plan
        .topology()
        .sidecar(bottle_core::Role::Egress)
        .unwrap()
        .name
        .clone();
    let egress_info = engine
        .inspect_container(&egress_name)
        .await
        .unwrap()
        .unwrap();
    assert!(egress_info.addresses.len() >= 2, "{egress_info:?}");
    for ip in egress_info.addresses.values() {
        let outcome = host_connect(std::net::SocketAddr::new(*ip, 9099), alias);
        assert!(
            !outcome.starts_with("HTTP/1.1 200") && !outcome.starts_with("HTTP/1.0 200"),
            "the host borrowed the egress at {ip}: {outcome}"
        );
    }

    // The working tree's git config arrives without its credentials; the host's is unchanged.
    let r = sh(&bottle, "cat /home/node/workspace/.git/config").await;
    assert!(r.success(), "{r:?}");
    assert!(!r.stdout.contains("ghs_cwdsecret1234"), "{r:?}");
    assert!(!r.stdout.contains("Y3dkc2VjcmV0"), "{r:?}");
    assert!(
        r.stdout.contains("url = https://github.com/me/app.git"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(plan.prepared().user_cwd.join(".git/config")).unwrap(),
        git_config
    );

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

/// A listener of the test on the host: answers `hello` to every connection until dropped.
pub(crate) struct HostListener {
    pub(crate) port: u16,
    /// How many connections it has accepted.
    pub(crate) seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostListener {
    /// Listens on `addr` (port 0: a free one).
    pub(crate) fn bind(addr: &str) -> Self {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.write_all(b"hello\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostListener {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Every address the host holds, on every interface (docker0 and each bridge included), IPv4
/// and IPv6, with the interface for link-local ones: `(address, interface, interface index)`.
/// Tentative addresses (IPv6 duplicate detection not done, so unusable even by the host) are
/// listed too; [`tentative`] tells them.
pub(crate) fn host_addresses() -> Vec<(std::net::IpAddr, String, u32)> {
    let out = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    assert!(out.status.success(), "ip -o addr: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            // `7: br-1a2b    inet 172.18.0.1/16 brd ...`
            let mut fields = line.split_whitespace();
            let index: u32 = fields.next()?.trim_end_matches(':').parse().ok()?;
            let interface = fields.next()?.split('@').next()?.to_owned();
            let _family = fields.next()?;
            let ip = fields.next()?.split('/').next()?.parse().ok()?;
            Some((ip, interface, index))
        })
        .collect()
}

/// The host's addresses that are still tentative, by `ip -o addr`.
pub(crate) fn tentative() -> Vec<std::net::IpAddr> {
    let out = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains(" tentative"))
        .filter_map(|line| {
            line.split_whitespace()
                .nth(3)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

pub(crate) fn is_link_local(ip: &std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// `docker inspect`'s answer to `format` for `object`.
pub(crate) fn inspect(kind: &str, object: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args([kind, "inspect", "-f", format, object])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {kind} inspect {object}: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn nothing_on_the_host_answers_the_agent_not_even_a_listener_on_every_address() {
    let engine = engine().await;
    let guard = Guard::new();
    let backend = backend(&engine, &guard);
    let events = EventLog::new();
    let secrets = Secrets::empty();
    let identity = Identity::generate("walls").unwrap();
    let plan = backend
        .resolve_plan(spec(&identity), &host())
        .await
        .unwrap();
    let bottle = launch_or_fail(&backend, &plan, &ctx(&identity, &secrets, &events), &events).await;
    // Listeners on every address of the host: IPv4 and IPv6 (`[::]` takes both here unless
    // the host sets bindv6only), each on a free port.
    let listeners = [
        HostListener::bind("0.0.0.0:0"),
        HostListener::bind("[::]:0"),
    ];
    // The addresses, taken now that the bottle's bridges exist.
    let addresses = host_addresses();
    assert!(
        addresses.iter().any(|(_, i, _)| i == "docker0") || addresses.len() > 2,
        "{addresses:?}"
    );
    // Every listener answers the host itself on every address: a refusal from inside the bottle
    // is the wall, not a dead listener. (A tentative address answers no one, the host
    // included; it is still dialled from inside below.)
    let tentative = tentative();
    for (ip, interface, index) in &addresses {
        if tentative.contains(ip) {
            continue;
        }
        for (index_of_listener, listener) in listeners.iter().enumerate() {
            // The first listens on IPv4 only; the second takes IPv4 too unless the host sets
            // bindv6only.
            let v6only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only")
                .is_ok_and(|v| v.trim() == "1");
            if (ip.is_ipv6() && index_of_listener == 0)
                || (ip.is_ipv4() && index_of_listener == 1 && v6only)
            {
                continue;
            }
            let addr = match ip {
                std::net::IpAddr::V6(v6) if is_link_local(ip) => std::net::SocketAddr::V6(
                    std::net::SocketAddrV6::new(*v6, listener.port, 0, *index),
                ),
                _ => std::net::SocketAddr::new(*ip, listener.port),
            };
            let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                .unwrap_or_else(|e| {
                    panic!("the host reaches its listener at {addr} ({interface}): {e}")
                });
            let mut hello = String::new();
            std::io::Read::read_to_string(&mut stream, &mut hello).unwrap();
            assert_eq!(hello, "hello\n", "{addr}");
        }
    }
    // The internal network: the host holds no address on it, IPv6 off.
    let network = plan.topology().internal_network().name.clone();
    let subnet = inspect(
        "network",
        &network,
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    );
    let subnet: bottle_egress::Cidr = subnet
        .split_whitespace()
        .find(|s| !s.contains(':'))
        .unwrap()
        .parse()
        .unwrap();
    let would_be_gateway = match subnet.network() {
        std::net::IpAddr::V4(v4) => std::net::Ipv4Addr::from(u32::from(v4) + 1),
        other => panic!("IPv4 subnet expected: {other}"),
    };
    // From inside: the would-be gateway and every address of the host, on every listener's
    // port, link-local ones through the agent's own interface. All fail.
    let mut targets: Vec<String> = vec![would_be_gateway.to_string()];
    targets.extend(addresses.iter().map(|(ip, _, _)| {
        if is_link_local(ip) {
            format!("{ip}%eth0")
        } else {
            ip.to_string()
        }
    }));
    let ports: Vec<String> = listeners.iter().map(|l| l.port.to_string()).collect();
    let script = format!(
        "import socket, threading\n\
         targets = {targets:?}\n\
         ports = [{ports}]\n\
         out = []\n\
         def dial(host, port):\n\
         \x20   try:\n\
         \x20       s = socket.create_connection((host, port), timeout=4)\n\
         \x20       out.append('reached %s %d %r' % (host, port, s.recv(16)))\n\
         \x20   except OSError as e:\n\
         \x20       out.append('blocked %s %d %s' % (host, port, e))\n\
         threads = [threading.Thread(target=dial, args=(h, p)) for h in targets for p in ports]\n\
         [t.start() for t in threads]\n\
         [t.join() for t in threads]\n\
         print('\\n'.join(sorted(out)))\n",
        ports = ports.join(", ")
    );
    bottle
        .write_files(&[bottle_core::BottleFile::file(
            "/tmp/dial.py",
            script,
            0o644,
            bottle_core::FileOwner::AGENT,
        )])
        .await
        .unwrap();
    let r = sh(&bottle, "python3 /tmp/dial.py").await;
    assert!(r.success(), "{r:?}");
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("blocked "))
            .count(),
        targets.len() * listeners.len(),
        "every dial fails: {r:?}"
    );
    assert!(!r.stdout.contains("reached"), "{r:?}");
    assert!(
        !addresses
            .iter()
            .any(|(ip, _, _)| *ip == std::net::IpAddr::V4(would_be_gateway)),
        "the host holds the internal network's gateway {would_be_gateway}: {addresses:?}"
    );
    assert_eq!(
        inspect(
            "network",
            &network,
            "{{.EnableIPv6}} {{index .Options \"com.docker.network.bridge.inhibit_ipv4\"}} {{.Internal}}"
        ),
        "false true true"
    );
    // The link to the egress is all the agent has: it reaches it (403 for a host no route
    // allows, with the bottle's proxy credential from its environment).
    let r = sh(
        &bottle,
        "curl -s -o /dev/null -w '%{http_connect}' https://denied.example/",
    )
    .await;
    assert_eq!(r.stdout, "403", "{r:?}");
    drop(listeners);
    backend.teardown(&plan, &events).await.unwrap();
    assert!(objects_of(&engine, identity.as_str()).await.is_empty());
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn a_bottle_runs_with_a_cpu_limit_rotated_logs_and_none_of_the_hosts_dns_settings() {
    let engine = engine().await;
    let guard = Guard::new();
    let backend = backend(&engine, &guard);
    let events = EventLog::new();
    let secrets = Secrets::empty();
    let identity = Identity::generate("bounds").unwrap();
    let plan = backend
        .resolve_plan(spec(&identity), &host())
        .await
        .unwrap();
    let bottle = launch_or_fail(&backend, &plan, &ctx(&identity, &secrets, &events), &events).await;
    let egress = plan
        .topology()
        .sidecar(bottle_core::Role::Egress)
        .unwrap()
        .name
        .clone();
    let format = "{{.HostConfig.NanoCpus}} {{.HostConfig.LogConfig.Type}} \
                  {{index .HostConfig.LogConfig.Config \"max-size\"}} \
                  {{index .HostConfig.LogConfig.Config \"max-file\"}}";
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
    let agent_nano = 2_000_000_000.min(cpus * 1_000_000_000);
    assert_eq!(
        inspect("container", bottle.name(), format),
        format!("{agent_nano} json-file 10485760 3")
    );
    assert_eq!(
        inspect("container", &egress, format),
        "1000000000 json-file 10485760 3"
    );
    // The resolver the agent sees: the engine's own, no search domain and no option of the
    // host's resolv.conf.
    let host_search: Vec<String> = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("search "))
        .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let r = sh(&bottle, "cat /etc/resolv.conf").await;
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    // (`search .` is how the engine is told "no search domain"; it writes no search line.)
    assert_eq!(lines, ["nameserver 127.0.0.11", "options ndots:0"], "{r:?}");
    for domain in &host_search {
        assert!(!r.stdout.contains(domain.as_str()), "{domain}: {r:?}");
    }
    backend.teardown(&plan, &events).await.unwrap();
    assert!(objects_of(&engine, identity.as_str()).await.is_empty());
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn cleanup_never_considers_a_container_it_did_not_create() {
    let engine = engine().await;
    let guard = Guard::new();
    // Someone's own container from the agent image, named like a bottle's: it inherits every
    // label of the image (older images carried the managed label) but is no bottle's.
    let stranger = format!("claude-bottle-stranger-{}", guard.value);
    engine
        .create_container(&ContainerConfig {
            name: stranger.clone(),
            image: agent_image(),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            labels: guard.labels(),
            ..Default::default()
        })
        .await
        .unwrap();
    let backend = backend(&engine, &guard);
    let plan = backend.prepare_cleanup().await.unwrap();
    assert!(
        !plan.0.items().any(|l| l.name == stranger),
        "cleanup would remove a stranger's container: {:?}",
        plan.0
    );
    // Every object the plan names carries a bottle's identity and role.
    for leftover in plan.0.items() {
        assert!(leftover.identity.is_some(), "{leftover:?}");
    }
    assert!(engine.inspect_container(&stranger).await.unwrap().is_some());
}

/// What a CONNECT from the host to `addr` gets: the answer's first line, or why there is none.
fn host_connect(addr: std::net::SocketAddr, host: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return format!("no connection: {e}"),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return format!("write failed: {e}");
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) if answer.is_empty() => "closed unanswered".to_owned(),
        Ok(_) => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(e) if !answer.is_empty() => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .map_or_else(|| format!("read failed: {e}"), str::to_owned),
        Err(e) => format!("read failed: {e}"),
    }
}
