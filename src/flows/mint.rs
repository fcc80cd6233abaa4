//! Making and signing a pair of tokens from its claims.

use crate::error::{Error, InternalKind};
use crate::keys::KeyId;
use crate::keys::signer::DynSigner;
use crate::ledger::PairClaims;
use crate::policy::Policy;
use crate::token::claims::{AccessClaimsRef, RefreshClaimsRef};
use crate::token::ids::SessionId;
use crate::token::jws;
use crate::token::pair::TokenPair;
use crate::users::User;
use ed25519_dalek::Signature;

/// Fresh claims for `user` at `now` in `session`: new ids carrying the
/// session's tag, policy lifetimes.
pub(crate) fn new_pair(policy: &Policy, user: &User, session: SessionId, now: i64) -> PairClaims {
    PairClaims {
        subject: user.subject().to_owned(),
        account: user.account().to_owned(),
        role: user.role().to_owned(),
        access_id: session.new_token_id(),
        access_expires_at: now.saturating_add(policy.access_ttl),
        refresh_id: session.new_token_id(),
        refresh_expires_at: now.saturating_add(policy.refresh_ttl),
    }
}

/// Signs both tokens of `pair`. Deterministic: the same claims and key
/// give the same bytes (the grace window relies on it).
pub(crate) async fn sign_pair(policy: &Policy, pair: &PairClaims, signer: &dyn DynSigner) -> Result<TokenPair, Error> {
    let header = jws::encode_header(policy.algorithm, signer.key_id().map(KeyId::as_str));
    let access = AccessClaimsRef {
        acc: &pair.account,
        sub: &pair.subject,
        role: &pair.role,
        exp: pair.access_expires_at,
        jti: pair.access_id,
    };
    let refresh = RefreshClaimsRef {
        sub: &pair.subject,
        acjti: pair.access_id,
        exp: pair.refresh_expires_at,
        jti: pair.refresh_id,
    };
    let mut json = Vec::with_capacity(256);
    let access_input = jws::signing_input(&header, &access, &mut json);
    let refresh_input = jws::signing_input(&header, &refresh, &mut json);
    // The two signatures back to back: the signer's code and tables
    // (a 30 KiB basepoint table for ed25519-dalek) are still in L1 for
    // the second one.
    let access_signature = sign(signer, &access_input).await?;
    let refresh_signature = sign(signer, &refresh_input).await?;
    Ok(TokenPair {
        access_token: finish(access_input, &access_signature)?,
        refresh_token: finish(refresh_input, &refresh_signature)?,
        expiration_time: policy.access_ttl,
        grace: policy.grace,
    })
}

async fn sign(signer: &dyn DynSigner, input: &[u8]) -> Result<Signature, Error> {
    signer.sign_boxed(input).await.map_err(|e| Error::internal(InternalKind::Signer, e))
}

fn finish(input: Vec<u8>, signature: &Signature) -> Result<String, Error> {
    jws::finish(input, signature).map_err(|e| Error::internal(InternalKind::Encoding, e))
}
