//! Decisions over the wire: allow, deny by host / IP literal / private address / path /
//! method / git push / Host mismatch / SNI mismatch, credential injection, introspection,
//! audit records, upstream verification.

use bottle_egress::{AuthScheme, LogMode, Route, RouteAuth, Verdict};
use http::Request;

use crate::support::*;

fn snapshot_403(resp: &RawResponse) -> String {
    format!(
        "status: {}\nproxy-status: {}\ncontent-type: {}\n\n{}",
        resp.status,
        resp.header("proxy-status").unwrap_or("-"),
        resp.header("content-type").unwrap_or("-"),
        resp.body
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_an_unlisted_host_is_refused_before_tls() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let (resp, _) = raw_connect(proxy.addr(), "denied.example.com:443").await;
    assert_eq!(resp.status, 403);
    insta::assert_snapshot!("deny_host", snapshot_403(&resp));
    // No leaf is ever minted for a host no route allows.
    assert_eq!(proxy.handle.leaves_minted(), 0);
    let events = proxy.events.all();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].decision, Verdict::Deny);
    assert_eq!(events[0].reason.as_deref(), Some("host_not_allowed"));
    assert_eq!(events[0].method, "CONNECT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_literals_are_refused_unless_a_route_names_them() {
    let origin = Origin::start().await;
    let literal = route_to("127.0.0.1", &origin);
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin), literal])).await;

    let (resp, _) = raw_connect(proxy.addr(), "127.0.0.2:443").await;
    assert_eq!(resp.status, 403);
    insta::assert_snapshot!("deny_ip_literal", snapshot_403(&resp));

    // The named literal works end to end; curl verifies the leaf's IP SAN.
    let (ok, out, err) =
        run(curl(&proxy).arg(format!("https://127.0.0.1:{}/by-ip", origin.port))).await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /by-ip (0 body bytes)\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_need_allow_private() {
    let origin = Origin::start().await;
    // origin.test resolves to 127.0.0.1; this route does not allow private addresses.
    let mut plain = route_to(ORIGIN, &origin);
    plain.allow_private = false;
    let mut localhost = Route::host("localhost");
    localhost.ports = vec![9_u16.try_into().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![plain, localhost])).await;
    let (resp, _) = raw_connect(proxy.addr(), &format!("{ORIGIN}:{}", origin.port)).await;
    assert_eq!(resp.status, 403);
    insta::assert_snapshot!("deny_private_address", snapshot_403(&resp));
    // Absolute-form plain HTTP is checked the same way.
    let (resp, _) = raw_exchange(
        proxy.addr(),
        b"GET http://localhost:9/ HTTP/1.1\r\nHost: localhost:9\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 403);
    assert!(
        resp.header("proxy-status")
            .unwrap()
            .contains("destination_ip_prohibited")
    );
    assert!(origin.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_and_methods_outside_the_route_are_refused() {
    let origin = Origin::start().await;
    let mut route = origin_route(&origin);
    route.path_allowlist = vec!["/v1/".parse().unwrap()];
    route.methods = vec!["GET".parse().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![route])).await;
    let mut client = h1_client(&proxy, &origin).await;

    let resp = send(&mut client, get(&origin, "/v1/models")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body_text(resp).await,
        "hello from origin: /v1/models (0 body bytes)\n"
    );

    let resp = send(&mut client, get(&origin, "/admin")).await;
    assert_eq!(resp.status(), 403);
    let status = resp.headers()["proxy-status"].to_str().unwrap().to_owned();
    insta::assert_snapshot!(
        "deny_path",
        format!("{status}\n\n{}", body_text(resp).await)
    );

    let mut delete = get(&origin, "/v1/models/x");
    *delete.method_mut() = http::Method::DELETE;
    let resp = send(&mut client, delete).await;
    assert_eq!(resp.status(), 403);
    insta::assert_snapshot!("deny_method", body_text(resp).await);

    let resp = send(&mut client, get(&origin, "/v1/../admin")).await;
    assert_eq!(resp.status(), 403);

    let paths: Vec<String> = origin.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec!["/v1/models"],
        "refused requests never reach the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_injected_and_client_credentials_stripped() {
    let origin = Origin::start().await;
    let mut route = origin_route(&origin);
    route.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    // A route with `auth` trusts only the roots it names.
    route.trust = vec![origin.ca_pem_path.clone()];
    let mut keyed = route_to(OTHER, &origin);
    keyed.trust = vec![origin.ca_pem_path.clone()];
    keyed.auth = Some(RouteAuth::Header {
        header: "X-Api-Key".parse().unwrap(),
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    let proxy = Proxy::start(config(&origin, vec![route, keyed])).await;

    let (ok, _, err) = run(curl(&proxy)
        .args([
            "-H",
            "Authorization: Bearer agent-forged",
            "-H",
            "X-Custom: kept",
        ])
        .args(["--proxy-user", "agent:pw"])
        .arg(format!("https://{ORIGIN}:{}/inject", origin.port)))
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(curl(&proxy)
        .args([
            "-H",
            "x-api-key: agent-forged",
            "-H",
            "Authorization: Basic YWdlbnQ=",
        ])
        .arg(format!("https://{OTHER}:{}/keyed", origin.port)))
    .await;
    assert!(ok, "{err}");

    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    let auth: Vec<_> = seen[0].headers.get_all("authorization").iter().collect();
    assert_eq!(auth, vec![&format!("Bearer {TOKEN}")]);
    assert_eq!(seen[0].headers["x-custom"], "kept");
    assert!(!seen[0].headers.contains_key("proxy-authorization"));
    let keys: Vec<_> = seen[1].headers.get_all("x-api-key").iter().collect();
    assert_eq!(keys, vec![TOKEN]);
    assert!(!seen[1].headers.contains_key("authorization"));

    let log = serde_json::to_string(&proxy.events.all()).unwrap();
    assert!(
        !log.contains(TOKEN),
        "the audit log must never hold a credential"
    );
    assert!(!log.contains("agent-forged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_naming_another_host_is_refused() {
    let origin = Origin::start().await;
    let other = route_to(OTHER, &origin);
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin), other])).await;
    // curl sends SNI origin.test and Host other.test: domain fronting.
    let (ok, out, err) = run(curl(&proxy)
        .args(["-H", &format!("Host: {OTHER}")])
        .arg(format!("https://{ORIGIN}:{}/fronted", origin.port)))
    .await;
    assert!(ok, "{err}");
    insta::assert_snapshot!("deny_host_mismatch", out);
    assert!(origin.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sni_naming_another_host_aborts_the_handshake() {
    let origin = Origin::start().await;
    let other = route_to(OTHER, &origin);
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin), other])).await;
    let result = tls_tunnel(&proxy, &format!("{ORIGIN}:{}", origin.port), OTHER, &[]).await;
    assert!(result.is_err(), "the handshake must fail");
    let ok = tls_tunnel(&proxy, &format!("{ORIGIN}:{}", origin.port), ORIGIN, &[]).await;
    assert!(ok.is_ok(), "the matching SNI succeeds: {ok:?}");
    let events = proxy.events.all();
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("sni_mismatch")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_certificates_are_verified() {
    let origin = Origin::start().await;
    let mut c = config(&origin, vec![origin_route(&origin)]);
    c.trust.clear(); // The origin's test CA is now unknown: only the Mozilla roots remain.
    let proxy = Proxy::start(c).await;
    let (ok, out, _) = run(curl(&proxy)
        .args(["-i"])
        .arg(format!("https://{ORIGIN}:{}/x", origin.port)))
    .await;
    assert!(ok);
    assert!(out.contains("HTTP/2 502"), "{out}");
    assert!(
        out.contains("proxy-status: bottle-egress; error=tls_certificate_error"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_lists_routes_without_token_values() {
    let origin = Origin::start().await;
    let mut route = origin_route(&origin);
    route.path_allowlist = vec!["/v1/".parse().unwrap()];
    route.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    let proxy = Proxy::start(config(&origin, vec![route])).await;
    let (ok, out, err) = run(curl(&proxy).arg("http://_egress.local/routes")).await;
    assert!(ok, "{err}");
    assert!(!out.contains(TOKEN));
    insta::assert_snapshot!(
        "introspection_routes",
        out.replace(&origin.port.to_string(), "[port]")
    );
    let (ok, out, _) = run(curl(&proxy).arg("http://_egress.local/health")).await;
    assert!(ok);
    assert_eq!(out, "ok\n");
    // Over a bumped tunnel too.
    let (ok, out, err) = run(curl(&proxy).arg("https://_egress.local/health")).await;
    assert!(ok, "{err}");
    assert_eq!(out, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_each_decision_with_bytes() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut client = h1_client(&proxy, &origin).await;
    let req = Request::builder()
        .method("POST")
        .uri("/upload?token=not-logged")
        .header("host", format!("{ORIGIN}:{}", origin.port))
        .body(full(vec![b'a'; 1000]))
        .unwrap();
    let resp = send(&mut client, req).await;
    assert_eq!(
        body_text(resp).await,
        "hello from origin: /upload (1000 body bytes)\n"
    );
    let resp = send(&mut client, get(&origin, "/bytes/5000")).await;
    assert_eq!(body_text(resp).await.len(), 5000);
    drop(client);
    // The event is written once both bodies are done; give the connection task a moment.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = proxy.events.all();
        if events.iter().filter(|e| e.method != "CONNECT").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let requests: Vec<_> = events.iter().filter(|e| e.method != "CONNECT").collect();
    assert_eq!(requests.len(), 2, "{events:?}");
    let post = requests.iter().find(|e| e.method == "POST").unwrap();
    assert_eq!(post.path, "/upload");
    assert_eq!(post.bytes_up, 1000);
    assert_eq!(post.status, 200);
    assert_eq!(post.route.as_deref(), Some(ORIGIN));
    assert_eq!(post.decision, Verdict::Allow);
    let get = requests.iter().find(|e| e.method == "GET").unwrap();
    assert_eq!(get.bytes_down, 5000);
    assert_eq!(origin.seen()[0].method, "POST");
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains("not-logged"), "queries are never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_log_blocks_only_refusals_are_recorded_even_those_found_upstream() {
    let origin = Origin::start().await;
    // `other.test` may reach its private address; `origin.test` may not, which is found only
    // when a plain-HTTP request is about to dial it (the front door decides on the route; the
    // address is checked on the addresses dialled).
    let mut outer = route_to(ORIGIN, &origin);
    outer.allow_private = false;
    let mut cfg = config(&origin, vec![route_to(OTHER, &origin), outer]);
    cfg.log = LogMode::Blocks;
    let proxy = Proxy::start(cfg).await;
    let tls = tls_tunnel(
        &proxy,
        &format!("{OTHER}:{}", origin.port),
        OTHER,
        &[b"http/1.1"],
    )
    .await
    .unwrap();
    let (mut client, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let inner = Request::builder()
        .uri("/inner/a")
        .header("host", format!("{OTHER}:{}", origin.port))
        .body(empty())
        .unwrap();
    assert_eq!(status_of(&mut client, inner).await, 200);
    let (resp, _) = raw_exchange(
        proxy.addr(),
        format!(
            "GET http://{ORIGIN}:{0}/outer/b HTTP/1.1\r\nHost: {ORIGIN}:{0}\r\n\r\n",
            origin.port
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 403);
    drop(client);
    let mut events = Vec::new();
    for _ in 0..100 {
        events = proxy.events.all();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 1, "only the refusal: {events:?}");
    assert_eq!(events[0].path, "/outer/b");
    assert_eq!(events[0].decision, Verdict::Deny);
    assert_eq!(events[0].status, 403);
    assert_eq!(events[0].reason.as_deref(), Some("private_address"));
    assert_eq!(origin.seen().len(), 1);
}
