//! Observing decisions: rotations, tolerated grace replays, detected reuse.
//!
//! Events carry the session id and generations so an operator can tell a
//! flaky client (a replay inside the grace window) from theft (reuse of an
//! older generation). They never carry a token, a key or a signature.

use std::fmt;

use crate::token::ids::SessionId;

/// Something a flow decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A login started a session.
    SessionStarted {
        /// The new session.
        session: SessionId,
    },
    /// A refresh token was rotated.
    Rotated {
        /// The session.
        session: SessionId,
        /// Generation of the new pair.
        generation: u64,
    },
    /// The predecessor of the current token was replayed inside the grace
    /// window; the same successor pair was returned.
    GraceReplay {
        /// The session.
        session: SessionId,
        /// Generation of the returned (current) pair.
        generation: u64,
        /// Replay count for this rotation.
        replay: u32,
    },
    /// An already-rotated token was presented: the session is revoked.
    ReuseDetected {
        /// The session.
        session: SessionId,
        /// Generation of the presented token when it is the immediate
        /// predecessor of the current one (a lost response, a race between
        /// tabs); `None` for an older one (more likely theft).
        presented_generation: Option<u64>,
        /// Generation of the session's current pair.
        current_generation: u64,
    },
    /// A logout revoked a session.
    SessionRevoked {
        /// The session.
        session: SessionId,
    },
    /// A login evicted one of the user's older sessions to keep within the
    /// policy's per-user cap.
    SessionEvicted {
        /// The evicted session.
        session: SessionId,
    },
}

/// Receives [`Event`]s. Called inline on the request path: keep it cheap
/// (hand the event to a channel for anything slow).
///
/// Any `Fn(&Event) + Send + Sync` closure is a sink.
pub trait EventSink: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync + 'static> EventSink for F {
    fn on_event(&self, event: &Event) {
        self(event);
    }
}

/// Reports `event` to `sink` and, with the `tracing` feature, as a
/// `tracing` event under the `token_refresh` target.
pub(crate) fn emit(sink: Option<&dyn EventSink>, event: &Event) {
    #[cfg(feature = "tracing")]
    trace(event);
    crate::recording::count(event.counter());
    if let Some(sink) = sink {
        sink.on_event(event);
    }
}

#[cfg(feature = "tracing")]
fn trace(event: &Event) {
    match event {
        Event::SessionStarted { session } => {
            tracing::info!(target: "token_refresh", session = %session, "session started");
        }
        Event::Rotated { session, generation } => {
            tracing::debug!(target: "token_refresh", session = %session, generation, "refresh token rotated");
        }
        Event::GraceReplay { session, generation, replay } => {
            tracing::info!(target: "token_refresh", session = %session, generation, replay, "grace replay tolerated");
        }
        Event::ReuseDetected { session, presented_generation, current_generation } => {
            tracing::warn!(
                target: "token_refresh",
                session = %session,
                presented_generation = presented_generation.map_or(-1, |g| i64::try_from(g).unwrap_or(i64::MAX)),
                current_generation,
                "refresh token reuse detected; session revoked"
            );
        }
        Event::SessionRevoked { session } => {
            tracing::info!(target: "token_refresh", session = %session, "session revoked by logout");
        }
        Event::SessionEvicted { session } => {
            tracing::info!(target: "token_refresh", session = %session, "session evicted by the per-user cap");
        }
    }
}

impl Event {
    /// The name of the counter of this kind of event (feature `metrics`).
    const fn counter(&self) -> &'static str {
        match self {
            Self::SessionStarted { .. } => "token_refresh_sessions_started_total",
            Self::Rotated { .. } => "token_refresh_rotations_total",
            Self::GraceReplay { .. } => "token_refresh_grace_replays_total",
            Self::ReuseDetected { .. } => "token_refresh_reuse_detected_total",
            Self::SessionRevoked { .. } => "token_refresh_sessions_revoked_total",
            Self::SessionEvicted { .. } => "token_refresh_sessions_evicted_total",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SessionStarted { session } => write!(f, "session {session} started"),
            Self::Rotated { session, generation } => write!(f, "session {session} rotated to generation {generation}"),
            Self::GraceReplay { session, generation, replay } => {
                write!(f, "session {session} grace replay {replay} of generation {generation}")
            }
            Self::ReuseDetected { session, presented_generation: Some(presented), current_generation } => {
                write!(f, "session {session} reuse of generation {presented} (current {current_generation}); revoked")
            }
            Self::ReuseDetected { session, presented_generation: None, current_generation } => write!(
                f,
                "session {session} reuse of a generation older than {} (current {current_generation}); revoked",
                current_generation.saturating_sub(1)
            ),
            Self::SessionRevoked { session } => write!(f, "session {session} revoked"),
            Self::SessionEvicted { session } => write!(f, "session {session} evicted by the per-user cap"),
        }
    }
}
