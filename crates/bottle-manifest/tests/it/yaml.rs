//! `bottle_manifest::yaml::parse`, the one YAML entry point.

use bottle_manifest::yaml::{self, YamlErrorKind};
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: String,
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    routes: Vec<bottle_manifest::Route>,
}

#[test]
fn parses_a_document_with_routes() {
    let c: Config = yaml::parse(
        "listen: 0.0.0.0:9099\nroutes:\n  - host: api.anthropic.com\n    auth: {scheme: Bearer, token_ref: T}\n  - host: x.com\n    auth: {header: x-api-key, token_ref: K}\n",
    )
    .expect("valid");
    assert_eq!(c.routes.len(), 2);
    assert_eq!(
        c.routes[0].auth.as_ref().map(|a| a.mark()).as_deref(),
        Some("Bearer")
    );
    assert_eq!(
        c.routes[1].auth.as_ref().map(|a| a.header_name()),
        Some("x-api-key")
    );
}

fn err(text: &str) -> yaml::YamlError {
    yaml::parse::<Config>(text).expect_err("should fail")
}

#[test]
fn error_positions_and_kinds() {
    let e = err("listen: a\nlisten: b\n");
    assert_eq!(
        (e.line, e.column, e.kind.clone()),
        (2, 1, YamlErrorKind::DuplicateKey)
    );
    let e = err("listen: a\nverbos: true\n");
    assert_eq!(e.line, 2);
    assert!(matches!(e.kind, YamlErrorKind::UnknownKey { ref key, .. } if key == "verbos"));
    let e = err("listen: a\nverbose: yes\n");
    assert_eq!(e.line, 2);
    let e = err("listen: 'unclosed\n");
    assert_eq!(e.kind, YamlErrorKind::Syntax, "{e}");
    let e = err(&"x".repeat(yaml::MAX_INPUT_BYTES + 1));
    assert_eq!(e.kind, YamlErrorKind::Limit);
    let e = err("listen: a\0b\n");
    assert_eq!(
        (e.line, e.column, e.kind.clone()),
        (1, 10, YamlErrorKind::Limit)
    );
}

#[test]
fn messages() {
    let cases = [
        "listen: a\nlisten: b\n",
        "listen: a\nverbos: true\n",
        "listen: a\nverbose: yes\n",
        "listen: [\n",
        "listen: [a, b\nverbose: true\n",
        "verbose: true\n",
        "listen: a\nroutes:\n  - host: h\n    auth: {}\n",
        "listen: !include other.yaml\n",
        "listen: a\0b\n",
        &format!("listen: {}{}\n", "[".repeat(1000), "]".repeat(1000)),
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|c| {
            format!(
                "{:?}\n  => {}",
                c.chars().take(60).collect::<String>(),
                err(c)
            )
        })
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn empty_document_is_null() {
    let v: Option<Config> = yaml::parse("").expect("empty is null");
    assert_eq!(v, None);
}
