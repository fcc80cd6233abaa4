//! The two token kinds and their claims, in the reference API's member order.
//!
//! Access: `acc`, `sub`, `role`, `exp`, `jti`. Refresh: `sub`, `acjti`,
//! `exp`, `jti`. Parsing is strict: every member present exactly once, of
//! the right JSON type, nothing else. Because the two claim sets are
//! disjoint, an access token offered as a refresh token (or the reverse)
//! fails to parse: the kinds cannot be confused (RFC 8725 §3.12).

use serde::{Deserialize, Serialize};

use crate::token::ids::TokenId;
use crate::token::json;

/// The latest accepted `exp`: 9999-12-31T23:59:59Z.
pub const MAX_EXP: i64 = 253_402_300_799;

/// Checks a claim set beyond its JSON shape. Sealed: implemented by the
/// crate's two claim types only.
pub trait Validate: Sealed {
    /// Whether the values are in range.
    fn is_valid(&self) -> bool;

    /// The `exp` claim.
    fn expires_at(&self) -> i64;
}

mod sealed {
    #[expect(
        unnameable_types,
        reason = "the seal of `Validate`: nobody outside may name it, so nobody may implement it"
    )]
    pub trait Sealed: Sized {
        /// The claims if `payload` is exactly the form we write (see
        /// [`super::canonical`]); `None` sends it to the general parser.
        fn parse_canonical(payload: &[u8]) -> Option<Self>;
    }
    impl Sealed for super::AccessClaims {
        fn parse_canonical(payload: &[u8]) -> Option<Self> {
            super::canonical::access(payload)
        }
    }
    impl Sealed for super::RefreshClaims {
        fn parse_canonical(payload: &[u8]) -> Option<Self> {
            super::canonical::refresh(payload)
        }
    }
}

pub(crate) use sealed::Sealed;

/// A fast path for the claims we write ourselves, byte for byte.
///
/// Every authentic token we see was written by [`WriteClaims`]: fixed member
/// order, no whitespace, strings without escapes. Recognising that exact
/// form skips the general JSON parser (about a sixth of a refresh's
/// non-cryptographic instructions, and a large piece of code). Anything else,
/// down to one extra space, returns `None` and takes the `serde_json` path,
/// so this path only ever accepts a strict subset of what that path accepts,
/// with the same values (the property tests below compare the two).
mod canonical {
    use super::{AccessClaims, RefreshClaims};
    use crate::token::ids::TokenId;

