//! Which engine: `DOCKER_HOST` (with its TLS variables) and docker contexts, resolved as the
//! docker CLI does, and every refusal as the user reads it (snapshotted).

use std::collections::BTreeMap;
use std::path::Path;

use bottle_docker::endpoint::{EngineEndpoint, Origin, Transport};
use bottle_docker::engine::Engine;
use sha2::{Digest, Sha256};

/// A docker config directory and an environment to resolve in.
struct Env {
    dir: tempfile::TempDir,
    vars: BTreeMap<String, String>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = BTreeMap::new();
        vars.insert(
            "DOCKER_CONFIG".to_owned(),
            dir.path().to_str().unwrap().to_owned(),
        );
        Env { dir, vars }
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A certificate directory with the given files (valid PEM, from a fresh CA).
    fn certs(self, name: &str, files: &[&str]) -> Self {
        let dir = self.path().join(name);
        write_certs(&dir, files);
        self
    }

    /// A context `name` whose docker endpoint is `meta` (the `Endpoints.docker` object).
    fn context(self, name: &str, meta: &str, tls: bool) -> Self {
        let id = format!("{:x}", Sha256::digest(name.as_bytes()));
        let meta_dir = self.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta_dir).unwrap();
        std::fs::write(
            meta_dir.join("meta.json"),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{meta}}}}}"#),
        )
        .unwrap();
        if tls {
            write_certs(
                &self.path().join("contexts/tls").join(&id).join("docker"),
                &["ca.pem", "cert.pem", "key.pem"],
            );
        }
        self
    }

    fn config(self, json: &str) -> Self {
        std::fs::write(self.path().join("config.json"), json).unwrap();
        self
    }

    fn resolve(&self) -> bottle_docker::Result<EngineEndpoint> {
        EngineEndpoint::resolve(|name| self.vars.get(name).cloned())
    }

    /// The refusal, with the temporary directory shown as `[CONFIG]`.
    fn refusal(&self) -> String {
        let err = self
            .resolve()
            .and_then(Engine::for_endpoint)
            .map(|e| e.endpoint().to_string())
            .expect_err("refused");
        err.to_string()
            .replace(self.path().to_str().unwrap(), "[CONFIG]")
    }
}

/// `ca.pem` (a CA), `cert.pem` and `key.pem` (a client certificate it signed) in `dir`, those of
/// `files` only.
fn write_certs(dir: &Path, files: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    for file in files {
        let pem = match *file {
            "ca.pem" => ca.pem(),
            "cert.pem" => client.pem(),
            "key.pem" => client_key.serialize_pem(),
            other => panic!("no such test file {other}"),
        };
        std::fs::write(dir.join(file), pem).unwrap();
    }
}

const ALL: &[&str] = &["ca.pem", "cert.pem", "key.pem"];

