//! Lower-case hex, for login fields and key display.

/// Lower-case hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for half in [b >> 4, b & 0x0f] {
            // A nibble is always a hex digit; '0' is never reached.
            out.push(char::from_digit(u32::from(half), 16).unwrap_or('0'));
        }
    }
    out
}

/// Decodes hex (either case) into exactly `N` bytes.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
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
}
