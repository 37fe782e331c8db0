//! The built-in patterns: for each, the literal keywords that start it, the shape that must
//! follow (anchored at the keyword), its bounds, and the check that keeps false alarms down.
//!
//! A match always starts at one of its pattern's keywords, so the literal automaton finds
//! every place a match can begin, and each candidate is then decided on a window of at most
//! `max_len + 1` bytes after it (plus [`LEFT_CONTEXT`] before it). That locality is what makes
//! a stream's results independent of how it is chunked, and its hold-back finite.

use std::sync::LazyLock;

use base64::Engine as _;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use crate::rule::Detector;

/// Bytes before a candidate that its left-boundary check may read (`\uXXXX` is the longest
/// escape that counts as a boundary).
pub(crate) const LEFT_CONTEXT: usize = 6;

/// One built-in pattern. A detector has one or more.
pub(crate) struct Spec {
    pub(crate) detector: Detector,
    /// Literals a match starts with; no keyword of a spec is a prefix of another.
    pub(crate) keywords: &'static [&'static str],
    /// The shape, matched anchored at the keyword's first byte.
    pub(crate) regex: &'static str,
    /// The longest match; a longer run of the shape is not this token.
    pub(crate) max_len: usize,
    /// The byte before the match must not be one of these (unless it ends an escape such as
    /// `\n` or `%2F`): the token does not continue a longer word.
    pub(crate) left: Option<&'static Class>,
    /// The byte after the match must not be one of these: the token is not a prefix of a
    /// longer word.
    pub(crate) right: Option<&'static Class>,
    /// A candidate starting with one of these belongs to another pattern.
    pub(crate) not_prefixes: &'static [&'static str],
    pub(crate) check: Check,
}

/// What a shape match must also pass.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Check {
    None,
    /// The Shannon entropy of the bytes after the keyword, in bits per byte, is at least this:
    /// rejects placeholders such as `AKIAXXXXXXXXXXXXXXXX`.
    Entropy(f64),
    /// GitHub's CRC32 of the 30 random characters, base62 in the last 6.
    GithubChecksum,
    /// The first dot-separated part decodes (base64url) to a JSON object with a string `alg`.
    JwtHeader,
    /// `ghs_<app id>_<JWT>`: the JWT after the second `_` passes [`Check::JwtHeader`].
    GithubStateless,
}

/// A set of bytes, for boundary checks.
pub(crate) struct Class([bool; 256]);

impl Class {
    const fn new(ranges: &[(u8, u8)]) -> Class {
        let mut set = [false; 256];
        let mut r = 0;
        while r < ranges.len() {
            let (low, high) = ranges[r];
            let mut b = low as usize;
            while b <= high as usize {
                set[b] = true;
                b += 1;
            }
            r += 1;
        }
        Class(set)
    }

    pub(crate) fn contains(&self, byte: u8) -> bool {
        self.0[usize::from(byte)]
    }
}

const UPPER: (u8, u8) = (b'A', b'Z');
const LOWER: (u8, u8) = (b'a', b'z');
const DIGIT: (u8, u8) = (b'0', b'9');
const fn one(b: u8) -> (u8, u8) {
    (b, b)
}

/// `[A-Za-z0-9]`
static ALNUM: Class = Class::new(&[UPPER, LOWER, DIGIT]);
/// `[A-Za-z0-9_]`
static WORD: Class = Class::new(&[UPPER, LOWER, DIGIT, one(b'_')]);
/// `[A-Za-z0-9_-]`: the base64url alphabet.
static URL_WORD: Class = Class::new(&[UPPER, LOWER, DIGIT, one(b'_'), one(b'-')]);
/// `[A-Za-z0-9-]`
static DASH_WORD: Class = Class::new(&[UPPER, LOWER, DIGIT, one(b'-')]);
/// `[A-Za-z0-9+/]`: the standard base64 alphabet.
static BASE64: Class = Class::new(&[UPPER, LOWER, DIGIT, one(b'+'), one(b'/')]);
/// `[A-Za-z0-9+/_-]`: both base64 alphabets, so a token is never found inside a base64 blob.
static ANY_BASE64: Class = Class::new(&[
    UPPER,
    LOWER,
    DIGIT,
    one(b'+'),
    one(b'/'),
    one(b'_'),
    one(b'-'),
]);
/// A line break or blank inside a PEM block, raw or escaped (`\n` in JSON, `\\n` escaped twice).
macro_rules! pem_sep {
    () => {
        r"(?:[\r\n \t]|\\{1,2}[rn])"
    };
}

