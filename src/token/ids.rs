//! 128-bit identifiers: token ids (`jti`, `acjti`) and session (family) ids.
//!
//! Both are UUID v4 on the wire, written lower case and hyphenated. Parsing
//! accepts exactly that form and nothing else, so one id has one spelling and
//! a token whose ids were re-cased or re-formatted is not ours.
//!
//! # Session-scoped token ids
//!
//! A session is named by a random 64-bit tag, and every token id issued for
//! it carries that tag in its first 64 free bits, followed by 58 fresh random
//! bits (a v4 UUID has 122 free bits; the version and variant bits stay as
//! RFC 9562 fixes them, so the id is still an ordinary v4 UUID to any
//! reader). A [`SessionId`] is the tag with the random bits zero.
//!
//! Why: the ledger finds a token's session from the token id alone
//! ([`TokenId::session`]), so it keeps **one record per session** and
//! nothing per rotation. The tag is trustworthy only because a token's
//! claims are read after its signature verified: nobody without the
//! signing key can present an id with a tag of their choosing.
//!
//! 64 random bits make a collision between two live sessions unlikely
//! (about 3 in 10^8 with a million live sessions); a ledger refuses to
//! create a session whose tag is taken rather than merge the two.

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
            /// A fresh random (v4) id. For a session, this is a new
            /// session tag (the other bits zero).
            pub fn random() -> Self {
                Self::random_v4()
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
    ///
    /// Ids the crate issues carry their session's tag in their first 64
    /// free bits ([`SessionId::new_token_id`], [`TokenId::session`]), so a
    /// verified token names its session; [`TokenId::random`] makes an id of
    /// no session in particular.
    TokenId
);

id_type!(
    /// The id of a session: one login and every refresh token rotated from it
    /// (the token family). Never written into a token, but every token id of
    /// the session carries its 64-bit tag ([`TokenId::session`]).
    SessionId
);

/// Bit layout of a session-scoped id, as a big-endian `u128`: the tag's top
/// 48 bits, the version nibble, the tag's next 12 bits, the two variant
/// bits, the tag's last 4 bits, then 58 random bits.
const TAG_HIGH_SHIFT: u32 = 80;
const TAG_MID_SHIFT: u32 = 64;
const TAG_LOW_SHIFT: u32 = 58;
const RANDOM_BITS: u128 = (1 << TAG_LOW_SHIFT) - 1;
const VERSION_4: u128 = 0x4 << 76;
const VARIANT_RFC: u128 = 0b10 << 62;

fn tag_bits(tag: u64) -> u128 {
    let tag = u128::from(tag);
    (tag >> 16) << TAG_HIGH_SHIFT | ((tag >> 4) & 0xfff) << TAG_MID_SHIFT | (tag & 0xf) << TAG_LOW_SHIFT
}

fn tag_of(bits: u128) -> u64 {
    let high = (bits >> TAG_HIGH_SHIFT) & 0xffff_ffff_ffff;
    let mid = (bits >> TAG_MID_SHIFT) & 0xfff;
    let low = (bits >> TAG_LOW_SHIFT) & 0xf;
    // 48 + 12 + 4 bits: always fits.
    u64::try_from(high << 16 | mid << 4 | low).unwrap_or(0)
}

fn random_u64() -> u64 {
    // uuid's generator (thread-local ChaCha with `fast-rng`, else the OS).
    Uuid::new_v4().as_u64_pair().1
}

impl SessionId {
    /// The session with this 64-bit tag.
    pub fn from_tag(tag: u64) -> Self {
        Self(Uuid::from_u128(tag_bits(tag) | VERSION_4 | VARIANT_RFC))
    }

    /// The session's 64-bit tag: what every token id of the session
    /// carries, and the key a ledger files the session under.
    pub fn tag(&self) -> u64 {
        tag_of(self.0.as_u128())
    }

    /// A fresh token id of this session: its tag and 58 random bits.
    ///
    /// ```
    /// use token_refresh::SessionId;
    /// let session = SessionId::random();
    /// let token = session.new_token_id();
    /// assert_eq!(token.session(), session);
    /// assert_ne!(token, session.new_token_id());
    /// ```
    pub fn new_token_id(&self) -> TokenId {
        let random = u128::from(random_u64()) & RANDOM_BITS;
        TokenId(Uuid::from_u128(tag_bits(self.tag()) | VERSION_4 | VARIANT_RFC | random))
    }
}