#[test]
fn nothing_set_is_the_local_default_socket() {
    let endpoint = Env::new().resolve().unwrap();
    assert_eq!(endpoint, EngineEndpoint::default());
    assert!(endpoint.is_local_default());
    assert_eq!(
        endpoint.to_string(),
        "unix:///var/run/docker.sock (the local default)"
    );
    // The context named `default` is the same local engine.
    let named = Env::new()
        .set("DOCKER_CONTEXT", "default")
        .resolve()
        .unwrap();
    assert!(named.is_local_default());
    let current = Env::new()
        .config(r#"{"auths":{},"currentContext":"default"}"#)
        .resolve()
        .unwrap();
    assert!(current.is_local_default());
}

#[test]
fn docker_host_unix_and_loopback_tcp() {
    let unix = Env::new()
        .set("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
        .resolve()
        .unwrap();
    assert_eq!(
        unix.transport,
        Transport::Unix {
            path: "/run/user/1000/docker.sock".into()
        }
    );
    assert_eq!(unix.origin, Origin::DockerHost);
    assert!(!unix.is_local_default());
    assert_eq!(
        unix.to_string(),
        "unix:///run/user/1000/docker.sock (DOCKER_HOST)"
    );
    // Plain TCP is taken on loopback only: the local end of a tunnel.
    for (host, shown) in [
        (
            "tcp://127.0.0.1:2375",
            "tcp://127.0.0.1:2375 (no TLS, DOCKER_HOST)",
        ),
        (
            "tcp://localhost",
            "tcp://localhost:2375 (no TLS, DOCKER_HOST)",
        ),
        (
            "tcp://[::1]:23750",
            "tcp://[::1]:23750 (no TLS, DOCKER_HOST)",
        ),
        (
            "127.0.0.1:2375",
            "tcp://127.0.0.1:2375 (no TLS, DOCKER_HOST)",
        ),
    ] {
        let endpoint = Env::new().set("DOCKER_HOST", host).resolve().unwrap();
        assert_eq!(endpoint.to_string(), shown, "{host}");
    }
}

#[test]
fn docker_host_tcp_with_tls_from_the_environment() {
    let env = Env::new()
        .certs("certs", ALL)
        .set("DOCKER_HOST", "tcp://build-box")
        .set("DOCKER_TLS_VERIFY", "1");
    let certs = env.path().join("certs");
    let env = env.set("DOCKER_CERT_PATH", certs.to_str().unwrap());
    let endpoint = env.resolve().unwrap();
    let Transport::Tcp { host, port, tls } = &endpoint.transport else {
        panic!("{endpoint:?}")
    };
    assert_eq!((host.as_str(), *port), ("build-box", 2376));
    let tls = tls.as_ref().expect("TLS");
    assert_eq!(tls.ca, certs.join("ca.pem"));
    assert_eq!(
        tls.client,
        Some((certs.join("cert.pem"), certs.join("key.pem")))
    );
    assert_eq!(
        endpoint.to_string(),
        "tcp://build-box:2376 (TLS, DOCKER_HOST)"
    );
    // The certificates load (the client is made without contacting the engine).
    let engine = Engine::for_endpoint(endpoint).unwrap();
    assert_eq!(engine.endpoint().address(), "tcp://build-box:2376");

    // Without DOCKER_CERT_PATH, the docker config directory holds them; a CA alone is enough
    // for an engine that asks no client certificate.
    let env = Env::new()
        .set("DOCKER_HOST", "tcp://10.1.2.3:12376")
        .set("DOCKER_TLS_VERIFY", "1");
    write_certs(env.path(), &["ca.pem"]);
    let endpoint = env.resolve().unwrap();
    let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
        panic!("{endpoint:?}")
    };
    assert_eq!(tls.client, None);
    Engine::for_endpoint(endpoint).unwrap();
}

#[test]
fn docker_host_wins_over_any_context() {
    let endpoint = Env::new()
        .context("build-box", r#"{"Host":"tcp://build-box:2376"}"#, true)
        .set("DOCKER_CONTEXT", "build-box")
        .set("DOCKER_HOST", "unix:///tmp/tunnel.sock")
        .resolve()
        .unwrap();
    assert_eq!(endpoint.origin, Origin::DockerHost);
}

#[test]
fn contexts_from_docker_context_or_the_current_context() {
    let env = Env::new()
        .context(
            "build-box",
            r#"{"Host":"tcp://build-box:2376","SkipTLSVerify":false}"#,
            true,
        )
        .context("tunnel", r#"{"Host":"unix:///home/me/engine.sock"}"#, false);
    let named = env.set("DOCKER_CONTEXT", "build-box");
    let endpoint = named.resolve().unwrap();
    assert_eq!(
        endpoint.to_string(),
        r#"tcp://build-box:2376 (TLS, context "build-box")"#
    );
    let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
        panic!("{endpoint:?}")
    };
    assert!(
        tls.ca.starts_with(named.path().join("contexts/tls")),
        "{tls:?}"
    );
    Engine::for_endpoint(endpoint).unwrap();

    let current = named
        .set("DOCKER_CONTEXT", "")
        .config(r#"{"currentContext":"tunnel"}"#);
    assert_eq!(
        current.resolve().unwrap().to_string(),
        r#"unix:///home/me/engine.sock (context "tunnel")"#
    );
    // DOCKER_CONTEXT wins over the config's current context.
    let both = current.set("DOCKER_CONTEXT", "build-box");
    assert_eq!(
        both.resolve().unwrap().origin,
        Origin::Context {
            name: "build-box".to_owned()
        }
    );
}

/// Every refusal, one sentence and its fix each.
#[test]
fn refusals_say_what_is_wrong_and_how_to_fix_it() {
    let host = |value: &str| Env::new().set("DOCKER_HOST", value);
    let tls_host = |value: &str, files: &[&str]| {
        let env = Env::new()
            .set("DOCKER_HOST", value)
            .set("DOCKER_TLS_VERIFY", "1")
            .certs("certs", files);
        let dir = env.path().join("certs");
        env.set("DOCKER_CERT_PATH", dir.to_str().unwrap())
    };
    let mut cases: Vec<(&str, Env)> = vec![
        ("ssh", host("ssh://me@build-box")),
        ("ssh without user", host("ssh://build-box:22")),
        ("npipe", host("npipe:////./pipe/docker_engine")),
        ("fd", host("fd://")),
        ("https URL", host("https://build-box:2376")),
        ("unknown scheme", host("quic://build-box")),
        ("relative unix path", host("unix://docker.sock")),
        ("tcp without TLS off loopback", host("tcp://build-box:2375")),
        ("tcp without host", host("tcp://")),
        ("tcp with a path", host("tcp://build-box:2376/v1.41")),
        ("tcp with a user", host("tcp://me@build-box:2376")),
        ("tcp with a bad port", host("tcp://build-box:port")),
        ("tcp with port 0", host("tcp://127.0.0.1:0")),
        ("tcp with an empty port", host("tcp://127.0.0.1:")),
        ("tcp with a bad host", host("tcp://build*box:2376")),
        (
            "TLS without verification",
            host("tcp://build-box:2376").set("DOCKER_TLS", "1"),
        ),
        (
            "TLS without ca.pem",
            tls_host("tcp://build-box", &["cert.pem", "key.pem"]),
        ),
        (
            "TLS with cert.pem alone",
            tls_host("tcp://build-box", &["ca.pem", "cert.pem"]),
        ),
        (
            "unknown DOCKER_CONTEXT",
            Env::new().set("DOCKER_CONTEXT", "nowhere"),
        ),
        (
            "unknown current context",
            Env::new().config(r#"{"currentContext":"gone"}"#),
        ),
        ("config not JSON", Env::new().config("{currentContext")),
        (
            "context skipping TLS verification",
            Env::new()
                .context(
                    "lax",
                    r#"{"Host":"tcp://build-box:2376","SkipTLSVerify":true}"#,
                    true,
                )
                .set("DOCKER_CONTEXT", "lax"),
        ),
        (
            "context without docker endpoint",
            Env::new()
                .context("empty", r#"{}"#, false)
                .set("DOCKER_CONTEXT", "empty"),
        ),
        (
            "context over ssh",
            Env::new()
                .context("remote", r#"{"Host":"ssh://me@build-box"}"#, false)
                .set("DOCKER_CONTEXT", "remote"),
        ),
    ];
    // Files that are there but unusable fail when the client is made, before any request.
    let garbage_ca = tls_host("tcp://build-box", ALL);
    std::fs::write(
        garbage_ca.path().join("certs/ca.pem"),
        "not a certificate\n",
    )
    .unwrap();
    cases.push(("ca.pem without a certificate", garbage_ca));
    let mismatched = tls_host("tcp://build-box", ALL);
    let other = mismatched.path().join("other");
    write_certs(&other, &["key.pem"]);
    std::fs::copy(
        other.join("key.pem"),
        mismatched.path().join("certs/key.pem"),
    )
    .unwrap();
    cases.push(("key.pem of another certificate", mismatched));
    let missing_socket = host("unix:///nonexistent/docker.sock");
    cases.push(("unix socket missing", missing_socket));

    let mut out = String::new();
    for (case, env) in &cases {
        out.push_str(&format!("{case}:\n  {}\n", env.refusal()));
    }
    insta::assert_snapshot!(out);
}

/// An engine that does not answer is named in the error, with the fix for where it is.
#[tokio::test]
async fn an_engine_that_does_not_answer_is_named_with_the_fix() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new().set("DOCKER_HOST", &format!("tcp://127.0.0.1:{port}"));
    let engine = Engine::for_endpoint(env.resolve().unwrap()).unwrap();
    let err = engine.client().await.expect_err("nobody listens");
    insta::assert_snapshot!(err.to_string().replace(&port.to_string(), "[PORT]"));
}
