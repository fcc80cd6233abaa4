//! Writing the few JSON documents we produce on every refresh (the two
//! claim sets and the token-pair envelope) without a serializer.
//!
//! Why by hand: these shapes are fixed, and a serializer scans every string
//! byte by byte for characters to escape; over the ~1 KB a refresh writes
//! that was a visible share of its non-cryptographic work. Here a string
//! that needs no escaping (the common case, and always the case for tokens
//! and ids) is checked with a branch-free pass the compiler vectorizes and
//! copied whole.
//!
//! The output is byte-for-byte what `serde_json` writes for the same values
//! (same member order, same escapes); the tests compare the two on awkward
//! strings. Parsing stays on `serde_json`: input is a peer's, output is ours.

use std::io::Write as _;

use crate::token::ids::TokenId;

/// Appends `value` as a JSON string, escaped exactly as `serde_json` does:
/// `"` and `\` and the C0 controls; everything else (including DEL and
/// non-ASCII) is written as is.
fn push_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    if needs_no_escape(value.as_bytes()) {
        out.extend_from_slice(value.as_bytes());
    } else {
        push_escaped(out, value.as_bytes());
    }
    out.push(b'"');
}

/// Writes one JSON object, member by member, in the order called.
///
/// ```text
/// Object::new(&mut out).str("sub", "bob").int("exp", 1).end(); // {"sub":"bob","exp":1}
/// ```
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object on `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// A string member.
    pub(crate) fn str(mut self, name: &str, value: &str) -> Self {
        self.name(name);
        push_str(self.out, value);
        self
    }

    /// An integer member.
    pub(crate) fn int(mut self, name: &str, value: i64) -> Self {
        self.name(name);
        push_i64(self.out, value);
        self
    }

    /// A token id member (its canonical hyphenated form, as a string).
    pub(crate) fn id(mut self, name: &str, value: TokenId) -> Self {
        self.name(name);
        push_id(self.out, value);
        self
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }

    /// The separator and `"name":`. Names are our own constants and need no
    /// escaping.
    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.empty) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
}

/// Appends an integer, with the standard library's formatting (the same
/// digits `serde_json` writes). A digit loop of our own made no measurable
/// difference (docs/performance.md).
fn push_i64(out: &mut Vec<u8>, value: i64) {
    // `io::Write` for `Vec<u8>` only grows the vector: it never fails.
    let _ = write!(out, "{value}");
}

/// Appends a token id as a JSON string (its canonical hyphenated form).
fn push_id(out: &mut Vec<u8>, id: TokenId) {
    let mut buffer = uuid::Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.as_uuid().hyphenated().encode_lower(&mut buffer).as_bytes());
    out.push(b'"');
}

/// True if no byte of `bytes` needs escaping. No early exit, so it compiles
/// to SIMD compares; strings here are short and bounded.
pub(crate) fn needs_no_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |clean, &b| clean & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => {
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, value);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn strings_match_serde_json() {
        let mut awkward: Vec<String> = ["", "plain", "quote\"", "back\\slash", "ünïcödé ✓", "\u{7f}del", "a/b"]
            .into_iter()
            .map(String::from)
            .collect();
        // Every C0 control, alone and inside text.
        awkward.extend((0u8..0x20).map(|b| format!("x{}y", char::from(b))));
        for value in awkward {
            assert_eq!(written(&value), serde_json::to_string(&value).unwrap_or_default(), "{value:?}");
        }
    }

    #[test]
    fn integers_match_serde_json() {
        for value in [0, 1, -1, 9, 10, 300, 1_703_261_574, -42, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, value);
            assert_eq!(out, serde_json::to_vec(&value).unwrap_or_default(), "{value}");
        }
    }

    #[test]
    fn ids_match_their_serde_form() {
        let id = TokenId::random();
        let mut out = Vec::new();
        push_id(&mut out, id);
        assert_eq!(out, serde_json::to_vec(&id).unwrap_or_default());
    }

    proptest::proptest! {
        #[test]
        fn any_string_matches_serde_json(value in ".*") {
            proptest::prop_assert_eq!(written(&value), serde_json::to_string(&value).unwrap_or_default());
        }

        #[test]
        fn any_integer_matches_serde_json(value in proptest::num::i64::ANY) {
            let mut out = Vec::new();
            push_i64(&mut out, value);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&value).unwrap_or_default());
        }
    }
}
