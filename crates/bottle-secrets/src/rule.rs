//! The vocabulary of a finding: which detector, or which known secret in which encoding.

use std::fmt;
use std::sync::Arc;

/// A built-in detector: one kind of credential recognised by its shape.
///
/// Each has a stable [`id`](Detector::id) (what a report, a log line or a config names it by)
/// and a bounded [`max_len`](Detector::max_len). The facts each relies on, and why, are in the
/// crate README's rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Detector {
    /// `aws-access-key-id`: `AKIA`, `ASIA`, `ABIA` or `ACCA` and 16 characters of `[A-Z2-7]`.
    AwsAccessKeyId,
    /// `github-token`: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` tokens with a valid CRC32, the
    /// stateless `ghs_<app id>_<JWT>` installation tokens, and `github_pat_` fine-grained tokens.
    GithubToken,
    /// `anthropic-api-key`: `sk-ant-` credentials other than OAuth tokens (`api03`, `admin01`, …).
    AnthropicApiKey,
    /// `anthropic-oauth-token`: `sk-ant-oat01-` access and `sk-ant-ort01-` refresh tokens.
    AnthropicOauthToken,
    /// `openai-api-key`: `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-` keys carrying `T3BlbkFJ`.
    OpenaiApiKey,
    /// `stripe-live-key`: `sk_live_` secret and `rk_live_` restricted keys.
    StripeLiveKey,
    /// `slack-token`: `xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-` tokens.
    SlackToken,
    /// `slack-webhook-url`: `hooks.slack.com/services|workflows|triggers/…`.
    SlackWebhookUrl,
    /// `google-api-key`: `AIza` and 35 characters of `[0-9A-Za-z_-]`.
    GoogleApiKey,
    /// `private-key`: a PEM or PGP private-key block: its `-----BEGIN … PRIVATE KEY-----` line
    /// and the first 32 characters of its body.
    PrivateKey,
    /// `jwt`: three base64url parts whose header decodes to a JSON object with `alg`.
    Jwt,
}

impl Detector {
    /// Every detector, in a stable order.
    pub const ALL: [Detector; 11] = [
        Detector::AwsAccessKeyId,
        Detector::GithubToken,
        Detector::AnthropicApiKey,
        Detector::AnthropicOauthToken,
        Detector::OpenaiApiKey,
        Detector::StripeLiveKey,
        Detector::SlackToken,
        Detector::SlackWebhookUrl,
        Detector::GoogleApiKey,
        Detector::PrivateKey,
        Detector::Jwt,
    ];

    /// The stable rule id, e.g. `github-token`.
    pub fn id(self) -> &'static str {
        match self {
            Detector::AwsAccessKeyId => "aws-access-key-id",
            Detector::GithubToken => "github-token",
            Detector::AnthropicApiKey => "anthropic-api-key",
            Detector::AnthropicOauthToken => "anthropic-oauth-token",
            Detector::OpenaiApiKey => "openai-api-key",
            Detector::StripeLiveKey => "stripe-live-key",
            Detector::SlackToken => "slack-token",
            Detector::SlackWebhookUrl => "slack-webhook-url",
            Detector::GoogleApiKey => "google-api-key",
            Detector::PrivateKey => "private-key",
            Detector::Jwt => "jwt",
        }
    }

    /// The detector with this rule id.
    pub fn from_id(id: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.id() == id)
    }

    /// The literals a match of this detector starts with (`AKIA`, `ghp_`, `-----BEGIN`, …).
    pub fn keywords(self) -> Vec<&'static str> {
        let mut keywords: Vec<&'static str> = Vec::new();
        for spec in crate::pattern::SPECS.iter().filter(|s| s.detector == self) {
            for keyword in spec.keywords {
                if !keywords.contains(keyword) {
                    keywords.push(keyword);
                }
            }
        }
        keywords
    }

    /// The longest match this detector reports, in bytes. A stream holds back at most this
    /// much for a candidate of this detector (see [`Scanner::max_held_back`](crate::Scanner::max_held_back)).
    pub fn max_len(self) -> usize {
        crate::pattern::SPECS
            .iter()
            .filter(|spec| spec.detector == self)
            .map(|spec| spec.max_len)
            .max()
            .expect("every detector has at least one pattern")
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How a known secret appeared in the scanned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// The value's own bytes.
    Raw,
    /// Hexadecimal, lower or upper case.
    Hex,
    /// Standard base64 (`+/`), at any of the three byte alignments inside a longer string.
    Base64,
    /// URL-safe base64 (`-_`), at any of the three byte alignments inside a longer string.
    Base64Url,
    /// Percent-encoding of every byte outside RFC 3986's unreserved set, upper or lower hex.
    Percent,
}

impl Encoding {
    /// A short lower-case name: `raw`, `hex`, `base64`, `base64url`, `percent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::Percent => "percent",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a [`Match`](crate::Match) found: a credential by its shape, or a caller-supplied value.
///
/// Neither variant holds any byte of the secret: a known secret is named by the name its
/// caller gave it (an env var name, a route), never by its value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A built-in detector matched.
    Detector(Detector),
    /// A value given to [`ScannerBuilder::known_secret`](crate::ScannerBuilder::known_secret)
    /// appeared, in this encoding.
    KnownSecret {
        /// The name it was given.
        name: Arc<str>,
        /// How it was encoded where it was found.
        encoding: Encoding,
    },
}

impl Rule {
    /// The id of every known-secret match.
    pub const KNOWN_SECRET_ID: &'static str = "known-secret";

    /// The stable rule id: the detector's, or [`Rule::KNOWN_SECRET_ID`].
    pub fn id(&self) -> &'static str {
        match self {
            Rule::Detector(detector) => detector.id(),
            Rule::KnownSecret { .. } => Rule::KNOWN_SECRET_ID,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Detector(detector) => f.write_str(detector.id()),
            Rule::KnownSecret { name, encoding } => {
                write!(f, "{} `{name}` ({encoding})", Rule::KNOWN_SECRET_ID)
            }
        }
    }
}
