//! The reference path: a blind TCP relay, one more loopback hop and nothing else — no TLS
//! termination, no HTTP, no policy. Whatever share of direct throughput it reaches is the most
//! any proxy hop can reach on this machine in this run (the load generator, the origin and
//! the hop share its cores), so it puts the proxies' figures in proportion.
//!
//! It runs as its own process (`xtask bench relay LISTEN UPSTREAM`), like the proxies, on a
//! single-threaded runtime like bottle-egress's default.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};

/// `xtask bench relay LISTEN UPSTREAM`: relays every connection to `UPSTREAM` until killed.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let [listen, upstream] = args else {
        bail!("usage: xtask bench relay LISTEN_ADDR UPSTREAM_ADDR (started by `bench egress`)");
    };
    let listen: SocketAddr = listen.parse().context("LISTEN_ADDR is host:port")?;
    let upstream: SocketAddr = upstream.parse().context("UPSTREAM_ADDR is host:port")?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: SocketAddr, upstream: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the relay on {listen}"))?;
    loop {
        let (mut client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut origin) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = (client.set_nodelay(true), origin.set_nodelay(true));
            let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
        });
    }
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
        tokio::spawn(serve(relay_addr, echo_addr));
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
}
