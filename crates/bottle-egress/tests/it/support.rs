//! Test fixtures: a local TLS origin signed by its own test CA, an in-process egress that
//! trusts that CA, a CONNECT client, and checks for the external tools the tests drive.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bottle_egress::{
    AuditEvent, AuditSink, CertificateAuthority, Egress, EgressBuilder, EgressConfig, EgressHandle,
    LogMode, Route,
};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The name the test origin answers to; the egress resolves it to 127.0.0.1.
pub(crate) const ORIGIN: &str = "origin.test";
/// A second name served by the same origin (for Host/SNI mismatch tests).
pub(crate) const OTHER: &str = "other.test";
/// Sub-domains of [`ORIGIN`] the origin serves too (for wildcard routes).
pub(crate) const SUBDOMAINS: [&str; 2] = ["api.origin.test", "evil.origin.test"];

pub(crate) type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Fail (never skip) when a tool the test drives is missing.
pub(crate) fn require(tool: &str, package: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is required by this test and is not installed; install it (Debian: `apt-get install {package}`)"
    );
}

/// A request the origin received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// A TLS origin on 127.0.0.1 with a certificate for `origin.test`, `*.origin.test`,
/// `other.test`, `localhost` and `127.0.0.1`, signed by a test CA that only the egress trusts.
pub(crate) struct Origin {
    pub(crate) port: u16,
    pub(crate) ca_pem_path: PathBuf,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    /// Released by a test to let `/sse` send its second event, or `/hold` answer.
    pub(crate) gate: Arc<Notify>,
    /// TLS handshakes the origin completed.
    pub(crate) handshakes: Arc<AtomicUsize>,
    /// Every body byte that reached `/sink…`, as it arrived (also of a request cut short).
    pub(crate) received: Arc<Mutex<Vec<u8>>>,
    pub(crate) dir: tempfile::TempDir,
}

