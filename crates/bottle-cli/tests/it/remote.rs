//! A remote engine: the CLI in a container of its own, on a network of its own, talking to the
//! engine over TCP with TLS (a socat TLS front on the test network's gateway in front of the
//! local socket), where it cannot reach the bottle's networks. Any step that needed a
//! container's address, a host path on the engine's machine or a published port fails here.
//! Built as an ordinary test only with `CLAUDE_BOTTLE_DOCKER_TESTS=1`.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::TestContext;
use crate::docker::{Leftovers, docker, resources_of};

/// The engine settings of the test run that the CLI in the container needs too.
const PASSED_ON: &[&str] = &["CLAUDE_BOTTLE_RUNTIME", "CLAUDE_BOTTLE_EGRESS_IMAGE"];

/// What the test made besides the bottle's own objects (which [`Leftovers`] removes): its
/// network, the CLI's container and the TLS front. Removed by name, even when the test fails.
struct Remote {
    network: String,
    container: String,
    front: Option<Child>,
    certs: tempfile::TempDir,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(front) = &mut self.front {
            let _ = front.kill();
            let _ = front.wait();
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// PEM files: a CA, the front's certificate for `ip` and a client certificate, both from it.
fn mint(dir: &Path, ip: IpAddr) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "claude-bottle remote test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec![ip.to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["claude-bottle".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("server.pem", server.pem()),
        ("server-key.pem", server_key.serialize_pem()),
        ("client/ca.pem", ca.pem()),
        ("client/cert.pem", client.pem()),
        ("client/key.pem", client_key.serialize_pem()),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, pem).unwrap();
    }
}

/// The local engine's socket, which the front forwards to.
fn local_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        Ok(host) if !host.is_empty() => {
            panic!("the remote-engine test fronts a local socket, not DOCKER_HOST={host}")
        }
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

impl Remote {
    fn exec(&self, env: &[(&str, String)], args: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", "-u", "root"]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg(&self.container).args(args);
        cmd.output().expect("docker exec runs")
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn remote_engine_over_tls_from_a_container() {
    let agent = "cli-remote";
    let _leftovers = Leftovers::new(agent);
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut remote = Remote {
        network: format!("bottle-test-remote-net-{suffix}"),
        container: format!("bottle-test-remote-cli-{suffix}"),
        front: None,
        certs: tempfile::tempdir().unwrap(),
    };
    let label = format!("claude-bottle-test.remote={suffix}");
    docker(&["network", "create", "--label", &label, &remote.network]);
    let gateway: IpAddr = docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &remote.network,
    ])
    .trim()
    .parse()
    .expect("the test network has a gateway address");