    pub(super) fn refresh(payload: &[u8]) -> Option<RefreshClaims> {
        let rest = payload.strip_prefix(br#"{"sub":""#)?;
        let (subject, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(br#","acjti":""#)?;
        let (access_id, rest) = id(rest)?;
        let rest = rest.strip_prefix(br#","exp":"#)?;
        let (expires_at, rest) = integer(rest)?;
        let rest = rest.strip_prefix(br#","jti":""#)?;
        let (id, rest) = id(rest)?;
        (rest == b"}").then(|| RefreshClaims { subject: subject.to_owned(), access_id, expires_at, id })
    }

    pub(super) fn access(payload: &[u8]) -> Option<AccessClaims> {
        let rest = payload.strip_prefix(br#"{"acc":""#)?;
        let (account, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(br#","sub":""#)?;
        let (subject, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(br#","role":""#)?;
        let (role, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(br#","exp":"#)?;
        let (expires_at, rest) = integer(rest)?;
        let rest = rest.strip_prefix(br#","jti":""#)?;
        let (id, rest) = id(rest)?;
        (rest == b"}").then(|| AccessClaims {
            account: account.to_owned(),
            subject: subject.to_owned(),
            role: role.to_owned(),
            expires_at,
            id,
        })
    }

    /// A string's contents up to its closing quote, if it holds no escape
    /// and no control character (JSON forbids them raw) and is UTF-8.
    fn plain_string(bytes: &[u8]) -> Option<(&str, &[u8])> {
        let end = bytes.iter().position(|&b| b == b'"')?;
        let (text, rest) = bytes.split_at_checked(end)?;
        // Our writer's own test: a string it writes without escapes.
        let plain = crate::token::json::needs_no_escape(text);
        let text = std::str::from_utf8(text).ok().filter(|_| plain)?;
        Some((text, rest.get(1..)?))
    }

    /// A token id and its closing quote.
    fn id(bytes: &[u8]) -> Option<(TokenId, &[u8])> {
        let (text, rest) = bytes.split_first_chunk::<36>()?;
        let id = TokenId::parse(std::str::from_utf8(text).ok()?)?;
        Some((id, rest.strip_prefix(b"\"")?))
    }

    /// A non-negative integer of at most 18 digits (so it cannot overflow),
    /// without a leading zero, followed by a non-digit.
    fn integer(bytes: &[u8]) -> Option<(i64, &[u8])> {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let (number, rest) = bytes.split_at_checked(digits)?;
        let well_formed = (1..=18).contains(&digits) && (number == b"0" || !number.starts_with(b"0"));
        if !well_formed {
            return None;
        }
        let value = number.iter().fold(0i64, |value, &digit| value * 10 + i64::from(digit - b'0'));
        Some((value, rest))
    }
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    /// `acc`: the account the user acts as.
    #[serde(rename = "acc")]
    pub account: String,
    /// `sub`: the user.
    #[serde(rename = "sub")]
    pub subject: String,
    /// `role`.
    pub role: String,
    /// `exp`: unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// `jti`.
    #[serde(rename = "jti")]
    pub id: TokenId,
}

/// Claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshClaims {
    /// `sub`: the user.
    #[serde(rename = "sub")]
    pub subject: String,
    /// `acjti`: the `jti` of the access token issued with this one.
    #[serde(rename = "acjti")]
    pub access_id: TokenId,
    /// `exp`: unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// `jti`.
    #[serde(rename = "jti")]
    pub id: TokenId,
}

/// A text claim we accept: non-empty, no control characters.
fn is_clean_text(text: &str, allow_empty: bool) -> bool {
    (allow_empty || !text.is_empty()) && !text.chars().any(char::is_control)
}

fn exp_in_range(exp: i64) -> bool {
    (0..=MAX_EXP).contains(&exp)
}

impl Validate for AccessClaims {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }

    fn is_valid(&self) -> bool {
        is_clean_text(&self.subject, false)
            && is_clean_text(&self.account, true)
            && is_clean_text(&self.role, true)
            && exp_in_range(self.expires_at)
    }
}

impl Validate for RefreshClaims {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }

    fn is_valid(&self) -> bool {
        is_clean_text(&self.subject, false) && exp_in_range(self.expires_at)
    }
}

/// Claims we sign, written straight to JSON bytes (see [`crate::token::json`]).
pub(crate) trait WriteClaims {
    /// Appends the claims as one JSON object, in the reference API's member order.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Borrowed access claims, for writing without cloning.
pub(crate) struct AccessClaimsRef<'a> {
    pub(crate) acc: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) role: &'a str,
    pub(crate) exp: i64,
    pub(crate) jti: TokenId,
}

impl WriteClaims for AccessClaimsRef<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        json::Object::new(out)
            .str("acc", self.acc)
            .str("sub", self.sub)
            .str("role", self.role)
            .int("exp", self.exp)
            .id("jti", self.jti)
            .end();
    }
}

/// Borrowed refresh claims, for writing without cloning.
pub(crate) struct RefreshClaimsRef<'a> {
    pub(crate) sub: &'a str,
    pub(crate) acjti: TokenId,
    pub(crate) exp: i64,
    pub(crate) jti: TokenId,
}

impl WriteClaims for RefreshClaimsRef<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        json::Object::new(out)
            .str("sub", self.sub)
            .id("acjti", self.acjti)
            .int("exp", self.exp)
            .id("jti", self.jti)
            .end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(claims: &impl WriteClaims) -> String {
        let mut out = Vec::new();
        claims.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn member_order_matches_the_seed() {
        let jti = TokenId::parse("8e1783d8-4a5b-4dd4-b78d-b50565400503").unwrap_or_else(TokenId::random);
        let access = written(&AccessClaimsRef {
            acc: "bob@admin",
            sub: "bob@mail.com",
            role: "ROLE_ADMIN",
            exp: 1_703_261_574,
            jti,
        });
        assert_eq!(
            access,
            r#"{"acc":"bob@admin","sub":"bob@mail.com","role":"ROLE_ADMIN","exp":1703261574,"jti":"8e1783d8-4a5b-4dd4-b78d-b50565400503"}"#
        );
    }

    proptest::proptest! {
        /// What we write parses back, strictly, to the same claims.
        #[test]
        fn written_claims_parse_back(
            acc in ".*", sub in ".*", role in ".*", exp in proptest::num::i64::ANY,
        ) {
            // Ids we sign are random v4 UUIDs (the parser accepts nothing else).
            let (jti, acjti) = (TokenId::random(), TokenId::random());
            let access = written(&AccessClaimsRef { acc: &acc, sub: &sub, role: &role, exp, jti });
            let parsed: AccessClaims = serde_json::from_str(&access).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(parsed, AccessClaims { account: acc, subject: sub.clone(), role, expires_at: exp, id: jti });
            let refresh = written(&RefreshClaimsRef { sub: &sub, acjti, exp, jti });
            let parsed: RefreshClaims = serde_json::from_str(&refresh).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(parsed, RefreshClaims { subject: sub, access_id: acjti, expires_at: exp, id: jti });
        }
    }

    #[test]
    fn kinds_do_not_parse_as_each_other() {
        let access = r#"{"acc":"a","sub":"s","role":"r","exp":1,"jti":"8e1783d8-4a5b-4dd4-b78d-b50565400503"}"#;
        assert!(serde_json::from_str::<RefreshClaims>(access).is_err());
        let refresh = r#"{"sub":"s","acjti":"8e1783d8-4a5b-4dd4-b78d-b50565400503","exp":1,"jti":"a6fbd9f9-e8dd-4c0f-ba46-49d01908626a"}"#;
        assert!(serde_json::from_str::<RefreshClaims>(refresh).is_ok());
        assert!(serde_json::from_str::<AccessClaims>(refresh).is_err());
    }

    #[test]
    fn repeated_members_are_refused() {
        let twice = r#"{"sub":"s","sub":"t","acjti":"8e1783d8-4a5b-4dd4-b78d-b50565400503","exp":1,"jti":"a6fbd9f9-e8dd-4c0f-ba46-49d01908626a"}"#;
        assert!(serde_json::from_str::<RefreshClaims>(twice).is_err());
    }

    fn needs_escape(text: &str) -> bool {
        text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
    }

    fn serde<'a, C: Deserialize<'a>>(payload: &'a [u8]) -> Option<C> {
        crate::token::jws::from_json_object(payload).ok()
    }

    proptest::proptest! {
        /// What we write takes the fast path whenever its strings need no
        /// escaping, and reads back the same claims.
        #[test]
        fn written_claims_take_the_fast_path(
            acc in ".*", sub in ".*", role in ".*", exp in 0i64..=MAX_EXP,
        ) {
            let (jti, acjti) = (TokenId::random(), TokenId::random());
            let access = written(&AccessClaimsRef { acc: &acc, sub: &sub, role: &role, exp, jti });
            let fast = canonical::access(access.as_bytes());
            let plain = !needs_escape(&acc) && !needs_escape(&sub) && !needs_escape(&role);
            proptest::prop_assert_eq!(fast.is_some(), plain);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast, AccessClaims { account: acc, subject: sub.clone(), role, expires_at: exp, id: jti });
            }
            let refresh = written(&RefreshClaimsRef { sub: &sub, acjti, exp, jti });
            let fast = canonical::refresh(refresh.as_bytes());
            proptest::prop_assert_eq!(fast.is_some(), !needs_escape(&sub));
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast, RefreshClaims { subject: sub, access_id: acjti, expires_at: exp, id: jti });
            }
        }

        /// On any edit of a written payload (a byte changed, inserted or
        /// removed), the fast path either declines or agrees with serde_json.
        #[test]
        fn fast_path_accepts_only_what_serde_json_reads_the_same(
            sub in "[a-z@. ]{0,12}", exp in proptest::num::i64::ANY,
            at in 0usize..200, byte in proptest::num::u8::ANY, edit in 0u8..3,
        ) {
            let (jti, acjti) = (TokenId::random(), TokenId::random());
            for payload in [
                written(&AccessClaimsRef { acc: "a", sub: &sub, role: "r", exp, jti }),
                written(&RefreshClaimsRef { sub: &sub, acjti, exp, jti }),
            ] {
                let mut bytes = payload.into_bytes();
                let at = at.min(bytes.len());
                match edit {
                    0 => { if let Some(slot) = bytes.get_mut(at) { *slot = byte; } }
                    1 => bytes.insert(at, byte),
                    _ => { if at < bytes.len() { bytes.remove(at); } }
                }
                if let Some(fast) = canonical::access(&bytes) {
                    proptest::prop_assert_eq!(Some(fast), serde::<AccessClaims>(&bytes));
                }
                if let Some(fast) = canonical::refresh(&bytes) {
                    proptest::prop_assert_eq!(Some(fast), serde::<RefreshClaims>(&bytes));
                }
            }
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_write() {
        let id = "8e1783d8-4a5b-4dd4-b78d-b50565400503";
        let exact = format!(r#"{{"sub":"s","acjti":"{id}","exp":1,"jti":"{id}"}}"#);
        assert!(canonical::refresh(exact.as_bytes()).is_some());
        for other in [
            format!(r#"{{ "sub":"s","acjti":"{id}","exp":1,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s","acjti":"{id}","exp":01,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s","acjti":"{id}","exp":-1,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s","acjti":"{id}","exp":1.0,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s","acjti":"{id}","exp":1234567890123456789,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s\u0041","acjti":"{id}","exp":1,"jti":"{id}"}}"#),
            format!(r#"{{"sub":"s","acjti":"{id}","exp":1,"jti":"{id}"}} "#),
            format!(r#"{{"sub":"s","acjti":"{}","exp":1,"jti":"{id}"}}"#, id.to_uppercase()),
        ] {
            assert!(canonical::refresh(other.as_bytes()).is_none(), "{other}");
        }
    }
}
