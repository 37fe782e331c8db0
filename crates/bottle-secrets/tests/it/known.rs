//! Known secrets: found raw and encoded, at any base64 alignment; never found in random bytes;
//! refused when too short or too long to be matched well.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bottle_secrets::{
    Detector, Encoding, Error, MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN, Match, Rule, Scanner,
};
use proptest::prelude::*;

use crate::stream_all;

fn known_only(secrets: &[(&str, &[u8])]) -> Scanner {
    let mut builder = Scanner::builder();
    builder.detectors([]);
    for (name, value) in secrets {
        builder.known_secret(*name, value);
    }
    builder.build().expect("valid known secrets")
}

fn hex(value: &[u8], upper: bool) -> String {
    value
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn percent(value: &[u8], upper: bool) -> String {
    value
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// The ways a value is written into text, as a sender would: whole base64 with padding of the
/// value between other bytes, hex of the value, percent-encoding of the value.
#[derive(Clone, Copy, Debug)]
enum Form {
    Raw,
    HexLower,
    HexUpper,
    Base64,
    Base64Url,
    PercentUpper,
    PercentLower,
}

impl Form {
    const ALL: [Form; 7] = [
        Form::Raw,
        Form::HexLower,
        Form::HexUpper,
        Form::Base64,
        Form::Base64Url,
        Form::PercentUpper,
        Form::PercentLower,
    ];

    /// `value` in this form, with `before` and `after` around it inside the encoding (only
    /// base64 mixes neighbours into the characters).
    fn write(self, value: &[u8], before: &[u8], after: &[u8]) -> Vec<u8> {
        let mut data = before.to_vec();
        data.extend_from_slice(value);
        data.extend_from_slice(after);
        match self {
            Form::Raw => value.to_vec(),
            Form::HexLower => hex(value, false).into_bytes(),
            Form::HexUpper => hex(value, true).into_bytes(),
            Form::Base64 => STANDARD.encode(&data).into_bytes(),
            Form::Base64Url => URL_SAFE_NO_PAD.encode(&data).into_bytes(),
            Form::PercentUpper => percent(value, true).into_bytes(),
            Form::PercentLower => percent(value, false).into_bytes(),
        }
    }

    /// The encodings a match may name: the form's own, or an earlier one whose literal is the
    /// same bytes (a value with nothing to escape is its own percent-encoding).
    fn accepts(self, encoding: Encoding) -> bool {
        match self {
            Form::Raw => encoding == Encoding::Raw,
            Form::HexLower | Form::HexUpper => encoding == Encoding::Hex,
            Form::Base64 => encoding == Encoding::Base64,
            Form::Base64Url => matches!(encoding, Encoding::Base64Url | Encoding::Base64),
            Form::PercentUpper | Form::PercentLower => {
                matches!(encoding, Encoding::Percent | Encoding::Raw)
            }
        }
    }
}

fn names_and_encodings(found: &[Match]) -> Vec<(String, Encoding)> {
    found
        .iter()
        .filter_map(|m| match m.rule() {
            Rule::KnownSecret { name, encoding } => Some((name.to_string(), *encoding)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_form_of_a_known_secret_is_found_and_named() {
    let value = b"correct horse/battery+staple?42";
    let scanner = known_only(&[("DB_PASSWORD", value)]);
    for form in Form::ALL {
        for before in 0..3 {
            let encoded = form.write(value, &b"\x01\x02"[..before], b"\x03");
            let mut text = b"payload=".to_vec();
            text.extend_from_slice(&encoded);
            text.extend_from_slice(b"&next=1");
            let found = scanner.scan(&text);
            assert_eq!(found.len(), 1, "{form:?} after {before} bytes: {found:?}");
            let Rule::KnownSecret { name, encoding } = found[0].rule() else {
                panic!("{form:?}: {found:?}");
            };
            assert_eq!(&**name, "DB_PASSWORD");
            assert!(form.accepts(*encoding), "{form:?} reported as {encoding}");
            assert_eq!(found[0].id(), "known-secret");
            assert_eq!(stream_all(&scanner, &text, &[3]), found, "{form:?}");
        }
    }
}

#[test]
fn a_raw_known_secret_is_found_at_its_exact_range() {
    let scanner = known_only(&[("API_TOKEN", b"tok_8d2f91c0aa")]);
    let found = scanner.scan(b"Authorization: Bearer tok_8d2f91c0aa\r\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].range(), 22..36);
    assert_eq!(
        found[0].to_string(),
        "known-secret `API_TOKEN` (raw) at bytes 22..36"
    );
}

#[test]
fn a_known_secret_that_is_also_a_token_is_reported_by_both_rules() {
    let token = concat!("gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR");
    let scanner = Scanner::builder()
        .known_secret("GH_TOKEN", token)
        .build()
        .unwrap();
    let found = scanner.scan(format!("token={token}").as_bytes());
    let ids: Vec<&str> = found.iter().map(|m| m.id()).collect();
    assert_eq!(ids, ["github-token", "known-secret"]);
    assert!(found.iter().all(|m| m.range() == (6..46)));
}

#[test]
fn one_value_under_two_names_is_reported_under_each() {
    let scanner = known_only(&[
        ("OLD_NAME", b"shared-value-123"),
        ("NEW_NAME", b"shared-value-123"),
    ]);
    let found = scanner.scan(b"x shared-value-123 y");
    let names: Vec<String> = names_and_encodings(&found)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["NEW_NAME", "OLD_NAME"]);
}

#[test]
fn the_same_secret_given_twice_is_reported_once() {
    let scanner = known_only(&[
        ("TOKEN", b"shared-value-123"),
        ("TOKEN", b"shared-value-123"),
    ]);
    assert_eq!(scanner.scan(b"x shared-value-123 y").len(), 1);
}

#[test]
fn a_known_secret_raises_the_hold_back_to_its_longest_form() {
    let value = [b'/'; 100];
    let scanner = known_only(&[("SLASHES", &value)]);
    // Percent-encoded, every byte takes three.
    assert_eq!(scanner.max_match_len(), 300);
    assert_eq!(scanner.max_held_back(), 299);
}

#[test]
fn a_known_secret_too_short_to_tell_from_text_is_refused() {
    let err = Scanner::builder()
        .known_secret("PIN", "1234")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::KnownSecretTooShort { len: 4, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "the known secret `PIN` is 4 bytes long; at least {MIN_KNOWN_SECRET_LEN} are needed to find it without false alarms: leave it out of the scan, or use a longer secret"
        )
    );
    assert!(
        Scanner::builder()
            .known_secret("EIGHT", "12345678")
            .build()
            .is_ok()
    );
}

#[test]
fn a_known_secret_too_long_to_hold_back_is_refused() {
    let long = vec![b'k'; MAX_KNOWN_SECRET_LEN + 1];
    let err = Scanner::builder()
        .known_secret("BLOB", &long)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the known secret `BLOB` is {} bytes long; at most {MAX_KNOWN_SECRET_LEN} are supported, so that a stream's hold-back stays bounded: give a distinctive part of it (up to {MAX_KNOWN_SECRET_LEN} bytes) instead",
            MAX_KNOWN_SECRET_LEN + 1
        )
    );
    let longest = vec![b'k'; MAX_KNOWN_SECRET_LEN];
    assert!(
        Scanner::builder()
            .known_secret("BLOB", &longest)
            .build()
            .is_ok()
    );
}

#[test]
fn detectors_and_known_secrets_work_together() {
    let scanner = Scanner::builder()
        .detectors([Detector::AwsAccessKeyId])
        .known_secret("SESSION", b"session-9f8e7d6c5b")
        .build()
        .unwrap();
    let text = concat!("a=AK", "IAFJLMVGEG43FAYH2P b=session-9f8e7d6c5b");
    let ids: Vec<&str> = scanner
        .scan(text.as_bytes())
        .iter()
        .map(|m| m.id())
        .collect();
    assert_eq!(ids, ["aws-access-key-id", "known-secret"]);
}

fn secret_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), MIN_KNOWN_SECRET_LEN..80)
}

