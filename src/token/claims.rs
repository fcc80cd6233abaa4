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
    pub trait Sealed {}
    impl Sealed for super::AccessClaims {}
    impl Sealed for super::RefreshClaims {}
}

pub(crate) use sealed::Sealed;

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
}
