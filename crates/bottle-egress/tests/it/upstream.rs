//! How requests reach the origin: the first connection dialled while the client is still in
//! its handshake with us, and the upstream protocol chosen per request.

use std::time::Duration;

use http::Version;

use crate::support::{Origin, Proxy, body_text, config, get, h1_client, origin_route, send};

/// Waits up to 5 s for `done`.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_handshake_starts_before_the_first_request() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    // A tunnel and its TLS handshake, no request yet.
    let mut client = h1_client(&proxy, &origin).await;
    assert!(
        eventually(|| origin.handshakes() == 1).await,
        "the origin saw {} handshakes before any request",
        origin.handshakes()
    );
    assert!(origin.seen().is_empty());
    // The first request uses that connection: no second handshake.
    let resp = send(&mut client, get(&origin, "/first")).await;
    assert_eq!(
        body_text(resp).await,
        "hello from origin: /first (0 body bytes)\n"
    );
    assert_eq!(origin.handshakes(), 1);
    assert_eq!(origin.seen()[0].version, Version::HTTP_11);

    // A second tunnel to the same host right away: the pool has a connection, so nothing is
    // dialled ahead and the request reuses it.
    let mut again = h1_client(&proxy, &origin).await;
    let resp = send(&mut again, get(&origin, "/again")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(origin.handshakes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_request_goes_as_http1_and_one_in_company_shares_http2() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut first = h1_client(&proxy, &origin).await;
    let mut second = h1_client(&proxy, &origin).await;

    // Alone: HTTP/1.1 upstream. Its response head waits for the gate.
    let hold = get(&origin, "/hold");
    let held = tokio::spawn(async move { body_text(send(&mut first, hold).await).await });
    assert!(eventually(|| origin.seen().len() == 1).await);
    assert_eq!(origin.seen()[0].path, "/hold");
    assert_eq!(origin.seen()[0].version, Version::HTTP_11);

    // In company (the first still waits for its head): HTTP/2 upstream.
    let resp = send(&mut second, get(&origin, "/company")).await;
    assert_eq!(
        body_text(resp).await,
        "hello from origin: /company (0 body bytes)\n"
    );
    let company = origin
        .seen()
        .into_iter()
        .find(|s| s.path == "/company")
        .unwrap();
    assert_eq!(company.version, Version::HTTP_2);

    origin.gate.notify_one();
    assert_eq!(held.await.unwrap(), "held\n");
}
