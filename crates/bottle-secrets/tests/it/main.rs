//! The one integration-test binary of bottle-secrets.

mod detectors;
mod docs;
mod fixtures;
mod known;
mod memory;
mod redaction;
mod release;
mod streaming;

use std::sync::LazyLock;

use bottle_secrets::{Match, Scanner, Stream};

/// Every detector, no known secrets.
pub(crate) fn default_scanner() -> &'static Scanner {
    static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::new);
    &SCANNER
}

/// A stream that checks, after every chunk, what a consumer relies on: it keeps and holds
/// back no more than its scanner declares, its buffer never grows past its bound, the safe
/// offset never goes back, and no match starts before an offset already declared safe (no
/// byte of a secret was released before the secret was reported).
pub(crate) struct Checked<'s> {
    scanner: &'s Scanner,
    stream: Stream,
    safe: u64,
    fed: u64,
    found: Vec<Match>,
}

impl<'s> Checked<'s> {
    pub(crate) fn new(scanner: &'s Scanner) -> Checked<'s> {
        Checked {
            scanner,
            stream: scanner.stream(),
            safe: 0,
            fed: 0,
            found: Vec::new(),
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let feed = self.stream.feed(chunk);
        self.fed += chunk.len() as u64;
        for m in feed.matches() {
            assert!(
                m.range().start >= self.safe,
                "{m} was reported after offset {} had been declared safe",
                self.safe
            );
        }
        assert!(feed.safe_until() >= self.safe, "the safe offset went back");
        assert_eq!(feed.position(), self.fed);
        assert!(feed.held_back() <= self.scanner.max_held_back());
        assert_eq!(feed.held_back(), self.stream.held_back());
        assert!(self.stream.retained() <= self.scanner.max_retained());
        assert!(self.stream.buffer_capacity() <= self.scanner.max_buffer());
        self.safe = feed.safe_until();
        self.found.extend(feed.into_matches());
    }

    /// Every match of the stream, sorted as [`Scanner::scan`] sorts them.
    pub(crate) fn finish(mut self) -> Vec<Match> {
        let rest = self.stream.finish();
        for m in &rest {
            assert!(
                m.range().start >= self.safe,
                "{m} was reported after offset {} was safe",
                self.safe
            );
        }
        self.found.extend(rest);
        self.found.sort_by(|a, b| {
            (a.range().start, a.range().end, a.rule()).cmp(&(
                b.range().start,
                b.range().end,
                b.rule(),
            ))
        });
        self.found
    }
}

/// Streams `input` through `scanner` in chunks of the given sizes (cycled), checked.
pub(crate) fn stream_all(scanner: &Scanner, input: &[u8], sizes: &[usize]) -> Vec<Match> {
    assert!(
        sizes.iter().all(|&s| s > 0),
        "chunk sizes must make progress"
    );
    let mut stream = Checked::new(scanner);
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= input.len() {
            break;
        }
        let chunk = &input[at..input.len().min(at + size)];
        at += chunk.len();
        stream.feed(chunk);
    }
    stream.finish()
}
