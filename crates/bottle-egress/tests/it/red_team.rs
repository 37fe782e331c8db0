//! The holes of the December red-team review (`red-team-2026-12.md`), each tried the way an
//! agent would: real clients and raw requests on loopback against the test origin, which
//! records what reaches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bottle_egress::{AuthScheme, EgressConfig, LogMode, ProxyAuth, Route, RouteAuth, Verdict};
use http::Request;

use crate::support::*;

fn bearer() -> Option<RouteAuth> {
    Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "TEST_TOKEN".parse().unwrap(),
    })
}

/// A request inside a tunnel to `host`.
fn request(origin: &Origin, host: &str, method: &str, target: &str) -> Request<BoxBody> {
    Request::builder()
        .method(method)
        .uri(target)
        .header("host", format!("{host}:{}", origin.port))
        .body(empty())
        .unwrap()
}

/// The status, `Proxy-Status` details and body of a refusal.
async fn refusal(resp: http::Response<hyper::body::Incoming>) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let details = resp
        .headers()
        .get("proxy-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("details=").nth(1))
        .unwrap_or("-")
        .trim_matches('"')
        .to_owned();
    (status, details, body_text(resp).await)
}

const CREDENTIALS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "api-key",
    "x-auth-token",
];

/// M4: an OAuth-mode route injected `Authorization: Bearer` next to the client's own
/// `x-api-key`, which the API may prefer. Every client credential is removed first now; a
/// route without `auth` can ask for the same (`strip_client_credentials`, which every
/// built-in route sets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_every_client_credential_is_stripped_before_the_injection() {
    let origin = Origin::start().await;
    let mut oauth = origin_route(&origin);
    oauth.auth = bearer();
    oauth.trust = vec![origin.ca_pem_path.clone()];
    let mut stripped = route_to(OTHER, &origin);
    stripped.strip_client_credentials = true;
    let proxy = Proxy::start(config(&origin, vec![oauth, stripped])).await;
    for host in [ORIGIN, OTHER] {
        let mut client = h1_client_to(&proxy, &origin, host).await;
        let mut req = request(&origin, host, "POST", "/v1/files");
        for name in CREDENTIALS {
            req.headers_mut()
                .insert(name, "attacker-credential".parse().unwrap());
        }
        req.headers_mut()
            .insert("x-custom", "kept".parse().unwrap());
        assert_eq!(status_of(&mut client, req).await, 200);
    }
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    let auth: Vec<_> = seen[0].headers.get_all("authorization").iter().collect();
    assert_eq!(
        auth,
        [&format!("Bearer {TOKEN}")],
        "only the injected credential"
    );
    for (i, s) in seen.iter().enumerate() {
        for name in CREDENTIALS.iter().skip(usize::from(i == 0)) {
            assert!(!s.headers.contains_key(*name), "{name} reached {}", s.path);
        }
        assert_eq!(s.headers["x-custom"], "kept");
    }
}

/// M5: `auth` on a wildcard sends the credential to every sub-domain; it needs an explicit
/// opt-in. And a request an exact route refuses never falls through to a wildcard route (and
/// its credential) for the same host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_an_exact_route_is_final_and_a_wildcard_carries_auth_only_when_told() {
    let origin = Origin::start().await;
    let mut wildcard = route_to(&format!("*.{ORIGIN}"), &origin);
    wildcard.auth = bearer();
    wildcard.trust = vec![origin.ca_pem_path.clone()];
    let err = EgressConfig {
        routes: vec![wildcard.clone()],
        ..EgressConfig::default()
    };
    let err = bottle_egress::Egress::builder(err)
        .certificate_authority(bottle_egress::CertificateAuthority::generate().unwrap())
        .tokens(|_| Some("t".to_owned()))
        .start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("every sub-domain"),
        "refused without the opt-in: {err}"
    );

    wildcard.auth_every_subdomain = true;
    let mut exact = route_to(SUBDOMAINS[0], &origin);
    exact.path_allowlist = vec!["/v1/".parse().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![exact, wildcard])).await;

    let mut api = h1_client_to(&proxy, &origin, SUBDOMAINS[0]).await;
    let resp = send(&mut api, request(&origin, SUBDOMAINS[0], "GET", "/admin")).await;
    let (status, details, _) = refusal(resp).await;
    assert_eq!((status, details.as_str()), (403, "path_not_allowed"));
    assert_eq!(
        status_of(&mut api, request(&origin, SUBDOMAINS[0], "GET", "/v1/x")).await,
        200
    );
    let mut evil = h1_client_to(&proxy, &origin, SUBDOMAINS[1]).await;
    assert_eq!(
        status_of(&mut evil, request(&origin, SUBDOMAINS[1], "GET", "/admin")).await,
        200
    );
    let seen = origin.seen();
    let paths: Vec<_> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/v1/x", "/admin"]);
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "the exact route carries no credential"
    );
    assert_eq!(seen[1].headers["authorization"], format!("Bearer {TOKEN}"));
}

