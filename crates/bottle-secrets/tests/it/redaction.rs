//! No value a scanner is given or finds ever shows in what it returns or prints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bottle_secrets::{Detector, Error, Rule, Scanner};

const KNOWN: &str = "hunter2-but-longer-Zq9";
const TOKEN: &str = concat!("gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR");

/// Pieces of the secrets that must not appear: each whole, and the distinctive parts of their
/// encodings.
fn forbidden() -> Vec<String> {
    let hex: String = KNOWN.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        KNOWN.to_owned(),
        TOKEN.to_owned(),
        TOKEN[4..].to_owned(),
        STANDARD.encode(KNOWN)[..20].to_owned(),
        hex,
    ]
}

fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(!text.contains(&secret), "{what} shows a secret: {text}");
    }
}

#[test]
fn matches_rules_scanners_streams_and_feeds_never_show_a_secret() {
    let mut builder = Scanner::builder();
    builder.known_secret("API_PASSWORD", KNOWN);
    assert_clean("a builder's Debug", &format!("{builder:?}"));
    let scanner = builder.build().unwrap();
    assert_clean("a scanner's Debug", &format!("{scanner:?}"));
    assert!(format!("{scanner:?}").contains("API_PASSWORD"));

    let input = format!("a={KNOWN} b={} c={TOKEN}\n", STANDARD.encode(KNOWN));
    let found = scanner.scan(input.as_bytes());
    assert_eq!(found.len(), 3);
    for m in &found {
        assert_clean("a match's Display", &m.to_string());
        assert_clean("a match's Debug", &format!("{m:?}"));
        assert_clean("a match's Debug, pretty", &format!("{m:#?}"));
        assert_clean("a rule's Display", &m.rule().to_string());
        assert_clean("a rule's Debug", &format!("{:?}", m.rule()));
    }

    // A stream whose buffer holds a secret it has not decided yet.
    let mut stream = scanner.stream_with("body");
    let feed = stream.feed(&input.as_bytes()[..input.len() - 3]);
    assert_clean("a feed's Debug", &format!("{feed:?}"));
    assert_clean("a stream's Debug", &format!("{stream:?}"));
    assert!(stream.retained() > 0);
}

#[test]
fn errors_name_the_secret_never_show_it() {
    let err: Error = Scanner::builder()
        .known_secret("SHORT_ONE", "hunter2")
        .build()
        .unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(text.contains("SHORT_ONE"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn a_rule_says_what_and_which_encoding() {
    let rule = Rule::KnownSecret {
        name: "GH_TOKEN".into(),
        encoding: bottle_secrets::Encoding::Base64Url,
    };
    assert_eq!(rule.to_string(), "known-secret `GH_TOKEN` (base64url)");
    assert_eq!(Rule::Detector(Detector::Jwt).to_string(), "jwt");
}

#[test]
fn scanners_and_streams_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Scanner>();
    send_sync::<bottle_secrets::Stream<String>>();
    send_sync::<bottle_secrets::Match<(String, String)>>();
    let scanner = Scanner::new();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let scanner = scanner.clone();
            std::thread::spawn(move || scanner.scan(TOKEN.as_bytes()).len())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 1);
    }
}
