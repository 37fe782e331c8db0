//! The clients, the same for every path: `oha` for HTTP/1.1 load, `curl` for the large download
//! and upload, and a small rustls + hyper client of our own where we need per-connection timing
//! (first contacts), to hold a thousand handshaken connections open (idle tunnels), many
//! streams on one HTTP/2 connection, or the arrival time of each server-sent event.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_rustls::client::TlsStream;

use super::report::Phases;

/// How a client reaches the origin: directly or through a proxy, and which CA it trusts.
#[derive(Debug, Clone)]
pub(crate) struct Via {
    pub(crate) name: &'static str,
    pub(crate) proxy: Option<SocketAddr>,
    pub(crate) ca: PathBuf,
}

/// One load run's figures, as oha reports them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
}

/// How oha should load the origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadSpec {
    pub(crate) concurrency: u32,
    pub(crate) keepalive: bool,
    pub(crate) seconds: u64,
}

pub(crate) async fn oha(path: &Via, url: &str, spec: LoadSpec) -> Result<Load> {
    let mut cmd = Command::new("oha");
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "--http-version",
        "1.1",
    ])
    .args([
        "-z",
        &format!("{}s", spec.seconds),
        "-c",
        &spec.concurrency.to_string(),
    ])
    .arg("--cacert")
    .arg(&path.ca)
    // Requests in flight at the end of -z are waited for (a slow path is not cut short, and
    // always has figures), each bounded by a timeout.
    .args(["--wait-ongoing-requests-after-deadline", "-t", "10s"])
    .kill_on_drop(true);
    if !spec.keepalive {
        cmd.arg("--disable-keepalive");
    }
    if let Some(proxy) = path.proxy {
        cmd.args(["-x", &format!("http://{proxy}")]);
    }
    let out = cmd.arg(url).output().await.context("running oha")?;
    if !out.status.success() {
        bail!(
            "oha via {} failed: {}",
            path.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let load =
        parse_oha(&out.stdout).with_context(|| format!("reading oha's JSON via {}", path.name))?;
    if load.ok == 0 {
        bail!(
            "oha via {} got no 200 response: {}",
            path.name,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(load)
}

/// oha's `--output-format json`: latencies are in seconds.
pub(crate) fn parse_oha(json: &[u8]) -> Result<Load> {
    let v: serde_json::Value = serde_json::from_slice(json)?;
    let secs = |p: &str| {
        v["latencyPercentiles"][p]
            .as_f64()
            .with_context(|| format!("no latencyPercentiles.{p}"))
    };
    let count = |m: &serde_json::Value| {
        m.as_object().map_or(0, |m| {
            m.values()
                .filter_map(serde_json::Value::as_u64)
                .sum::<u64>()
        })
    };
    let ok = v["statusCodeDistribution"]["200"].as_u64().unwrap_or(0);
    let other_status = count(&v["statusCodeDistribution"]) - ok;
    Ok(Load {
        rps: v["summary"]["requestsPerSec"]
            .as_f64()
            .context("no summary.requestsPerSec")?,
        p50_ms: secs("p50")? * 1000.0,
        p99_ms: secs("p99")? * 1000.0,
        ok,
        // With -z, requests in flight at the deadline are reported as this error: not failures.
        failed: other_status + count(&v["errorDistribution"])
            - v["errorDistribution"]["aborted due to deadline"]
                .as_u64()
                .unwrap_or(0),
    })
}

/// Which way a large body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// `GET url`, the body thrown away.
    Download,
    /// `POST url` with the file as the body, streamed (`curl -T`).
    Upload(&'static str),
}

/// The best of `tries` transfers of `bytes` with curl (HTTP/1.1 on every path), in MB/s
/// (10^6 bytes per second). An upload sends the file at the path in `Transfer::Upload`.
pub(crate) async fn transfer(
    path: &Via,
    url: &str,
    way: Transfer,
    file: &Path,
    bytes: u64,
    tries: u32,
) -> Result<f64> {
    let mut best: f64 = 0.0;
    for _ in 0..tries {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--http1.1", "--max-time", "120"])
            .args(["--output", "/dev/null"])
            .arg("--cacert")
            .arg(&path.ca)
            .kill_on_drop(true);
        match way {
            Transfer::Download => cmd.args(["--write-out", "%{size_download} %{time_total}"]),
            Transfer::Upload(method) => cmd
                .args(["--write-out", "%{size_upload} %{time_total}"])
                .args(["-X", method, "-T"])
                .arg(file),
        };
        if let Some(proxy) = path.proxy {
            cmd.args(["--proxy", &format!("http://{proxy}")]);
        }
        let out = cmd.arg(url).output().await.context("running curl")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace();
        let size: u64 = fields.next().unwrap_or("0").parse().unwrap_or(0);
        let secs: f64 = fields.next().unwrap_or("0").parse().unwrap_or(0.0);
        if !out.status.success() || size != bytes || secs <= 0.0 {
            bail!(
                "the {bytes}-byte {way:?} via {} failed (moved {size} bytes): {}",
                path.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        best = best.max(size as f64 / secs / 1e6);
    }
    Ok(best)
}

/// A rustls client trusting only `ca`, with session resumption off so that every connection
/// pays a full handshake — on every path alike. It offers HTTP/1.1 only, or only HTTP/2 with
/// `h2`.
pub(crate) fn tls_config(ca: &Path, h2: bool) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(Arc::new(config))
}

/// TCP to the origin, or to the proxy followed by `CONNECT host:port`; then the TLS handshake.
pub(crate) async fn connect(
    path: &Via,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<TlsStream<TcpStream>> {
    let stream = tunnel(path, host, port).await?;
    handshake(stream, tls, host).await
}

/// TCP to the origin, or to the proxy followed by `CONNECT host:port` and its `200`.
async fn tunnel(path: &Via, host: &str, port: u16) -> Result<TcpStream> {
    let stream = match path.proxy {
        None => {
            let ip: IpAddr = if host == "localhost" {
                [127, 0, 0, 1].into()
            } else {
                host.parse()?
            };
            TcpStream::connect((ip, port)).await?
        }
        Some(proxy) => {
            let mut s = TcpStream::connect(proxy).await?;
            s.set_nodelay(true)?;
            s.write_all(
                format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").as_bytes(),
            )
            .await?;
            let head = read_head(&mut s).await?;
            if !(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")) {
                bail!(
                    "{} refused CONNECT {host}:{port}: {}",
                    path.name,
                    head.lines().next().unwrap_or("")
                );
            }
            s
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn handshake(
    stream: TcpStream,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned())?;
    Ok(tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, stream)
        .await?)
}

/// Reads a response head byte by byte: the TLS handshake follows, so nothing may be over-read.
async fn read_head(s: &mut TcpStream) -> Result<String> {
    let mut head = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await? == 0 {
            bail!("the proxy closed the connection during CONNECT");
        }
        head.push(b[0]);
        if head.len() > 16 * 1024 {
            bail!("the proxy's CONNECT response head is over 16 KiB");
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// One `GET /` on a new connection (new CONNECT and handshakes when proxied), timed from the
/// first SYN: when the tunnel stood (TCP, or TCP + `CONNECT` answered), when the TLS handshake
/// was done, and when the last body byte arrived.
pub(crate) async fn one_request(
    path: &Via,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<Phases> {
    let started = Instant::now();
    let ms = |t: Instant| t.duration_since(started).as_secs_f64() * 1000.0;
    let stream = tunnel(path, host, port).await?;
    let tunnel_ms = ms(Instant::now());
    let stream = handshake(stream, tls, host).await?;
    let tls_ms = ms(Instant::now());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("/")
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    resp.into_body().collect().await?;
    let total_ms = ms(Instant::now());
    drop(sender);
    conn.abort();
    if status != http::StatusCode::OK {
        bail!(
            "GET https://{host}:{port}/ via {} answered {status}",
            path.name
        );
    }
    Ok(Phases {
        tunnel_ms,
        tls_ms,
        total_ms,
    })
}

/// Loads one HTTP/2 connection with `streams` concurrent streams, each sending `GET /` again as
/// soon as its last response is read, for `seconds`. The connection is made like any other
/// (`CONNECT` when proxied), with `tls` offering only `h2`.
pub(crate) async fn h2_load(
    path: &Via,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    streams: u32,
    seconds: u64,
) -> Result<Load> {
    let stream = connect(path, tls, host, port).await?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        bail!("{} did not agree to HTTP/2 for {host}", path.name);
    }
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await?;
    let conn = tokio::spawn(conn);
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let authority = format!("{host}:{port}");
    let workers = (0..streams).map(|_| {
        let mut sender = sender.clone();
        let authority = authority.clone();
        async move {
            let (mut latencies, mut failed) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let req = http::Request::builder()
                    .uri(format!("https://{authority}/"))
                    .body(Empty::<Bytes>::new())?;
                let sent = Instant::now();
                sender.ready().await?;
                match sender.send_request(req).await {
                    Ok(resp) if resp.status() == http::StatusCode::OK => {
                        resp.into_body().collect().await?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(_) | Err(_) => failed += 1,
                }
                if failed > 1000 {
                    break;
                }
            }
            anyhow::Ok((latencies, failed))
        }
    });
    let started = Instant::now();
    let results = futures_util::future::try_join_all(workers).await?;
    let elapsed = started.elapsed().as_secs_f64();
    conn.abort();
    let failed = results.iter().map(|(_, f)| f).sum();
    let latencies: Vec<f64> = results.into_iter().flat_map(|(l, _)| l).collect();
    if latencies.is_empty() {
        bail!("HTTP/2 via {} got no 200 response", path.name);
    }
    Ok(Load {
        rps: latencies.len() as f64 / elapsed,
        p50_ms: crate::util::median(&latencies),
        p99_ms: crate::util::percentile(&latencies, 99.0),
        ok: latencies.len() as u64,
        failed,
    })
}

/// Reads a stream of `count` server-sent events, `every_ms` apart, on a new HTTP/1.1
/// connection; returns how long each event took from the origin's write to our read, in ms.
pub(crate) async fn sse_delays(
    path: &Via,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    count: u32,
    every_ms: u64,
) -> Result<Vec<f64>> {
    let stream = connect(path, tls, host, port).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = http::Request::builder()
        .uri(format!("/events/{count}/{every_ms}"))
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    if resp.status() != http::StatusCode::OK {
        bail!(
            "the event stream via {} answered {}",
            path.name,
            resp.status()
        );
    }
    let mut body = resp.into_body();
    let (mut pending, mut delays) = (String::new(), Vec::new());
    while let Some(frame) = body.frame().await {
        let now = super::origin::clock_ns();
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            let stamp: u64 = event
                .trim()
                .strip_prefix("data: ")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("a malformed event via {}: {event:?}", path.name))?;
            delays.push(now.saturating_sub(stamp) as f64 / 1e6);
        }
    }
    conn.abort();
    if delays.len() != count as usize {
        bail!(
            "the event stream via {} brought {} of {count} events",
            path.name,
            delays.len()
        );
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oha_json_is_read_in_milliseconds_with_failures_counted() {
        let json = br#"{
            "summary": {"successRate": 1.0, "requestsPerSec": 1234.5},
            "latencyPercentiles": {"p50": 0.0005, "p99": 0.0021},
            "statusCodeDistribution": {"200": 6000, "403": 3},
            "errorDistribution": {"connection closed": 2, "aborted due to deadline": 1}
        }"#;
        let load = parse_oha(json).unwrap();
        assert_eq!(load.rps, 1234.5);
        assert!((load.p50_ms - 0.5).abs() < 1e-9);
        assert!((load.p99_ms - 2.1).abs() < 1e-9);
        assert_eq!((load.ok, load.failed), (6000, 5));
        assert!(parse_oha(br#"{"summary": {}}"#).is_err());
    }
}
