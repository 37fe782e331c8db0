//! Throughput of a scanner with every detector and one, then ten, known secrets, on 50 MB of
//! random bytes and 50 MB of text-like bytes (code, JSON, prose, a little base64), one-shot and
//! streamed in 64 KiB chunks.
//!
//! ```sh
//! cargo run --release -p bottle-secrets --example throughput [-- MEGABYTES]
//! ```

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bottle_secrets::Scanner;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 5;

fn main() {
    let megabytes: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the size in megabytes, e.g. 50"),
        None => 50,
    };
    let size = megabytes * 1_000_000;
    let mut rng = StdRng::seed_from_u64(42);
    let mut random = vec![0u8; size];
    rng.fill_bytes(&mut random);
    let text = text_like(&mut rng, size);

    println!("bottle-secrets throughput, {ROUNDS} rounds each, best round (median in brackets)");
    for known in [1, 10] {
        let mut builder = Scanner::builder();
        for i in 0..known {
            let mut value = [0u8; 20];
            rng.fill_bytes(&mut value);
            let token: String = value.iter().map(|b| format!("{b:02x}")).collect();
            builder.known_secret(format!("TOKEN_{i}"), format!("tok_{token}"));
        }
        let scanner = builder.build().expect("valid known secrets");
        println!("every detector and {known} known secret(s) of 44 bytes:");
        for (what, input) in [("random bytes", &random), ("text-like", &text)] {
            let scan = measure(|| scanner.scan(input).len());
            let stream = measure(|| {
                let mut stream = scanner.stream();
                let mut found = 0;
                for chunk in input.chunks(CHUNK) {
                    found += stream.feed(chunk).matches().len();
                }
                found + stream.finish().len()
            });
            println!(
                "  {what:>12}, {megabytes} MB:  scan {}   stream (64 KiB chunks) {}",
                rate(size, &scan),
                rate(size, &stream)
            );
        }
    }
}

/// Runs `f` [`ROUNDS`] times; the durations, sorted.
fn measure(mut f: impl FnMut() -> usize) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn rate(size: usize, times: &[Duration]) -> String {
    let mbps = |d: &Duration| size as f64 / 1e6 / d.as_secs_f64();
    format!(
        "{:>6.0} MB/s ({:.0})",
        mbps(&times[0]),
        mbps(&times[times.len() / 2])
    )
}

/// Source code, JSON, prose and now and then a base64 blob: the mix of a repository or a
/// request body, with no secrets in it. One word in a hundred is a near miss that starts a
/// literal or looks like one (`sk-learn`, `task-`, `eyes`, `AKIN`), so that the confirming
/// stage runs too.
fn text_like(rng: &mut StdRng, size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "request",
        "body",
        "is",
        "scanned",
        "before",
        "it",
        "leaves",
        "fn",
        "let",
        "mut",
        "self",
        "return",
        "Ok(())",
        "impl",
        "struct",
        "match",
        "=>",
        "{",
        "}",
        "(",
        ")",
        ";",
        "config",
        "token",
        "secret",
        "key",
        "password",
        "user_id",
        "\"name\":",
        "\"value\":",
        "https://api.example.com/v1/items?page=2",
        "0x1f",
        "42",
        "3.14",
        "true",
        "null",
        "// comment",
        "# heading",
        "- item",
        "import",
        "from",
        "const",
        "async",
        "await",
        "String::new()",
        "Vec<u8>",
        "assert_eq!(a, b)",
        "for",
        "in",
        "while",
        "if",
        "else",
    ];
    const NEAR_MISSES: &[&str] = &[
        "sk-learn",
        "task-runner",
        "disk_live_",
        "eyes",
        "AKIN",
        "-----BEGIN",
        "ghost_",
        "hooks.slack.com/",
        "AIzaz",
        "xoxb-",
    ];
    let mut out = Vec::with_capacity(size + 128);
    while out.len() < size {
        if rng.random_ratio(1, 200) {
            let mut blob = vec![0u8; rng.random_range(30..300)];
            rng.fill_bytes(&mut blob);
            out.extend_from_slice(b"\"data\": \"");
            out.extend(blob.iter().map(|b| {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [usize::from(b & 63)]
            }));
            out.extend_from_slice(b"\",\n");
            continue;
        }
        let words = if rng.random_ratio(1, 100) {
            NEAR_MISSES
        } else {
            WORDS
        };
        out.extend_from_slice(words[rng.random_range(0..words.len())].as_bytes());
        out.push(if rng.random_ratio(1, 10) { b'\n' } else { b' ' });
    }
    out.truncate(size);
    out
}
