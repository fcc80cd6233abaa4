//! Lower-case hex, for login fields, key display and signing keys given as
//! text.
//!
//! The decoder reads secrets too (a seed in hex, `SecretKey::from_text`),
//! so neither direction branches or indexes memory on a digit's value: each
//! digit is mapped with range masks in integer arithmetic, the standard
//! constant-time technique. A timing side channel on a decoder that runs once
//! at start-up is a small risk, but the code costs nothing to make safe.
//!
//! Why by hand and not `base16ct` (made for exactly this): the core's
//! dependency set is fixed (serde, serde_json, ed25519-dalek, base64, uuid,
//! time, thiserror), `base16ct` is not in its graph, and these thirty lines
//! are checked against every byte value below.

/// Lower-case hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|&b| [digit(b >> 4), digit(b & 0x0f)]).map(char::from).collect()
}

/// The lower-case digit of a nibble (0 to 15): `'0' + n`, plus the gap
/// from `':'` to `'a'` when `n` is above 9.
fn digit(nibble: u8) -> u8 {
    // `9 - n` wraps (top bit set) exactly when n > 9; the mask is then 0xff.
    let above_nine = 0u8.wrapping_sub(9u8.wrapping_sub(nibble) >> 7);
    b'0' + nibble + (above_nine & (b'a' - b'9' - 1))
}

/// Decodes hex (either case) into exactly `N` bytes.
///
/// Whether the text is valid is the only thing the time taken depends on.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    // Any invalid digit is -1 and sets the sign bit here.
    let mut invalid = 0i16;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        let (high, low) = (nibble(*high), nibble(*low));
        invalid |= high | low;
        // Both are 0..=15 when valid; the result is discarded otherwise.
        *byte = ((high << 4) | (low & 0x0f)) as u8;
    }
    (invalid >= 0).then_some(out)
}

/// The value of a hex digit of either case, or -1.
fn nibble(digit: u8) -> i16 {
    let d = i16::from(digit);
    // All ones when `low <= d <= high`, else zero: both differences are
    // negative only inside the range, and `>> 8` spreads the sign.
    let within = |low: i16, high: i16| ((low - 1 - d) & (d - high - 1)) >> 8;
    -1 + (within(0x30, 0x39) & (d - 0x30 + 1))
        + (within(0x41, 0x46) & (d - 0x41 + 11))
        + (within(0x61, 0x66) & (d - 0x61 + 11))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        let bytes = [0x00, 0x7f, 0x80, 0xff];
        assert_eq!(super::encode(&bytes), "007f80ff");
        assert_eq!(super::decode_array::<4>("007F80ff"), Some(bytes));
        assert_eq!(super::decode_array::<4>("007f80f"), None);
        assert_eq!(super::decode_array::<4>("007f80fg"), None);
        assert_eq!(super::decode_array::<2>("007f80ff"), None);
    }

    #[test]
    fn every_byte_value_matches_the_standard_library() {
        for byte in 0..=u8::MAX {
            let expected = char::from(byte).to_digit(16).map(|v| i16::try_from(v).unwrap_or(-1)).unwrap_or(-1);
            assert_eq!(super::nibble(byte), expected, "digit {byte:#04x}");
            assert_eq!(super::encode(&[byte]), format!("{byte:02x}"));
            let text = format!("{byte:02X}");
            assert_eq!(super::decode_array::<1>(&text), Some([byte]), "{text}");
            for other in [b'0', b'f'] {
                let pair = [byte, other];
                let pair = String::from_utf8_lossy(&pair);
                let decoded = super::decode_array::<1>(&pair);
                assert_eq!(decoded.is_some(), char::from(byte).is_ascii_hexdigit(), "{pair:?}");
            }
        }
    }
}
