//! Real clients through the proxy: curl, Python's default `ssl` context in strict X.509 mode,
//! Node with `NODE_EXTRA_CA_CERTS`, and git (clone allowed, push refused).

use tokio::process::Command;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_through_an_allowed_route() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let (ok, out, err) = run(curl(&proxy)
        .args(["--http1.1", "-w", "\n%{http_code} %{http_version}"])
        .arg(format!("https://{ORIGIN}:{}/hello", origin.port)))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /hello (0 body bytes)\n\n200 1.1");
    assert_eq!(origin.seen().len(), 1);
    // The origin offers h2, but an HTTP/1.1 client's requests go upstream as HTTP/1.1.
    assert_eq!(origin.seen()[0].version, http::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reports_the_refusal_of_an_unlisted_host() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let (ok, _, err) = run(curl(&proxy).arg("https://denied.example.com/")).await;
    assert!(!ok);
    assert!(err.contains("CONNECT tunnel failed, response 403"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_strict_x509_accepts_the_minted_chain() {
    require("python3", "python3");
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    // Python 3.13 turns VERIFY_X509_STRICT on in create_default_context(); set it explicitly
    // so older Pythons check the same (AKI on the leaf, SKI/keyUsage/critical BC on the CA).
    let script = r#"
import http.client, ssl, sys
proxy_host, proxy_port, host, port, cafile = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
conn = http.client.HTTPSConnection(proxy_host, int(proxy_port), context=ctx, timeout=20)
conn.set_tunnel(host, int(port))
conn.request("GET", "/from-python")
resp = conn.getresponse()
print(resp.status, resp.read().decode().strip())
"#;
    let (ok, out, err) = run(Command::new("python3")
        .args(["-c", script])
        .arg(proxy.addr().ip().to_string())
        .arg(proxy.addr().port().to_string())
        .arg(ORIGIN)
        .arg(origin.port.to_string())
        .arg(&proxy.ca_pem_path))
    .await;
    assert!(ok, "python failed: {err}");
    assert_eq!(out, "200 hello from origin: /from-python (0 body bytes)\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_strict_verification_accepts_a_minted_leaf() {
    require("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let ca = bottle_egress::CertificateAuthority::generate().unwrap();
    let leaf = ca.issue_leaf("api.example.com").unwrap();
    let pem = |der: &[u8]| {
        use std::fmt::Write;
        let b64 = base64_encode(der);
        let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            writeln!(s, "{}", std::str::from_utf8(chunk).unwrap()).unwrap();
        }
        s + "-----END CERTIFICATE-----\n"
    };
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), pem(leaf.chain[0].as_ref())).unwrap();
    let (ok, out, err) = run(Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "api.example.com",
            "-CAfile",
        ])
        .arg(dir.path().join("ca.pem"))
        .arg(dir.path().join("leaf.pem")))
    .await;
    assert!(ok, "openssl verify: {out}{err}");
    assert!(out.contains(": OK"), "{out}");
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_trusts_the_ca_via_node_extra_ca_certs() {
    require("node", "nodejs");
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    // Node 20 has no proxy support in its HTTP stack: open the tunnel with CONNECT and run
    // https over it. The egress CA reaches Node's default trust store only through
    // NODE_EXTRA_CA_CERTS.
    let script = r#"
const http = require('http'), https = require('https'), tls = require('tls');
const [proxyHost, proxyPort, host, port] = process.argv.slice(1);
const req = http.request({ host: proxyHost, port: proxyPort, method: 'CONNECT', path: `${host}:${port}` });
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(2); }
  const agent = new https.Agent({ keepAlive: false });
  agent.createConnection = () => tls.connect({ socket, servername: host });
  const r = https.get({ host, port, path: '/from-node', agent }, (resp) => {
    let body = '';
    resp.on('data', (d) => body += d);
    resp.on('end', () => { console.log(resp.statusCode, body.trim()); process.exit(0); });
  });
  r.on('error', (e) => { console.error(e.message); process.exit(3); });
});
req.on('error', (e) => { console.error(e.message); process.exit(4); });
req.end();
"#;
    let (ok, out, err) = run(Command::new("node")
        .args(["-e", script])
        .arg(proxy.addr().ip().to_string())
        .arg(proxy.addr().port().to_string())
        .arg(ORIGIN)
        .arg(origin.port.to_string())
        .env("NODE_EXTRA_CA_CERTS", &proxy.ca_pem_path))
    .await;
    assert!(ok, "node failed: {err}");
    assert_eq!(out, "200 hello from origin: /from-node (0 body bytes)\n");

    // Without the extra CA, Node refuses the minted leaf.
    let (ok, _, err) = run(Command::new("node")
        .args(["-e", script])
        .arg(proxy.addr().ip().to_string())
        .arg(proxy.addr().port().to_string())
        .arg(ORIGIN)
        .arg(origin.port.to_string())
        .env_remove("NODE_EXTRA_CA_CERTS"))
    .await;
    assert!(!ok);
    assert!(err.contains("certificate"), "{err}");
}

fn git(proxy: &Proxy, cwd: &std::path::Path) -> Command {
    require("git", "git");
    let mut c = Command::new("git");
    c.current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSL_CAINFO", &proxy.ca_pem_path)
        .env("https_proxy", proxy.url())
        .env("HTTPS_PROXY", proxy.url())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_works_and_git_push_is_refused() {
    let origin = Origin::start().await;
    origin.git_repo("repo");
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let work = tempfile::tempdir().unwrap();
    let url = format!("https://{ORIGIN}:{}/git/repo.git", origin.port);

    let (ok, _, err) = run(git(&proxy, work.path()).args(["clone", "-q", &url, "clone"])).await;
    assert!(ok, "git clone failed: {err}");
    let readme = std::fs::read_to_string(work.path().join("clone/README")).unwrap();
    assert_eq!(readme, "hello through the egress\n");

    let clone = work.path().join("clone");
    std::fs::write(clone.join("new"), "x").unwrap();
    let (ok, _, err) = run(git(&proxy, &clone).args(["add", "new"])).await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(git(&proxy, &clone).args(["commit", "-q", "-m", "second"])).await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(git(&proxy, &clone).args(["push", "origin", "main"])).await;
    assert!(!ok, "git push must fail");
    assert!(err.contains("403"), "{err}");
    assert!(
        origin
            .seen()
            .iter()
            .all(|s| !s.path.contains("receive-pack")
                && !s
                    .headers
                    .get("content-type")
                    .is_some_and(|v| v.to_str().unwrap().contains("receive-pack"))),
        "no push request reaches the origin"
    );
    let events = proxy.events.all();
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("git_push"))
    );
}