/// The built-in patterns, grouped by detector in [`Detector::ALL`] order.
pub(crate) static SPECS: &[Spec] = &[
    Spec {
        detector: Detector::AwsAccessKeyId,
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        regex: r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
        max_len: 20,
        left: Some(&BASE64),
        right: Some(&BASE64),
        not_prefixes: &[],
        check: Check::Entropy(2.0),
    },
    Spec {
        detector: Detector::GithubToken,
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        regex: r"gh[pousr]_[A-Za-z0-9]{36}",
        max_len: 40,
        left: Some(&ALNUM),
        right: Some(&WORD),
        not_prefixes: &[],
        check: Check::GithubChecksum,
    },
    Spec {
        detector: Detector::GithubToken,
        keywords: &["ghs_"],
        regex: r"ghs_[0-9]{1,20}_eyJ[A-Za-z0-9_-]{12,}\.[A-Za-z0-9_-]{3,}\.[A-Za-z0-9_-]{16,}",
        max_len: 2048,
        left: Some(&ALNUM),
        right: Some(&URL_WORD),
        not_prefixes: &[],
        check: Check::GithubStateless,
    },
    Spec {
        detector: Detector::GithubToken,
        keywords: &["github_pat_"],
        regex: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        max_len: 93,
        left: Some(&ALNUM),
        right: Some(&WORD),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::AnthropicApiKey,
        keywords: &["sk-ant-"],
        regex: r"sk-ant-[a-z]{2,12}[0-9]{2}-[A-Za-z0-9_-]{32,}",
        max_len: 256,
        left: Some(&URL_WORD),
        right: Some(&URL_WORD),
        not_prefixes: &["sk-ant-oat", "sk-ant-ort"],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::AnthropicOauthToken,
        keywords: &["sk-ant-"],
        regex: r"sk-ant-o(?:at|rt)[0-9]{2}-[A-Za-z0-9_-]{32,}",
        max_len: 256,
        left: Some(&URL_WORD),
        right: Some(&URL_WORD),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::OpenaiApiKey,
        keywords: &["sk-"],
        regex: r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
        max_len: 320,
        left: Some(&URL_WORD),
        right: Some(&URL_WORD),
        not_prefixes: &["sk-ant-"],
        check: Check::None,
    },
    Spec {
        detector: Detector::StripeLiveKey,
        keywords: &["sk_live_", "rk_live_"],
        regex: r"[sr]k_live_[A-Za-z0-9]{20,}",
        max_len: 255,
        left: Some(&WORD),
        right: Some(&ALNUM),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::SlackToken,
        keywords: &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"],
        regex: r"xox[baprs]-[0-9]{1,16}-[A-Za-z0-9-]{10,}",
        max_len: 256,
        left: Some(&ALNUM),
        right: Some(&DASH_WORD),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::SlackWebhookUrl,
        keywords: &["hooks.slack.com/"],
        regex: r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{40,}",
        max_len: 256,
        left: None,
        right: Some(&ANY_BASE64),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::GoogleApiKey,
        keywords: &["AIza"],
        regex: r"AIza[0-9A-Za-z_-]{35}",
        max_len: 39,
        left: Some(&ANY_BASE64),
        right: Some(&ANY_BASE64),
        not_prefixes: &[],
        check: Check::Entropy(3.0),
    },
    Spec {
        detector: Detector::PrivateKey,
        keywords: &["-----BEGIN"],
        regex: concat!(
            r"-----BEGIN[ A-Z0-9]{0,48}PRIVATE KEY(?: BLOCK)?-----",
            // RFC 1421 encryption headers, or PGP armor headers.
            r"(?:",
            pem_sep!(),
            r"{1,16}(?:Proc-Type|DEK-Info|Version|Comment|Hash):[^\r\n\\]{1,100}){0,4}",
            pem_sep!(),
            r"{1,16}[A-Za-z0-9+/]{32}",
        ),
        max_len: 800,
        left: None,
        right: None,
        not_prefixes: &[],
        check: Check::None,
    },
    Spec {
        detector: Detector::Jwt,
        keywords: &["eyJ"],
        regex: r"eyJ[A-Za-z0-9_-]{12,}\.[A-Za-z0-9_-]{3,}\.[A-Za-z0-9_-]{16,}",
        max_len: 8192,
        left: Some(&URL_WORD),
        right: Some(&URL_WORD),
        not_prefixes: &[],
        check: Check::JwtHeader,
    },
];

