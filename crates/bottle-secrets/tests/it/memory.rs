//! Bounded memory: a large stream, huge chunks and hostile inputs never grow the stream past
//! the bounds its scanner declares (checked after every chunk by `stream_all`).

use bottle_secrets::{Detector, Scanner};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::fixtures::positives;
use crate::{Checked, default_scanner, stream_all};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[test]
fn a_256_mib_stream_in_64_kib_chunks_is_scanned_within_its_bounds() {
    let known = "upstream-deploy-key-7f3a";
    let scanner = Scanner::builder()
        .known_secret("DEPLOY_KEY", known)
        .build()
        .unwrap();
    // Every 2 MiB a secret (the samples in turn, and the known secret), straddling the
    // boundary between two chunks, with a space on each side.
    let samples = positives();
    let planted: Vec<(u64, &str, String, usize)> = (1..128)
        .map(|i| {
            let (id, text, len) = match samples.get(i % (samples.len() + 1)) {
                Some(s) => (s.detector.id(), format!(" {} ", s.text()), s.token.len()),
                None => ("known-secret", format!(" {known} "), known.len()),
            };
            let at = (i * 2 * MIB - text.len() / 2) as u64;
            (at, id, text, len)
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(0x05ec_2e75);
    let mut chunk = vec![0u8; CHUNK];
    let mut stream = Checked::new(&scanner);
    for index in 0..256 * MIB / CHUNK {
        rng.fill_bytes(&mut chunk);
        let (start, end) = ((index * CHUNK) as u64, ((index + 1) * CHUNK) as u64);
        for (at, _, text, _) in &planted {
            let (from, to) = ((*at).max(start), (at + text.len() as u64).min(end));
            if from < to {
                chunk[(from - start) as usize..(to - start) as usize]
                    .copy_from_slice(&text.as_bytes()[(from - at) as usize..(to - at) as usize]);
            }
        }
        stream.feed(&chunk);
    }
    let found: Vec<(u64, &str, u64)> = stream
        .finish()
        .iter()
        .map(|m| (m.range().start, m.id(), m.range().end - m.range().start))
        .collect();
    let expected: Vec<(u64, &str, u64)> = planted
        .iter()
        .map(|(at, id, _, len)| (at + 1, *id, *len as u64))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn one_huge_chunk_is_searched_in_pieces() {
    let mut input = vec![b'.'; 8 * MIB];
    let token = concat!("gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR");
    let at = 5 * MIB + 3;
    input[at..at + token.len()].copy_from_slice(token.as_bytes());
    let mut stream = default_scanner().stream();
    let feed = stream.feed(&input);
    assert!(stream.buffer_capacity() <= default_scanner().max_buffer());
    assert!(stream.retained() <= default_scanner().max_retained());
    assert_eq!(feed.matches().len(), 1);
    assert_eq!(feed.matches()[0].range().start, at as u64);
}

/// Inputs made of keyword after keyword: every one a candidate, none a match.
fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let repeat = |unit: &str| unit.repeat(MIB / unit.len()).into_bytes();
    vec![
        (
            "a JWT that never ends",
            format!(" {}", "eyJ".repeat(MIB / 3)).into_bytes(),
        ),
        ("JWT parts that never end", repeat(".eyJhbGciOiJIUzI1NiJ9")),
        ("AWS prefixes", repeat("AKIA")),
        ("PEM headers", repeat("-----BEGIN PRIVATE KEY-----\n")),
        ("Anthropic prefixes", repeat("sk-ant-api03-")),
        ("OpenAI markers", repeat("sk-T3BlbkFJ")),
        ("Slack URLs", repeat("hooks.slack.com/services/")),
        (
            "one long base64 run",
            repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"),
        ),
        ("all zero", vec![0; MIB]),
    ]
}

#[test]
fn hostile_inputs_stay_within_the_bounds_and_agree_with_a_scan() {
    for (what, input) in hostile_inputs() {
        for sizes in [&[CHUNK][..], &[7, 4093]] {
            let streamed = stream_all(default_scanner(), &input, sizes);
            assert_eq!(streamed, default_scanner().scan(&input), "{what}");
        }
    }
}

#[test]
fn the_hold_back_bound_is_reached_by_an_undecided_candidate_and_never_passed() {
    // A JWT candidate as long as a JWT may be is held back whole until the next byte decides it.
    let scanner = Scanner::builder()
        .detectors([Detector::Jwt])
        .build()
        .unwrap();
    let max = Detector::Jwt.max_len();
    assert_eq!(scanner.max_held_back(), max);
    let mut stream = scanner.stream();
    let feed = stream.feed(format!(" eyJ{}", "A".repeat(max - 3)).as_bytes());
    assert!(feed.matches().is_empty());
    assert_eq!(feed.held_back(), max);
    assert_eq!(feed.safe_until(), 1);
    // One more byte: the candidate is longer than any JWT, so it is not one.
    let feed = stream.feed(b"A");
    assert!(feed.matches().is_empty());
    assert_eq!(
        feed.held_back(),
        2,
        "only a possible `eyJ` at the end is held back"
    );
    assert!(stream.finish().is_empty());
}

#[test]
fn a_keyword_inside_a_longer_word_is_not_held_back() {
    let scanner = Scanner::builder()
        .detectors([Detector::Jwt])
        .build()
        .unwrap();
    let mut stream = scanner.stream();
    let feed = stream.feed(format!("x{}", "eyJ".repeat(4000)).as_bytes());
    assert_eq!(feed.held_back(), 2);
}