/// A plain-HTTP origin on `127.0.0.1` answering every request with `200 plain`, and how many
/// connections it accepted.
async fn plain_origin() -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counted = served.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nplain\n",
                )
                .await;
        }
    });
    (port, served)
}

/// L1: plain-HTTP absolute-form requests to an IP literal skipped the address check (the
/// connector dials literals without the resolver). A private literal needs `allow_private`
/// at validation, and the connector checks literals itself (unit test
/// `the_connector_refuses_a_literal_its_pool_may_not_reach`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_a_private_literal_needs_allow_private_on_every_path() {
    let err = EgressConfig::from_yaml("routes:\n  - host: 127.0.0.1\n    ports: [8080]\n", None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "2:11: `127.0.0.1` is a loopback address, which the egress refuses unless the route sets `allow_private: true`"
    );

    let origin = Origin::start().await;
    let (port, plain) = plain_origin().await;
    let mut literal = Route::host("127.0.0.1");
    literal.allow_private = true;
    literal.ports = vec![port.try_into().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![literal])).await;
    let get = |host: &str| {
        format!(
            "GET http://{host}:{port}/x HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        )
    };
    let (resp, _) = raw_exchange(proxy.addr(), get("127.0.0.1").as_bytes()).await;
    assert_eq!((resp.status, resp.body.as_str()), (200, "plain\n"));
    let (resp, _) = raw_exchange(proxy.addr(), get("127.0.0.2").as_bytes()).await;
    assert_eq!(resp.status, 403);
    assert!(resp.header("proxy-status").unwrap().contains("ip_literal"));
    assert_eq!(
        plain.load(Ordering::SeqCst),
        1,
        "only the named literal was dialled"
    );
}

/// L6: `allow_private` opened loopback and link-local to any name. A name resolving there is
/// refused now, whatever the route says; only a route naming the literal reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l6_allow_private_never_takes_a_name_to_loopback() {
    let origin = Origin::start().await;
    // `localhost` is resolved by the system (getaddrinfo), not by a fixed answer.
    let localhost = route_to("localhost", &origin);
    let proxy = Proxy::start(config(&origin, vec![localhost])).await;
    let (resp, _) = raw_connect(proxy.addr(), &format!("localhost:{}", origin.port)).await;
    assert_eq!(resp.status, 403);
    insta::assert_snapshot!(
        "l6_deny_loopback_by_name",
        format!(
            "{}\n\n{}",
            resp.header("proxy-status").unwrap(),
            resp.body.replace("::1", "127.0.0.1")
        )
    );
    assert_eq!(proxy.handle.leaves_minted(), 0);
    assert!(origin.seen().is_empty());
}

