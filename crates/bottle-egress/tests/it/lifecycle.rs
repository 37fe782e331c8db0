//! Reload with open connections, draining shutdown, malformed and oversized requests.

use std::time::Duration;

use bottle_egress::{AuthScheme, RouteAuth};
use http_body_util::BodyExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_to_open_connections_without_dropping_them() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut client = h1_client(&proxy, &origin).await;
    assert_eq!(status_of(&mut client, get(&origin, "/a")).await, 200);

    // Narrow the route: the same open connection now gets 403 for other paths.
    let mut narrowed = origin_route(&origin);
    narrowed.path_allowlist = vec!["/only/".parse().unwrap()];
    proxy
        .handle
        .reload(config(&origin, vec![narrowed]))
        .unwrap();
    assert!(!client.is_closed(), "the tunnel is still open");
    assert_eq!(status_of(&mut client, get(&origin, "/a")).await, 403);
    assert_eq!(status_of(&mut client, get(&origin, "/only/x")).await, 200);

    // A bad config is refused and the current one stays in force.
    let mut bad = origin_route(&origin);
    bad.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "NOT_SET_ANYWHERE".parse().unwrap(),
    });
    let err = proxy.handle.reload(config(&origin, vec![bad])).unwrap_err();
    insta::assert_snapshot!("reload_refused", err.to_string());
    assert_eq!(status_of(&mut client, get(&origin, "/only/y")).await, 200);
    assert_eq!(status_of(&mut client, get(&origin, "/a")).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_open_requests_and_stops_accepting() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let addr = proxy.addr();
    let mut client = h1_client(&proxy, &origin).await;
    let resp = send(&mut client, get(&origin, "/sse")).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "data: one\n\n");

    let Proxy { handle, .. } = proxy;
    let shutdown = tokio::spawn(handle.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the open stream"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections are accepted while draining"
    );
    origin.gate.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "data: two\n\n");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes once the stream ends")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_a_clean_error() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;

    let (resp, _) = raw_exchange(proxy.addr(), b"GARBAGE\x01\x02 nonsense\r\n\r\n").await;
    assert_eq!(resp.status, 400);

    let (resp, _) = raw_exchange(proxy.addr(), b"CONNECT HTTP/1.1\r\n\r\n").await;
    assert_eq!(resp.status, 400);

    let (resp, _) = raw_exchange(
        proxy.addr(),
        b"GET https://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n",
    )
    .await;
    assert_eq!(
        resp.status, 400,
        "absolute-form https is not forwarded: {resp:?}"
    );

    // 100 KiB of headers: hyper refuses with 431 (Request Header Fields Too Large).
    let mut big = b"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend(b"\r\n\r\n");
    let (resp, _) = raw_exchange(proxy.addr(), &big).await;
    assert_eq!(resp.status, 431);

    // Inside a tunnel: a request with two Host headers.
    let mut client = h1_client(&proxy, &origin).await;
    let mut req = get(&origin, "/x");
    req.headers_mut()
        .append("host", "second.example".parse().unwrap());
    assert_eq!(send(&mut client, req).await.status(), 400);

    // The proxy is still serving.
    let (resp, _) = raw_exchange(
        proxy.addr(),
        b"GET /health HTTP/1.1\r\nHost: _egress.local\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(origin.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_tls_bytes_in_a_tunnel_are_never_relayed() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let (resp, mut stream) = raw_connect(proxy.addr(), &format!("{ORIGIN}:{}", origin.port)).await;
    assert_eq!(resp.status, 200);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(n.is_err() || !String::from_utf8_lossy(&buf).contains("hello from origin"));
    assert!(origin.seen().is_empty(), "no blind tunnel");
}
