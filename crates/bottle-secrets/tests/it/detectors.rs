//! Every detector: its samples are found, once, with their exact range; its near misses are
//! not; and it finds its samples whatever the chunk boundaries.

use std::ops::Range;

use bottle_secrets::{Detector, Rule, Scanner};

use crate::fixtures::{JWT_HS256, Sample, negatives, positives};
use crate::{default_scanner, stream_all};

/// `sample` inside a line of config, and where its token is.
fn in_context(sample: &Sample) -> (Vec<u8>, Range<u64>) {
    let before = "secret = ";
    let text = format!("{before}{}\nnext = 1\n", sample.text());
    let start = before.len() as u64;
    (text.into_bytes(), start..start + sample.token.len() as u64)
}

fn summary(matches: &[bottle_secrets::Match]) -> Vec<(String, Range<u64>)> {
    matches
        .iter()
        .map(|m| (m.rule().to_string(), m.range()))
        .collect()
}

#[test]
fn detector_ids_are_stable() {
    // Reports, logs and configs name rules by these: renaming one is a breaking change.
    let ids: Vec<&str> = Detector::ALL.iter().map(|d| d.id()).collect();
    assert_eq!(
        ids,
        [
            "aws-access-key-id",
            "github-token",
            "anthropic-api-key",
            "anthropic-oauth-token",
            "openai-api-key",
            "stripe-live-key",
            "slack-token",
            "slack-webhook-url",
            "google-api-key",
            "private-key",
            "jwt",
        ]
    );
    for detector in Detector::ALL {
        assert_eq!(Detector::from_id(detector.id()), Some(detector));
        assert_eq!(Rule::Detector(detector).id(), detector.id());
    }
    assert_eq!(Detector::from_id("generic-api-key"), None);
}

#[test]
fn every_detector_and_every_keyword_has_a_sample() {
    let samples = positives();
    for detector in Detector::ALL {
        for keyword in detector.keywords() {
            assert!(
                samples
                    .iter()
                    .any(|s| s.detector == detector && s.token.starts_with(keyword)),
                "no sample of {detector} starts with {keyword}"
            );
        }
    }
}

#[test]
fn every_sample_is_found_once_by_its_own_detector_only() {
    for sample in positives() {
        let (text, range) = in_context(&sample);
        let found = default_scanner().scan(&text);
        assert_eq!(
            summary(&found),
            [(sample.detector.id().to_owned(), range)],
            "{} ({})",
            sample.detector,
            sample.what
        );
    }
}

#[test]
fn a_sample_that_is_the_whole_input_is_found() {
    // No byte before it, none after it: the stream's ends are boundaries.
    for sample in positives() {
        let found = default_scanner().scan(sample.token.as_bytes());
        assert_eq!(
            summary(&found),
            [(
                sample.detector.id().to_owned(),
                0..sample.token.len() as u64
            )],
            "{}",
            sample.what
        );
    }
}

#[test]
fn every_sample_fits_its_detectors_max_len() {
    for sample in positives() {
        assert!(
            sample.token.len() <= sample.detector.max_len(),
            "{}",
            sample.what
        );
    }
}

#[test]
fn near_misses_are_not_found() {
    for (what, text) in negatives() {
        let found = default_scanner().scan(text.as_bytes());
        assert!(found.is_empty(), "{what}: {:?}", summary(&found));
        // Streamed, by every detector alone too: alone, a detector's keyword is the longest
        // literal, the one whose left context a stream must keep from the chunk before.
        for detector in Detector::ALL {
            let alone = Scanner::builder().detectors([detector]).build().unwrap();
            for size in [1, 2, 7] {
                let found = stream_all(&alone, text.as_bytes(), &[size]);
                assert!(
                    found.is_empty(),
                    "{what}, {detector} by {size}: {:?}",
                    summary(&found)
                );
            }
        }
    }
}

#[test]
fn each_detector_finds_its_samples_across_every_chunk_boundary() {
    for sample in positives() {
        let (text, range) = in_context(&sample);
        let expected = [(sample.detector.id().to_owned(), range)];
        for split in 0..=text.len() {
            let mut stream = default_scanner().stream();
            let mut found = stream.feed(&text[..split]).into_matches();
            found.extend(stream.feed(&text[split..]).into_matches());
            found.extend(stream.finish());
            assert_eq!(
                summary(&found),
                expected,
                "{} split at {split}",
                sample.what
            );
        }
    }
}

#[test]
fn each_detector_finds_its_samples_fed_one_byte_at_a_time() {
    for sample in positives() {
        let (text, range) = in_context(&sample);
        let found = stream_all(default_scanner(), &text, &[1]);
        assert_eq!(
            summary(&found),
            [(sample.detector.id().to_owned(), range)],
            "{}",
            sample.what
        );
    }
}

