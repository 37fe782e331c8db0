//! The built scanner: the literal automata over every keyword and every known-secret form,
//! the shapes that confirm keyword hits, and the one-shot search.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::automaton::Automaton as _;
use aho_corasick::{
    AhoCorasick, AhoCorasickKind, Anchored, Input, MatchKind, PatternID, StartKind, dfa,
};

use crate::error::Error;
use crate::known::{self, MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN};
use crate::pattern::{self, LEFT_CONTEXT, REGEXES, SPECS};
use crate::rule::{Detector, Encoding, Rule};
use crate::stream::Stream;

/// Configures a [`Scanner`]: which detectors run and which known secrets are looked for.
///
/// ```
/// use bottle_secrets::{Detector, Scanner};
///
/// let scanner = Scanner::builder()
///     .detectors([Detector::GithubToken, Detector::PrivateKey])
///     .known_secret("GH_TOKEN", "the-bottle's-own-token")
///     .build()?;
/// assert_eq!(scanner.detectors(), [Detector::GithubToken, Detector::PrivateKey]);
/// # Ok::<(), bottle_secrets::Error>(())
/// ```
#[derive(Clone)]
pub struct ScannerBuilder {
    detectors: Vec<Detector>,
    known: Vec<(Arc<str>, Vec<u8>)>,
}

impl Default for ScannerBuilder {
    fn default() -> Self {
        ScannerBuilder::new()
    }
}

impl fmt::Debug for ScannerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: a value is the secret.
        let names: Vec<&str> = self.known.iter().map(|(name, _)| &**name).collect();
        f.debug_struct("ScannerBuilder")
            .field("detectors", &self.detectors)
            .field("known_secrets", &names)
            .finish()
    }
}

impl ScannerBuilder {
    /// Every detector, no known secrets.
    pub fn new() -> ScannerBuilder {
        ScannerBuilder {
            detectors: Detector::ALL.to_vec(),
            known: Vec::new(),
        }
    }

    /// Runs only these detectors (none, for a scanner of known secrets only).
    pub fn detectors(&mut self, detectors: impl IntoIterator<Item = Detector>) -> &mut Self {
        let mut detectors: Vec<Detector> = detectors.into_iter().collect();
        detectors.sort_unstable();
        detectors.dedup();
        self.detectors = detectors;
        self
    }

    /// Also looks for `value` — raw, hex, base64, base64url and percent-encoded — and names a
    /// match by `name` (an env var's name, a route's host: anything but the value). A value must
    /// be [`MIN_KNOWN_SECRET_LEN`] to [`MAX_KNOWN_SECRET_LEN`] bytes long;
    /// [`build`](Self::build) says which is not.
    pub fn known_secret(
        &mut self,
        name: impl Into<Arc<str>>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        let entry = (name.into(), value.as_ref().to_vec());
        if !self.known.contains(&entry) {
            self.known.push(entry);
        }
        self
    }

    /// Builds the scanner.
    ///
    /// # Errors
    ///
    /// A known secret shorter than [`MIN_KNOWN_SECRET_LEN`] or longer than
    /// [`MAX_KNOWN_SECRET_LEN`], or so many that the automaton would be too large.
    pub fn build(&self) -> Result<Scanner, Error> {
        for (name, value) in &self.known {
            if value.len() < MIN_KNOWN_SECRET_LEN {
                return Err(Error::KnownSecretTooShort {
                    name: name.clone(),
                    len: value.len(),
                    min: MIN_KNOWN_SECRET_LEN,
                });
            }
            if value.len() > MAX_KNOWN_SECRET_LEN {
                return Err(Error::KnownSecretTooLong {
                    name: name.clone(),
                    len: value.len(),
                    max: MAX_KNOWN_SECRET_LEN,
                });
            }
        }

        let mut literals = Literals::default();
        let mut longest_pattern = 0;
        for (index, spec) in SPECS.iter().enumerate() {
            if self.detectors.contains(&spec.detector) {
                longest_pattern = longest_pattern.max(spec.max_len);
                for keyword in spec.keywords {
                    literals.add(keyword.as_bytes(), Target::Keyword { spec: index });
                }
            }
        }
        for (secret, (_, value)) in self.known.iter().enumerate() {
            for (encoding, bytes) in known::literals(value) {
                literals.add(&bytes, Target::Known { secret, encoding });
            }
        }

        let longest_literal = literals.bytes.iter().map(Vec::len).max().unwrap_or(0);
        let automata = if literals.bytes.is_empty() {
            None
        } else {
            Some(Automata::build(&literals.bytes)?)
        };
        Ok(Scanner {
            inner: Arc::new(Inner {
                automata,
                targets: literals.targets,
                names: self.known.iter().map(|(name, _)| name.clone()).collect(),
                detectors: self.detectors.clone(),
                longest_literal,
                longest_pattern,
            }),
        })
    }
}

