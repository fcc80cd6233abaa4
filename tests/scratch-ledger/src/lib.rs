//! A session ledger on a `Mutex<HashMap>`, written against token-refresh's
//! public API only: the contract ([`token_refresh::ledger`]), its records
//! and its rules ([`token_refresh::ledger::rules`]), as the author of an
//! SQLite or CockroachDB ledger would start. Each call takes the one lock,
//! reads, [`decide`]s and writes: one atomic step, and with no `.await`
//! inside, a dropped future leaves all of it or none.
//!
//! It also plays a networked ledger's faults for the suite's
//! [`disrupt`](token_refresh::ledger::conformance::Harness::disrupt) hook:
//! after [`ScratchLedger::cut`], the next call "loses its connection",
//! either before the server saw it or after it applied it (only the reply
//! is lost), in turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use token_refresh::ledger::rules::{self, Decision, SessionView, decide};
use token_refresh::ledger::{
    AccessState, Created, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
    SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use token_refresh::token::TokenId;
use token_refresh::{SessionId, StoreError};

/// One session: the current pair and what the rules need.
#[derive(Debug)]
struct Record {
    pair: PairClaims,
    previous: Option<TokenId>,
    generation: u64,
    created_at: i64,
    rotated_at: i64,
    absolute_expires_at: i64,
    leeway: i64,
    replays: u32,
    revoked: bool,
    /// Login sequence: ties in end of life go to the earliest login.
    login: u64,
    retain_until: i64,
}

impl Record {
    fn is_live(&self, now: i64) -> bool {
        rules::is_live(self.revoked, self.absolute_expires_at, self.pair.refresh_expires_at, self.leeway, now)
    }

    /// When it stops being live unless revoked first: the cap's order.
    fn end_of_life(&self) -> (i64, u64) {
        (self.absolute_expires_at.min(self.pair.refresh_expires_at.saturating_add(self.leeway)), self.login)
    }

    /// Revoked, kept as a tombstone for at most [`TOMBSTONE_SECONDS`].
    fn revoke(&mut self, now: i64) {
        self.revoked = true;
        self.retain_until = self.retain_until.min(now.saturating_add(TOMBSTONE_SECONDS));
    }
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<SessionId, Record>,
    logins: u64,
}

/// The ledger.
#[derive(Debug, Default)]
pub struct ScratchLedger {
    state: Mutex<State>,
    cut: AtomicBool,
    /// Which way the next cut goes: before the call applies, or after.
    after: AtomicBool,
}

impl ScratchLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts the "connection": the next call fails, half the time after it
    /// was applied (the reply was lost).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// One exchange with the "server": the lock, `apply`, and a fault if
    /// the connection was cut.
    fn exchange<T>(&self, apply: impl FnOnce(&mut State) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let cut = self.cut.swap(false, Ordering::SeqCst);
        let after = cut && self.after.fetch_xor(true, Ordering::SeqCst);
        if cut && !after {
            return Err(StoreError::new("connection lost before the call reached the ledger"));
        }
        let outcome = apply(&mut self.lock())?;
        if after {
            return Err(StoreError::new("connection lost before the reply"));
        }
        Ok(outcome)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionLedger for ScratchLedger {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        rules::check_pair_ids(new.session, &new.pair)?;
        self.exchange(|state| {
            if state.sessions.contains_key(&new.session) {
                return Err(StoreError::new("session id already taken"));
            }
            let now = new.created_at;
            let subject = &new.pair.subject;
            let mut live: Vec<(SessionId, (i64, u64))> = state
                .sessions
                .iter()
                .filter(|(_, r)| r.pair.subject == *subject && r.is_live(now))
                .map(|(id, r)| (*id, r.end_of_life()))
                .collect();
            live.sort_unstable_by_key(|(_, end)| *end);
            let cap = usize::try_from(new.max_sessions_per_user.max(1)).unwrap_or(usize::MAX);
            let excess = (live.len() + 1).saturating_sub(cap);
            let evicted: Vec<SessionId> = live.into_iter().take(excess).map(|(id, _)| id).collect();
            for id in &evicted {
                state.sessions.remove(id);
            }
            state.logins += 1;
            let record = Record {
                pair: new.pair.clone(),
                previous: None,
                generation: 0,
                created_at: now,
                rotated_at: now,
                absolute_expires_at: new.absolute_expires_at,
                leeway: new.leeway,
                replays: 0,
                revoked: false,
                login: state.logins,
                retain_until: rules::retain_until(&new.pair, new.leeway),
            };
            state.sessions.insert(new.session, record);
            Ok(Created::evicting(evicted))
        })
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        rules::check_successor(request)?;
        let session = request.presented.session();
        self.exchange(|state| {
            let Some(record) = state.sessions.get_mut(&session) else {
                return Ok(Rotation::Unknown);
            };
            let view = SessionView {
                subject_matches: record.pair.subject == request.subject,
                revoked: record.revoked,
                absolute_expires_at: record.absolute_expires_at,
                generation: record.generation,
                refresh_id: record.pair.refresh_id,
                previous_refresh_id: record.previous,
                refresh_expires_at: record.pair.refresh_expires_at,
                leeway: record.leeway,
                rotated_at: record.rotated_at,
                replays: record.replays,
            };
            Ok(match decide(&view, request) {
                Decision::Unknown => Rotation::Unknown,
                Decision::Revoked => Rotation::Revoked { session },
                Decision::Expired => Rotation::Expired { session },
                Decision::Rotate { generation, refresh_expires_at } => {
                    let pair = PairClaims { refresh_expires_at, ..request.successor.clone() };
                    record.previous = Some(record.pair.refresh_id);
                    record.retain_until = rules::retain_until(&pair, record.leeway);
                    record.pair = pair.clone();
                    record.generation = generation;
                    record.rotated_at = request.now;
                    record.replays = 0;
                    Rotation::Rotated { session, generation, pair }
                }
                Decision::Replay { replay } => {
                    record.replays = replay;
                    Rotation::Replayed { session, generation: record.generation, pair: record.pair.clone(), replay }
                }
                Decision::Reuse { presented_generation } => {
                    record.revoke(request.now);
                    Rotation::Reused { session, presented_generation, current_generation: record.generation }
                }
            })
        })
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.exchange(|state| {
            Ok(match state.sessions.get_mut(&session) {
                Some(record) if record.pair.subject == subject => {
                    if record.revoked {
                        Revocation::AlreadyRevoked { session }
                    } else {
                        record.revoke(now);
                        Revocation::Revoked { session }
                    }
                }
                _ => Revocation::Unknown,
            })
        })
    }

    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.exchange(|state| {
            let mut revoked = 0;
            for record in state.sessions.values_mut() {
                if record.pair.subject == subject && record.is_live(now) {
                    record.revoke(now);
                    revoked += 1;
                }
            }
            Ok(revoked)
        })
    }

    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.exchange(|state| {
            let mut live: Vec<(u64, SessionInfo)> = state
                .sessions
                .iter()
                .filter(|(_, r)| r.pair.subject == subject && r.is_live(now))
                .map(|(id, r)| {
                    let at = UnixTime::from_seconds;
                    let times = SessionTimes {
                        created_at: at(r.created_at),
                        rotated_at: at(r.rotated_at),
                        refresh_expires_at: at(r.pair.refresh_expires_at),
                        absolute_expires_at: at(r.absolute_expires_at),
                    };
                    let info = SessionInfo::new(*id, r.generation, times);
                    (r.login, info)
                })
                .collect();
            live.sort_unstable_by_key(|(login, _)| *login);
            Ok(live.into_iter().map(|(_, info)| info).collect())
        })
    }

    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        self.exchange(|state| {
            Ok(match state.sessions.get(&access_id.session()) {
                Some(r) if r.pair.subject == subject && !r.revoked => {
                    if r.pair.access_id == access_id {
                        AccessState::Current
                    } else {
                        AccessState::Superseded
                    }
                }
                _ => AccessState::Revoked,
            })
        })
    }

    /// In process: always answers.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.exchange(|state| {
            let before = state.sessions.len();
            state.sessions.retain(|_, record| record.retain_until > now);
            Ok(u64::try_from(before - state.sessions.len()).unwrap_or(u64::MAX))
        })
    }
}
