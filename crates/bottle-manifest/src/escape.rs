//! Text from files we do not control, made safe to show on a terminal.
//!
//! A cloned repository chooses its file names and contents. Printed raw, a name holding ESC,
//! CR or LF can move the cursor, rewrite lines already shown (a forged preflight above the y/N
//! question), hide text (SGR 8) or write the clipboard (OSC 52); bidirectional-override
//! characters can show a name in an order other than its bytes. Every path, name and message
//! that claude-bottle shows goes through [`escape`] or [`escape_path`] — this module is the one
//! place that decides what is shown as an escape, so that no two renderers disagree.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// `text` with every character a terminal would act on, rather than show, replaced by a
/// visible escape: control characters (C0, DEL, C1) as `\n`, `\r`, `\t` or `\u{1b}`, and the
/// invisible bidirectional and zero-width formatting characters as `\u{202e}`. Everything else,
/// non-ASCII letters included, is kept. Borrows when there is nothing to escape.
///
/// ```
/// use bottle_manifest::escape;
///
/// assert_eq!(escape("agents/reviewer.md"), "agents/reviewer.md");
/// assert_eq!(escape("x\n\u{1b}[1;1r"), "x\\n\\u{1b}[1;1r");
/// assert_eq!(escape("évite\u{202e}dm.exe"), "évite\\u{202e}dm.exe");
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// A path for a message: [`escape`]d, and bytes that are not UTF-8 (a Unix file name may hold
/// any byte but `/` and NUL) shown as `\x..` instead of being replaced or dropped, so that two
/// different names never look the same.
///
/// ```
/// use std::path::Path;
/// use bottle_manifest::escape_path;
///
/// assert_eq!(escape_path(Path::new("/home/me/a\rb.md")), "/home/me/a\\rb.md");
/// ```
pub fn escape_path(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_encoded_bytes().utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// [`escape`] for one character, appended to `out` (for callers that keep some characters,
/// such as a source line's tabs, raw).
pub(crate) fn push_char(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
        return;
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Control characters, and the formatting characters that change how the text around them is
/// shown without showing anything themselves.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'                  // Arabic letter mark
            | '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'   // line/paragraph separators, bidi embeddings, overrides
            | '\u{2060}'..='\u{2069}'   // word joiner, invisible operators, bidi isolates
            | '\u{feff}' // zero-width no-break space (BOM)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_and_nothing_else() {
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            let shown = escape(c.encode_utf8(&mut [0; 4])).into_owned();
            if c.is_control() {
                assert!(shown.starts_with('\\'), "{c:?} shown as {shown:?}");
                assert!(
                    !shown.chars().any(|s| s.is_control()),
                    "{c:?} shown as {shown:?}"
                );
            } else if !needs_escape(c) {
                assert_eq!(shown, c.to_string());
            }
        }
    }

    #[test]
    fn escaping_is_idempotent() {
        let once = escape("a\u{1b}]52;c;aGk=\u{7}b\u{9b}c").into_owned();
        assert_eq!(once, "a\\u{1b}]52;c;aGk=\\u{7}b\\u{9b}c");
        assert_eq!(escape(&once), once);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_bytes_are_shown_as_hex() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(OsStr::from_bytes(b"/r/a\xff\x1b.md"));
        assert_eq!(escape_path(path), "/r/a\\xff\\u{1b}.md");
    }
}
