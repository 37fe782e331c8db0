//! The literals a known secret is matched by: its raw bytes and its encodings.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::rule::Encoding;

/// A shorter value would be found by chance in ordinary text (and its base64 forms would be
/// only a few characters long).
pub const MIN_KNOWN_SECRET_LEN: usize = 8;

/// A longer value would make the literals, and so a stream's hold-back, grow without a useful
/// bound (its percent-encoding can be three times as long).
pub const MAX_KNOWN_SECRET_LEN: usize = 4096;

/// Every literal that `value` is found by, each once, in preference order (when two encodings
/// give the same bytes — `abc` raw and percent-encoded — the first names the match).
pub(crate) fn literals(value: &[u8]) -> Vec<(Encoding, Vec<u8>)> {
    let mut out: Vec<(Encoding, Vec<u8>)> = Vec::new();
    let mut push = |encoding: Encoding, bytes: Vec<u8>| {
        if !out.iter().any(|(_, existing)| *existing == bytes) {
            out.push((encoding, bytes));
        }
    };
    push(Encoding::Raw, value.to_vec());
    push(Encoding::Hex, hex(value, b"0123456789abcdef"));
    push(Encoding::Hex, hex(value, b"0123456789ABCDEF"));
    for alignment in 0..3 {
        push(
            Encoding::Base64,
            base64_inner(value, alignment, &STANDARD_NO_PAD),
        );
    }
    for alignment in 0..3 {
        push(
            Encoding::Base64Url,
            base64_inner(value, alignment, &URL_SAFE_NO_PAD),
        );
    }
    push(Encoding::Percent, percent(value, b"0123456789ABCDEF"));
    push(Encoding::Percent, percent(value, b"0123456789abcdef"));
    out
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    value
        .iter()
        .flat_map(|&b| [digits[usize::from(b >> 4)], digits[usize::from(b & 0xf)]])
        .collect()
}

/// `%XX` for every byte outside RFC 3986's unreserved set (`A-Za-z0-9-._~`).
fn percent(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend([
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 0xf)],
            ]);
        }
    }
    out
}

/// The characters of `value`'s base64 that do not depend on its neighbours, when it starts
/// `alignment` bytes (mod 3) into the encoded data.
///
/// Character `i` of an encoding carries bits `6i..6i+6`; the value occupies bits
/// `8a..8(a+n)`. Characters wholly inside that span are the same whatever surrounds the
/// value, so they appear verbatim in any base64 text that contains it at that alignment.
fn base64_inner(value: &[u8], alignment: usize, engine: &impl base64::Engine) -> Vec<u8> {
    let mut padded = vec![0u8; alignment];
    padded.extend_from_slice(value);
    let encoded = engine.encode(&padded).into_bytes();
    let first = (8 * alignment).div_ceil(6);
    let end = 8 * (alignment + value.len()) / 6;
    encoded[first..end].to_vec()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn base64_inner_is_found_in_the_encoding_of_any_surrounding() {
        let value = b"correct horse battery";
        for before in 0..6 {
            for after in 0..4 {
                let mut data = vec![0xA5u8; before];
                data.extend_from_slice(value);
                data.extend(std::iter::repeat_n(0x5Au8, after));
                let std = STANDARD_NO_PAD.encode(&data).into_bytes();
                let url = URL_SAFE_NO_PAD.encode(&data).into_bytes();
                let inner = base64_inner(value, before % 3, &STANDARD_NO_PAD);
                assert!(find(&std, &inner), "before {before}, after {after}");
                let inner = base64_inner(value, before % 3, &URL_SAFE_NO_PAD);
                assert!(find(&url, &inner), "before {before}, after {after}");
            }
        }
    }

    #[test]
    fn the_shortest_value_keeps_ten_stable_base64_characters_at_each_alignment() {
        for alignment in 0..3 {
            let inner = base64_inner(&[0xff; MIN_KNOWN_SECRET_LEN], alignment, &STANDARD_NO_PAD);
            assert_eq!(inner.len(), 10, "alignment {alignment}");
        }
    }

    #[test]
    fn hex_and_percent_forms() {
        assert_eq!(hex(b"\x01\xab", b"0123456789abcdef"), b"01ab");
        assert_eq!(hex(b"\x01\xab", b"0123456789ABCDEF"), b"01AB");
        assert_eq!(percent(b"a/b c~", b"0123456789ABCDEF"), b"a%2Fb%20c~");
    }

    #[test]
    fn identical_forms_are_listed_once_under_the_first_encoding() {
        // Digits only: hex is the same in both cases, percent is raw.
        let forms = literals(b"12345678");
        let encodings: Vec<Encoding> = forms.iter().map(|(e, _)| *e).collect();
        assert_eq!(encodings.iter().filter(|e| **e == Encoding::Hex).count(), 1);
        assert!(!encodings.contains(&Encoding::Percent));
        let mut bytes: Vec<&Vec<u8>> = forms.iter().map(|(_, b)| b).collect();
        bytes.sort();
        bytes.dedup();
        assert_eq!(bytes.len(), forms.len());
    }
}
