//! The one YAML entry point of claude-bottle: [`parse`].
//!
//! Every YAML document the project reads — manifest front matter and the egress proxy's
//! config file — goes through [`parse`], so the hardening lives in one place:
//!
//! - input larger than [`MAX_INPUT_BYTES`] or containing a NUL character is refused before the
//!   parser sees it;
//! - parser budgets bound nesting depth, events, nodes, anchors, aliases and scalar bytes, so a
//!   "billion laughs" alias bomb or a deeply nested document fails fast with an error instead of
//!   exhausting memory or the stack;
//! - duplicate mapping keys are an error (YAML requires unique keys, and "last one wins" would
//!   let a second `auth:` silently replace the first);
//! - booleans are strict YAML 1.2 (`true`/`false`): `yes`, `no`, `on` and `off` are not booleans;
//! - unknown tags (`!include`, `!something`) are refused.
//!
//! Errors carry a 1-based line and column and a message without the position, so callers can
//! render `file:line:col: message` themselves.
//!
//! ```
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     listen: String,
//!     #[serde(default)]
//!     verbose: bool,
//! }
//!
//! let config: Config = bottle_manifest::yaml::parse("listen: 127.0.0.1:3128\nverbose: true\n")?;
//! assert_eq!(config.listen, "127.0.0.1:3128");
//! assert!(config.verbose);
//!
//! let err = bottle_manifest::yaml::parse::<Config>("listen: a\nlisten: b\n").unwrap_err();
//! assert_eq!((err.line, err.column), (2, 1));
//! assert!(err.message.contains("duplicate"));
//!
//! let err = bottle_manifest::yaml::parse::<Config>("listen: a\nverbos: true\n").unwrap_err();
//! assert_eq!(err.line, 2);
//! assert!(err.message.contains("did you mean `verbose`"));
//! # Ok::<(), bottle_manifest::yaml::YamlError>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::{
    Error as SaphyrError, ExternalMessageSource, MessageFormatter, UserMessageFormatter,
};

/// The largest YAML document [`parse`] accepts, in bytes (1 MiB). Manifests and configs are a
/// few kilobytes; anything near this size is a mistake or an attack.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// The deepest nesting of mappings and sequences [`parse`] accepts. Our deepest legitimate
/// shape (`egress.routes[].auth.token_ref`) is four levels; 32 leaves room without letting a
/// hostile document recurse deeply.
pub const MAX_DEPTH: usize = 32;

/// A YAML document that could not be parsed into the requested type.
///
/// `line` and `column` are 1-based and point into the text given to [`parse`]. `message` does
/// not repeat the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column of the offending token.
    pub column: usize,
    /// What is wrong, in one sentence, without the position.
    pub message: String,
    /// A machine-readable classification, for callers that want to rephrase some errors
    /// (the manifest layer turns an unknown key that was removed into a pointer to its
    /// replacement).
    pub kind: YamlErrorKind,
}

/// The class of a [`YamlError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum YamlErrorKind {
    /// Not well-formed YAML.
    Syntax,
    /// Too large, too deep, too many aliases, or a NUL character: refused to protect the host.
    Limit,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// A key the target type does not know.
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys allowed at that place.
        allowed: Vec<String>,
    },
    /// Well-formed YAML of the wrong shape: a wrong type, a missing key, a bad value.
    Invalid,
}

impl YamlError {
    /// An error at `line`:`column` (1-based; 0 is raised to 1) of kind [`YamlErrorKind::Invalid`].
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        YamlError {
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
            kind: YamlErrorKind::Invalid,
        }
    }

    fn with_kind(mut self, kind: YamlErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for YamlError {}

/// Parse one YAML document into `T`, with the hardening described in the [module docs](self).
///
/// An empty document is parsed as YAML `null` (so `Option<T>` gives `None`, and a struct whose
/// fields all have defaults gets them).
///
/// # Errors
///
/// A [`YamlError`] with the 1-based position of the first problem.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    precheck(text)?;
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| convert(&e))
}

/// Refuse what we never want the parser to see: huge inputs and NUL characters (a NUL in a
/// text file is a sign of a binary or a smuggling attempt; YAML forbids it anyway, but a clear
/// message beats a parser's).
fn precheck(text: &str) -> Result<(), YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::new(
            1,
            1,
            format!(
                "the document is {} bytes, more than the limit of {MAX_INPUT_BYTES} bytes",
                text.len()
            ),
        )
        .with_kind(YamlErrorKind::Limit));
    }
    if let Some(offset) = text.find('\0') {
        let (line, column) = position_of(text, offset);
        return Err(
            YamlError::new(line, column, "the document contains a NUL character")
                .with_kind(YamlErrorKind::Limit),
        );
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn position_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = MAX_INPUT_BYTES;
    budget.max_total_scalar_bytes = 2 * MAX_INPUT_BYTES;
    budget.max_documents = 1;
    budget.max_merge_keys = 100;
    budget.max_inclusion_depth = 0;

    let mut aliases = serde_saphyr::options::AliasLimits::default();
    aliases.max_total_replayed_events = 100_000;
    aliases.max_replay_stack_depth = MAX_DEPTH;
    aliases.max_alias_expansions_per_anchor = 1_000;

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = aliases;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.strict_booleans = true;
    options.reject_unsupported_tags = true;
    options.with_snippet = false;
    options
}

