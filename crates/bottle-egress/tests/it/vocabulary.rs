//! One route vocabulary: every route entry below is written once and read twice — as a bottle
//! manifest's `egress.routes` entry by bottle-manifest's loader, and as a `routes` entry of an
//! egress config — and both must agree: accepted by both (and compiled by the egress's
//! [`Policy`]), or refused by both with the same message. The snapshot shows where each side
//! points (`file:line:col`).

use std::fmt::Write as _;

use bottle_egress::{EgressConfig, Policy};
use bottle_manifest::{ClaudeAuth, Layout, ManifestIndex};

/// Route entries, each the YAML of one list item (its first line follows `- `, the others are
/// indented under it).
const ROUTES: &[&str] = &[
    // Accepted.
    "host: api.example.com",
    "host: \"*.example.com\"",
    "host: 10.0.0.7\nallow_private: true",
    "host: \"[::1]\"\nallow_private: true",
    "host: api.example.com\nports: [443, 8443]\npath_allowlist: [/v1/, /health]\nmethods: [GET, POST]\nauth: {scheme: Bearer, token_ref: API_TOKEN}",
    "host: api.example.com\nauth: {header: X-Api-Key, token_ref: API_KEY}\ntrust: [/etc/ssl/company.pem]",
    "host: \"*.example.com\"\nauth: {scheme: token, token_ref: T}\nauth_every_subdomain: true",
    "host: ws.example.com\nmethods: [GET]\nwebsocket: true",
    "host: sentry.example.com\nstrip_client_credentials: true",
    "host: under_score.example.com",
    // Refused: hosts.
    "host: \"\"",
    "host: \"*.com\"",
    "host: a.*.example.com",
    "host: \"*example.com\"",
    "host: API.example.com",
    "host: https://api.example.com",
    "host: example.com:443",
    "host: example.com/v1",
    "host: example.com.",
    "host: -bad.example.com",
    "host: \"127.1\"",
    "host: \"2130706433\"",
    "host: _egress.local",
    "host: 10.0.0.7",
    "host: 169.254.169.254",
    "host: \"::1\"",
    // Refused: ports, paths, methods.
    "host: a.example.com\nports: [0]",
    "host: a.example.com\nports: [70000]",
    "host: a.example.com\nports: []",
    "host: a.example.com\npath_allowlist: [v1]",
    "host: a.example.com\npath_allowlist: [/v1/../admin]",
    "host: a.example.com\npath_allowlist: [\"/v1/..;/admin\"]",
    "host: a.example.com\npath_allowlist: [/v1/%2e%2e/admin]",
    "host: a.example.com\npath_allowlist: [\"/v1\\\\admin\"]",
    "host: a.example.com\npath_allowlist: [\"/v1?x=1\"]",
    "host: a.example.com\npath_allowlist: [\"/a b\"]",
    "host: a.example.com\nmethods: [get]",
    "host: a.example.com\nmethods: [PROPFIND]",
    // Refused: auth.
    "host: a.example.com\nauth: {}",
    "host: a.example.com\nauth: {scheme: Bearer}",
    "host: a.example.com\nauth: {scheme: Bearer, header: x-key, token_ref: T}",
    "host: a.example.com\nauth: {scheme: Basic, token_ref: T}",
    "host: a.example.com\nauth: {header: Host, token_ref: T}",
    "host: a.example.com\nauth: {header: Proxy-Authorization, token_ref: T}",
    "host: a.example.com\nauth: {header: \"x key\", token_ref: T}",
    "host: a.example.com\nauth: {scheme: Bearer, token_ref: my-token}",
    // Refused: rules between keys.
    "host: \"*.example.com\"\nauth: {scheme: Bearer, token_ref: T}",
    "host: a.example.com\nauth_every_subdomain: true",
    "host: \"*.example.com\"\nauth_every_subdomain: true",
    "host: a.example.com\nauth: {scheme: Bearer, token_ref: T}\nstrip_client_credentials: false",
    "host: a.example.com\nmethods: [POST]\nwebsocket: true",
    "host: a.example.com\ntrust: [\"\"]",
];

