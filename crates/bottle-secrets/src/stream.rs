//! Scanning a stream chunk by chunk, in bounded memory, saying after each chunk how much of it
//! may be released.

use std::fmt;

use crate::pattern::LEFT_CONTEXT;
use crate::scanner::{Candidate, Hit, Match, Scanner};

/// Scans a stream fed in chunks of any size.
///
/// A secret split across chunks is found once, at its offset in the stream; the matches are
/// those [`Scanner::scan`] reports on the whole stream. The stream keeps only what a match in
/// progress may still need (at most [`Scanner::max_retained`] bytes between calls) and says,
/// after each [`feed`](Stream::feed), up to which offset the bytes can no longer be part of a
/// match not reported yet ([`Feed::safe_until`]); a proxy forwards those and holds back the rest.
/// [`finish`](Stream::finish) decides what is still open at the end of the stream.
///
/// ```
/// use bottle_secrets::Scanner;
///
/// let scanner = Scanner::builder().known_secret("API_TOKEN", "s3cr3t-t0ken-value").build()?;
/// let mut stream = scanner.stream_with("request body");
/// let first = stream.feed(b"{\"note\": \"s3cr3t-t0");
/// assert!(first.matches().is_empty());
/// // The half of the secret fed so far is held back.
/// assert!(first.safe_until() <= 10);
/// let second = stream.feed(b"ken-value\"}");
/// assert_eq!(second.matches()[0].id(), "known-secret");
/// assert_eq!(second.matches()[0].range(), 10..28);
/// assert_eq!(*second.matches()[0].context(), "request body");
/// assert!(stream.finish().is_empty());
/// # Ok::<(), bottle_secrets::Error>(())
/// ```
pub struct Stream<C = ()> {
    scanner: Scanner,
    context: C,
    /// The stream's bytes from `buf_start` to the end fed so far: what a literal or a candidate
    /// still needs, and at most one piece more while a chunk is searched.
    buf: Vec<u8>,
    buf_start: u64,
    /// Keyword hits waiting for enough bytes after them to be decided.
    pending: Vec<Candidate>,
}