/// Strip the wrappers serde-saphyr puts around an error (snippet, alias) to reach the cause.
fn original(mut err: &SaphyrError) -> &SaphyrError {
    while let SaphyrError::AliasError { error, .. } | SaphyrError::WithSnippet { error, .. } = err {
        err = error;
    }
    err
}

fn convert(err: &SaphyrError) -> YamlError {
    let (line, column) = err
        .location()
        .map_or((1, 1), |l| (to_usize(l.line()), to_usize(l.column())));
    let inner = original(err);
    let (message, kind) = match inner {
        SaphyrError::SerdeUnknownField {
            field, expected, ..
        } => (
            unknown_key_message(field, expected),
            YamlErrorKind::UnknownKey {
                key: field.clone(),
                allowed: expected.iter().map(|s| (*s).to_owned()).collect(),
            },
        ),
        SaphyrError::DuplicateMappingKey { .. } => {
            (plain_message(err), YamlErrorKind::DuplicateKey)
        }
        SaphyrError::Budget { breach, .. } => (budget_message(breach), YamlErrorKind::Limit),
        SaphyrError::AliasReplayLimitExceeded { .. }
        | SaphyrError::AliasExpansionLimitExceeded { .. }
        | SaphyrError::AliasReplayStackDepthExceeded { .. }
        | SaphyrError::AliasReplayCounterOverflow { .. }
        | SaphyrError::RecursiveReferencesRequireWeakTypes { .. } => {
            (ALIAS_BOMB.to_owned(), YamlErrorKind::Limit)
        }
        SaphyrError::InvalidCharNull { .. } => (
            "the document contains a NUL character".to_owned(),
            YamlErrorKind::Limit,
        ),
        SaphyrError::Unexpected { expected, .. } => {
            (expected_message(expected), YamlErrorKind::Invalid)
        }
        SaphyrError::ExternalMessage { source, .. }
            if matches!(**source, ExternalMessageSource::Parser(_)) =>
        {
            (plain_message(err), YamlErrorKind::Syntax)
        }
        SaphyrError::Message { .. }
        | SaphyrError::Eof { .. }
        | SaphyrError::MultipleDocuments { .. }
        | SaphyrError::UnexpectedSequenceEnd { .. }
        | SaphyrError::UnexpectedMappingEnd { .. }
        | SaphyrError::UnknownAnchor { .. }
        | SaphyrError::IndentationError { .. }
        | SaphyrError::ContainerEndMismatch { .. } => (plain_message(err), YamlErrorKind::Syntax),
        _ => (plain_message(err), YamlErrorKind::Invalid),
    };
    // The scanner's own nesting guard reports as a plain message.
    if message.contains("recursion limit exceeded") {
        return YamlError::new(line, column, DEPTH_MESSAGE).with_kind(YamlErrorKind::Limit);
    }
    YamlError::new(line, column, message).with_kind(kind)
}

const ALIAS_BOMB: &str =
    "the document's aliases expand to too much data (a YAML \"billion laughs\" bomb?)";
const DEPTH_MESSAGE: &str = "the document is nested too deeply (more than 32 levels)";

fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => DEPTH_MESSAGE.to_owned(),
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. }
        | B::MergeKeys { .. } => ALIAS_BOMB.to_owned(),
        _ => "the document is too large or too complex".to_owned(),
    }
}

/// serde-saphyr says "expected mapping start"; say what the user must write.
fn expected_message(expected: &str) -> String {
    match expected {
        "mapping start" => {
            "expected a mapping here (`key: value` lines or `{key: value}`)".to_owned()
        }
        "sequence start" => "expected a list here (`- item` lines or `[a, b]`)".to_owned(),
        other => format!("expected {other}"),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// serde-saphyr's user-facing wording, without the location suffix the renderer would add
/// (we render the position ourselves).
fn plain_message(err: &SaphyrError) -> String {
    let text: Cow<'_, str> = UserMessageFormatter.format_message(original(err));
    // The formatter's text is not sanitised (only the renderer does that); a message can quote
    // input, so keep control characters out of the terminal.
    crate::escape::escape(&text).into_owned()
}

fn unknown_key_message(key: &str, expected: &[&str]) -> String {
    let key_shown = crate::escape::escape(key);
    let mut message = format!("unknown key `{key_shown}`");
    if expected.is_empty() {
        message.push_str("; no keys are allowed here");
        return message;
    }
    message.push_str("; allowed keys: ");
    message.push_str(&expected.join(", "));
    if let Some(best) = did_you_mean(key, expected.iter().copied()) {
        message.push_str(&format!(" (did you mean `{best}`?)"));
    }
    message
}

/// The closest candidate to `input`, if one is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