/// L2: origins that normalize `..;`, backslashes or honour method/URL override headers undo
/// `path_allowlist` and `methods`. Such paths are refused; such headers are removed on routes
/// that limit paths or methods, and `_method=` is refused there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_what_an_origin_would_rewrite_is_refused_or_removed() {
    let origin = Origin::start().await;
    let mut route = origin_route(&origin);
    route.path_allowlist = vec!["/api/public/".parse().unwrap()];
    route.methods = vec!["GET".parse().unwrap(), "POST".parse().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![route])).await;
    let mut client = h1_client(&proxy, &origin).await;
    for (method, target, code) in [
        ("GET", "/api/public/..;/admin/users", "dot_segments"),
        ("GET", "/api/public/..;jsessionid=x/admin", "dot_segments"),
        ("GET", "/api/public/%2e%2e/admin", "dot_segments"),
        ("GET", "/api/public/..%5c..%5cadmin", "backslash"),
        ("GET", "/api/public\\..\\admin", "backslash"),
        (
            "POST",
            "/api/public/item/1?_method=DELETE",
            "method_override",
        ),
    ] {
        let resp = send(&mut client, request(&origin, ORIGIN, method, target)).await;
        let (status, details, _) = refusal(resp).await;
        assert_eq!((status, details.as_str()), (403, code), "{method} {target}");
    }
    let mut req = request(&origin, ORIGIN, "POST", "/api/public/item/1");
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
    ] {
        req.headers_mut().insert(name, "DELETE".parse().unwrap());
    }
    assert_eq!(status_of(&mut client, req).await, 200);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "only the cleaned request reached the origin");
    let names: Vec<_> = seen[0].headers.keys().map(|k| k.as_str()).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("x-")),
        "override headers removed: {names:?}"
    );
}

/// L3: the git-push refusal was a raw string match. Percent-escapes, trailing slashes, the
/// receive-pack content type and WebDAV methods are all refused now, against a real
/// `git http-backend` that would accept the push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_git_push_is_refused_however_it_is_spelled() {
    let origin = Origin::start().await;
    origin.git_repo("r");
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let mut client = h1_client(&proxy, &origin).await;
    let mut tries: Vec<(Request<BoxBody>, &str)> = [
        ("POST", "/git/r.git/git%2Dreceive-pack"),
        ("POST", "/git/r.git/git%2dreceive%2Dpack"),
        ("POST", "/git/r.git/git-receive-pack/"),
        ("GET", "/git/r.git/info/refs?service=git%2Dreceive-pack"),
        ("GET", "/git/r.git/info/refs?service=git-receive-pack/"),
    ]
    .into_iter()
    .map(|(m, t)| (request(&origin, ORIGIN, m, t), "git_push"))
    .collect();
    let mut body = request(&origin, ORIGIN, "POST", "/git/r.git/anything");
    body.headers_mut().insert(
        "content-type",
        "application/x-git-receive-pack-request".parse().unwrap(),
    );
    tries.push((body, "git_push"));
    for method in [
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
    ] {
        tries.push((
            request(&origin, ORIGIN, method, "/git/r.git/"),
            "webdav_method",
        ));
    }
    for (req, code) in tries {
        let shown = format!("{} {}", req.method(), req.uri());
        let (status, details, _) = refusal(send(&mut client, req).await).await;
        assert_eq!((status, details.as_str()), (403, code), "{shown}");
    }
    // Fetching still works.
    let fetch = request(
        &origin,
        ORIGIN,
        "GET",
        "/git/r.git/info/refs?service=git-upload-pack",
    );
    assert_eq!(status_of(&mut client, fetch).await, 200);
    let paths: Vec<_> = origin.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/git/r.git/info/refs"]);
}

/// L4: any `Upgrade` was spliced (h2c smuggling past the path and method policy), and a
/// WebSocket carried anything on a `methods: [GET]` route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l4_only_websockets_are_spliced_and_only_where_allowed() {
    let origin = Origin::start().await;
    let mut limited = route_to(OTHER, &origin);
    limited.methods = vec!["GET".parse().unwrap()];
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin), limited])).await;
    let mut client = h1_client(&proxy, &origin).await;
    let mut h2c = request(&origin, ORIGIN, "GET", "/ws");
    for (k, v) in [
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ] {
        h2c.headers_mut().insert(k, v.parse().unwrap());
    }
    let (status, details, body) = refusal(send(&mut client, h2c).await).await;
    assert_eq!((status, details.as_str()), (403, "upgrade_not_allowed"));
    insta::assert_snapshot!("l4_deny_h2c", body);

    let websocket = |host: &str, key: bool| {
        let mut req = request(&origin, host, "GET", "/ws");
        let mut headers = vec![
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
        ];
        if key {
            headers.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
        }
        for (k, v) in headers {
            req.headers_mut().insert(k, v.parse().unwrap());
        }
        req
    };
    let (status, details, _) = refusal(send(&mut client, websocket(ORIGIN, false)).await).await;
    assert_eq!((status, details.as_str()), (403, "upgrade_not_allowed"));
    let mut other = h1_client_to(&proxy, &origin, OTHER).await;
    let (status, details, body) = refusal(send(&mut other, websocket(OTHER, true)).await).await;
    assert_eq!((status, details.as_str()), (403, "websocket_not_allowed"));
    insta::assert_snapshot!("l4_deny_websocket_on_a_limited_route", body);
    assert!(origin.seen().is_empty(), "nothing reached the origin");

    // `websocket: true` opens it again.
    let mut allowed = route_to(OTHER, &origin);
    allowed.methods = vec!["GET".parse().unwrap()];
    allowed.websocket = Some(true);
    proxy.handle.reload(config(&origin, vec![allowed])).unwrap();
    let mut other = h1_client_to(&proxy, &origin, OTHER).await;
    let resp = send(&mut other, websocket(OTHER, true)).await;
    assert_eq!(resp.status(), 101);
}

