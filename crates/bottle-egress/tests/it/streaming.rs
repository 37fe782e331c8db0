//! Streaming: SSE events pass one by one, HTTP/2 on both legs, WebSocket upgrades, large
//! bodies.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_before_the_stream_ends() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut client = h1_client(&proxy, &origin).await;
    let resp = send(&mut client, get(&origin, "/sse")).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The origin holds the second event until the first has reached the client: a proxy that
    // buffered the stream would never deliver the first one (and the timeout fails the test).
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first event arrives while the stream is still open")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: one\n\n");
    origin.gate.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "data: two\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_on_both_sides() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    // curl negotiates h2 inside the tunnel; the egress negotiates h2 with the origin.
    let (ok, out, err) = run(curl(&proxy)
        .args(["--http2", "-w", "\n%{http_version}"])
        .arg(format!("https://{ORIGIN}:{}/h2", origin.port)))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /h2 (0 body bytes)\n\n2");
    assert_eq!(origin.seen()[0].version, http::Version::HTTP_2);

    // hyper's h2 client, several streams on one connection.
    let tls = tls_tunnel(
        &proxy,
        &format!("{ORIGIN}:{}", origin.port),
        ORIGIN,
        &[b"h2"],
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut tasks = Vec::new();
    for i in 0..5 {
        let mut sender = sender.clone();
        let uri = format!("https://{ORIGIN}:{}/stream/{i}", origin.port);
        tasks.push(tokio::spawn(async move {
            let req = http::Request::builder().uri(uri).body(empty()).unwrap();
            body_text(sender.send_request(req).await.unwrap()).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(
            t.await.unwrap(),
            format!("hello from origin: /stream/{i} (0 body bytes)\n")
        );
    }
    // h2 clients must not be able to front either.
    let mut sender = sender.clone();
    let req = http::Request::builder()
        .uri(format!("https://{OTHER}:{}/x", origin.port))
        .body(empty())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_are_spliced() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut client = h1_client(&proxy, &origin).await;
    let req = http::Request::builder()
        .uri("/ws")
        .header("host", format!("{ORIGIN}:{}", origin.port))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .unwrap();
    let resp = send(&mut client, req).await;
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    let upgraded = hyper::upgrade::on(resp).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    // A masked WebSocket text frame "hi"; the origin echoes bytes back unchanged.
    let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    io.write_all(&frame).await.unwrap();
    let mut echoed = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, frame);
    let seen = origin.seen();
    assert_eq!(seen[0].headers["upgrade"], "websocket");
    assert_eq!(seen[0].version, http::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_through() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let (ok, out, err) = run(curl(&proxy)
        .args(["-o", "/dev/null", "-w", "%{size_download}"])
        .arg(format!(
            "https://{ORIGIN}:{}/bytes/{}",
            origin.port,
            8 * 1024 * 1024
        )))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, (8 * 1024 * 1024).to_string());
}