impl TokenId {
    /// The session whose tag this id carries. Meaningful for ids the crate
    /// issued; read it from a token only after its signature verified.
    pub fn session(&self) -> SessionId {
        SessionId::from_tag(tag_of(self.0.as_u128()))
    }
}

fn parse_canonical_v4(text: &str) -> Option<Uuid> {
    // The uuid crate also reads the simple, braced and URN layouts, but 36
    // bytes can only be the hyphenated one; upper case is refused before
    // parsing, so one id has one spelling. (A one-pass parser of our own
    // made no measurable difference: 849.4 k instructions per refresh
    // either way, docs/performance.md.)
    let bytes = text.as_bytes();
    if bytes.len() != HYPHENATED_LEN || bytes.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let uuid = Uuid::try_parse_ascii(bytes).ok()?;
    (uuid.get_version_num() == 4 && uuid.get_variant() == uuid::Variant::RFC4122).then_some(uuid)
}

impl TokenId {
    fn random_v4() -> Self {
        Self(Uuid::new_v4())
    }
}

impl SessionId {
    fn random_v4() -> Self {
        Self::from_tag(random_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_through_their_tokens() {
        for tag in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63, 0xf, 0xfff0] {
            let session = SessionId::from_tag(tag);
            assert_eq!(session.tag(), tag);
            let token = session.new_token_id();
            assert_eq!(token.session(), session);
            // Still a canonical v4 UUID on the wire.
            assert_eq!(TokenId::parse(&token.to_string()), Some(token));
            assert_eq!(SessionId::parse(&session.to_string()), Some(session));
        }
    }

    proptest::proptest! {
        /// Every tag survives the trip through a token id, and the random
        /// part never touches the tag, the version or the variant.
        #[test]
        fn any_tag_round_trips(tag in proptest::num::u64::ANY) {
            let session = SessionId::from_tag(tag);
            let token = session.new_token_id();
            proptest::prop_assert_eq!(token.session().tag(), tag);
            proptest::prop_assert_eq!(token.as_uuid().get_version_num(), 4);
            proptest::prop_assert_eq!(token.as_uuid().get_variant(), uuid::Variant::RFC4122);
        }
    }

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
        // The reference API's ids are v4.
        assert!(TokenId::parse("8e1783d8-4a5b-4dd4-b78d-b50565400503").is_some());
    }

    fn reference(text: &str) -> Option<Uuid> {
        Uuid::try_parse(text).ok().filter(|uuid| {
            uuid.hyphenated().to_string() == text
                && uuid.get_version_num() == 4
                && uuid.get_variant() == uuid::Variant::RFC4122
        })
    }

    proptest::proptest! {
        /// Accepts exactly what the `uuid` crate parses and spells the same
        /// way as a v4 id, and reads the same value.
        #[test]
        fn parses_what_the_uuid_crate_does(text in "[0-9a-fA-F-]{36}|.{0,40}") {
            proptest::prop_assert_eq!(parse_canonical_v4(&text), reference(&text));
        }

        /// One byte changed anywhere in a canonical id: still the same
        /// answer as the `uuid` crate plus the spelling check.
        #[test]
        fn one_changed_byte(bits in proptest::num::u128::ANY, at in 0usize..36, byte in proptest::num::u8::ANY) {
            let uuid = uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid();
            let mut text = uuid.hyphenated().to_string().into_bytes();
            if let Some(slot) = text.get_mut(at) {
                *slot = byte;
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            proptest::prop_assert_eq!(parse_canonical_v4(&text), reference(&text));
        }

        /// Every v4 id's own spelling parses back to it.
        #[test]
        fn any_v4_round_trips(bits in proptest::num::u128::ANY) {
            let uuid = uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid();
            proptest::prop_assert_eq!(parse_canonical_v4(&uuid.hyphenated().to_string()), Some(uuid));
        }
    }
}
