//! The local HTTPS origin every path of the benchmark reaches: hyper (HTTP/1.1 and HTTP/2 by
//! ALPN) over rustls, with a leaf signed by a throw-away test CA that the proxies trust through
//! their own configuration (`trust:` for bottle-egress, `ssl_verify_upstream_trusted_ca` for
//! mitmdump) and the direct client through `--cacert`.
//!
//! It listens on `127.0.0.1` and on the extra loopback addresses used as never-seen hosts, all
//! on one port, so a first contact differs from a warm request only by the host.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The body of `GET /`: small, so the request rate measures the path, not the payload.
pub(crate) const SMALL_BODY: &[u8] = b"hello from the bench origin\n";
/// The chunk size of `GET /bytes/N`; the large body is streamed, never held whole.
const CHUNK: usize = 64 * 1024;

/// The test CA that signs the origin's leaf.
pub(crate) struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
}

impl TestCa {
    pub(crate) fn generate() -> Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bench origin test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert, key, params })
    }

    pub(crate) fn write_pem(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.cert.pem()).with_context(|| format!("writing {}", path.display()))
    }

    /// A leaf for `names` (DNS names or IP literals), with the AKI strict verifiers want.
    fn signed_leaf(&self, names: Vec<String>) -> Result<(rcgen::Certificate, rcgen::KeyPair)> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bench origin");
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert, key))
    }

    /// A leaf for `names` and its chain, for a server in this process.
    fn leaf(
        &self,
        names: Vec<String>,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let (cert, key) = self.signed_leaf(names)?;
        let chain = vec![cert.der().clone(), self.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((chain, key))
    }

    /// A leaf for `names` written as PEM (the chain to `cert`, the key to `key`), for a
    /// server in another process (the TLS relay).
    pub(crate) fn write_leaf(&self, names: Vec<String>, cert: &Path, key: &Path) -> Result<()> {
        let (leaf, leaf_key) = self.signed_leaf(names)?;
        std::fs::write(cert, format!("{}{}", leaf.pem(), self.cert.pem()))
            .with_context(|| format!("writing {}", cert.display()))?;
        std::fs::write(key, leaf_key.serialize_pem())
            .with_context(|| format!("writing {}", key.display()))
    }
}

/// A DNS name for a never-seen host at `ip` (`h7.bench.test` for 127.0.0.7), in the origin's
/// leaf. Squid reaches its never-seen hosts by these names, resolved from a hosts file of its
/// own: bumping a `CONNECT` to an IP literal, it mints a leaf naming the IP as a DNS name, which
/// a strict client rightly refuses. The other paths use the IP literals (nothing resolves
/// these names for them).
pub(crate) fn host_name(ip: IpAddr) -> String {
    let last = match ip {
        IpAddr::V4(v4) => v4.octets()[3].to_string(),
        IpAddr::V6(v6) => v6.segments()[7].to_string(),
    };
    format!("h{last}.bench.test")
}

/// A running origin; dropping it stops every listener and connection.
pub(crate) struct Origin {
    pub(crate) port: u16,
    _tasks: JoinSet<()>,
}

impl Origin {
    /// Serve on `localhost` (127.0.0.1) and on each of `extra` (other loopback addresses),
    /// offering HTTP/2 and HTTP/1.1 by ALPN, or HTTP/1.1 only when `h2` is false.
    pub(crate) async fn start(ca: &TestCa, extra: &[IpAddr], h2: bool) -> Result<Origin> {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(extra.iter().map(ToString::to_string));
        names.extend(extra.iter().map(|ip| host_name(*ip)));
        let (chain, key) = ca.leaf(names)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        config.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let first = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the origin")?;
        let port = first.local_addr()?.port();
        let mut listeners = vec![first];
        for ip in extra {
            listeners.push(
                TcpListener::bind(SocketAddr::new(*ip, port))
                    .await
                    .with_context(|| format!("binding the origin on {ip}:{port}"))?,
            );
        }
        let mut tasks = JoinSet::new();
        for listener in listeners {
            tasks.spawn(accept_loop(listener, acceptor.clone()));
        }
        Ok(Origin {
            port,
            _tasks: tasks,
        })
    }
}

async fn accept_loop(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    // Connections live in this set, so dropping the origin (aborting this task) ends them too.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Reap finished connections as we go, so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let svc = service_fn(|req: http::Request<Incoming>| async move {
                Ok::<_, Infallible>(serve(req).await)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The clock the origin stamps server-sent events with and the client reads them by: both live
/// in the bench process, so one monotonic clock serves both ends.
pub(crate) fn clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The origin's routes:
/// - `/upload` (any method) reads the whole body and answers its length in bytes;
/// - `/events/N/MS` is a stream of N server-sent events, one every MS ms, each `data:` the
///   [`clock_ns`] at which it was written;
/// - the rest is answered by [`respond`].
async fn serve(req: http::Request<Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/upload" {
        let mut body = req.into_body();
        let mut n: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => n += frame.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        return http::Response::new(Full::new(Bytes::from(format!("{n}\n"))).boxed());
    }
    if let Some((count, every_ms)) = path
        .strip_prefix("/events/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(n, ms)| Some((n.parse::<u32>().ok()?, ms.parse::<u64>().ok()?)))
    {
        return events(count, Duration::from_millis(every_ms));
    }
    respond(&path)
}

/// `count` server-sent events, `every` apart, each sent as its own chunk.
fn events(count: u32, every: Duration) -> http::Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..count {
            tick.tick().await;
            let event = format!("data: {}\n\n", clock_ns());
            if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let mut resp = http::Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// `GET /bytes/N` streams N bytes in 64 KiB chunks; anything else is [`SMALL_BODY`].
fn respond(path: &str) -> http::Response<Body> {
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        let mut left = n;
        let frames = std::iter::from_fn(move || {
            let take = left.min(chunk.len());
            left -= take;
            (take > 0).then(|| Ok::<_, Infallible>(Frame::data(chunk.slice(..take))))
        });
        let mut resp =
            http::Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, n.into());
        return resp;
    }
    let mut resp = http::Response::new(Full::new(Bytes::from_static(SMALL_BODY)).boxed());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_large_body_is_streamed_in_full() {
        let resp = respond("/bytes/200000");
        assert_eq!(resp.headers()[http::header::CONTENT_LENGTH], "200000");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 200_000);
        let small = respond("/").into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&small[..], SMALL_BODY);
    }
}