    // The TLS front: on the test network's gateway only, client certificates required.
    mint(remote.certs.path(), gateway);
    let port = std::net::TcpListener::bind((gateway, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let certs = remote.certs.path();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind={gateway},reuseaddr,fork,cert={},key={},cafile={},verify=1",
        certs.join("server.pem").display(),
        certs.join("server-key.pem").display(),
        certs.join("ca.pem").display(),
    );
    let connect = format!("UNIX-CONNECT:{}", local_socket().display());
    remote.front = Some(
        Command::new("socat")
            .args([listen.as_str(), connect.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs (Debian's socat; .ci/docker-setup.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&SocketAddr::new(gateway, port), Duration::from_secs(1))
        .is_err()
    {
        assert!(Instant::now() < deadline, "the TLS front did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The CLI's container: Debian bookworm, as the host the binary was built on (not the agent
    // image, whose labels would make the container one of claude-bottle's own), on the test
    // network only.
    let image = std::env::var("CLAUDE_BOTTLE_BASE_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| bottle_docker::image::DEFAULT_BASE_IMAGE.to_owned());
    docker(&[
        "run",
        "-d",
        "--name",
        &remote.container,
        "--label",
        &label,
        "--network",
        &remote.network,
        "--entrypoint",
        "sleep",
        &image,
        "infinity",
    ]);
    // What the CLI reads, copied in through the archive API: the binary, the client's
    // certificates, a claude-bottle home with the agent; the build CA directories as on this
    // host, so that the CLI computes the same agent image.
    let ctx = TestContext::new();
    ctx.agent(agent, "---\nbottle: default\n---\nA test agent.\n");
    let inside = |path: &str| format!("{}:{path}", remote.container);
    docker(&[
        "cp",
        env!("CARGO_BIN_EXE_claude-bottle"),
        &inside("/usr/local/bin/claude-bottle"),
    ]);
    docker(&[
        "cp",
        certs.join("client").to_str().unwrap(),
        &inside("/tmp/certs"),
    ]);
    docker(&[
        "cp",
        ctx.home().to_str().unwrap(),
        &inside("/tmp/bottle-home"),
    ]);
    let clear = bottle_docker::image::DEFAULT_CA_DIRS.join(" ");
    let out = remote.exec(
        &[],
        &["sh", "-c", &format!("rm -rf {clear}; mkdir -p /tmp/home")],
    );
    assert!(out.status.success(), "{}", text(&out));
    for dir in bottle_docker::image::DEFAULT_CA_DIRS {
        if Path::new(dir).is_dir() {
            docker(&["cp", dir, &inside(dir)]);
        }
    }

    let docker_host = format!("tcp://{gateway}:{port}");
    let mut env = vec![
        ("DOCKER_HOST", docker_host.clone()),
        ("DOCKER_TLS_VERIFY", "1".to_owned()),
        ("DOCKER_CERT_PATH", "/tmp/certs".to_owned()),
        ("CLAUDE_BOTTLE_HOME", "/tmp/bottle-home".to_owned()),
        ("CLAUDE_BOTTLE_BACKEND", "docker".to_owned()),
        ("HOME", "/tmp/home".to_owned()),
        ("NO_COLOR", "1".to_owned()),
    ];
    for name in PASSED_ON {
        if let Ok(value) = std::env::var(name) {
            env.push((name, value));
        }
    }
    let cli = |args: &[&str]| {
        let mut all = vec!["claude-bottle"];
        all.extend_from_slice(args);
        remote.exec(&env, &all)
    };

    // A bottle starts, runs a command as the agent and is torn down, all through the API.
    let out = cli(&["start", agent, "--yes", "--exec", "id -un"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "node\n",
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("engine   {docker_host} (TLS, DOCKER_HOST)")),
        "the preflight names the engine: {stderr}"
    );
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );

    // A running bottle: `list active` sees it over TLS, and the CLI's container cannot reach
    // its egress at any of its addresses.
    let out = remote.exec(
        &env,
        &[
            "sh",
            "-c",
            &format!("claude-bottle start {agent} --yes --exec 'sleep 600' >/dev/null 2>&1 & echo $! > /tmp/start.pid"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(180);
    let filter = format!("label=claude-bottle.agent={agent}");
    // The agent starts alongside its sidecars, so "running" can be listed a moment before
    // the egress shows as running too: wait for both.
    let egress = loop {
        let out = cli(&["list", "active"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let running = docker(&["ps", "--filter", &filter, "--format", "{{.Names}}"]);
        let egress = running
            .lines()
            .find(|n| n.contains("egress"))
            .map(str::to_owned);
        if listed.contains(agent)
            && listed.contains("running")
            && let Some(egress) = egress
        {
            break egress;
        }
        assert!(
            Instant::now() < deadline,
            "never listed as running with its egress: {listed}; running: {running}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let networks = docker(&[
        "inspect",
        "-f",
        "{{range $name, $n := .NetworkSettings.Networks}}{{$name}}={{$n.IPAddress}} {{end}}",
        &egress,
    ]);
    // The bottle's internal network has no address on the host (inhibit_ipv4): the host routes
    // nothing to it, so a dial from here would leave the machine by its default route — never
    // address that. The agent's side of that wall is the Docker suite's
    // `nothing_on_the_host_answers_the_agent_not_even_a_listener_on_every_address`.
    let addresses: Vec<&str> = networks
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter(|(network, _)| {
            docker(&[
                "network",
                "inspect",
                "-f",
                "{{index .Options \"com.docker.network.bridge.inhibit_ipv4\"}}",
                network,
            ])
            .trim()
                != "true"
        })
        .map(|(_, address)| address)
        .collect();
    assert!(
        !addresses.is_empty(),
        "the egress has an address the host routes: {networks}"
    );
    // The probe itself works: the container reaches the TLS front the same way.
    let out = remote.exec(
        &[],
        &[
            "timeout",
            "3",
            "bash",
            "-c",
            &format!("echo > /dev/tcp/{gateway}/{port}"),
        ],
    );
    assert!(
        out.status.success(),
        "the probe reaches the front: {}",
        text(&out)
    );
    for address in &addresses {
        let out = remote.exec(
            &[],
            &[
                "timeout",
                "3",
                "bash",
                "-c",
                &format!("echo > /dev/tcp/{address}/9099"),
            ],
        );
        assert!(
            !out.status.success(),
            "the CLI's container reached the egress at {address}: {}",
            text(&out)
        );
    }

    // The launcher killed: `cleanup` over TLS finds and removes what it left.
    let out = remote.exec(&[], &["sh", "-c", "kill -9 $(cat /tmp/start.pid)"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !resources_of(agent).is_empty(),
        "the killed launch left its bottle"
    );
    let out = cli(&["cleanup", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !resources_of(agent).is_empty() {
        assert!(
            Instant::now() < deadline,
            "cleanup left: {:?}\n{}",
            resources_of(agent),
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