fn form() -> impl Strategy<Value = Form> {
    prop::sample::select(Form::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_form_of_a_known_secret_is_found_at_any_alignment_and_chunking(
        value in secret_value(),
        form in form(),
        before in prop::collection::vec(any::<u8>(), 0..7),
        after in prop::collection::vec(any::<u8>(), 0..7),
        text_before in "[ -~]{0,200}",
        text_after in "[ -~]{0,200}",
        sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        let scanner = known_only(&[("THE_SECRET", &value)]);
        let mut text = text_before.into_bytes();
        text.extend_from_slice(&form.write(&value, &before, &after));
        text.extend_from_slice(text_after.as_bytes());

        let found = scanner.scan(&text);
        let hits = names_and_encodings(&found);
        prop_assert!(
            hits.iter().any(|(name, encoding)| name == "THE_SECRET" && form.accepts(*encoding)),
            "{form:?} not found: {found:?}"
        );
        prop_assert_eq!(stream_all(&scanner, &text, &sizes), found);
    }

    #[test]
    fn random_bytes_hold_no_known_secret(
        values in prop::collection::vec(secret_value(), 1..6),
        input in prop::collection::vec(any::<u8>(), 0..16_384),
        sizes in prop::collection::vec(1usize..5000, 1..6),
    ) {
        let mut builder = Scanner::builder();
        for (i, value) in values.iter().enumerate() {
            builder.known_secret(format!("SECRET_{i}"), value);
        }
        let scanner = builder.build().unwrap();
        prop_assert_eq!(scanner.scan(&input), Vec::new());
        prop_assert_eq!(stream_all(&scanner, &input, &sizes), Vec::new());
    }
}
