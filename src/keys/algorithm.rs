//! The JOSE `alg` name of an Ed25519 token.

/// The JOSE `alg` name written into and required of every token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// `EdDSA` (RFC 8037), the name the reference API uses. The default.
    #[default]
    EdDsa,
    /// `Ed25519`, the fully specified name of RFC 9864. Opt in to issue and
    /// accept this name instead of `EdDSA`; never both.
    Ed25519,
}

impl Algorithm {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }
}
