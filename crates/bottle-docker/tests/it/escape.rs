//! The sandbox-escape suite: every way out we know of, tried from inside a real bottle, and the
//! same attempts in a plain container of the same image, to show that each would catch an
//! unprotected container. It ends with a table — attempt → what stopped it — that CI prints
//! (`.config/nextest.toml` shows this test's output even when it passes).
//!
//! "The outside" is never the real internet: it is a listener container (TCP, UDP, DNS) and an
//! HTTPS origin on an ordinary bridge network the test creates, plus listeners of the test
//! process on every address the host holds. One bottle serves every attempt (a second one is
//! the neighbour to reach); the attempts run in one script per container
//! (`escape/attempts.py`), which reports each attempt on its own line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bottle_core::{
    Bottle, BottleBackend, BottleFile, EventLog, FileOwner, Identity, Role, Secrets,
};
use bottle_docker::api::{Attachment, ContainerConfig, DockerApi, EnvVar, ExecSpec};
use bottle_docker::engine::Engine;
use bottle_docker::tarball::TarBuilder;
use bottle_manifest::{Route, RouteAuth};

use crate::docker::{
    Guard, HostListener, agent_image, backend, ctx, engine, host, host_addresses, inspect,
    is_link_local, launch_or_fail, objects_of, sh, spec, start_origin,
};
use crate::docker_git_gate::{AWS_KEY, UPSTREAM_HOST, entry, keygen, start_upstream, upstream_sh};

const ATTEMPTS_PY: &str = include_str!("escape/attempts.py");
const LISTENERS_PY: &str = include_str!("escape/listeners.py");
/// The credential the egress injects on the origin's route: it must never be in the bottle.
const TOKEN: &str = "escape-suite-token-7d3e0b";
const ORIGIN: &str = "origin.bottle.test";
const OUTSIDE_TCP: u16 = 8080;
const OUTSIDE_UDP: u16 = 5353;