/// The first error message of each side, with its position, or `None` if it accepts.
struct Verdicts {
    manifest: Vec<String>,
    egress: Vec<String>,
}

/// `entries` as a YAML list indented by `indent`.
fn list(entries: &[&str], indent: &str) -> String {
    entries
        .iter()
        .map(|e| format!("{indent}- {}\n", e.replace('\n', &format!("\n{indent}  "))))
        .collect()
}

fn manifest_errors(entries: &[&str]) -> Vec<(String, String)> {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("bottles")).unwrap();
    std::fs::create_dir_all(home.path().join("agents")).unwrap();
    std::fs::write(
        home.path().join("bottles/b.md"),
        format!("---\negress:\n  routes:\n{}---\n", list(entries, "    ")),
    )
    .unwrap();
    std::fs::write(home.path().join("agents/a.md"), "---\nbottle: b\n---\n").unwrap();
    let layout = Layout::new(home.path(), None, cwd.path());
    let index = ManifestIndex::load(&layout, ClaudeAuth::detect(|_| false));
    let report = index.check();
    if report.errors.is_empty() {
        // Accepted: the loader resolves the bottle, and its routes compile in the egress.
        let manifest = index.manifest("a").unwrap();
        let routes = manifest.bottle.egress.route_table();
        Policy::new(&routes).expect("a route the manifest accepts compiles in the egress");
    }
    report
        .errors
        .iter()
        .map(|d| {
            (
                format!("bottles/b.md:{}:{}", d.line, d.column),
                d.message.clone(),
            )
        })
        .collect()
}

fn egress_errors(entries: &[&str]) -> Vec<(String, String)> {
    let text = format!("routes:\n{}", list(entries, "  "));
    match EgressConfig::from_yaml(&text, Some(std::path::Path::new("egress.yaml"))) {
        Ok(config) => {
            Policy::new(&config.routes).expect("a route the config accepts compiles");
            Vec::new()
        }
        Err(e) => e
            .issues
            .iter()
            .map(|i| {
                let (line, col) = i.position.expect("every route problem has a position");
                (format!("egress.yaml:{line}:{col}"), i.message.clone())
            })
            .collect(),
    }
}

impl Verdicts {
    fn of(entries: &[&str]) -> Self {
        let render =
            |errors: Vec<(String, String)>| errors.into_iter().map(|(at, m)| format!("{at}: {m}"));
        let manifest = manifest_errors(entries);
        let egress = egress_errors(entries);
        let messages =
            |e: &[(String, String)]| e.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>();
        assert_eq!(
            messages(&manifest),
            messages(&egress),
            "the manifest and the egress disagree on:\n{}",
            list(entries, "")
        );
        Verdicts {
            manifest: render(manifest).collect(),
            egress: render(egress).collect(),
        }
    }
}

#[test]
fn every_route_entry_is_accepted_or_refused_alike_by_the_manifest_and_the_egress() {
    let mut out = String::new();
    for entry in ROUTES {
        let v = Verdicts::of(&[entry]);
        out.push_str(&list(&[entry], ""));
        if v.manifest.is_empty() {
            out.push_str("  => accepted by both\n");
        }
        // The messages are equal (checked); the egress's side shows only where it points.
        for (m, e) in v.manifest.iter().zip(&v.egress) {
            let _ = writeln!(
                out,
                "  => {m}\n     {}",
                e.split_once(": ").map_or("", |x| x.0)
            );
        }
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

#[test]
fn two_routes_for_one_host_are_refused_alike() {
    let v = Verdicts::of(&["host: a.example.com", "host: a.example.com\nmethods: [GET]"]);
    assert_eq!(
        v.manifest,
        [
            "bottles/b.md:5:13: a route for `a.example.com` is declared twice; merge the two routes: one route per host"
        ]
    );
    assert!(
        v.egress[0].starts_with("egress.yaml:3:11: "),
        "{:?}",
        v.egress
    );
}
