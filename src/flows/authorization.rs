//! The `Authorization` header: [spec §4](crate::spec#4-which-outcome-in-which-order) steps 1 and 2 (scheme).
//!
//! The reference API's clients send the refresh token bare; RFC 6750 clients send
//! `Bearer <token>`. Both are accepted: the scheme is matched
//! case-insensitively and may be followed by one or more spaces.

use crate::error::{BadRequest, Error, Unauthorized};
use crate::policy::MAX_HEADER_LEN;

/// Extracts the compact token from an `Authorization` header value.
///
/// `None` means the header was absent. Only visible ASCII and spaces are
/// accepted; surrounding spaces are ignored (HTTP optional white space).
pub(crate) fn token_from_header(header: Option<&[u8]>) -> Result<&str, Error> {
    let raw = header.ok_or(BadRequest::MissingHeader)?;
    if raw.len() > MAX_HEADER_LEN {
        return Err(BadRequest::HeaderTooLong.into());
    }
    // A fold without early exit compiles to SIMD compares (the header is
    // read on every request; a refused one costs the same).
    if !raw.iter().fold(true, |printable, &b| printable & (0x20..=0x7e).contains(&b)) {
        return Err(BadRequest::HeaderNotAscii.into());
    }
    // All bytes are ASCII, so this cannot fail; map rather than unwrap.
    let value = std::str::from_utf8(raw).map_err(|_| BadRequest::HeaderNotAscii)?.trim_matches(' ');
    if value.is_empty() {
        return Err(BadRequest::EmptyHeader.into());
    }
    match value.split_once(' ') {
        None => Ok(value),
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Unauthorized::WrongScheme.into());
            }
            // Interior spaces in the token itself are caught by the codec.
            Ok(rest.trim_start_matches(' '))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(header: Option<&[u8]>) -> Result<&str, u16> {
        token_from_header(header).map_err(|e| e.status_code())
    }

    #[test]
    fn accepts_bare_and_bearer_forms() {
        assert_eq!(status(Some(b"a.b.c")), Ok("a.b.c"));
        assert_eq!(status(Some(b"Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(status(Some(b"bEaReR    a.b.c")), Ok("a.b.c"));
        assert_eq!(status(Some(b"  a.b.c  ")), Ok("a.b.c"));
    }

    #[test]
    fn refuses_per_spec_step_1_and_2() {
        assert_eq!(status(None), Err(400));
        assert_eq!(status(Some(b"")), Err(400));
        assert_eq!(status(Some(b"   ")), Err(400));
        assert_eq!(status(Some(b"a.b\tc")), Err(400));
        assert_eq!(status(Some("Bearer é".as_bytes())), Err(400));
        assert_eq!(status(Some(&vec![b'a'; MAX_HEADER_LEN + 1])), Err(400));
        assert_eq!(status(Some(b"Basic a.b.c")), Err(401));
        assert_eq!(status(Some(b"Bearer")), Ok("Bearer"));
    }
}