/// The literal automata. Overlapping matches are needed (`sk-` and `sk-ant-` start at one
/// offset; a keyword may sit inside a known secret), but aho-corasick's overlapping search
/// runs byte by byte. So one automaton finds where the next literal starts (leftmost-first,
/// which lets it skip ahead with its SIMD prefilter), and a second, anchored there, lists
/// every literal that starts at that offset.
struct Automata {
    locate: AhoCorasick,
    list: dfa::DFA,
}

impl Automata {
    fn build(literals: &[Vec<u8>]) -> Result<Automata, Error> {
        let too_many = |source| Error::TooManyKnownSecrets { source };
        let locate = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(automaton_kind(literals)))
            .build(literals)
            .map_err(too_many)?;
        // Anchored only: no fallback chains, so the DFA is always cheap to build.
        let list = dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Anchored)
            .build(literals)
            .map_err(too_many)?;
        Ok(Automata { locate, list })
    }

    /// Calls `each(literal id, end)` for every literal that starts at `hay[start]`.
    fn each_at(&self, hay: &[u8], start: usize, mut each: impl FnMut(PatternID, usize)) {
        let list = &self.list;
        let mut state = list
            .start_state(Anchored::Yes)
            .expect("the listing automaton is built anchored");
        for (offset, &byte) in hay[start..].iter().enumerate() {
            state = list.next_state(Anchored::Yes, state, byte);
            if list.is_dead(state) {
                return;
            }
            if list.is_match(state) {
                for index in 0..list.match_len(state) {
                    each(list.match_pattern(state, index), start + offset + 1);
                }
            }
        }
    }
}

/// A DFA searches about twice as fast as the NFA it is made from, but building it follows, for
/// every state, the chain of shorter matches a mismatch falls back to. For random literals the
/// chains are short; for a self-similar one (a repeated character, or its percent-encoding
/// `%2F%2F…`) they are as long as the literal, and the build turns quadratic: seconds for a
/// 1 KiB value. Such literal sets (and very large ones, whose DFA would take megabytes) get
/// the NFA.
fn automaton_kind(literals: &[Vec<u8>]) -> AhoCorasickKind {
    const MAX_DFA_FALLBACKS: usize = 20_000;
    const MAX_DFA_BYTES: usize = 64 * 1024;
    let bytes: usize = literals.iter().map(Vec::len).sum();
    let fallbacks: usize = literals
        .iter()
        .map(|literal| fallback_chains(literal))
        .sum();
    if bytes <= MAX_DFA_BYTES && fallbacks <= MAX_DFA_FALLBACKS {
        AhoCorasickKind::DFA
    } else {
        AhoCorasickKind::ContiguousNFA
    }
}

/// The total length of the fallback chains within `literal`: for each of its prefixes, how
/// many of its proper suffixes are also prefixes of the literal (its borders, counted with the
/// prefix function).
fn fallback_chains(literal: &[u8]) -> usize {
    let mut border = vec![0usize; literal.len()];
    let mut chain = vec![0usize; literal.len()];
    let mut total = 0;
    for i in 1..literal.len() {
        let mut k = border[i - 1];
        while k > 0 && literal[i] != literal[k] {
            k = border[k - 1];
        }
        if literal[i] == literal[k] {
            k += 1;
        }
        border[i] = k;
        chain[i] = if k > 0 { chain[k - 1] + 1 } else { 0 };
        total += chain[i];
    }
    total
}

/// The literals of the automaton, each once, with everything a hit on it means.
#[derive(Default)]
struct Literals {
    bytes: Vec<Vec<u8>>,
    targets: Vec<Vec<Target>>,
    index: HashMap<Vec<u8>, usize>,
}

impl Literals {
    fn add(&mut self, bytes: &[u8], target: Target) {
        let id = *self.index.entry(bytes.to_vec()).or_insert_with(|| {
            self.bytes.push(bytes.to_vec());
            self.targets.push(Vec::new());
            self.bytes.len() - 1
        });
        self.targets[id].push(target);
    }
}

/// What a literal hit means.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// A candidate for this spec starts here.
    Keyword { spec: usize },
    /// This known secret, in this encoding: a match on its own.
    Known { secret: usize, encoding: Encoding },
}