impl<C> fmt::Debug for Stream<C>
where
    C: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the buffer: it holds the stream's bytes, secrets included.
        f.debug_struct("Stream")
            .field("context", &self.context)
            .field("position", &self.position())
            .field("retained", &self.buf.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<C> Stream<C> {
    /// Chunks are searched in pieces of at most this many bytes, so that the buffer stays
    /// bounded whatever the size of a chunk.
    pub const PIECE: usize = 64 * 1024;

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// The stream offset before which no byte can belong to a match not yet reported.
    pub fn safe_until(&self) -> u64 {
        let literal_start = self
            .position()
            .saturating_sub(self.scanner.inner.longest_literal.saturating_sub(1) as u64);
        self.pending
            .iter()
            .map(|candidate| candidate.start)
            .fold(literal_start, u64::min)
    }

    /// Bytes at the end of the stream not yet safe to release: `position - safe_until`, never
    /// more than [`Scanner::max_held_back`].
    pub fn held_back(&self) -> usize {
        usize::try_from(self.position() - self.safe_until()).expect("bounded by max_held_back")
    }

    /// Bytes the stream keeps between calls, never more than [`Scanner::max_retained`].
    pub fn retained(&self) -> usize {
        self.buf.len()
    }

    /// The capacity of the stream's buffer, never more than [`Scanner::max_buffer`].
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The context the stream was made with.
    pub fn context(&self) -> &C {
        &self.context
    }
}

impl<C: Clone> Stream<C> {
    pub(crate) fn new(scanner: Scanner, context: C) -> Stream<C> {
        Stream {
            scanner,
            context,
            buf: Vec::new(),
            buf_start: 0,
            pending: Vec::new(),
        }
    }

    /// Scans the next `chunk` of the stream. The matches it returns are those now certain
    /// (a match may be reported a few chunks after it started, once the bytes after it are
    /// known); every byte before [`Feed::safe_until`] is outside any match not yet reported.
    pub fn feed(&mut self, chunk: &[u8]) -> Feed<C> {
        let mut hits = Vec::new();
        for piece in chunk.chunks(Self::PIECE) {
            self.search(piece, &mut hits);
        }
        Feed {
            matches: self.scanner.inner.name_matches(hits, &self.context),
            safe_until: self.safe_until(),
            position: self.position(),
        }
    }

    /// Ends the stream: decides every candidate still open (the stream's end is a boundary)
    /// and returns what it found. Everything fed is then safe to release.
    pub fn finish(self) -> Vec<Match<C>> {
        let inner = &*self.scanner.inner;
        let hits: Vec<Hit> = self
            .pending
            .iter()
            .filter_map(|candidate| inner.confirm(&self.buf, self.buf_start, candidate, true))
            .collect();
        inner.name_matches(hits, &self.context)
    }

    /// Appends `piece` (at most [`Self::PIECE`] bytes), finds what it completes, and drops what
    /// is no longer needed.
    fn search(&mut self, piece: &[u8], hits: &mut Vec<Hit>) {
        self.reserve(piece.len());
        let inner = &*self.scanner.inner;
        let seen = self.buf.len();
        self.buf.extend_from_slice(piece);
        // A literal that ends in `piece` starts at most `longest_literal - 1` bytes before it.
        let from = seen.saturating_sub(inner.longest_literal.saturating_sub(1));
        inner.literals(
            &self.buf,
            self.buf_start,
            from,
            seen,
            hits,
            &mut self.pending,
        );
        let end = self.position();
        let (buf, buf_start) = (&self.buf, self.buf_start);
        self.pending.retain(|candidate| {
            if !inner.ready(candidate, end) {
                return true;
            }
            hits.extend(inner.confirm(buf, buf_start, candidate, false));
            false
        });
        self.trim();
    }
}

impl<C> Stream<C> {
    /// Drops the bytes no future literal or open candidate can reach, keeping the
    /// [`LEFT_CONTEXT`] bytes before a future literal for its boundary check.
    fn trim(&mut self) {
        let keep_from = self.safe_until().saturating_sub(LEFT_CONTEXT as u64);
        let drop = usize::try_from(keep_from.saturating_sub(self.buf_start))
            .expect("within the buffer")
            .min(self.buf.len());
        self.buf.drain(..drop);
        self.buf_start += drop as u64;
        debug_assert!(self.buf.len() <= self.scanner.max_retained());
    }

    /// Grows the buffer for `additional` bytes, geometrically but never past
    /// [`Scanner::max_buffer`].
    fn reserve(&mut self, additional: usize) {
        let needed = self.buf.len() + additional;
        if needed > self.buf.capacity() {
            let target = needed
                .max(2 * self.buf.capacity())
                .max(1024)
                .min(self.scanner.max_buffer());
            self.buf.reserve_exact(target - self.buf.len());
        }
    }
}

/// What one [`Stream::feed`] found, and how much of the stream may now be released.
#[derive(Debug)]
#[must_use = "a feed reports matches and how much of the stream may be released"]
pub struct Feed<C = ()> {
    matches: Vec<Match<C>>,
    safe_until: u64,
    position: u64,
}

impl<C> Feed<C> {
    /// The matches this chunk completed, sorted by position (then rule).
    pub fn matches(&self) -> &[Match<C>] {
        &self.matches
    }

    /// The matches, owned.
    pub fn into_matches(self) -> Vec<Match<C>> {
        self.matches
    }

    /// Every byte before this stream offset is outside any match not reported yet.
    pub fn safe_until(&self) -> u64 {
        self.safe_until
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many of the last bytes fed must be held back: `position - safe_until`.
    pub fn held_back(&self) -> usize {
        usize::try_from(self.position - self.safe_until).expect("bounded by max_held_back")
    }
}