/// L7: a route allowed every port of its host. Without `ports` only 443 (80 for plain HTTP)
/// is allowed; with `ports`, exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_a_route_allows_only_its_ports() {
    let origin = Origin::start().await;
    let mut default_ports = origin_route(&origin);
    default_ports.ports.clear();
    let proxy = Proxy::start(config(
        &origin,
        vec![default_ports, route_to(OTHER, &origin)],
    ))
    .await;
    let (resp, _) = raw_connect(proxy.addr(), &format!("{ORIGIN}:{}", origin.port)).await;
    assert_eq!(resp.status, 403);
    insta::assert_snapshot!(
        "l7_deny_port",
        resp.body.replace(&origin.port.to_string(), "[port]")
    );
    let (resp, _) = raw_connect(proxy.addr(), &format!("{OTHER}:22")).await;
    assert_eq!(resp.status, 403);
    assert!(
        resp.header("proxy-status")
            .unwrap()
            .contains("port_not_allowed")
    );
    let (resp, _) = raw_connect(proxy.addr(), &format!("{OTHER}:{}", origin.port)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(proxy.handle.leaves_minted(), 0, "no TLS for a refused port");
}

/// L8: extra roots were trusted for every upstream, so a test or company CA could intercept
/// the credential-bearing one. The config-wide `trust` now applies only to routes without
/// `auth`; a route with `auth` trusts the roots it lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l8_a_company_root_never_verifies_a_credential_bearing_upstream() {
    let origin = Origin::start().await;
    // `config` trusts the origin's CA config-wide.
    let mut keyed = origin_route(&origin);
    keyed.auth = bearer();
    let proxy = Proxy::start(config(&origin, vec![keyed, route_to(OTHER, &origin)])).await;
    let (ok, out, err) = run(curl(&proxy)
        .arg("-i")
        .arg(format!("https://{ORIGIN}:{}/keyed", origin.port)))
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("HTTP/2 502"), "{out}");
    assert!(out.contains("error=tls_certificate_error"), "{out}");
    let (ok, out, err) =
        run(curl(&proxy).arg(format!("https://{OTHER}:{}/bare", origin.port))).await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /bare (0 body bytes)\n");
    let paths: Vec<_> = origin.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/bare"], "the credential never left");

    // Naming the root on the route opens it.
    let mut keyed = origin_route(&origin);
    keyed.auth = bearer();
    keyed.trust = vec![origin.ca_pem_path.clone()];
    proxy.handle.reload(config(&origin, vec![keyed])).unwrap();
    let (ok, out, err) =
        run(curl(&proxy).arg(format!("https://{ORIGIN}:{}/keyed", origin.port))).await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /keyed (0 body bytes)\n");
}

/// L12: introspection answered origin-form requests for any `Host`, so a web page could read
/// `/routes` by DNS rebinding. Only `Host: _egress.local` is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l12_introspection_answers_only_its_own_host() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(config(&origin, vec![origin_route(&origin)])).await;
    let addr = proxy.addr();
    let ask = |host: String| async move {
        raw_exchange(
            addr,
            format!("GET /routes HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        )
        .await
        .0
    };
    let rebound = ask("rebound.attacker.example".to_owned()).await;
    assert_eq!(rebound.status, 400);
    insta::assert_snapshot!("l12_origin_form_for_another_host", rebound.body);
    assert_eq!(ask(proxy.addr().to_string()).await.status, 400);
    let own = ask("_egress.local".to_owned()).await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains(ORIGIN));
}