/// Finds secrets: built once (it is cheap to clone and shares its automata), used for any
/// number of one-shot [`scan`](Scanner::scan)s and [`Stream`]s, from any thread.
///
/// A match starts at a literal: a detector's keyword (confirmed by its shape on the bytes that
/// follow) or a form of a known secret. Every match is at most
/// [`max_match_len`](Scanner::max_match_len) bytes long, so a stream needs to hold back at most
/// [`max_held_back`](Scanner::max_held_back) bytes and to keep at most
/// [`max_retained`](Scanner::max_retained) between chunks.
#[derive(Clone)]
pub struct Scanner {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    automata: Option<Automata>,
    /// By automaton pattern id.
    targets: Vec<Vec<Target>>,
    /// Known secrets' names, by index.
    names: Vec<Arc<str>>,
    detectors: Vec<Detector>,
    pub(crate) longest_literal: usize,
    pub(crate) longest_pattern: usize,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("detectors", &self.inner.detectors)
            .field("known_secrets", &self.inner.names)
            .field("max_held_back", &self.max_held_back())
            .finish()
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// Every detector, no known secrets.
    pub fn new() -> Scanner {
        ScannerBuilder::new()
            .build()
            .expect("a scanner without known secrets always builds")
    }

    /// A builder, to choose detectors and add known secrets.
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::new()
    }

    /// The detectors this scanner runs, in [`Detector::ALL`] order.
    pub fn detectors(&self) -> &[Detector] {
        &self.inner.detectors
    }

    /// Every secret in `haystack`, sorted by position (then rule).
    pub fn scan(&self, haystack: &[u8]) -> Vec<Match> {
        let inner = &*self.inner;
        let mut hits = Vec::new();
        let mut candidates = Vec::new();
        inner.literals(haystack, 0, 0, 0, &mut hits, &mut candidates);
        for candidate in &candidates {
            hits.extend(inner.confirm(haystack, 0, candidate, true));
        }
        inner.name_matches(hits, &())
    }

    /// A stream scanner whose matches carry no context.
    pub fn stream(&self) -> Stream {
        Stream::new(self.clone(), ())
    }

    /// A stream scanner whose matches each carry a clone of `context` (for a git gate the
    /// commit and path of the blob; for an egress which part of which request).
    pub fn stream_with<C: Clone>(&self, context: C) -> Stream<C> {
        Stream::new(self.clone(), context)
    }

    /// The longest match this scanner can report, in bytes: the longest of its detectors'
    /// [`max_len`](Detector::max_len) and of its known secrets' forms.
    pub fn max_match_len(&self) -> usize {
        self.inner.longest_pattern.max(self.inner.longest_literal)
    }

    /// The most a stream ever holds back: after any [`feed`](Stream::feed), all but at most
    /// this many of the bytes fed so far are safe to release.
    pub fn max_held_back(&self) -> usize {
        self.inner
            .longest_pattern
            .max(self.inner.longest_literal.saturating_sub(1))
    }

    /// The most a stream keeps between two calls to [`feed`](Stream::feed), in bytes.
    pub fn max_retained(&self) -> usize {
        self.max_held_back() + LEFT_CONTEXT
    }

    /// The most a stream's buffer ever holds (and its capacity), in bytes: what it keeps
    /// plus one piece of a chunk ([`Stream::PIECE`]), however large the chunks fed.
    pub fn max_buffer(&self) -> usize {
        self.max_retained() + Stream::<()>::PIECE
    }
}

/// A match before it is given to the caller: what and where, by index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    start: u64,
    end: u64,
    what: HitRule,
}

#[derive(Clone, Copy, Debug)]
enum HitRule {
    Detector(Detector),
    Known { secret: usize, encoding: Encoding },
}

/// A keyword hit, waiting for enough bytes after it to be decided.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    spec: usize,
    pub(crate) start: u64,
    keyword_len: usize,
}

impl Inner {
    /// Runs the literal automaton over `hay[from..]` (stream offset of `hay[0]`: `base`) and
    /// keeps only literals that end after `hay[..seen]`, which an earlier call has searched.
    /// Known-secret literals are matches; keywords become candidates if they may start a
    /// token there (`hay` holds the [`LEFT_CONTEXT`] bytes before each).
    pub(crate) fn literals(
        &self,
        hay: &[u8],
        base: u64,
        from: usize,
        seen: usize,
        hits: &mut Vec<Hit>,
        candidates: &mut Vec<Candidate>,
    ) {
        let Some(automata) = &self.automata else {
            return;
        };
        let mut at = from;
        while let Some(next) = automata.locate.find(Input::new(hay).range(at..)) {
            let start = next.start();
            let before = &hay[start.saturating_sub(LEFT_CONTEXT)..start];
            automata.each_at(hay, start, |literal, end| {
                if end <= seen {
                    return;
                }
                let (start, end) = (base + start as u64, base + end as u64);
                for target in &self.targets[literal.as_usize()] {
                    match *target {
                        Target::Keyword { spec } => {
                            if pattern::may_start(&SPECS[spec], before) {
                                candidates.push(Candidate {
                                    spec,
                                    start,
                                    keyword_len: (end - start) as usize,
                                });
                            }
                        }
                        Target::Known { secret, encoding } => hits.push(Hit {
                            start,
                            end,
                            what: HitRule::Known { secret, encoding },
                        }),
                    }
                }
            });
            at = start + 1;
        }
    }

