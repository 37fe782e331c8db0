//! What a proxy forwards: a secret split at every offset across two chunks (and fed a byte at
//! a time) is found, and the bytes released before its match — everything before
//! `Feed::safe_until` — never hold any byte of it, so never the whole of it either.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bottle_secrets::{Match, Scanner};

use crate::default_scanner;
use crate::fixtures::positives;

/// A forwarder as the egress runs one: feed each chunk, release what is safe, stop at the
/// first match. Returns the match and how many bytes had been released when it was reported.
fn forward(scanner: &Scanner, chunks: &[&[u8]]) -> Option<(Match, u64)> {
    let mut stream = scanner.stream();
    let mut released = 0u64;
    for chunk in chunks {
        let feed = stream.feed(chunk);
        if let Some(m) = feed.matches().first() {
            return Some((m.clone(), released));
        }
        assert!(feed.safe_until() >= released, "the safe offset went back");
        released = feed.safe_until();
    }
    stream.finish().first().map(|m| (m.clone(), released))
}

/// Every way to cut `input` in two, and one byte at a time.
fn every_split(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut cuts: Vec<Vec<&[u8]>> = (0..=input.len())
        .map(|at| vec![&input[..at], &input[at..]])
        .collect();
    cuts.push(input.chunks(1).collect());
    cuts
}

fn assert_caught(scanner: &Scanner, what: &str, input: &[u8], secret_start: u64) {
    for chunks in every_split(input) {
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        let (m, released) = forward(scanner, &chunks)
            .unwrap_or_else(|| panic!("{what} was not found when cut as {sizes:?}"));
        assert!(
            m.range().start >= secret_start,
            "{what}: {m} starts before the secret"
        );
        assert!(
            released <= m.range().start,
            "{what} cut as {sizes:?}: {released} bytes were released before {m} was reported"
        );
    }
}

#[test]
fn every_sample_split_at_every_offset_is_caught_before_any_of_its_bytes_is_released() {
    for sample in positives() {
        let mut input = b"POST /v1/upload?note=".to_vec();
        let start = input.len() as u64;
        input.extend_from_slice(sample.text().as_bytes());
        input.extend_from_slice(b"&done=1");
        assert_caught(default_scanner(), sample.what, &input, start);
    }
}

#[test]
fn every_form_of_a_known_secret_split_at_every_offset_is_caught_before_any_of_its_bytes_is_released()
 {
    let value = b"db-pass/w0rd+Zq9!";
    let scanner = Scanner::builder()
        .known_secret("DB_PASSWORD", value)
        .build()
        .unwrap();
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    let percent: String = value
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut forms: Vec<(String, Vec<u8>)> = vec![
        ("raw".into(), value.to_vec()),
        ("hex".into(), hex.into_bytes()),
        ("percent".into(), percent.into_bytes()),
    ];
    // Base64 at each of the three alignments: 0, 1 and 2 bytes of other data before it.
    for before in 0..3 {
        let mut data = vec![b'>'; before];
        data.extend_from_slice(value);
        data.push(b'<');
        forms.push((
            format!("base64 after {before}"),
            STANDARD.encode(&data).into_bytes(),
        ));
        forms.push((
            format!("base64url after {before}"),
            URL_SAFE_NO_PAD.encode(&data).into_bytes(),
        ));
    }
    for (what, form) in forms {
        let mut input = b"{\"payload\": \"".to_vec();
        let start = input.len() as u64;
        input.extend_from_slice(&form);
        input.extend_from_slice(b"\"}");
        assert_caught(&scanner, &what, &input, start);
    }
}