impl Origin {
    pub(crate) async fn start() -> Origin {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate_named(
            "test origin CA",
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let ca_pem_path = dir.path().join("origin-ca.pem");
        std::fs::write(&ca_pem_path, ca.cert_pem()).unwrap();
        let config = origin_tls_config(&ca);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Notify::new());
        let git_root = dir.path().join("git");
        std::fs::create_dir_all(&git_root).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(OriginState {
            received: received.clone(),
            seen: seen.clone(),
            gate: gate.clone(),
            git_root,
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(origin_handle(state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Origin {
            port,
            ca_pem_path,
            seen,
            gate,
            handshakes,
            received,
            dir,
        }
    }

    pub(crate) fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A bare git repository served at `/git/<name>.git`, with one commit.
    pub(crate) fn git_repo(&self, name: &str) {
        let root = self.dir.path().join("git");
        let work = self.dir.path().join(format!("{name}-work"));
        let bare = root.join(format!("{name}.git"));
        let git = |args: &[&str], cwd: &Path| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(cwd)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        std::fs::create_dir_all(&work).unwrap();
        git(&["init", "-q", "-b", "main"], &work);
        std::fs::write(work.join("README"), "hello through the egress\n").unwrap();
        git(&["add", "README"], &work);
        git(&["commit", "-q", "-m", "first"], &work);
        git(
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
            self.dir.path(),
        );
        // Let pushes through at the origin, so only the egress can be what refuses them.
        git(&["config", "http.receivepack", "true"], &bare);
    }
}

struct OriginState {
    received: Arc<Mutex<Vec<u8>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    gate: Arc<Notify>,
    git_root: PathBuf,
}

fn origin_tls_config(ca: &CertificateAuthority) -> rustls::ServerConfig {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        ORIGIN.to_owned(),
        OTHER.to_owned(),
        format!("*.{ORIGIN}"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap();
    params.use_authority_key_identifier_extension = true;
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        ca.cert_pem(),
        rcgen::KeyPair::from_pem(ca.key_pem()).unwrap(),
    )
    .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone(), ca.cert_der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<BoxBody> {
    let mut r = Response::new(Full::new(body.into()).map_err(|n| match n {}).boxed());
    *r.status_mut() = status;
    r
}

async fn origin_handle(state: Arc<OriginState>, mut req: Request<Incoming>) -> Response<BoxBody> {
    state.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        version: req.version(),
        headers: req.headers().clone(),
    });
    let path = req.uri().path().to_owned();
    if path == "/sse" {
        let gate = state.gate.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        tokio::spawn(async move {
            let _ = tx.send(Ok(Frame::data(Bytes::from("data: one\n\n")))).await;
            gate.notified().await;
            let _ = tx.send(Ok(Frame::data(Bytes::from("data: two\n\n")))).await;
        });
        let stream = tokio_stream_from(rx);
        let mut r = Response::new(StreamBody::new(stream).boxed());
        r.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return r;
    }
    if path == "/ws" {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = upgrade.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = text(StatusCode::SWITCHING_PROTOCOLS, "");
        r.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return r;
    }
    if path == "/hold" {
        // The response head waits for the test.
        state.gate.notified().await;
        return text(StatusCode::OK, "held\n");
    }
    if let Some(rest) = path.strip_prefix("/bytes/") {
        let n: usize = rest.parse().unwrap_or(0);
        return text(StatusCode::OK, vec![b'x'; n]);
    }
    if path.starts_with("/git/") {
        return git_cgi(&state.git_root, req).await;
    }
    let mut body = req.into_body();
    let mut len = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            len += data.len();
            if path.starts_with("/sink") {
                state.received.lock().unwrap().extend_from_slice(&data);
            }
        }
    }
    text(
        StatusCode::OK,
        format!("hello from origin: {path} ({len} body bytes)\n"),
    )
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Serve git's smart HTTP protocol by running `git http-backend` as a CGI.
async fn git_cgi(root: &Path, req: Request<Incoming>) -> Response<BoxBody> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path_info = parts.uri.path().trim_start_matches("/git").to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path_info)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("HTTP_GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let _ = writer.await;
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .expect("CGI output has headers");
    let head = String::from_utf8_lossy(&raw[..split.0]).to_string();
    let mut resp = text(
        StatusCode::OK,
        Bytes::copy_from_slice(&raw[split.0 + split.1..]),
    );
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code: u16 = v.split(' ').next().unwrap().parse().unwrap();
            *resp.status_mut() = StatusCode::from_u16(code).unwrap();
        } else {
            resp.headers_mut().append(
                http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
    }
    resp
}

/// Audit events kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Events(pub Arc<Mutex<Vec<AuditEvent>>>);

impl AuditSink for Events {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Events {
    pub(crate) fn all(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// An in-process egress in front of an [`Origin`].
pub(crate) struct Proxy {
    pub(crate) handle: EgressHandle,
    pub(crate) ca_pem_path: PathBuf,
    pub(crate) events: Events,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) const TOKEN: &str = "s3cret-token-value";
/// The proxy credential's token, under `PROXY_TOKEN`.
pub(crate) const PROXY_TOKEN: &str = "pr0xy-token-value";
/// A bottle secret DLP knows, under `DLP_SECRET`: characters that every encoding changes.
pub(crate) const DLP_SECRET: &str = "db-pass/w0rd+Zq9!xyz";

/// The usual route: the origin, on its port, allowing private addresses (the egress resolves
/// its name to loopback with a fixed answer, which counts as named by the route).
pub(crate) fn origin_route(origin: &Origin) -> Route {
    route_to(ORIGIN, origin)
}

/// A route to `host` served by the test origin: its port, private addresses allowed.
pub(crate) fn route_to(host: &str, origin: &Origin) -> Route {
    let mut r = Route::host(host);
    r.allow_private = true;
    r.ports = vec![origin.port.try_into().unwrap()];
    r
}

pub(crate) fn config(origin: &Origin, routes: Vec<Route>) -> EgressConfig {
    EgressConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        trust: vec![origin.ca_pem_path.clone()],
        log: LogMode::Full,
        routes,
        ..EgressConfig::default()
    }
}

impl Proxy {
    pub(crate) async fn start(config: EgressConfig) -> Proxy {
        Proxy::start_with(config, |b| b).await
    }