/// What a plain `docker run` of the agent image (as root, on an ordinary bridge network the
/// test creates, the token in its environment, the token and the keys in files, DNS at the
/// outside's server) does with an attempt.
#[derive(Clone, Copy)]
enum Plain {
    /// It escapes there: the suite must see it escape, or the attempt proves nothing.
    Escapes,
    /// Docker's defaults stop it there too: the bottle's wall is the engine's own.
    HoldsToo,
    /// Not run there, and why.
    NotRun(&'static str),
}

struct Attempt {
    id: &'static str,
    category: &'static str,
    what: &'static str,
    /// The wall that stops it in a bottle.
    wall: &'static str,
    plain: Plain,
}

const NO_EGRESS: Plain = Plain::NotRun("no egress there: its direct dials are the network rows");
const NO_GATE: Plain = Plain::NotRun("no git gate there");

const fn attempt(
    id: &'static str,
    category: &'static str,
    what: &'static str,
    wall: &'static str,
    plain: Plain,
) -> Attempt {
    Attempt {
        id,
        category,
        what,
        wall,
        plain,
    }
}

const INTERNAL: &str = "internal network: no route out";

/// Every attempt, in the table's order. The ids are the functions of `attempts.py`.
const ATTEMPTS: &[Attempt] = &[
    attempt(
        "tcp-outside",
        "1 network",
        "TCP to a listener on an outside network",
        INTERNAL,
        Plain::Escapes,
    ),
    attempt(
        "udp-outside",
        "1 network",
        "UDP to a listener on an outside network",
        INTERNAL,
        Plain::Escapes,
    ),
    attempt(
        "tcp-host-every-address",
        "1 network",
        "TCP to every address the host holds (v4+v6 listeners)",
        "internal network; no host address on it (inhibit_ipv4)",
        Plain::Escapes,
    ),
    attempt(
        "udp-host-every-address",
        "1 network",
        "UDP to every address the host holds (v4+v6 listeners)",
        "internal network; no host address on it (inhibit_ipv4)",
        Plain::Escapes,
    ),
    attempt(
        "host-on-own-networks",
        "1 network",
        "TCP+UDP to the host on the bottle's networks and bridges",
        "no host address on the internal network; the egress's bridges are not the agent's",
        Plain::Escapes,
    ),
    attempt(
        "host-ipv6",
        "1 network",
        "IPv6: the host's link-local (%eth0) and global addresses",
        "IPv6 off on the internal network",
        Plain::NotRun("depends on the engine's IPv6 setting"),
    ),
    attempt(
        "cloud-metadata",
        "1 network",
        "TCP to 169.254.169.254:80",
        INTERNAL,
        Plain::NotRun("its route leads to the real outside"),
    ),
    attempt(
        "other-bottle",
        "1 network",
        "TCP+UDP to another bottle's agent (listeners) and egress",
        "each bottle on its own internal network",
        Plain::HoldsToo,
    ),
    attempt(
        "dns-external-name",
        "2 dns",
        "resolve an external name (example.com)",
        "resolver forwards only to the internal gateway, which nothing holds (runc; the egress under gVisor)",
        Plain::Escapes,
    ),
    attempt(
        "dns-exfil-resolver",
        "2 dns",
        "hex-encoded secret as a subdomain, through the resolver",
        "resolver forwards only to the internal gateway, which nothing holds (runc; the egress under gVisor)",
        Plain::Escapes,
    ),
    attempt(
        "dns-exfil-direct",
        "2 dns",
        "the same query straight to the outside's DNS server",
        INTERNAL,
        Plain::Escapes,
    ),
    attempt(
        "dns-via-egress",
        "2 dns",
        "the same query to the egress's address, port 53",
        "the egress serves no DNS",
        Plain::NotRun("no egress there"),
    ),
    attempt(
        "connect-unrouted",
        "3 egress",
        "CONNECT to a host without a route",
        "egress: 403 no route",
        NO_EGRESS,
    ),
    attempt(
        "connect-ip-literal",
        "3 egress",
        "CONNECT to an IP literal (the outside's address)",
        "egress: 403 no route",
        NO_EGRESS,
    ),
    attempt(
        "connect-other-port",
        "3 egress",
        "CONNECT to a routed host on port 8443",
        "egress: 403 port not allowed",
        NO_EGRESS,
    ),
    attempt(
        "sni-mismatch",
        "3 egress",
        "CONNECT routed host, TLS SNI of an unrouted one",
        "egress: SNI must equal the CONNECT host",
        NO_EGRESS,
    ),
    attempt(
        "host-mismatch",
        "3 egress",
        "tunnel to a routed host, Host: an unrouted one",
        "egress: Host must name the tunnel's host",
        NO_EGRESS,
    ),
    attempt(
        "authority-mismatch-h2",
        "3 egress",
        "HTTP/2 to a routed host, :authority an unrouted one",
        "egress: :authority must name the tunnel's host",
        NO_EGRESS,
    ),
    attempt(
        "absolute-form-unrouted",
        "3 egress",
        "GET http://unrouted/ in absolute form",
        "egress: 403 no route",
        NO_EGRESS,
    ),
    attempt(
        "plain-http-in-tunnel",
        "3 egress",
        "plain HTTP inside a CONNECT tunnel",
        "egress: no blind tunnel, non-TLS bytes close it",
        NO_EGRESS,
    ),
    attempt(
        "h2c-upgrade",
        "3 egress",
        "Upgrade: h2c to a routed host",
        "egress: only WebSocket upgrades",
        NO_EGRESS,
    ),
    attempt(
        "proxy-without-credential",
        "3 egress",
        "the proxy without its credential, or a wrong one",
        "egress: 407 proxy credential",
        NO_EGRESS,
    ),
    attempt(
        "git-push-https",
        "4 exfiltration",
        "git push over HTTPS to an allowed host",
        "egress: 403 git push (receive-pack)",
        NO_EGRESS,
    ),
    attempt(
        "gate-push-outside-refs",
        "5 git",
        "push to a ref outside PushRefs",
        "git gate: ref policy",
        NO_GATE,
    ),
    attempt(
        "gate-push-secret",
        "5 git",
        "push a commit holding an AWS key",
        "git gate: secret scan",
        NO_GATE,
    ),
    attempt(
        "gate-push-undeclared",
        "5 git",
        "push to an undeclared remote (via the gate, and direct SSH)",
        "git gate: declared entries only; no route for SSH",
        NO_GATE,
    ),
    attempt(
        "token-env",
        "6 credentials",
        "the injected token in the environment",
        "egress injects it on the wire only",
        Plain::Escapes,
    ),
    attempt(
        "token-proc-environ",
        "6 credentials",
        "the injected token in /proc/*/environ",
        "egress injects it on the wire only",
        Plain::Escapes,
    ),
    attempt(
        "token-files",
        "6 credentials",
        "the injected token in any file",
        "egress injects it on the wire only",
        Plain::Escapes,
    ),
    attempt(
        "token-from-egress",
        "6 credentials",
        "read the injected token from the egress (GET /routes)",
        "egress serializes token_ref names, never values",
        NO_EGRESS,
    ),
    attempt(
        "ca-private-key",
        "6 credentials",
        "the bottle CA's private key in any file, or any private key",
        "CA key only in the egress container",
        Plain::Escapes,
    ),
    attempt(
        "gate-ssh-key",
        "6 credentials",
        "the git gate's SSH key (files, environ, argv, ~/.ssh)",
        "the key lives in the gate only",
        Plain::Escapes,
    ),
    attempt(
        "docker-socket",
        "6 credentials",
        "an engine socket or DOCKER_HOST",
        "none mounted, none set",
        Plain::HoldsToo,
    ),
    attempt(
        "root",
        "7 privilege",
        "run as root",
        "runs as node (uid 1000)",
        Plain::Escapes,
    ),
    attempt(
        "no-new-privs",
        "7 privilege",
        "gain privileges (NoNewPrivs off)",
        "no-new-privileges",
        Plain::Escapes,
    ),
    attempt(
        "capabilities",
        "7 privilege",
        "hold NET_RAW/NET_ADMIN/SYS_ADMIN/SYS_PTRACE in any set",
        "cap_drop ALL",
        Plain::Escapes,
    ),
    attempt(
        "raw-socket",
        "7 privilege",
        "open a raw socket (NET_RAW)",
        "cap_drop ALL",
        Plain::Escapes,
    ),
    attempt(
        "net-admin",
        "7 privilege",
        "set an interface's MTU (NET_ADMIN)",
        "cap_drop ALL",
        Plain::HoldsToo,
    ),
    attempt(
        "mount",
        "7 privilege",
        "mount a filesystem (syscall and setuid mount)",
        "cap_drop ALL; no-new-privileges",
        Plain::HoldsToo,
    ),
    attempt(
        "user-namespace",
        "7 privilege",
        "unshare -Ur (a user namespace)",
        "seccomp default profile",
        Plain::HoldsToo,
    ),
    attempt(
        "setuid-binaries",
        "7 privilege",
        "read /etc/shadow through setuid passwd",
        "no-new-privileges",
        Plain::Escapes,
    ),
    attempt(
        "ptrace-others",
        "7 privilege",
        "ptrace a process of another user",
        "PID namespace: only the agent's processes",
        Plain::HoldsToo,
    ),
    attempt(
        "egress-config-write",
        "7 privilege",
        "write the egress's routes (PUT /routes) or the agent's trust files",
        "egress answers GET only; trust files root-owned",
        NO_EGRESS,
    ),
    attempt(
        "host-processes",
        "7 privilege",
        "see the host's processes",
        "PID namespace",
        Plain::HoldsToo,
    ),
];

/// What DLP will add (issue 15): listed, never run, never counted as a pass.
const NOT_YET: &[&str] = &[
    "a secret in the path, query, headers or body to an allowed host (raw and encoded)",
    "a secret split across chunks of a streamed body",
];

#[derive(Debug, Clone)]
struct Outcome {
    outcome: String,
    detail: String,
    ms: u64,
}

/// A UDP listener of the test on the host: answers every datagram, counts them.
struct HostUdpListener {
    port: u16,
    seen: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl HostUdpListener {
    fn bind(addr: &str) -> Self {
        let socket = std::net::UdpSocket::bind(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, peer)) = socket.recv_from(&mut buf) {
                        seen.fetch_add(1, Ordering::Relaxed);
                        let _ = socket.send_to(b"hello\n", peer);
                    }
                }
            }
        });
        HostUdpListener {
            port,
            seen,
            thread: Some(thread),
            stop,
        }
    }
}