    /// Whether `hay`, ending at stream offset `end`, holds everything `candidate` needs: the
    /// longest match and the byte after it.
    pub(crate) fn ready(&self, candidate: &Candidate, end: u64) -> bool {
        candidate.start + (SPECS[candidate.spec].max_len as u64) < end
    }

    /// Decides `candidate` on `hay` (stream offset of `hay[0]`: `base`); `at_end` says the
    /// stream ends where `hay` does.
    pub(crate) fn confirm(
        &self,
        hay: &[u8],
        base: u64,
        candidate: &Candidate,
        at_end: bool,
    ) -> Option<Hit> {
        let spec = &SPECS[candidate.spec];
        debug_assert!(at_end || self.ready(candidate, base + hay.len() as u64));
        let at = usize::try_from(candidate.start - base).expect("a candidate lies in the buffer");
        let window = &hay[at..hay.len().min(at + spec.max_len + 1)];
        let len = pattern::confirm(
            spec,
            &REGEXES[candidate.spec],
            window,
            candidate.keyword_len,
        )?;
        Some(Hit {
            start: candidate.start,
            end: candidate.start + len as u64,
            what: HitRule::Detector(spec.detector),
        })
    }

    /// Names `hits` and sorts them by position, then rule.
    pub(crate) fn name_matches<C: Clone>(&self, hits: Vec<Hit>, context: &C) -> Vec<Match<C>> {
        let mut matches: Vec<Match<C>> = hits
            .into_iter()
            .map(|hit| Match {
                rule: match hit.what {
                    HitRule::Detector(detector) => Rule::Detector(detector),
                    HitRule::Known { secret, encoding } => Rule::KnownSecret {
                        name: self.names[secret].clone(),
                        encoding,
                    },
                },
                range: hit.start..hit.end,
                context: context.clone(),
            })
            .collect();
        matches.sort_by(Match::order);
        matches
    }
}

/// A secret found: which rule, where (byte offsets in the scanned input or stream), and the
/// caller's context. It never holds the secret's bytes, so it can be logged and shown as is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Match<C = ()> {
    rule: Rule,
    range: Range<u64>,
    context: C,
}

impl<C> Match<C> {
    /// What matched.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The rule's stable id (`github-token`, `known-secret`, …).
    pub fn id(&self) -> &'static str {
        self.rule.id()
    }

    /// Where: byte offsets from the start of the input or stream.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// The context the stream was made with.
    pub fn context(&self) -> &C {
        &self.context
    }

    /// This match with another context (e.g. after a one-shot [`Scanner::scan`]).
    pub fn with_context<D>(self, context: D) -> Match<D> {
        Match {
            rule: self.rule,
            range: self.range,
            context,
        }
    }
}

impl<C> Match<C> {
    /// By position, then rule: the order every list of matches is in.
    pub(crate) fn order(a: &Match<C>, b: &Match<C>) -> std::cmp::Ordering {
        (a.range.start, a.range.end, &a.rule).cmp(&(b.range.start, b.range.end, &b.rule))
    }
}

impl<C> fmt::Display for Match<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at bytes {}..{}",
            self.rule, self.range.start, self.range.end
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_chains_are_long_only_for_self_similar_literals() {
        assert_eq!(fallback_chains(b"abcdefgh"), 0);
        assert_eq!(fallback_chains(b"kkkk"), 1 + 2 + 3);
        assert_eq!(fallback_chains(b"abab"), 1 + 1);
        assert_eq!(fallback_chains(b""), 0);
    }

    #[test]
    fn self_similar_or_huge_literal_sets_get_the_nfa() {
        let random: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        assert_eq!(
            automaton_kind(std::slice::from_ref(&random)),
            AhoCorasickKind::DFA
        );
        assert_eq!(
            automaton_kind(&[vec![b'k'; 1024]]),
            AhoCorasickKind::ContiguousNFA
        );
        assert_eq!(
            automaton_kind(&vec![random; 40]),
            AhoCorasickKind::ContiguousNFA
        );
    }
}
