//! The reference hops: relays that do less than any intercepting proxy can, so their share of
//! direct throughput bounds what a proxy hop can reach on this machine in this run (the load
//! generator, the origin and the hop share its cores).
//!
//! - **blind**: one more loopback hop and nothing else — bytes copied, no TLS, no HTTP.
//! - **TLS**: the least an intercepting proxy must do — the client's TLS terminated and the
//!   bytes re-encrypted to the origin (verified), one upstream connection per client
//!   connection — and nothing else: no HTTP, no policy.
//!
//! Each runs as its own process (`xtask bench relay …`), like the proxies, on a
//! single-threaded runtime like bottle-egress's default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const USAGE: &str = "usage: xtask-bench bench relay LISTEN_ADDR UPSTREAM_ADDR [--tls CERT_PEM KEY_PEM CA_PEM] (started by `xtask-bench bench egress`)";

/// The name the TLS relay presents and expects from the origin.
pub(crate) const TLS_NAME: &str = "localhost";

/// What a relay does with the bytes.
#[derive(Clone)]
enum Mode {
    Blind,
    Tls {
        acceptor: TlsAcceptor,
        connector: TlsConnector,
    },
}

/// `xtask bench relay LISTEN UPSTREAM [--tls CERT KEY CA]`: relays every connection to
/// `UPSTREAM` until killed.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let (listen, upstream, tls) = match args {
        [listen, upstream] => (listen, upstream, None),
        [listen, upstream, flag, cert, key, ca] if flag == "--tls" => {
            (listen, upstream, Some([cert, key, ca].map(PathBuf::from)))
        }
        _ => bail!("{USAGE}"),
    };
    let listen: SocketAddr = listen.parse().context("LISTEN_ADDR is host:port")?;
    let upstream: SocketAddr = upstream.parse().context("UPSTREAM_ADDR is host:port")?;
    let mode = match tls {
        None => Mode::Blind,
        Some([cert, key, ca]) => tls_mode(&cert, &key, &ca)?,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream, mode))
}

fn tls_mode(cert: &Path, key: &Path, ca: &Path) -> Result<Mode> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let chain = CertificateDer::pem_slice_iter(&read(cert)?).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // The relay passes bytes through, so both legs must agree on the protocol: HTTP/1.1.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
        roots.add(cert?)?;
    }
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Mode::Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
    })
}

async fn serve(listen: SocketAddr, upstream: SocketAddr, mode: Mode) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the relay on {listen}"))?;
    loop {
        let (client, _) = listener.accept().await?;
        let mode = mode.clone();
        tokio::spawn(async move {
            let Ok(origin) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = (client.set_nodelay(true), origin.set_nodelay(true));
            let _ = relay(client, origin, mode).await;
        });
    }
}

async fn relay(mut client: TcpStream, mut origin: TcpStream, mode: Mode) -> Result<()> {
    match mode {
        Mode::Blind => {
            tokio::io::copy_bidirectional(&mut client, &mut origin).await?;
        }
        Mode::Tls {
            acceptor,
            connector,
        } => {
            let mut client = acceptor.accept(client).await?;
            let name = ServerName::try_from(TLS_NAME)?;
            let mut origin = connector.connect(name, origin).await?;
            tokio::io::copy_bidirectional(&mut client, &mut origin).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_pass_both_ways_unchanged() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay_addr = listen.local_addr().unwrap();
        drop(listen);
        tokio::spawn(serve(relay_addr, echo_addr, Mode::Blind));
        let mut client = loop {
            if let Ok(c) = TcpStream::connect(relay_addr).await {
                break c;
            }
            tokio::task::yield_now().await;
        };
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tls_relay_reencrypts_to_a_verified_origin() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::egress::origin::TestCa::generate().unwrap();
        let (cert, key, ca_pem) = (
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
            dir.path().join("ca.pem"),
        );
        ca.write_pem(&ca_pem).unwrap();
        ca.write_leaf(vec![TLS_NAME.to_owned()], &cert, &key)
            .unwrap();
        let origin = crate::egress::origin::Origin::start(&ca, &[], false)
            .await
            .unwrap();
        let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay_addr = listen.local_addr().unwrap();
        drop(listen);
        let mode = tls_mode(&cert, &key, &ca_pem).unwrap();
        let origin_addr = SocketAddr::from(([127, 0, 0, 1], origin.port));
        tokio::spawn(serve(relay_addr, origin_addr, mode));

        let tcp = loop {
            if let Ok(c) = TcpStream::connect(relay_addr).await {
                break c;
            }
            tokio::task::yield_now().await;
        };
        // The client trusts only the test CA, which signed the relay's leaf.
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca_pem).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(TLS_NAME).unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.ends_with(std::str::from_utf8(crate::egress::origin::SMALL_BODY).unwrap()),
            "{response}"
        );
    }

    #[test]
    fn arguments_are_checked() {
        let args = |a: &[&str]| a.iter().map(ToString::to_string).collect::<Vec<_>>();
        let err = run(&args(&["127.0.0.1:1"])).unwrap_err().to_string();
        assert!(err.starts_with("usage: xtask-bench bench relay"), "{err}");
        let err = run(&args(&[
            "127.0.0.1:1",
            "127.0.0.1:2",
            "--tls",
            "/nonexistent",
            "k",
            "c",
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("reading /nonexistent"), "{err}");
    }
}