/// Every spec's regex, compiled once per process (a scanner built per blob or per request
/// then costs only its literal automaton).
pub(crate) static REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    SPECS
        .iter()
        .map(|spec| {
            Regex::builder()
                .syntax(bytes_syntax())
                .build(spec.regex)
                .unwrap_or_else(|e| panic!("built-in pattern {:?} compiles: {e}", spec.regex))
        })
        .collect()
});

/// Patterns are ASCII and match bytes: no Unicode classes, any byte for a negated class.
fn bytes_syntax() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// Whether a match of `spec` may start after `before`, the up to [`LEFT_CONTEXT`] bytes that
/// precede its keyword (fewer only at the start of the stream). Decided as soon as the keyword
/// is found, so a keyword inside a longer word is never held back.
pub(crate) fn may_start(spec: &Spec, before: &[u8]) -> bool {
    spec.left.is_none_or(|class| left_boundary(before, class))
}

/// Decides a candidate of `spec` at `window[0]` that [`may_start`]. `window` holds
/// `max_len + 1` bytes, or fewer when the stream ends inside it. Returns the match's length.
pub(crate) fn confirm(
    spec: &Spec,
    regex: &Regex,
    window: &[u8],
    keyword_len: usize,
) -> Option<usize> {
    if spec
        .not_prefixes
        .iter()
        .any(|prefix| window.starts_with(prefix.as_bytes()))
    {
        return None;
    }
    let found = regex.search(&Input::new(window).anchored(Anchored::Yes))?;
    let len = found.end();
    if len > spec.max_len {
        return None;
    }
    if let Some(class) = spec.right
        && window.get(len).is_some_and(|&next| class.contains(next))
    {
        return None;
    }
    let token = &window[..len];
    let passes = match spec.check {
        Check::None => true,
        Check::Entropy(min) => entropy(&token[keyword_len..]) >= min,
        Check::GithubChecksum => github_checksum_ok(&token[4..]),
        Check::JwtHeader => jwt_header_ok(token),
        Check::GithubStateless => token
            .iter()
            .skip(4)
            .position(|&b| b == b'_')
            .is_some_and(|underscore| jwt_header_ok(&token[4 + underscore + 1..])),
    };
    passes.then_some(len)
}

/// Whether a token may start after `before`: at the stream's start, after a byte outside
/// `class`, or right after an escape (`\n`, `\r`, `\t`, `\uXXXX`, `%XX`), so that a token at the
/// start of a line inside a JSON string, or after `%3D` in a URL, is still found.
fn left_boundary(before: &[u8], class: &Class) -> bool {
    let Some(&last) = before.last() else {
        return true;
    };
    if !class.contains(last) {
        return true;
    }
    let hex = |b: &u8| b.is_ascii_hexdigit();
    match before {
        [.., b'\\', b'n' | b'r' | b't'] => true,
        [.., b'%', a, b] => hex(a) && hex(b),
        [.., b'\\', b'u', a, b, c, d] => [a, b, c, d].into_iter().all(hex),
        _ => false,
    }
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let total = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / total;
            -p * p.log2()
        })
        .sum()
}

/// GitHub's tokens (since April 2021) end in a CRC32 of their 30 random characters, written as
/// 6 base62 digits (`0-9A-Za-z`, most significant first, zero-padded). `body` is the 36
/// characters after `gh?_`.
pub(crate) fn github_checksum_ok(body: &[u8]) -> bool {
    let Some((random, checksum)) = body.split_at_checked(30) else {
        return false;
    };
    let mut value: u64 = 0;
    for &c in checksum {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return false,
        };
        value = value * 62 + u64::from(digit);
    }
    value == u64::from(crc32(random))
}

