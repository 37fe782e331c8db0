//! Property tests: arbitrary bytes and YAML-shaped text never panic the loader, and every
//! diagnostic points inside the file. `PROPTEST_CASES` raises the case count for long runs.

use proptest::prelude::*;

use crate::Fixture;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Text built from manifest-ish fragments, so the parser gets deep into the grammar.
fn yamlish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("---\n".to_owned()),
        Just("bottle: default\n".to_owned()),
        Just("extends: [a, b]\n".to_owned()),
        Just("env:\n  A: \"${B}\"\n".to_owned()),
        Just("egress:\n  routes:\n    - host: x.com\n".to_owned()),
        Just("      auth: {scheme: Bearer, token_ref: T}\n".to_owned()),
        Just("git:\n  - Name: a\n".to_owned()),
        Just("&a [*a, *a]\n".to_owned()),
        Just("*a\n".to_owned()),
        Just("  - ".to_owned()),
        Just("{[".to_owned()),
        Just("]}".to_owned()),
        Just("? ".to_owned()),
        Just(": ".to_owned()),
        Just("!tag ".to_owned()),
        Just("|\n  ".to_owned()),
        Just("\t".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|v| v.concat())
}

fn check_one(bytes: &[u8], bottle: bool) {
    let f = Fixture::new();
    if bottle {
        f.write(f.home().join("bottles/fz.md"), bytes);
        f.agent("fz", "---\nbottle: fz\n---\n");
    } else {
        f.write(f.cwd().join(".claude-bottle/agents/fz.md"), bytes);
    }
    let index = f.load();
    let report = index.check();
    for d in &report.errors {
        let lines = String::from_utf8_lossy(bytes).lines().count().max(1);
        assert!(
            d.line >= 1 && d.line <= lines + 1,
            "line {} of {lines}: {d}",
            d.line
        );
        assert!(d.column >= 1);
        let _ = d.to_string();
    }
    // Selecting is consistent with check: an agent whose files have no errors resolves.
    let selected = index.manifest("fz");
    if report.errors.is_empty() {
        assert!(selected.is_ok(), "{selected:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), bottle in any::<bool>()) {
        check_one(&bytes, bottle);
    }

    #[test]
    fn yamlish_front_matter_never_panics(body in yamlish(), bottle in any::<bool>()) {
        check_one(format!("---\n{body}\n---\n").as_bytes(), bottle);
    }

    #[test]
    fn yaml_parse_never_panics(body in yamlish()) {
        let _ = bottle_manifest::yaml::parse::<serde_json::Value>(&body);
    }
}
