//! Streams: a secret anywhere, chunked anyhow, is found exactly once, and the stream agrees
//! with a one-shot scan of the same bytes.

use bottle_secrets::Scanner;
use proptest::prelude::*;

use crate::fixtures::positives;
use crate::{default_scanner, stream_all};

/// Random bytes, then `sep`: what a sample sits between.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..3000)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 8usize..200, 200usize..70_000], 1..12)
}

/// A piece of a stream: noise, a sample's text, or a separator.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let samples: Vec<Vec<u8>> = positives().iter().map(|s| s.text().into_bytes()).collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::sample::select(samples),
        prop::sample::select(vec![
            b" ".to_vec(),
            b"\\n".to_vec(),
            b"%3D".to_vec(),
            b"=".to_vec(),
            b"\"".to_vec(),
            b"a".to_vec(),
        ]),
    ]
}

fn with_known_secret() -> Scanner {
    Scanner::builder()
        .known_secret("SESSION_COOKIE", b"s%3Acookie/v4lue+42")
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_secret_at_any_position_in_any_chunking_is_found_exactly_once(
        index in 0..positives().len(),
        before in noise(),
        after in noise(),
        sizes in chunk_sizes(),
    ) {
        let sample = &positives()[index];
        let mut input = before;
        input.push(b' ');
        let start = input.len() as u64;
        input.extend_from_slice(sample.text().as_bytes());
        input.push(b' ');
        input.extend_from_slice(&after);

        let found = stream_all(default_scanner(), &input, &sizes);
        prop_assert_eq!(found.len(), 1, "{}: {:?}", sample.what, found);
        prop_assert_eq!(found[0].id(), sample.detector.id());
        prop_assert_eq!(found[0].range(), start..start + sample.token.len() as u64);
        prop_assert_eq!(found, default_scanner().scan(&input));
    }

    #[test]
    fn a_stream_and_a_scan_of_the_same_bytes_agree(
        pieces in prop::collection::vec(piece(), 0..16),
        sizes in chunk_sizes(),
    ) {
        // Samples glued to noise and to each other: boundaries of every kind, on both sides.
        let input: Vec<u8> = pieces.concat();
        let scanner = with_known_secret();
        prop_assert_eq!(stream_all(&scanner, &input, &sizes), scanner.scan(&input));
    }
}