impl Drop for HostUdpListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The outside's listeners: a container of the agent image on `network`, as root (port 53).
async fn start_outside(engine: &Engine, guard: &Guard, network: &str) -> String {
    let name = format!("bottle-test-outside-{}", guard.value);
    engine
        .create_container(&ContainerConfig {
            name: name.clone(),
            image: agent_image(),
            cmd: Some(vec![
                "python3".into(),
                "/tmp/listeners.py".into(),
                OUTSIDE_TCP.to_string(),
                OUTSIDE_UDP.to_string(),
            ]),
            user: Some("0".into()),
            labels: guard.labels(),
            network: Some(Attachment {
                network: network.to_owned(),
                aliases: vec!["outside.bottle.test".to_owned()],
            }),
            init: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tar = TarBuilder::new("outside");
    tar.file(
        "listeners.py",
        LISTENERS_PY.as_bytes(),
        0o644,
        FileOwner::ROOT,
    )
    .unwrap();
    engine
        .upload(&name, "/tmp", tar.finish().unwrap())
        .await
        .unwrap();
    engine.start_container(&name).await.unwrap();
    name
}

async fn exec_in(engine: &Engine, container: &str, user: Option<&str>, script: &str) -> String {
    let out = engine
        .exec(
            container,
            &ExecSpec {
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                user: user.map(str::to_owned),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        out.exit_code,
        0,
        "{script} in {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command that waits (up to 20 s) until the listeners of `listeners.py` answer on
/// loopback: TCP, UDP and, given its port, DNS. It fails if they do not.
fn listening(tcp: u16, udp: u16, dns: Option<u16>) -> String {
    let dns = dns.map_or_else(String::new, |port| format!(" {port}"));
    format!("python3 /tmp/listeners.py --check {tcp} {udp}{dns}")
}

/// The outcome of each attempt, by id, from the script's JSON lines.
fn outcomes(stdout: &str) -> BTreeMap<String, Outcome> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                Outcome {
                    outcome: v["outcome"].as_str().unwrap().to_owned(),
                    detail: v["detail"].as_str().unwrap().to_owned(),
                    ms: v["ms"].as_u64().unwrap(),
                },
            )
        })
        .collect()
}

fn halves(s: &str) -> [&str; 2] {
    let (a, b) = s.split_at(s.len() / 2);
    [a, b]
}

/// The IPv4 gateway of `network`, as the engine's IPAM records it.
fn gateway(network: &str) -> Option<String> {
    inspect(
        "network",
        network,
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    )
    .split_whitespace()
    .find(|g| !g.contains(':'))
    .map(str::to_owned)
}

/// The would-be gateway (first address) of `network`'s IPv4 subnet.
fn first_address(network: &str) -> String {
    let subnet: bottle_egress::Cidr = inspect(
        "network",
        network,
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    )
    .split_whitespace()
    .find(|s| !s.contains(':'))
    .unwrap()
    .parse()
    .unwrap();
    match subnet.network() {
        IpAddr::V4(v4) => std::net::Ipv4Addr::from(u32::from(v4) + 1).to_string(),
        other => panic!("IPv4 subnet expected: {other}"),
    }
}

fn table(
    bottle: &BTreeMap<String, Outcome>,
    plain: &BTreeMap<String, Outcome>,
    [setup, in_bottle, in_plain]: [Duration; 3],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nSandbox-escape suite: {} attempts from inside a bottle, every one stopped.\n\
         \"plain docker run\": the same attempts in the agent image run as root on an ordinary \
         bridge network, the token in its environment, the token and keys in files, its DNS at the outside's server.\n",
        ATTEMPTS.len()
    );
    let _ = writeln!(
        out,
        "| # | category | attempt | in the bottle | stopped by (observed) | plain docker run |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (n, a) in ATTEMPTS.iter().enumerate() {
        let b = &bottle[a.id];
        let p = match a.plain {
            Plain::NotRun(why) => format!("not run: {why}"),
            _ => {
                let p = &plain[a.id];
                format!("{} ({})", p.outcome, p.detail)
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({}) | {} |",
            n + 1,
            a.category,
            a.what,
            b.outcome,
            a.wall,
            b.detail,
            p
        );
    }
    // Where the suite's time goes, to keep it small.
    let mut slowest: Vec<(&String, &Outcome)> = bottle.iter().collect();
    slowest.sort_by_key(|(_, o)| std::cmp::Reverse(o.ms));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(id, o)| format!("{id} {:.1} s", o.ms as f64 / 1e3))
        .collect();
    let _ = writeln!(
        out,
        "\nTime: setup {:.1} s (the outside, the upstream, two bottles); the attempts, run at \
         once, {:.1} s in the bottle (slowest: {}) and {:.1} s in the plain container.",
        setup.as_secs_f64(),
        in_bottle.as_secs_f64(),
        slowest.join(", "),
        in_plain.as_secs_f64()
    );
    let _ = writeln!(out, "\nNot in the suite yet (DLP lands with issue 15):");
    for row in NOT_YET {
        let _ = writeln!(out, "- {row}");
    }
    out
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
#[allow(
    clippy::print_stdout,
    reason = "the table is the suite's report in the CI log"
)]
async fn escape_suite_every_attempt_fails_in_a_bottle_and_the_same_attempts_catch_a_plain_container()
 {
    let engine = engine().await;
    let guard = Guard::new();
    let started = std::time::Instant::now();

    // The outside: an HTTPS origin (the routed host) and the listeners, on an ordinary bridge
    // network; the git upstream on another.
    let (network, ca_pem) = start_origin(&engine, &guard, ORIGIN).await;
    let outside = start_outside(&engine, &guard, &network).await;
    let dir = tempfile::tempdir().unwrap();
    let user_key = dir.path().join("id_user");
    let user_pub = keygen(&user_key);
    let host_key = dir.path().join("host_key");
    let host_pub = keygen(&host_key);
    let (git_network, upstream) = start_upstream(
        &engine,
        &guard,
        &user_pub,
        &std::fs::read(&host_key).unwrap(),
    )
    .await;
    let ca_path = dir.path().join("test-ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();

    // The bottle under attack: a route to the origin with an injected credential, a git entry
    // through the gate, and the outside's networks joined by its sidecars.
    let identity = Identity::generate("escape").unwrap();
    let mut prepared = spec(&identity);
    let mut route = Route::host(ORIGIN);
    route.allow_private = true; // the origin sits on a private Docker network
    route.auth = Some(RouteAuth::Header {
        header: "x-test-token".parse().unwrap(),
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    route.trust = vec![ca_path];
    let mut app = entry(
        "app",
        &format!("ssh://git@{UPSTREAM_HOST}/srv/app.git"),
        &user_key,
        &host_pub,
    );
    app.push_refs = Some(vec!["refs/heads/agent/*".parse().unwrap()]);
    let bottle_def = &mut prepared.agent.bottle;
    bottle_def.egress.routes = vec![route];
    bottle_def.egress.networks = vec![network.clone(), git_network.clone()];
    bottle_def.git = vec![app];
    let backend = backend(&engine, &guard);
    prepared.capabilities = backend.capabilities();
    let plan = backend.resolve_plan(prepared, &host()).await.unwrap();
    let secrets = Secrets::empty().with_token("TEST_TOKEN", TOKEN);
    let events = EventLog::new();
    let ctx_a = ctx(&identity, &secrets, &events);

    // The neighbour: a second bottle, with TCP and UDP listeners in its agent. Both launch at
    // once.
    let other_id = Identity::generate("neighbour").unwrap();
    let other_plan = backend
        .resolve_plan(spec(&other_id), &host())
        .await
        .unwrap();
    let no_secrets = Secrets::empty();
    let ctx_b = ctx(&other_id, &no_secrets, &events);
    let (bottle, other) = tokio::join!(
        async {
            let bottle = launch_or_fail(&backend, &plan, &ctx_a, &events).await;
            backend.provision(&plan, &bottle, &ctx_a).await.unwrap();
            bottle
        },
        launch_or_fail(&backend, &other_plan, &ctx_b, &events),
    );
    other
        .write_files(&[BottleFile::file(
            "/tmp/listeners.py",
            LISTENERS_PY,
            0o644,
            FileOwner::AGENT,
        )])
        .await
        .unwrap();
    let r = sh(
        &other,
        &format!(
            "nohup python3 /tmp/listeners.py 7000 7001 7002 >/dev/null 2>&1 & {}",
            listening(7000, 7001, None)
        ),
    )
    .await;
    assert!(r.success(), "the neighbour's listeners answer: {r:?}");
    // The outside's listeners answer too (on its loopback, which its log tells apart), so a
    // silent one is a wall, not a listener still starting.
    exec_in(
        &engine,
        &outside,
        None,
        &listening(OUTSIDE_TCP, OUTSIDE_UDP, Some(53)),
    )
    .await;

    let setup = started.elapsed();

    // Listeners of the test on every address of the host, TCP and UDP, IPv4 and IPv6.
    let tcp = [
        HostListener::bind("0.0.0.0:0"),
        HostListener::bind("[::]:0"),
    ];
    let udp = [
        HostUdpListener::bind("0.0.0.0:0"),
        HostUdpListener::bind("[::]:0"),
    ];
    let seen_on_host = || -> usize {
        tcp.iter()
            .map(|l| l.seen.load(Ordering::Relaxed))
            .sum::<usize>()
            + udp
                .iter()
                .map(|l| l.seen.load(Ordering::Relaxed))
                .sum::<usize>()
    };

    // What the attempts aim at.
    let addresses: Vec<String> = host_addresses()
        .iter()
        .map(|(ip, _, _)| {
            if is_link_local(ip) {
                format!("{ip}%eth0")
            } else {
                ip.to_string()
            }
        })
        .collect();
    let address_on = |container: &str, network: &str| -> String {
        inspect(
            "container",
            container,
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        )
    };
    let outside_ip = address_on(&outside, &network);
    let upstream_ip = address_on(&upstream, &git_network);
    let egress = plan.topology().sidecar(Role::Egress).unwrap().name.clone();
    let internal = plan.topology().internal_network().name.clone();
    let egress_ip = address_on(&egress, &internal);
    let mut own_network_hosts = vec![first_address(&internal)];
    let egress_info = engine.inspect_container(&egress).await.unwrap().unwrap();
    own_network_hosts.extend(egress_info.addresses.keys().filter_map(|n| gateway(n)));
    own_network_hosts.sort();
    own_network_hosts.dedup();
    let mut other_targets = Vec::new();
    let other_egress = other_plan
        .topology()
        .sidecar(Role::Egress)
        .unwrap()
        .name
        .clone();
    for (name, ports) in [
        (other.name().to_owned(), vec![(7000, "tcp"), (7001, "udp")]),
        (other_egress, vec![(9099, "tcp")]),
    ] {
        let info = engine.inspect_container(&name).await.unwrap().unwrap();
        for ip in info.addresses.values() {
            for (port, kind) in &ports {
                other_targets.push(serde_json::json!([ip.to_string(), port, kind]));
            }
        }
    }
    let private = std::fs::read_to_string(&user_key).unwrap();
    let key_lines: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let key_body = key_lines[key_lines.len() / 2];
    // The bottle CA's key, from the egress (the test may look; the agent must not find it).
    let ca_key = {
        let out = std::process::Command::new("docker")
            .args([
                "cp",
                &format!("{egress}:{}", bottle_recipe::egress::CA_KEY),
                "-",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker cp the CA key: {out:?}");
        let mut archive = tar::Archive::new(out.stdout.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut key = String::new();
        std::io::Read::read_to_string(&mut entry, &mut key).unwrap();
        key
    };
    let ca_key_lines: Vec<&str> = ca_key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!ca_key_lines.is_empty(), "the CA key has a body");
    let ca_key_body = ca_key_lines[ca_key_lines.len() / 2];
    assert!(
        ca_key_body.len() >= 40,
        "a line that names the key: {ca_key_body:?}"
    );
    let config = |marker: &str, own: &[String], proxy: Option<serde_json::Value>| {
        serde_json::json!({
            "marker": marker,
            "proxy": proxy,
            "outside_ip": outside_ip,
            "outside_tcp": OUTSIDE_TCP,
            "outside_udp": OUTSIDE_UDP,
            "dns_ip": outside_ip,
            "egress_ip": egress_ip,
            "host_addresses": addresses,
            "host_tcp_ports": tcp.iter().map(|l| l.port).collect::<Vec<_>>(),
            "host_udp_ports": udp.iter().map(|l| l.port).collect::<Vec<_>>(),
            "own_network_hosts": own,
            "other_bottle": other_targets,
            "origin": ORIGIN,
            "git_upstream": UPSTREAM_HOST,
            "git_upstream_ip": upstream_ip,
            "token_halves": halves(TOKEN),
            "ssh_key_halves": halves(key_body),
            "aws_key_halves": halves(AWS_KEY),
            "ca_key_halves": halves(ca_key_body),
            "trust_files": [
                bottle_core::agent::CA_FILE,
                bottle_core::agent::CA_BUNDLE,
                bottle_core::agent::SYSTEM_CA_FILE,
                bottle_core::agent::GITCONFIG_FILE,
            ],
        })
        .to_string()
    };

    // In the bottle, as the agent: every attempt fails.
    let proxy_url = sh(&bottle, "printenv HTTPS_PROXY").await.stdout;
    let proxy_token = proxy_url
        .trim()
        .strip_prefix("http://bottle:")
        .and_then(|rest| rest.strip_suffix("@egress:9099"))
        .unwrap_or_else(|| panic!("the agent's proxy URL: {proxy_url}"))
        .to_owned();
    let bottle_marker = format!("bottle-{}", guard.value);
    let ids: Vec<&str> = ATTEMPTS.iter().map(|a| a.id).collect();
    bottle
        .write_files(&[
            BottleFile::file(
                "/tmp/escape/attempts.py",
                ATTEMPTS_PY,
                0o644,
                FileOwner::AGENT,
            ),
            BottleFile::file(
                "/tmp/escape/config.json",
                config(
                    &bottle_marker,
                    &own_network_hosts,
                    Some(serde_json::json!(["egress", 9099, "bottle", proxy_token])),
                ),
                0o644,
                FileOwner::AGENT,
            ),
        ])
        .await
        .unwrap();
    let bottle_started = std::time::Instant::now();
    let r = sh(
        &bottle,
        &format!(
            "python3 /tmp/escape/attempts.py /tmp/escape/config.json {}",
            ids.join(" ")
        ),
    )
    .await;
    assert!(r.success(), "{r:?}");
    let bottle_time = bottle_started.elapsed();
    let in_bottle = outcomes(&r.stdout);
    assert_eq!(
        in_bottle
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        ids.iter().copied().collect::<BTreeSet<_>>(),
        "every attempt reported: {r:?}"
    );
    // What the outside and the host saw of the bottle: nothing at all.
    // (Without the readiness checks, which come from the outside's own loopback.)
    let seen_from_bottle = exec_in(
        &engine,
        &outside,
        None,
        "grep -v '^[a-z]* 127.0.0.1 ' /tmp/seen.log || true",
    )
    .await;
    let host_hits_from_bottle = seen_on_host();
    let upstream_refs = upstream_sh(
        &engine,
        &upstream,
        "git --git-dir=/srv/app.git for-each-ref --format='%(refname)'",
    )
    .await;

    // The same attempts in a plain container: root, an ordinary bridge network, the token in
    // its environment and the keys in files, and DNS pointed at the outside's server (where a real resolver chain
    // would deliver the exfiltrating query).
    let plain_name = format!("bottle-test-plain-{}", guard.value);
    engine
        .create_container(&ContainerConfig {
            name: plain_name.clone(),
            image: agent_image(),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            user: Some("0".into()),
            env: vec![EnvVar::new("TEST_TOKEN", TOKEN)],
            labels: guard.labels(),
            network: Some(Attachment {
                network: network.clone(),
                aliases: Vec::new(),
            }),
            dns: vec![outside_ip.clone()],
            init: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let plain_marker = format!("plain-{}", guard.value);
    let plain_own = vec![gateway(&network).expect("the test network has a gateway")];
    let mut tar = TarBuilder::new("escape");
    tar.dir("escape", 0o755, FileOwner::ROOT).unwrap();
    tar.file(
        "escape/attempts.py",
        ATTEMPTS_PY.as_bytes(),
        0o644,
        FileOwner::ROOT,
    )
    .unwrap();
    tar.file(
        "escape/config.json",
        config(&plain_marker, &plain_own, None).as_bytes(),
        0o644,
        FileOwner::ROOT,
    )
    .unwrap();
    engine
        .upload(&plain_name, "/tmp", tar.finish().unwrap())
        .await
        .unwrap();
    // What a plain run is given by files: the token, the CA key and the SSH key, in root's home.
    let mut planted = TarBuilder::new("planted");
    for (file, contents) in [
        ("token", TOKEN),
        ("ca.key", ca_key.as_str()),
        ("id_ed25519", private.as_str()),
    ] {
        planted
            .file(file, contents.as_bytes(), 0o600, FileOwner::ROOT)
            .unwrap();
    }
    engine
        .upload(&plain_name, "/root", planted.finish().unwrap())
        .await
        .unwrap();
    engine.start_container(&plain_name).await.unwrap();
    let plain_ids: Vec<&str> = ATTEMPTS
        .iter()
        .filter(|a| !matches!(a.plain, Plain::NotRun(_)))
        .map(|a| a.id)
        .collect();
    let plain_started = std::time::Instant::now();
    let stdout = exec_in(
        &engine,
        &plain_name,
        None,
        &format!(
            "python3 /tmp/escape/attempts.py /tmp/escape/config.json {}",
            plain_ids.join(" ")
        ),
    )
    .await;
    let plain_time = plain_started.elapsed();
    let in_plain = outcomes(&stdout);
    let seen_from_plain = exec_in(&engine, &outside, None, "cat /tmp/seen.log").await;
    let host_hits_from_plain = seen_on_host() - host_hits_from_bottle;

    let report = table(&in_bottle, &in_plain, [setup, bottle_time, plain_time]);
    println!("{report}");

    // Every attempt failed in the bottle, and none broke.
    for a in ATTEMPTS {
        let o = &in_bottle[a.id];
        assert_eq!(
            o.outcome, "blocked",
            "{}: {} — {}\n{report}",
            a.id, a.what, o.detail
        );
    }
    // The listeners prove it from the other side: the outside and the host saw nothing, and
    // the refused pushes never arrived.
    assert_eq!(
        seen_from_bottle.trim(),
        "",
        "the outside saw the bottle\n{report}"
    );
    assert_eq!(
        host_hits_from_bottle, 0,
        "the host's listeners saw the bottle\n{report}"
    );
    assert!(
        !upstream_refs.contains("agent/leak") && !upstream_refs.contains("agent/x"),
        "{upstream_refs}"
    );
    assert_eq!(
        upstream_refs.lines().count(),
        1,
        "main only: {upstream_refs}"
    );
    // And the same attempts catch a plain container: the ones that escape there do, and the
    // listeners saw them.
    for a in ATTEMPTS {
        let expected = match a.plain {
            Plain::Escapes => "escaped",
            Plain::HoldsToo => "blocked",
            Plain::NotRun(_) => continue,
        };
        let o = &in_plain[a.id];
        assert_eq!(
            o.outcome, expected,
            "plain container, {}: {} — {}\n{report}",
            a.id, a.what, o.detail
        );
    }
    let hex_marker: String = plain_marker.bytes().map(|b| format!("{b:02x}")).collect();
    for kind in ["tcp ", "udp ", "dns "] {
        assert!(
            seen_from_plain.lines().any(|l| l.starts_with(kind)),
            "the outside saw the plain container's {kind}: {seen_from_plain}"
        );
    }
    assert!(
        seen_from_plain.contains(&format!("{hex_marker}.exfil.bottle.test")),
        "the exfiltrating query reached the outside's DNS server: {seen_from_plain}"
    );
    assert!(
        host_hits_from_plain > 0,
        "the host's listeners saw the plain container"
    );

    drop((tcp, udp));
    bottle.close().await.unwrap();
    backend.teardown(&plan, &events).await.unwrap();
    backend.teardown(&other_plan, &events).await.unwrap();
    assert!(objects_of(&engine, identity.as_str()).await.is_empty());
    assert!(objects_of(&engine, other_id.as_str()).await.is_empty());
}

/// The attempt ids of `attempts.py`'s `ATTEMPTS` table.
fn script_ids() -> BTreeSet<String> {
    let table = ATTEMPTS_PY
        .split_once("\nATTEMPTS = {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .expect("attempts.py has its ATTEMPTS table")
        .0;
    table
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split_once('"'))
        .map(|(id, _)| id.to_owned())
        .collect()
}

#[test]
fn every_attempt_of_the_table_is_a_function_of_the_script_and_the_docs_count_them() {
    let ids: BTreeSet<String> = ATTEMPTS.iter().map(|a| a.id.to_owned()).collect();
    assert_eq!(ids.len(), ATTEMPTS.len(), "duplicate ids");
    assert_eq!(ids, script_ids());
    // The README and the crate README say how many attempts there are.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for readme in [root.join("../../README.md"), root.join("README.md")] {
        let text = std::fs::read_to_string(&readme).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        let counted = format!("{}", ATTEMPTS.len());
        assert!(
            words
                .windows(3)
                .any(|w| w[0] == counted && w[1] == "escape" && w[2] == "attempts"),
            "{} says \"{counted} escape attempts\"",
            readme.display()
        );
    }
}