/// CRC-32 (IEEE 802.3, reflected, the one zlib and PNG use), bit by bit: it runs on 30 bytes
/// per candidate, so a table would buy nothing.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Whether `token`'s first part decodes to a JSON object with a string `alg`.
fn jwt_header_ok(token: &[u8]) -> bool {
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let header = token.split(|&b| b == b'.').next().unwrap_or_default();
    let Ok(json) = LENIENT.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&json)
        .is_ok_and(|value| value.get("alg").is_some_and(serde_json::Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_every_detector_has_one() {
        assert_eq!(REGEXES.len(), SPECS.len());
        for detector in Detector::ALL {
            assert!(SPECS.iter().any(|s| s.detector == detector), "{detector}");
        }
    }

    #[test]
    fn specs_are_grouped_in_detector_order() {
        let order: Vec<Detector> = SPECS.iter().map(|s| s.detector).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|d| Detector::ALL.iter().position(|x| x == d));
        assert_eq!(order, sorted);
    }

    #[test]
    fn no_keyword_of_a_pattern_is_a_prefix_of_another() {
        // Two keywords of one spec matching at one offset would make one candidate twice.
        for spec in SPECS {
            for a in spec.keywords {
                for b in spec.keywords {
                    assert!(a == b || !b.starts_with(a), "{a} / {b}");
                }
            }
        }
    }

    #[test]
    fn bounded_shapes_fit_their_max_len() {
        for spec in SPECS {
            let hir = syntax::parse_with(spec.regex, &bytes_syntax()).unwrap();
            if let Some(longest) = hir.properties().maximum_len() {
                assert!(
                    longest <= spec.max_len,
                    "{} can match {longest} bytes",
                    spec.regex
                );
            }
            let shortest = hir.properties().minimum_len().unwrap();
            assert!(shortest <= spec.max_len, "{}", spec.regex);
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn github_checksum_accepts_the_published_example_and_rejects_a_flipped_digit() {
        // The example token of the gist that describes the format (coolaj86, "github base62
        // token format"), its 30 random characters and its checksum.
        let random = "zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ";
        assert!(github_checksum_ok(format!("{random}0mLq17").as_bytes()));
        assert!(!github_checksum_ok(format!("{random}0mLq18").as_bytes()));
        // The other base62 alphabet (0-9a-zA-Z) gives 0MlQ17: not GitHub's.
        assert!(!github_checksum_ok(format!("{random}0MlQ17").as_bytes()));
        assert!(!github_checksum_ok(b"short"));
    }

    #[test]
    fn entropy_of_a_placeholder_is_low_and_of_random_text_high() {
        assert_eq!(entropy(b"XXXXXXXXXXXXXXXX"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(entropy(b"IOSFODNN7EXAMPLE") > 3.0);
    }

    #[test]
    fn left_boundaries_include_escapes() {
        assert!(left_boundary(b"", &ALNUM));
        assert!(left_boundary(b"key=", &ALNUM));
        assert!(!left_boundary(b"key", &ALNUM));
        assert!(left_boundary(b"ab\\n", &ALNUM));
        assert!(left_boundary(b"\\t", &ALNUM));
        assert!(left_boundary(b"a%3D", &ALNUM));
        assert!(!left_boundary(b"a%3G", &ALNUM));
        assert!(left_boundary(b"\\u003d", &ALNUM));
        assert!(!left_boundary(b"\\u00zd", &ALNUM));
    }

    #[test]
    fn jwt_header_must_be_json_with_alg() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        assert!(jwt_header_ok(
            format!("{}.x.y", enc(r#"{"alg":"HS256","typ":"JWT"}"#)).as_bytes()
        ));
        assert!(!jwt_header_ok(
            format!("{}.x.y", enc(r#"{"typ":"JWT"}"#)).as_bytes()
        ));
        assert!(!jwt_header_ok(
            format!("{}.x.y", enc(r#"{"alg":1}"#)).as_bytes()
        ));
        assert!(!jwt_header_ok(
            format!("{}.x.y", enc(r#"["alg"]"#)).as_bytes()
        ));
        assert!(!jwt_header_ok(b"eyJ!!!.x.y"));
    }
}
