//! Starting sessions: the FIB login, and `issue` after the application's
//! own authentication.

use std::borrow::Cow;
use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

use crate::clock::unix_now;
use crate::error::{BadRequest, Error, InternalKind, Unauthorized, Unprocessable};
use crate::events::{Event, emit};
use crate::flows::login_limit::LoginLimiter;
use crate::flows::mint::{new_pair, sign_pair};
use crate::flows::parts::Parts;
use crate::keys::hex;
use crate::ledger::NewSession;
use crate::policy::MAX_LOGIN_BODY;
use crate::token::ids::SessionId;
use crate::token::jws;
use crate::token::pair::TokenPair;
use crate::users::User;

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

/// The flow of [`TokenService::issue`](crate::TokenService::issue).
pub(crate) async fn issue(parts: Parts<'_>, subject: &str) -> Result<TokenPair, Error> {
    let user = find_user(parts, subject).await?;
    if !user.is_enabled() {
        return Err(Unauthorized::UserDisabled.into());
    }
    start_session(parts, &user).await
}

/// The flow of [`TokenService::login`](crate::TokenService::login);
/// `limiter` is the service's login rate limit.
pub(crate) async fn login(parts: Parts<'_>, limiter: &LoginLimiter, body: &[u8]) -> Result<TokenPair, Error> {
    if body.len() > MAX_LOGIN_BODY {
        return Err(BadRequest::MalformedBody.into());
    }
    let request: LoginRequest<'_> = jws::from_json_object(body).map_err(|_| BadRequest::MalformedBody)?;
    let signature = hex::decode_array::<64>(&request.signature).ok_or(Unprocessable::LoginEncoding)?;
    let public_key = hex::decode_array::<32>(&request.public_key).ok_or(Unprocessable::LoginEncoding)?;
    let user = find_user(parts, &request.email).await?;
    let key = user.login_key().filter(|key| key.as_bytes() == &public_key).ok_or(Unprocessable::LoginKey)?;
    verify_login_signature(key, request.email.as_bytes(), &signature)?;
    if !user.is_enabled() {
        return Err(Unauthorized::UserDisabled.into());
    }
    // Only an authentic login counts: a stranger who knows the e-mail
    // cannot spend the user's allowance.
    if !limiter.admit(user.subject(), unix_now(parts.clock)?) {
        return Err(Error::TooManyLogins);
    }
    start_session(parts, &user).await
}

async fn start_session(parts: Parts<'_>, user: &User) -> Result<TokenPair, Error> {
    let Parts { policy, ledger, signer, clock, events, .. } = parts;
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
    let created = crate::recording::ledger("create", ledger.create(&new))
        .await
        .map_err(|e| if e.is_full() { Error::LedgerFull } else { Error::internal(InternalKind::Ledger, e) })?;
    for evicted in created.evicted {
        emit(events, &Event::SessionEvicted { session: evicted });
    }
    emit(events, &Event::SessionStarted { session });
    Ok(tokens)
}

async fn find_user(parts: Parts<'_>, subject: &str) -> Result<Arc<User>, Error> {
    parts
        .users
        .find_boxed(subject)
        .await
        .map_err(|e| Error::internal(InternalKind::Users, e))?
        .ok_or(Error::UserNotFound)
}

fn verify_login_signature(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
    key.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| Unauthorized::LoginSignature.into())
}