#[test]
fn a_sample_ending_the_stream_is_decided_by_finish() {
    for sample in positives() {
        let mut stream = default_scanner().stream();
        let fed = stream.feed(sample.token.as_bytes());
        let mut found = fed.into_matches();
        found.extend(stream.finish());
        assert_eq!(found.len(), 1, "{}", sample.what);
    }
}

#[test]
fn escapes_and_separators_before_a_token_are_boundaries() {
    let key = concat!("AK", "IAFJLMVGEG43FAYH2P");
    for before in [
        "\\n", "\\t", "%3D", "%3d", "\\u003d", "\"", "=", " ", "\n", ":",
    ] {
        let text = format!("{{\"env\":\"X{before}{key}\\n\"}}");
        let found = default_scanner().scan(text.as_bytes());
        assert_eq!(found.len(), 1, "after {before:?}");
        let start = 9 + before.len() as u64;
        assert_eq!(found[0].range(), start..start + 20, "after {before:?}");
    }
    // A letter that is not the end of an escape joins the token to a longer word.
    let text = format!("Xn{key}");
    assert!(default_scanner().scan(text.as_bytes()).is_empty());
}

#[test]
fn openai_does_not_claim_anthropic_keys() {
    // An Anthropic key whose body happens to carry OpenAI's marker is still only Anthropic's.
    let key = concat!(
        "sk-",
        "ant-api03-Mtx-i0zHslth9j3DnFlWsZrPfvawNR3gKot",
        "T3BlbkFJ",
        "uLvWR3_fwGmnHY1xWonmJmHq_N7W5cWCCIdSzWft3ujf-AqdzS7yC-cdtcAA"
    );
    let found = default_scanner().scan(key.as_bytes());
    assert_eq!(
        summary(&found),
        [("anthropic-api-key".to_owned(), 0..key.len() as u64)]
    );
}

#[test]
fn a_jwt_inside_a_github_stateless_token_is_reported_once_as_the_github_token() {
    let sample = positives()
        .into_iter()
        .find(|s| s.what == "stateless installation token")
        .unwrap();
    let found = default_scanner().scan(sample.token.as_bytes());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id(), "github-token");
}

#[test]
fn a_jwt_in_an_authorization_header_is_found() {
    let header = format!("Authorization: Bearer {JWT_HS256}\r\n");
    let found = default_scanner().scan(header.as_bytes());
    assert_eq!(
        summary(&found),
        [("jwt".to_owned(), 22..22 + JWT_HS256.len() as u64)]
    );
}

#[test]
fn a_scanner_runs_only_the_detectors_it_was_built_with() {
    let github_only = Scanner::builder()
        .detectors([Detector::GithubToken])
        .build()
        .unwrap();
    let none = Scanner::builder().detectors([]).build().unwrap();
    assert_eq!(github_only.detectors(), [Detector::GithubToken]);
    assert!(none.detectors().is_empty());
    for sample in positives() {
        let (text, _) = in_context(&sample);
        assert_eq!(
            !github_only.scan(&text).is_empty(),
            sample.detector == Detector::GithubToken,
            "{}",
            sample.what
        );
        assert!(none.scan(&text).is_empty());
        assert!(stream_all(&none, &text, &[5]).is_empty());
    }
    // Only the detectors chosen count towards the hold-back: a JWT is the longest.
    assert_eq!(github_only.max_held_back(), Detector::GithubToken.max_len());
    assert_eq!(none.max_held_back(), 0);
    assert_eq!(default_scanner().max_held_back(), Detector::Jwt.max_len());
}

#[test]
fn samples_side_by_side_are_each_found() {
    // Separated by a single space, every token still stands on its own.
    let samples = positives();
    let mut text = String::new();
    let mut expected = Vec::new();
    for sample in &samples {
        let start = text.len() as u64;
        text.push_str(&sample.text());
        expected.push((
            sample.detector.id().to_owned(),
            start..start + sample.token.len() as u64,
        ));
        text.push(' ');
    }
    assert_eq!(summary(&default_scanner().scan(text.as_bytes())), expected);
    for size in [1, 3, 64, 1000] {
        assert_eq!(
            summary(&stream_all(default_scanner(), text.as_bytes(), &[size])),
            expected
        );
    }
}

#[test]
fn an_empty_chunk_changes_nothing() {
    let token = concat!("AK", "IAFJLMVGEG43FAYH2P");
    let mut stream = default_scanner().stream();
    let before = stream.feed(b"");
    assert_eq!((before.position(), before.safe_until()), (0, 0));
    let half = stream.feed(&token.as_bytes()[..10]);
    let empty = stream.feed(b"");
    assert!(empty.matches().is_empty());
    assert_eq!(
        (empty.position(), empty.safe_until()),
        (half.position(), half.safe_until())
    );
    let rest = stream.feed(&token.as_bytes()[10..]);
    let mut found = rest.into_matches();
    found.extend(stream.finish());
    assert_eq!(summary(&found), [("aws-access-key-id".to_owned(), 0..20)]);
}
