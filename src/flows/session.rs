//! Starting and ending sessions: login, issue, logout.

use std::borrow::Cow;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::{BadRequest, Error, InternalKind, Unauthorized, Unprocessable};
use crate::events::{Event, emit};
use crate::flows::mint::{new_pair, sign_pair, unix_now};
use crate::flows::policy::Policy;
use crate::flows::store::Store;
use crate::flows::verify::verified_claims;
use crate::keys::hex;
use crate::keys::signer::Signer;
use crate::ledger::{NewSession, Revocation, SessionInfo, SessionLedger};
use crate::token::claims::RefreshClaims;
use crate::token::ids::SessionId;
use crate::token::jws;
use crate::token::pair::TokenPair;
use crate::users::{User, UserStore};

/// The largest login body looked at.
pub const MAX_LOGIN_BODY: usize = 4 * 1024;

/// The FIB login body: `{email, signature, publicKey}` ([spec §1](crate::spec#1-the-endpoint-being-served)).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoginRequest<'a> {
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
    #[serde(borrow)]
    public_key: Cow<'a, str>,
}

/// The flow of [`Policy::issue`].
pub(crate) async fn issue<U, L, S, C>(
    policy: &Policy,
    subject: &str,
    store: &Store<U, L>,
    signer: &S,
    clock: &C,
) -> Result<TokenPair, Error>
where
    U: UserStore,
    L: SessionLedger,
    S: Signer,
    C: Clock,
{
    let user = find_user(store, subject).await?;
    if !user.is_enabled() {
        return Err(Unauthorized::UserDisabled.into());
    }
    start_session(policy, &user, store, signer, clock).await
}

/// The flow of [`Policy::login`].
pub(crate) async fn login<U, L, S, C>(
    policy: &Policy,
    body: &[u8],
    store: &Store<U, L>,
    signer: &S,
    clock: &C,
) -> Result<TokenPair, Error>
where
    U: UserStore,
    L: SessionLedger,
    S: Signer,
    C: Clock,
{
    if body.len() > MAX_LOGIN_BODY {
        return Err(BadRequest::MalformedBody.into());
    }
    let request: LoginRequest<'_> = jws::from_json_object(body).map_err(|_| BadRequest::MalformedBody)?;
    let signature = hex::decode_array::<64>(&request.signature).ok_or(Unprocessable::LoginEncoding)?;
    let public_key = hex::decode_array::<32>(&request.public_key).ok_or(Unprocessable::LoginEncoding)?;
    let user = find_user(store, &request.email).await?;
    let key = user.login_key().filter(|key| key.as_bytes() == &public_key).ok_or(Unprocessable::LoginKey)?;
    verify_login_signature(key, request.email.as_bytes(), &signature)?;
    if !user.is_enabled() {
        return Err(Unauthorized::UserDisabled.into());
    }
    // Only an authentic login counts: a stranger who knows the e-mail
    // cannot spend the user's allowance.
    if !policy.login_limiter.admit(user.subject(), unix_now(clock)?) {
        return Err(Error::TooManyLogins);
    }
    start_session(policy, &user, store, signer, clock).await
}

/// The flow of [`Policy::revoke`].
pub(crate) async fn revoke<L, S, C>(
    policy: &Policy,
    authorization: Option<&[u8]>,
    ledger: &L,
    signer: &S,
    clock: &C,
) -> Result<(), Error>
where
    L: SessionLedger,
    S: Signer,
    C: Clock,
{
    let own = policy.resigning_key(signer);
    let (claims, now): (RefreshClaims, i64) = verified_claims(policy, authorization, signer.keyring(), own, clock)?;
    let revocation =
        crate::recording::ledger("revoke_session", ledger.revoke_session(&claims.subject, claims.id.session(), now))
            .await
            .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    match revocation {
        Revocation::Revoked { session } => {
            emit(policy.events(), &Event::SessionRevoked { session });
            Ok(())
        }
        Revocation::AlreadyRevoked { .. } => Ok(()),
        Revocation::Unknown => Err(Unauthorized::UnknownToken.into()),
    }
}

/// The flow of [`Policy::sessions`].
pub(crate) async fn sessions<L: SessionLedger, C: Clock>(
    subject: &str,
    ledger: &L,
    clock: &C,
) -> Result<Vec<SessionInfo>, Error> {
    let now = unix_now(clock)?;
    crate::recording::ledger("sessions", ledger.sessions(subject, now))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))
}

/// The flow of [`Policy::revoke_session`].
pub(crate) async fn revoke_session<L: SessionLedger, C: Clock>(
    policy: &Policy,
    subject: &str,
    session: SessionId,
    ledger: &L,
    clock: &C,
) -> Result<bool, Error> {
    let now = unix_now(clock)?;
    let revocation = crate::recording::ledger("revoke_session", ledger.revoke_session(subject, session, now))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    if let Revocation::Revoked { session } = revocation {
        emit(policy.events(), &Event::SessionRevoked { session });
        return Ok(true);
    }
    Ok(false)
}

pub(crate) async fn start_session<U, L, S, C>(
    policy: &Policy,
    user: &User,
    store: &Store<U, L>,
    signer: &S,
    clock: &C,
) -> Result<TokenPair, Error>
where
    U: UserStore,
    L: SessionLedger,
    S: Signer,
    C: Clock,
{
    let now = unix_now(clock)?;
    let absolute_expires_at = now.saturating_add(policy.session_ttl);
    let session = SessionId::random();
    let mut pair = new_pair(policy, user, session, now);
    pair.refresh_expires_at = pair.refresh_expires_at.min(absolute_expires_at);
    // Sign before recording: a signer failure then leaves no session.
    let tokens = sign_pair(policy, &pair, signer).await?;
    let new = NewSession {
        session,
        pair,
        created_at: now,
        absolute_expires_at,
        leeway: policy.leeway,
        max_sessions_per_user: policy.max_sessions_per_user,
    };
    let created = crate::recording::ledger("create", store.ledger().create(&new))
        .await
        .map_err(|e| if e.is_full() { Error::LedgerFull } else { Error::internal(InternalKind::Ledger, e) })?;
    for evicted in created.evicted {
        emit(policy.events(), &Event::SessionEvicted { session: evicted });
    }
    emit(policy.events(), &Event::SessionStarted { session });
    Ok(tokens)
}

async fn find_user<U: UserStore, L: SessionLedger>(
    store: &Store<U, L>,
    subject: &str,
) -> Result<std::sync::Arc<User>, Error> {
    store.users().find(subject).await.map_err(|e| Error::internal(InternalKind::Users, e))?.ok_or(Error::UserNotFound)
}

fn verify_login_signature(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
    key.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| Unauthorized::LoginSignature.into())
}