    /// [`Proxy::start`] with more builder settings.
    pub(crate) async fn start_with(
        config: EgressConfig,
        more: impl FnOnce(EgressBuilder) -> EgressBuilder,
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate().unwrap();
        let ca_pem_path = dir.path().join("egress-ca.pem");
        std::fs::write(&ca_pem_path, ca.cert_pem()).unwrap();
        let events = Events::default();
        let tokens: HashMap<String, String> = [
            ("TEST_TOKEN".to_owned(), TOKEN.to_owned()),
            ("PROXY_TOKEN".to_owned(), PROXY_TOKEN.to_owned()),
            ("DLP_SECRET".to_owned(), DLP_SECRET.to_owned()),
        ]
        .into();
        let mut builder = Egress::builder(config)
            .certificate_authority(ca)
            .tokens(move |name| tokens.get(name).cloned())
            .audit(events.clone());
        for name in [ORIGIN, OTHER].into_iter().chain(SUBDOMAINS) {
            builder = builder.resolve(name, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        let handle = more(builder).start().await.unwrap();
        Proxy {
            handle,
            ca_pem_path,
            events,
            _dir: dir,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
}

/// The raw answer to a CONNECT: status, headers, body.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send raw bytes to the proxy and read one response (headers and a Content-Length body).
pub(crate) async fn raw_exchange(proxy: SocketAddr, request: &[u8]) -> (RawResponse, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let resp = read_response(&mut stream).await;
    (resp, stream)
}

pub(crate) async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    RawResponse {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

pub(crate) async fn raw_connect(proxy: SocketAddr, authority: &str) -> (RawResponse, TcpStream) {
    raw_exchange(
        proxy,
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
    )
    .await
}

/// CONNECT through the proxy and start TLS with `sni`, trusting the egress CA.
pub(crate) async fn tls_tunnel(
    proxy: &Proxy,
    authority: &str,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let (resp, stream) = raw_connect(proxy.addr(), authority).await;
    assert_eq!(resp.status, 200, "CONNECT {authority}: {resp:?}");
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&proxy.ca_pem_path).unwrap();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), stream)
        .await
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

/// An HTTP/1.1 client over a tunnel to the origin.
pub(crate) async fn h1_client(
    proxy: &Proxy,
    origin: &Origin,
) -> hyper::client::conn::http1::SendRequest<BoxBody> {
    h1_client_to(proxy, origin, ORIGIN).await
}

/// An HTTP/1.1 client over a tunnel to `host` (served by the origin).
pub(crate) async fn h1_client_to(
    proxy: &Proxy,
    origin: &Origin,
    host: &str,
) -> hyper::client::conn::http1::SendRequest<BoxBody> {
    let tls = tls_tunnel(
        proxy,
        &format!("{host}:{}", origin.port),
        host,
        &[b"http/1.1"],
    )
    .await
    .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

pub(crate) fn get(origin: &Origin, path: &str) -> Request<BoxBody> {
    Request::builder()
        .uri(path)
        .header("host", format!("{ORIGIN}:{}", origin.port))
        .body(empty())
        .unwrap()
}

pub(crate) fn full(bytes: Vec<u8>) -> BoxBody {
    Full::new(Bytes::from(bytes))
        .map_err(|n| match n {})
        .boxed()
}

pub(crate) fn empty() -> BoxBody {
    Full::new(Bytes::new()).map_err(|n| match n {}).boxed()
}

/// Send on a kept-alive HTTP/1.1 connection once it is ready for the next request.
pub(crate) async fn send(
    client: &mut hyper::client::conn::http1::SendRequest<BoxBody>,
    req: Request<BoxBody>,
) -> Response<Incoming> {
    client.ready().await.unwrap();
    client.send_request(req).await.unwrap()
}

/// Send a request on a kept-alive connection and read the whole response; the status.
pub(crate) async fn status_of(
    client: &mut hyper::client::conn::http1::SendRequest<BoxBody>,
    req: Request<BoxBody>,
) -> u16 {
    client.ready().await.unwrap();
    let resp = client.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

pub(crate) async fn body_text(resp: Response<Incoming>) -> String {
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

/// Run a command to completion off the async threads; returns (status ok, stdout, stderr).
pub(crate) async fn run(cmd: &mut tokio::process::Command) -> (bool, String, String) {
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("the command finished within 60 s")
        .expect("the command ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn curl(proxy: &Proxy) -> tokio::process::Command {
    require("curl", "curl");
    let mut c = tokio::process::Command::new("curl");
    c.args(["-sS", "--max-time", "20", "-x", &proxy.url(), "--cacert"])
        .arg(&proxy.ca_pem_path)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    c
}
