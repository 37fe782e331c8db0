//! `clients`: who may use the proxy at all, decided on the source address before any byte is
//! read.

use std::time::Duration;

use bottle_egress::{Cidr, LogMode, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn clients(nets: &[&str]) -> Option<Vec<Cidr>> {
    Some(nets.iter().map(|n| n.parse().unwrap()).collect())
}

/// Everything the proxy sends on a fresh connection after `request`, until it closes it.
async fn answer_to(proxy: &Proxy, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    // The proxy may already have closed (and reset) the socket; neither the write nor the read
    // failing is a problem, only a byte arriving would be.
    let _ = stream.write_all(request).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the proxy closed the connection");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_inside_the_listed_networks_is_served() {
    let origin = Origin::start().await;
    let mut cfg = config(&origin, vec![origin_route(&origin)]);
    cfg.clients = clients(&["10.0.0.0/8", "127.0.0.0/8"]);
    let proxy = Proxy::start(cfg).await;
    let (ok, out, err) =
        run(curl(&proxy).arg(format!("https://{ORIGIN}:{}/hello", origin.port))).await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /hello (0 body bytes)\n");
    assert!(
        proxy
            .events
            .all()
            .iter()
            .all(|e| e.decision == Verdict::Allow
                && e.client == Some("127.0.0.1".parse().unwrap()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_outside_the_listed_networks_is_closed_unanswered() {
    let origin = Origin::start().await;
    let mut cfg = config(&origin, vec![origin_route(&origin)]);
    cfg.clients = clients(&["10.0.0.0/8"]);
    let proxy = Proxy::start(cfg.clone()).await;

    let connect = format!(
        "CONNECT {ORIGIN}:{0} HTTP/1.1\r\nHost: {ORIGIN}:{0}\r\n\r\n",
        origin.port
    );
    let got = answer_to(&proxy, connect.as_bytes()).await;
    assert!(
        got.is_empty(),
        "no response: {:?}",
        String::from_utf8_lossy(&got)
    );
    let got = answer_to(
        &proxy,
        b"GET /health HTTP/1.1\r\nHost: _egress.local\r\n\r\n",
    )
    .await;
    assert!(
        got.is_empty(),
        "not even introspection: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(origin.seen().is_empty());
    assert_eq!(proxy.handle.leaves_minted(), 0);

    // The second refusal repeats the first (same client, same reason): it is counted for the
    // window's summary record, not written.
    let events = proxy.events.all();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.decision, Verdict::Deny);
    assert_eq!(e.reason.as_deref(), Some("client_not_allowed"));
    assert_eq!(e.client, Some("127.0.0.1".parse().unwrap()));
    assert_eq!((e.host.as_str(), e.method.as_str(), e.status), ("", "", 0));
    let line = serde_json::to_value(e).unwrap();
    assert_eq!(line["client"], "127.0.0.1");

    // `log: off` refuses just the same, silently.
    cfg.log = LogMode::Off;
    proxy.handle.reload(cfg.clone()).unwrap();
    assert!(answer_to(&proxy, connect.as_bytes()).await.is_empty());
    assert_eq!(proxy.events.all().len(), 1);

    // The list is part of the live config: a reload that admits loopback opens the door.
    cfg.clients = clients(&["10.0.0.0/8", "127.0.0.1"]);
    proxy.handle.reload(cfg).unwrap();
    let (resp, _) = raw_connect(proxy.addr(), &format!("{ORIGIN}:{}", origin.port)).await;
    assert_eq!(resp.status, 200);
}
