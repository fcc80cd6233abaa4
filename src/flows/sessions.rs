//! A user's sessions: listing them, revoking one by id, and the ledger's
//! retention.

use crate::clock::unix_now;
use crate::error::{Error, InternalKind};
use crate::events::{Event, emit};
use crate::flows::parts::Parts;
use crate::ledger::{Revocation, SessionInfo};
use crate::token::ids::SessionId;

/// The flow of [`TokenService::sessions`](crate::TokenService::sessions).
pub(crate) async fn sessions(parts: Parts<'_>, subject: &str) -> Result<Vec<SessionInfo>, Error> {
    let now = unix_now(parts.clock)?;
    crate::recording::ledger("sessions", parts.ledger.sessions(subject, now))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))
}

/// The flow of [`TokenService::revoke_session`](crate::TokenService::revoke_session).
pub(crate) async fn revoke_session(parts: Parts<'_>, subject: &str, session: SessionId) -> Result<bool, Error> {
    let now = unix_now(parts.clock)?;
    let revocation = crate::recording::ledger("revoke_session", parts.ledger.revoke_session(subject, session, now))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    if let Revocation::Revoked { session } = revocation {
        emit(parts.events, &Event::SessionRevoked { session });
        return Ok(true);
    }
    Ok(false)
}

/// The flow of [`TokenService::purge`](crate::TokenService::purge).
pub(crate) async fn purge(parts: Parts<'_>) -> Result<u64, Error> {
    let now = unix_now(parts.clock)?;
    parts.ledger.purge(now).await.map_err(|e| Error::internal(InternalKind::Ledger, e))
}
