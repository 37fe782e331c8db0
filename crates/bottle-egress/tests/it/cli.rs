//! The `bottle-egress` binary: `check`, `mint-ca`, and `run` with SIGHUP reload and SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bottle-egress");

fn egress(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("BOTTLE_EGRESS_CONFIG")
        .env_remove("BOTTLE_EGRESS_THREADS")
        .output()
        .unwrap()
}

#[test]
fn run_help_teaches_its_options() {
    let out = egress(&["run", "--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!("run_help", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn run_refuses_zero_threads_before_reading_anything() {
    let out = egress(&["run", "--config", "/nonexistent.yaml", "--threads", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("invalid value '0' for '--threads <THREADS>'"),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_problem_at_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.yaml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:9099\n\
         routes:\n\
         \x20 - host: api.example.com\n\
         \x20   auth: { scheme: Bearer, token_ref: BOTTLE_EGRESS_TEST_UNSET }\n\
         \x20 - host: https://bad.example.com/\n\
         \x20   path_allowlist: [v1]\n",
    )
    .unwrap();
    let out = egress(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let shown = stderr.replace(&dir.path().display().to_string(), "[dir]");
    insta::assert_snapshot!("check_route_errors", shown);

    std::fs::write(
        &path,
        "routes:\n  - host: a.example.com\n    metods: [GET]\n",
    )
    .unwrap();
    let out = egress(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let shown = stderr.replace(&dir.path().display().to_string(), "[dir]");
    insta::assert_snapshot!("check_unknown_key", shown);
}

#[test]
fn check_points_at_a_bad_client_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.yaml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = egress(&["check", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success());
        String::from_utf8(out.stderr)
            .unwrap()
            .replace(&dir.path().display().to_string(), "[dir]")
    };
    insta::assert_snapshot!(
        "check_bad_client_network",
        check("clients:\n  - 172.18.0.0/16\n  - 172.18.0.1/16\nroutes: []\n")
    );
    insta::assert_snapshot!(
        "check_no_client_network",
        check("routes: []\nclients: []\n")
    );
}

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = egress(&["mint-ca", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let path = dir.path().join("egress.yaml");
    std::fs::write(
        &path,
        "ca: {cert: ca.crt, key: ca.key}\nroutes:\n  - host: api.example.com\n",
    )
    .unwrap();
    let out = egress(&["check", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn mint_ca_writes_a_strict_ca_with_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = egress(&["mint-ca", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let key_mode = std::fs::metadata(dir.path().join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let cert = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let key = std::fs::read_to_string(dir.path().join("ca.key")).unwrap();
    let ca = bottle_egress::CertificateAuthority::from_pem(&cert, &key).unwrap();

    // The CA has the extensions strict verifiers insist on.
    let (_, x509) = x509_parser::parse_x509_certificate(ca.cert_der().as_ref()).unwrap();
    let bc = x509.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = x509.key_usage().unwrap().unwrap();
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    let ext_oids: Vec<String> = x509
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    assert!(
        ext_oids.contains(&"2.5.29.14".to_owned()),
        "SKI: {ext_oids:?}"
    );

    // Leaves: SAN + CN, AKI, serverAuth.
    let leaf = ca.issue_leaf("api.example.com").unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(leaf.chain[0].as_ref()).unwrap();
    let ext_oids: Vec<String> = x509
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    assert!(
        ext_oids.contains(&"2.5.29.35".to_owned()),
        "AKI: {ext_oids:?}"
    );
    let cn = x509
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, "api.example.com");
    let san = x509.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names.len(), 1);
    let validity = x509.validity().time_to_expiration().unwrap();
    assert!(validity.whole_hours() <= 24, "leaves are short-lived");

    // Refuses to overwrite an existing key.
    let out = egress(&["mint-ca", "--out", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
}

fn wait_for_health(addr: &str) -> bool {
    for _ in 0..100 {
        let ok = std::net::TcpStream::connect(addr).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: _egress.local\r\nConnection: close\r\n\r\n")
                .is_ok()
                && {
                    let mut out = String::new();
                    s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200")
                }
        });
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn write_config(path: &Path, port: u16, routes: &str) {
    std::fs::write(
        path,
        format!("listen: 127.0.0.1:{port}\nca: {{cert: ca.crt, key: ca.key}}\nlog: full\nroutes:\n{routes}"),
    )
    .unwrap();
}

/// A folder with a fresh CA (`ca.crt`, `ca.key`) and a free loopback port.
fn ca_dir_and_port() -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        egress(&["mint-ca", "--out", dir.path().to_str().unwrap()])
            .status
            .success()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (dir, port)
}

/// A running `bottle-egress run`, killed when dropped (a failed test leaves nothing behind).
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_reloads_on_sighup_and_drains_on_sigterm() {
    let (dir, port) = ca_dir_and_port();
    let addr = format!("127.0.0.1:{port}");
    let path = dir.path().join("egress.yaml");
    write_config(&path, port, "  - host: a.example.com\n");
    let stderr_path = dir.path().join("stderr.log");
    let stdout_path = dir.path().join("stdout.log");
    let mut child = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(wait_for_health(&addr), "the proxy came up");
    let health = egress(&["health", "--addr", &addr]);
    assert!(health.status.success(), "{health:?}");

    let routes = || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"GET http://_egress.local/routes HTTP/1.1\r\nHost: _egress.local\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(routes().contains("a.example.com"));
    // A denied CONNECT is written to the audit log on stdout.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(
            b"CONNECT denied.example.com:443 HTTP/1.1\r\nHost: denied.example.com:443\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HTTP/1.1 403");
    }

    // A good new config is picked up.
    write_config(&path, port, "  - host: b.example.com\n");
    signal(pid, "HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        if routes().contains("b.example.com") {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloaded, "SIGHUP reloads the routes");

    // A bad one is refused, the old one kept, and stderr says why.
    write_config(&path, port, "  - host: https://c.example.com\n");
    signal(pid, "HUP");
    let mut logged = false;
    for _ in 0..100 {
        let log = std::fs::read_to_string(&stderr_path).unwrap();
        if log.contains("reload refused") {
            assert!(log.contains("egress.yaml:5:11"), "{log}");
            logged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(logged, "the refusal is logged");
    assert!(routes().contains("b.example.com"));

    signal(pid, "TERM");
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _guard = Kill(child);
    let status = status.expect("SIGTERM stops the proxy");
    assert!(status.success(), "{status:?}");

    let audit = std::fs::read_to_string(&stdout_path).unwrap();
    let first: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(first["host"], "denied.example.com");
    assert_eq!(first["decision"], "deny");
    assert_eq!(first["reason"], "host_not_allowed");
    assert_eq!(first["status"], 403);
}

#[test]
fn health_sends_the_proxy_credential_the_config_asks_for() {
    let (dir, port) = ca_dir_and_port();
    let path = dir.path().join("egress.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 0.0.0.0:{port}\nca: {{cert: ca.crt, key: ca.key}}\nclients: [127.0.0.0/8]\n\
             proxy_auth: {{user: bottle, token_ref: BOTTLE_EGRESS_PROXY_TOKEN}}\nroutes: []\n"
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .env("BOTTLE_EGRESS_PROXY_TOKEN", "health-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = Kill(child);
    let health = |token: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["health", "--config", path.to_str().unwrap()])
            .env_remove("BOTTLE_EGRESS_PROXY_TOKEN");
        if let Some(token) = token {
            cmd.env("BOTTLE_EGRESS_PROXY_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    // As `docker exec <egress> /bottle-egress health` runs it: the egress's own environment.
    let mut up = false;
    for _ in 0..100 {
        if health(Some("health-token")).status.success() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "health succeeds with the credential");
    let wrong = health(Some("not-it"));
    assert!(!wrong.status.success());
    let stderr = String::from_utf8(wrong.stderr).unwrap();
    assert!(stderr.contains("407"), "{stderr}");
    let unset = health(None);
    assert!(!unset.status.success());
    let stderr = String::from_utf8(unset.stderr).unwrap();
    assert!(
        stderr.contains("`BOTTLE_EGRESS_PROXY_TOKEN` is not set"),
        "{stderr}"
    );
    // Without --config there is no credential to send: refused.
    let bare = egress(&["health", "--addr", &format!("127.0.0.1:{port}")]);
    assert!(!bare.status.success());
}
