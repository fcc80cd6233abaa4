//! 128-bit identifiers: token ids (`jti`, `acjti`) and session (family) ids.
//!
//! Both are UUID v4 on the wire, written lower case and hyphenated. Parsing
//! accepts exactly that form and nothing else, so one id has one spelling and
//! a token whose ids were re-cased or re-formatted is not ours.

use std::fmt;

use uuid::Uuid;

/// Length of a hyphenated UUID: `8-4-4-4-12` hex digits.
const HYPHENATED_LEN: usize = 36;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The id with these 16 bytes (as stored by a ledger backend).
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            /// The 16 bytes of the id.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Parses the canonical spelling: a version-4 UUID, lower case,
            /// hyphenated. Every other spelling is refused.
            pub fn parse(text: &str) -> Option<Self> {
                parse_canonical_v4(text).map(Self)
            }

            /// The id as a [`Uuid`].
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut buf = Uuid::encode_buffer();
                serializer.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a lower-case hyphenated UUID v4")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

id_type!(
    /// The id of one token: the `jti` claim, and the `acjti` claim of a refresh
    /// token that names the access token issued with it.
    TokenId
);

id_type!(
    /// The id of a session: one login and every refresh token rotated from it
    /// (the token family). Never written into a token.
    SessionId
);

fn parse_canonical_v4(text: &str) -> Option<Uuid> {
    if text.len() != HYPHENATED_LEN {
        return None;
    }
    let canonical = text.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !canonical {
        return None;
    }
    let uuid = Uuid::try_parse(text).ok()?;
    // try_parse also accepts other layouts of 36 characters only if hyphens
    // sit where they should; re-encoding pins the exact spelling.
    let mut buf = Uuid::encode_buffer();
    if uuid.hyphenated().encode_lower(&mut buf) != text {
        return None;
    }
    let is_v4 = uuid.get_version_num() == 4 && uuid.get_variant() == uuid::Variant::RFC4122;
    is_v4.then_some(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_its_own_spelling() {
        let id = TokenId::random();
        assert_eq!(TokenId::parse(&id.to_string()), Some(id));
    }

    #[test]
    fn refuses_other_spellings() {
        let id = TokenId::random().to_string();
        assert!(TokenId::parse(&id.to_uppercase()).is_none());
        assert!(TokenId::parse(&id.replace('-', "")).is_none());
        assert!(TokenId::parse(&format!("{{{id}}}")).is_none());
        assert!(TokenId::parse(&format!("urn:uuid:{id}")).is_none());
        assert!(TokenId::parse("").is_none());
        // A v1 UUID (version nibble 1) is well formed but not what we issue.
        assert!(TokenId::parse("8e1783d8-4a5b-1dd4-b78d-b50565400503").is_none());
        // The seed's ids are v4.
        assert!(TokenId::parse("8e1783d8-4a5b-4dd4-b78d-b50565400503").is_some());
    }
}
