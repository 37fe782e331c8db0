//! DLP: a secret in the path, the query, a header or the body — raw or encoded, split across
//! chunks, gzip'd, over HTTP/1.1 and HTTP/2 — is refused with a `403` naming the rule, and
//! none of its bytes reaches the origin; `dlp: off` lets it through; the injected credential
//! never counts.

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bottle_egress::{EgressConfig, Route, RouteAuth};
use bottle_manifest::route::Dlp;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::*;

/// An AWS access key id (the detector's own documentation example shape).
const AWS_KEY: &str = "AKIAZ3MHQ4VX7NB2KDLT";

fn dlp_config(origin: &Origin, routes: Vec<Route>) -> EgressConfig {
    let mut config = config(origin, routes);
    config.known_secrets = vec!["DLP_SECRET".parse().unwrap()];
    config
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The secret in every form a sender may give it, each inside other text.
fn encoded_forms() -> Vec<(&'static str, String)> {
    let secret = DLP_SECRET.as_bytes();
    let wrapped = |before: &str| {
        let mut data = before.as_bytes().to_vec();
        data.extend_from_slice(secret);
        data.extend_from_slice(b"!");
        data
    };
    vec![
        ("raw", DLP_SECRET.to_owned()),
        ("hex", hex(secret)),
        ("percent", percent(secret)),
        ("base64", STANDARD.encode(wrapped(""))),
        ("base64 at 1", STANDARD.encode(wrapped("a"))),
        ("base64 at 2", STANDARD.encode(wrapped("ab"))),
        ("base64url", URL_SAFE_NO_PAD.encode(wrapped("ab"))),
    ]
}

/// Runs curl; (status, body).
async fn curl_status(cmd: &mut tokio::process::Command) -> (u16, String) {
    let (ok, out, err) = run(cmd.args(["-w", "\n%{http_code}"])).await;
    assert!(ok, "{err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

fn assert_refused(proxy: &Proxy, what: &str, status: u16, body: &str, rule: &str) {
    assert_eq!(status, 403, "{what}: {body}");
    assert!(
        body.contains(rule),
        "{what}: the answer names the rule: {body}"
    );
    assert!(
        !body.contains(DLP_SECRET),
        "{what}: the answer shows the secret"
    );
    assert!(
        audited(proxy, "secret_in_request") > 0,
        "{what}: the refusal is audited"
    );
    for event in proxy.events.all() {
        assert!(
            !event.path.contains("w0rd"),
            "{what}: the audit shows the secret"
        );
    }
}

/// How many audit records have this reason (records are written as exchanges end: waits a
/// little for the last one).
fn audited(proxy: &Proxy, reason: &str) -> usize {
    let count = || {
        proxy
            .events
            .all()
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .count()
    };
    for _ in 0..100 {
        if count() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_path_query_or_a_header_is_refused_before_anything_is_sent() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(dlp_config(&origin, vec![origin_route(&origin)])).await;
    let base = format!("https://{ORIGIN}:{}", origin.port);
    for (form, text) in encoded_forms() {
        // In the path as sent (an encoded `/`, as in the percent form, is refused by the
        // route rules before DLP).
        if form != "percent" {
            let (status, body) = curl_status(curl(&proxy).arg(format!("{base}/sink/{text}"))).await;
            assert_refused(
                &proxy,
                &format!("path, {form}"),
                status,
                &body,
                "known-secret `DLP_SECRET`",
            );
            assert!(body.contains("URL path"), "{body}");
        }
        let (status, body) =
            curl_status(curl(&proxy).arg(format!("{base}/sink?note={}", percent(text.as_bytes()))))
                .await;
        assert_refused(
            &proxy,
            &format!("query, {form}"),
            status,
            &body,
            "known-secret `DLP_SECRET`",
        );
        let (status, body) = curl_status(
            curl(&proxy)
                .args(["-H", &format!("X-Note: v={text}")])
                .arg(format!("{base}/sink")),
        )
        .await;
        assert_refused(
            &proxy,
            &format!("header, {form}"),
            status,
            &body,
            "`x-note` header",
        );
    }
    let (status, body) = curl_status(
        curl(&proxy)
            .args(["--http2", "-H", &format!("X-Aws: {AWS_KEY}")])
            .arg(format!("{base}/sink")),
    )
    .await;
    assert_refused(
        &proxy,
        "header over HTTP/2",
        status,
        &body,
        "aws-access-key-id",
    );
    assert!(origin.seen().is_empty(), "nothing reached the origin");

    // A clean request passes.
    let (status, body) = curl_status(curl(&proxy).arg(format!("{base}/sink?q=fine"))).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from origin: /sink (0 body bytes)\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_body_in_any_form_over_either_protocol_is_refused_before_the_request_is_sent()
{
    let origin = Origin::start().await;
    let proxy = Proxy::start(dlp_config(&origin, vec![origin_route(&origin)])).await;
    let url = format!("https://{ORIGIN}:{}/sink", origin.port);
    for http in ["--http1.1", "--http2"] {
        for (form, text) in encoded_forms() {
            let (status, body) = curl_status(
                curl(&proxy)
                    .args([http, "--data-binary", &format!("{{\"note\": \"{text}\"}}")])
                    .arg(&url),
            )
            .await;
            assert_refused(
                &proxy,
                &format!("body {http} {form}"),
                status,
                &body,
                "`DLP_SECRET`",
            );
            assert!(body.contains("its body holds"), "{body}");
        }
    }
    assert!(
        origin.seen().is_empty(),
        "a body of known length is checked before sending"
    );
    assert!(origin.received.lock().unwrap().is_empty());
}

/// A chunked body whose secret straddles two chunks, the second sent only after the first
/// was forwarded.
fn straddling_body(prefix_len: usize, split: usize) -> (Vec<u8>, Vec<Bytes>) {
    let mut body = vec![b'.'; prefix_len];
    body.extend_from_slice(DLP_SECRET.as_bytes());
    body.extend_from_slice(b" and more");
    let cut = prefix_len + split;
    (
        body.clone(),
        vec![
            Bytes::copy_from_slice(&body[..cut]),
            Bytes::copy_from_slice(&body[cut..]),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_is_cut_before_the_first_byte_of_a_secret_split_across_chunks_over_either_protocol()
 {
    let origin = Origin::start().await;
    let proxy = Proxy::start(dlp_config(&origin, vec![origin_route(&origin)])).await;
    let prefix_len = 200_000;
    for (h2, split) in [
        (false, 1),
        (false, DLP_SECRET.len() / 2),
        (false, DLP_SECRET.len() - 1),
        (true, 1),
        (true, DLP_SECRET.len() / 2),
    ] {
        let split_at = format!("split at {split}, HTTP/2 {h2}");
        origin.received.lock().unwrap().clear();
        let (whole, chunks) = straddling_body(prefix_len, split);
        let (tx2, mut rx2) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx2.poll_recv(cx)));
        let response = if h2 {
            let authority = format!("{ORIGIN}:{}", origin.port);
            let tls = tls_tunnel(&proxy, &authority, ORIGIN, &[b"h2"])
                .await
                .unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let req = http::Request::post(format!("https://{authority}/sink/stream"))
                .body(BoxBody::new(body))
                .unwrap();
            tokio::spawn(async move { sender.send_request(req).await })
        } else {
            let mut client = h1_client(&proxy, &origin).await;
            let req = http::Request::post("/sink/stream")
                .header("host", format!("{ORIGIN}:{}", origin.port))
                .body(BoxBody::new(body))
                .unwrap();
            client.ready().await.unwrap();
            tokio::spawn(client.send_request(req))
        };
        tx2.send(Ok(Frame::data(chunks[0].clone()))).await.unwrap();
        // The first chunk's safe part reaches the origin before the second is sent.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while origin.received.lock().unwrap().len() < prefix_len - 1024 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first chunk was not forwarded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tx2.send(Ok(Frame::data(chunks[1].clone()))).await;
        drop(tx2);
        let resp = response.await.unwrap().unwrap();
        assert_eq!(resp.status(), 403, "{split_at}");
        let text = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(text.contains("known-secret `DLP_SECRET` (raw)"), "{text}");
        // Give a wrongly forwarded tail the time to arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let received = origin.received.lock().unwrap().clone();
        assert!(
            received.len() <= prefix_len,
            "{split_at}: {} bytes reached the origin",
            received.len()
        );
        assert_eq!(
            received,
            whole[..received.len()],
            "what arrived is the body's clean start"
        );
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_body_is_decoded_and_checked_and_other_codecs_are_refused() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(dlp_config(&origin, vec![origin_route(&origin)])).await;
    let url = format!("https://{ORIGIN}:{}/sink", origin.port);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.gz");

    let mut secret_body = vec![b'x'; 300_000];
    secret_body.extend_from_slice(STANDARD.encode(DLP_SECRET).as_bytes());
    std::fs::write(&file, gzip(&secret_body)).unwrap();
    for http in ["--http1.1", "--http2"] {
        let (status, body) = curl_status(
            curl(&proxy)
                .args([http, "-H", "Content-Encoding: gzip", "--data-binary"])
                .arg(format!("@{}", file.display()))
                .arg(&url),
        )
        .await;
        assert_refused(
            &proxy,
            &format!("gzip {http}"),
            status,
            &body,
            "known-secret `DLP_SECRET` (base64)",
        );
    }
    assert!(origin.seen().is_empty());

    // A clean gzip body goes through decoded: what the origin gets is what was checked.
    let clean = b"{\"all\": \"fine\"}".repeat(1000);
    std::fs::write(&file, gzip(&clean)).unwrap();
    let (status, body) = curl_status(
        curl(&proxy)
            .args(["-H", "Content-Encoding: gzip", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(&url),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(*origin.received.lock().unwrap(), clean);
    assert!(origin.seen()[0].headers.get("content-encoding").is_none());

    for encoding in ["br", "zstd", "gzip, br"] {
        let (status, body) = curl_status(
            curl(&proxy)
                .args([
                    "-H",
                    &format!("Content-Encoding: {encoding}"),
                    "--data-binary",
                    "abc",
                ])
                .arg(&url),
        )
        .await;
        assert_eq!(status, 403, "{encoding}: {body}");
        assert!(body.contains("cannot be checked for secrets"), "{body}");
        assert!(audited(&proxy, "body_not_inspectable") > 0);
    }
    assert_eq!(origin.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlp_off_lets_a_secret_through_and_the_injected_credential_never_counts() {
    let origin = Origin::start().await;
    let mut open = route_to(OTHER, &origin);
    open.dlp = Dlp::Off;
    let mut injected = origin_route(&origin);
    injected.auth = Some(RouteAuth::Scheme {
        scheme: bottle_egress::AuthScheme::Bearer,
        token_ref: "TEST_TOKEN".parse().unwrap(),
    });
    // A route with `auth` trusts only its own roots.
    injected.trust = vec![origin.ca_pem_path.clone()];
    let proxy = Proxy::start(dlp_config(&origin, vec![injected, open])).await;

    let (status, body) = curl_status(curl(&proxy).args(["--data-binary", DLP_SECRET]).arg(
        format!(
            "https://{OTHER}:{}/sink?k={}",
            origin.port,
            percent(DLP_SECRET.as_bytes())
        ),
    ))
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from origin: /sink (20 body bytes)\n")
    );
    assert_eq!(*origin.received.lock().unwrap(), DLP_SECRET.as_bytes());

    // The route's own credential is injected after the check: the request passes with it.
    let (status, body) =
        curl_status(curl(&proxy).arg(format!("https://{ORIGIN}:{}/sink", origin.port))).await;
    assert_eq!(status, 200, "{body}");
    let seen = origin.seen();
    assert_eq!(
        seen.last().unwrap().headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    // Sent by the client, the same credential is a known secret like any other.
    let (status, body) = curl_status(
        curl(&proxy)
            .args(["--data-binary", &format!("token={TOKEN}")])
            .arg(format!("https://{ORIGIN}:{}/sink", origin.port)),
    )
    .await;
    assert_refused(
        &proxy,
        "the injected token sent by the client",
        status,
        &body,
        "known-secret `TEST_TOKEN`",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_clean_upload_streams_through_checked() {
    let origin = Origin::start().await;
    let proxy = Proxy::start(dlp_config(&origin, vec![origin_route(&origin)])).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    // Random-looking bytes with no secret: the pseudo-random stream of a fixed seed.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&file, &data).unwrap();
    for args in [&["-T"][..], &["-H", "Transfer-Encoding: chunked", "-T"][..]] {
        let (status, body) = curl_status(
            curl(&proxy)
                .args(args)
                .arg(&file)
                .arg(format!("https://{ORIGIN}:{}/upload", origin.port)),
        )
        .await;
        assert_eq!(
            (status, body),
            (
                200,
                format!("hello from origin: /upload ({} body bytes)\n", data.len())
            )
        );
    }
}