/// M1 (defence in depth): with `proxy_auth`, every request to the proxy needs the credential;
/// without it the answer is `407`, and the credential never goes upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_the_proxy_credential_is_required_on_every_request_to_the_proxy() {
    let origin = Origin::start().await;
    let mut cfg = config(&origin, vec![origin_route(&origin)]);
    cfg.proxy_auth = Some(ProxyAuth {
        user: "bottle".to_owned(),
        token_ref: "PROXY_TOKEN".parse().unwrap(),
    });
    let proxy = Proxy::start(cfg).await;
    let connect = format!(
        "CONNECT {ORIGIN}:{0} HTTP/1.1\r\nHost: {ORIGIN}:{0}\r\n",
        origin.port
    );
    let wrong = bottle_egress::proxy_authorization("bottle", "not-the-token");
    let right = bottle_egress::proxy_authorization("bottle", PROXY_TOKEN);
    for (request, status) in [
        (format!("{connect}\r\n"), 407),
        (format!("{connect}{wrong}\r\n"), 407),
        (
            format!(
                "{connect}{}\r\n",
                bottle_egress::proxy_authorization("agent", PROXY_TOKEN)
            ),
            407,
        ),
        (
            "GET http://_egress.local/health HTTP/1.1\r\nHost: _egress.local\r\n\r\n".to_owned(),
            407,
        ),
        (
            "GET /health HTTP/1.1\r\nHost: _egress.local\r\n\r\n".to_owned(),
            407,
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: _egress.local\r\n{right}\r\n"),
            200,
        ),
        (format!("{connect}{right}\r\n"), 200),
    ] {
        let (resp, _) = raw_exchange(proxy.addr(), request.as_bytes()).await;
        assert_eq!(resp.status, status, "{request}");
        if status == 407 {
            assert_eq!(
                resp.header("proxy-authenticate"),
                Some("Basic realm=\"bottle-egress\"")
            );
        }
    }
    let (resp, _) = raw_connect(proxy.addr(), &format!("{ORIGIN}:{}", origin.port)).await;
    insta::assert_snapshot!("m1_proxy_auth_required", resp.body);

    // A real client with the credential in its proxy URL.
    let url = format!("http://bottle:{PROXY_TOKEN}@{}", proxy.addr());
    let (ok, out, err) = run(curl(&proxy)
        .args(["-x", &url])
        .arg(format!("https://{ORIGIN}:{}/through", origin.port)))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "hello from origin: /through (0 body bytes)\n");
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("proxy-authorization"));
    let events = proxy.events.all();
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("proxy_auth_required") && e.status == 407),
        "{events:?}"
    );
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(PROXY_TOKEN));
}

/// M7: every refusal was one log line, so a looping agent could fill the host's disk through
/// the egress's log. Repeats of one client for one reason are counted and written as one
/// summary record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m7_a_looping_client_writes_one_record_and_a_summary() {
    let origin = Origin::start().await;
    let mut cfg = config(&origin, vec![origin_route(&origin)]);
    cfg.log = LogMode::Blocks;
    let proxy = Proxy::start(cfg).await;
    for i in 0..200 {
        let (resp, _) = raw_connect(proxy.addr(), &format!("x{i}.invalid:443")).await;
        assert_eq!(resp.status, 403);
    }
    let (resp, _) = raw_connect(proxy.addr(), &format!("{ORIGIN}:22")).await;
    assert_eq!(resp.status, 403);
    let written = proxy.events.all();
    let reasons: Vec<_> = written
        .iter()
        .map(|e| (e.host.as_str(), e.reason.as_deref(), e.repeated))
        .collect();
    assert_eq!(
        reasons,
        [
            ("x0.invalid", Some("host_not_allowed"), None),
            ("origin.test:22", Some("port_not_allowed"), None),
        ]
    );
    let Proxy { handle, events, .. } = proxy;
    handle.shutdown().await;
    let all = events.all();
    let summary = all.last().unwrap();
    assert_eq!(summary.decision, Verdict::Deny);
    assert_eq!(
        (summary.host.as_str(), summary.repeated),
        ("x199.invalid", Some(199))
    );
    assert_eq!(all.len(), 3);
}
