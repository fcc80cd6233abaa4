//! The model test: random operation sequences that a ledger must answer
//! as a plain-`HashMap` model of the [ledger contract](crate::ledger) does.
//!
//! Where the [checks](super) drive one rule each, the model test drives
//! long random sequences (logins at the cap, rotations of current, old and
//! never-recorded tokens, grace replays, revocations, listings, access
//! checks, time passing) through the ledger under test and through
//! [`Model`], the contract written as plainly as possible (no sharding, no
//! purging, one record per session), and compares every answer.
//! [`MemoryLedger`](crate::MemoryLedger), PostgreSQL and Redis (standalone
//! and Cluster) are held to it in this crate's own tests.
//!
//! A ledger may drop a session's record once it is past its retention (its
//! tokens have expired): then, and only then, it may answer as for an
//! unknown session where the model still knows it.
//!
//! A third-party ledger runs the model test with
//! [proptest](https://docs.rs/proptest): [`op`] generates operations,
//! [`check_sequence`] runs one sequence against the ledger and the model.
//! In a test file, with proptest as a dev-dependency:
//!
//! ```no_run
//! use proptest::prelude::*;
//! use token_refresh::MemoryLedger;
//! use token_refresh::ledger::conformance::model::{check_sequence, op};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
//!
//!     #[test]
//!     fn my_ledger_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
//!         let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//!         // One ledger (or one schema, one key prefix) per sequence, or
//!         // one for all: every sequence uses subjects of its own.
//!         runtime.block_on(check_sequence(&MemoryLedger::new(), &ops))?;
//!     }
//! }
//! ```
//!
//! The same, spelled out with proptest's runner (this one runs as a doc
//! test):
//!
//! ```
//! use proptest::prelude::*;
//! use proptest::test_runner::{Config, TestRunner};
//! use token_refresh::MemoryLedger;
//! use token_refresh::ledger::conformance::model::{check_sequence, op};
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let ledger = MemoryLedger::new();
//! let mut runner = TestRunner::new(Config { cases: 16, ..Config::default() });
//! runner
//!     .run(&prop::collection::vec(op(), 1..40), |ops| runtime.block_on(check_sequence(&ledger, &ops)))
//!     .unwrap();
//! ```
//!
//! Times start near the real clock and only move forward, so a backend
//! that expires keys on the server's clock keeps what a sequence needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code shipped for third-party ledgers: a broken model invariant is a failed test"
)]

use std::collections::HashMap;

use proptest::prelude::*;

use crate::ledger::{
    AccessState, Grace, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
    SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use crate::token::ids::{SessionId, TokenId};

// ---------------------------------------------------------------------------
// The model: the contract written as plainly as possible, no sharding, no
// purging, one record per session.

/// One session as the model keeps it.
#[derive(Debug, Clone)]
struct ModelSession {
    pair: PairClaims,
    previous: Option<TokenId>,
    generation: u64,
    created_at: i64,
    absolute: i64,
    rotated_at: i64,
    replays: u32,
    revoked: bool,
    retain_until: i64,
    leeway: i64,
}

impl ModelSession {
    /// Revoked, and kept as a tombstone for at most a minute more.
    fn revoke(&mut self, now: i64) {
        self.revoked = true;
        self.retain_until = self.retain_until.min(now + TOMBSTONE_SECONDS);
    }

    fn live(&self, now: i64) -> bool {
        !self.revoked && now < self.deadline()
    }

    /// The instant the session stops being live, unless revoked first.
    fn deadline(&self) -> i64 {
        self.absolute.min(self.pair.refresh_expires_at + self.leeway)
    }
}

/// The ledger contract as a plain `HashMap` of sessions: what
/// [`check_sequence`] compares a ledger's answers with.
#[derive(Debug, Default, Clone)]
pub struct Model {
    sessions: HashMap<SessionId, ModelSession>,
    /// Sessions in creation order.
    order: Vec<SessionId>,
}

fn retain(pair: &PairClaims, leeway: i64) -> i64 {
    pair.refresh_expires_at.max(pair.access_expires_at) + leeway
}

impl Model {
    /// Whether the session's record is past its retention, so the real
    /// ledger may already have dropped it (then it answers as for an
    /// unknown session).
    fn past_retention(&self, session: SessionId, now: i64) -> bool {
        self.sessions.get(&session).is_some_and(|s| s.retain_until <= now)
    }

    fn live_of(&self, subject: &str, now: i64) -> Vec<SessionId> {
        self.order
            .iter()
            .filter(|id| self.sessions[id].pair.subject == subject && self.sessions[id].live(now))
            .copied()
            .collect()
    }

    fn create(&mut self, new: &NewSession) -> Vec<SessionId> {
        let mut live = self.live_of(&new.pair.subject, new.created_at);
        // The victims are the live sessions nearest their deadline, the
        // earliest login first among equals (`live` is in login order and
        // the sort is stable). They go record and all.
        live.sort_by_key(|id| self.sessions[id].deadline());
        let excess = (live.len() + 1).saturating_sub(new.max_sessions_per_user as usize);
        let evicted: Vec<SessionId> = live.into_iter().take(excess).collect();
        for id in &evicted {
            self.sessions.remove(id);
        }
        self.order.retain(|id| !evicted.contains(id));
        self.order.push(new.session);
        self.sessions.insert(
            new.session,
            ModelSession {
                pair: new.pair.clone(),
                previous: None,
                generation: 0,
                created_at: new.created_at,
                absolute: new.absolute_expires_at,
                rotated_at: new.created_at,
                replays: 0,
                revoked: false,
                retain_until: retain(&new.pair, new.leeway),
                leeway: new.leeway,
            },
        );
        evicted
    }

    fn rotate(&mut self, r: &RotationRequest) -> Rotation {
        let id = r.presented.session();
        let Some(mut s) = self.sessions.get(&id).cloned() else { return Rotation::Unknown };
        let since = r.now - s.rotated_at;
        let outcome = if s.pair.subject != r.subject {
            Rotation::Unknown
        } else if s.revoked {
            Rotation::Revoked { session: id }
        } else if r.now >= s.absolute {
            Rotation::Expired { session: id }
        } else if r.presented == s.pair.refresh_id {
            if r.now >= s.pair.refresh_expires_at + s.leeway {
                Rotation::Expired { session: id }
            } else {
                let mut pair = r.successor.clone();
                pair.refresh_expires_at = pair.refresh_expires_at.min(s.absolute);
                s.previous = Some(s.pair.refresh_id);
                s.generation += 1;
                s.rotated_at = r.now;
                s.replays = 0;
                // Kept until the current tokens expire, with the session's
                // own leeway (a ledger may keep it longer).
                s.retain_until = retain(&pair, s.leeway);
                s.pair = pair.clone();
                Rotation::Rotated { session: id, generation: s.generation, pair }
            }
        } else if s.previous == Some(r.presented)
            && r.grace.window > 0
            && since >= -r.leeway
            && since <= r.grace.window
            && s.replays < r.grace.max_replays
        {
            s.replays += 1;
            Rotation::Replayed { session: id, generation: s.generation, pair: s.pair.clone(), replay: s.replays }
        } else {
            s.revoke(r.now);
            let presented_generation = (s.previous == Some(r.presented)).then(|| s.generation - 1);
            Rotation::Reused { session: id, presented_generation, current_generation: s.generation }
        };
        self.sessions.insert(id, s);
        outcome
    }

    fn revoke_session(&mut self, subject: &str, id: SessionId, now: i64) -> Revocation {
        match self.sessions.get_mut(&id) {
            Some(s) if s.pair.subject == subject => {
                if s.revoked {
                    Revocation::AlreadyRevoked { session: id }
                } else {
                    s.revoke(now);
                    Revocation::Revoked { session: id }
                }
            }
            _ => Revocation::Unknown,
        }
    }

    fn revoke_user(&mut self, subject: &str, now: i64) -> u64 {
        let live = self.live_of(subject, now);
        for id in &live {
            self.sessions.get_mut(id).unwrap().revoke(now);
        }
        live.len() as u64
    }

    fn sessions(&self, subject: &str, now: i64) -> Vec<SessionInfo> {
        self.live_of(subject, now)
            .into_iter()
            .map(|id| {
                let s = &self.sessions[&id];
                let at = UnixTime::from_seconds;
                let times = SessionTimes {
                    created_at: at(s.created_at),
                    rotated_at: at(s.rotated_at),
                    refresh_expires_at: at(s.pair.refresh_expires_at),
                    absolute_expires_at: at(s.absolute),
                };
                SessionInfo::new(id, s.generation, times)
            })
            .collect()
    }

    fn access_state(&self, subject: &str, access: TokenId) -> AccessState {
        match self.sessions.get(&access.session()) {
            Some(s) if s.pair.subject == subject && !s.revoked => {
                if s.pair.access_id == access {
                    AccessState::Current
                } else {
                    AccessState::Superseded
                }
            }
            _ => AccessState::Revoked,
        }
    }
}

/// One operation of a random sequence ([`op`] generates them). Indexes
/// (`subject`, `token`, `session`, `access`) pick among what the sequence
/// has made so far, modulo its length; `wrong_subject` presents the
/// operation as another user.
#[derive(Debug, Clone)]
pub enum Op {
    /// A login of one of three subjects, with the session's lifetimes and
    /// the per-user cap.
    Create {
        /// Which subject.
        subject: usize,
        /// The refresh token's lifetime (seconds).
        refresh_ttl: i64,
        /// The session's absolute lifetime (seconds).
        session_ttl: i64,
        /// The session's leeway (seconds).
        leeway: i64,
        /// The per-user cap.
        cap: u32,
    },
    /// Presents a token of session `token`: `back` generations behind its
    /// latest recorded one (0 current, 1 the predecessor, …), or with
    /// `back` = 9 any refresh id ever seen, recorded or only proposed.
    Rotate {
        /// Which session (or, with `back` = 9, which refresh id).
        token: usize,
        /// How many generations behind the latest.
        back: usize,
        /// Presented as another user.
        wrong_subject: bool,
        /// The grace window (seconds; 0: none).
        window: i64,
        /// The grace window's replay limit.
        max_replays: u32,
        /// The request's leeway (seconds).
        leeway: i64,
        /// The successor's refresh lifetime (seconds).
        refresh_ttl: i64,
    },
    /// Revokes one session by id.
    RevokeSession {
        /// Which session.
        session: usize,
        /// Asked by another user.
        wrong_subject: bool,
    },
    /// Revokes every session of a subject (after comparing the listing).
    RevokeUser {
        /// Which subject.
        subject: usize,
    },
    /// Asks for the state of an access token.
    AccessState {
        /// Which access token ever issued.
        access: usize,
        /// Asked by another user.
        wrong_subject: bool,
    },
    /// Lists a subject's live sessions.
    Sessions {
        /// Which subject.
        subject: usize,
    },
    /// Lets time pass.
    Advance {
        /// How long.
        seconds: i64,
    },
}

/// The strategy of one random [`Op`], weighted towards rotations.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, 20..200i64, 50..400i64, 0..10i64, 1..5u32).prop_map(
            |(subject, refresh_ttl, session_ttl, leeway, cap)| Op::Create {
                subject,
                refresh_ttl,
                session_ttl,
                leeway,
                cap
            }
        ),
        8 => (
            any::<usize>(),
            prop_oneof![5 => Just(0usize), 4 => Just(1usize), 1 => Just(2usize), 1 => Just(9usize)],
            prop::bool::weighted(0.05),
            prop_oneof![1 => Just(0i64), 3 => 1..15i64],
            0..4u32,
            0..10i64,
            20..200i64
        )
            .prop_map(|(token, back, wrong_subject, window, max_replays, leeway, refresh_ttl)| Op::Rotate {
                token,
                back,
                wrong_subject,
                window,
                max_replays,
                leeway,
                refresh_ttl
            }),
        1 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(session, wrong_subject)| Op::RevokeSession { session, wrong_subject }),
        1 => (0..3usize).prop_map(|subject| Op::RevokeUser { subject }),
        2 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(access, wrong_subject)| Op::AccessState { access, wrong_subject }),
        1 => (0..3usize).prop_map(|subject| Op::Sessions { subject }),
        3 => prop_oneof![3 => 0..8i64, 1 => 0..60i64].prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// The subjects of a sequence (each suffixed with a fresh id per
/// sequence, so sequences can share a backend).
const SUBJECTS: [&str; 3] = ["alice", "bob", "carol"];

fn pick<T: Copy>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()])
}

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// Runs `ops` against `ledger` and the model, and fails (as a proptest
/// case fails) at the first answer the model does not give, or at a store
/// error. Times start near the real clock, so a backend that expires keys
/// on the server's clock keeps what the sequence needs. Subjects are fresh
/// per call, so sequences can share a backend.
pub async fn check_sequence<L: SessionLedger>(ledger: &L, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    // Subjects of this sequence only, so sequences can share a backend.
    let case = TokenId::random();
    let subjects: Vec<String> = SUBJECTS.iter().map(|s| format!("{s}-{case}")).collect();
    let mallory = format!("mallory-{case}");
    let mut now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Every refresh id ever seen (recorded or only proposed), and one of a
    // session that never was; every access id.
    let mut tokens = vec![SessionId::random().new_token_id()];
    let mut accesses = vec![SessionId::random().new_token_id()];
    // Each session's subject and recorded refresh ids, oldest first.
    let mut chains: Vec<(SessionId, String, Vec<TokenId>)> = Vec::new();
    for op in ops {
        match op.clone() {
            Op::Advance { seconds } => now += seconds,
            Op::Create { subject, refresh_ttl, session_ttl, leeway, cap } => {
                // One second per login: "oldest" is then the same order on
                // every backend.
                now += 1;
                let session = SessionId::random();
                let pair = new_pair(subjects[subject].as_str(), session, now, refresh_ttl);
                let new = NewSession {
                    session,
                    pair: PairClaims { refresh_expires_at: pair.refresh_expires_at.min(now + session_ttl), ..pair },
                    created_at: now,
                    absolute_expires_at: now + session_ttl,
                    leeway,
                    max_sessions_per_user: cap,
                };
                tokens.push(new.pair.refresh_id);
                chains.push((session, subjects[subject].clone(), vec![new.pair.refresh_id]));
                accesses.push(new.pair.access_id);
                let got = ledger.create(&new).await.map_err(fail)?;
                let expected = model.create(&new);
                prop_assert_eq!(got.evicted, expected, "evicted by a login at {}", now);
            }
            Op::Rotate { token, back, wrong_subject, window, max_replays, leeway, refresh_ttl } => {
                let (presented, subject) = match chains.get(token % chains.len().max(1)) {
                    Some((_, subject, chain)) if back < 9 => {
                        (chain[chain.len().saturating_sub(1 + back)], subject.clone())
                    }
                    _ => {
                        let presented = pick(&tokens, token).unwrap();
                        let subject = chains
                            .iter()
                            .find(|(id, _, _)| *id == presented.session())
                            .map_or_else(|| subjects[0].clone(), |(_, subject, _)| subject.clone());
                        (presented, subject)
                    }
                };
                let subject = if wrong_subject { mallory.clone() } else { subject };
                let successor = new_pair(&subject, presented.session(), now, refresh_ttl);
                tokens.push(successor.refresh_id);
                accesses.push(successor.access_id);
                let request = RotationRequest {
                    presented,
                    subject,
                    successor,
                    now,
                    grace: Grace { window, max_replays },
                    leeway,
                };
                let got = ledger.rotate(&request).await.map_err(fail)?;
                if let Rotation::Rotated { session, pair, .. } = &got
                    && let Some((_, _, chain)) = chains.iter_mut().find(|(id, _, _)| id == session)
                {
                    chain.push(pair.refresh_id);
                }
                let stale = model.past_retention(presented.session(), now);
                let before = model.clone();
                let expected = model.rotate(&request);
                if got != expected {
                    prop_assert!(
                        got == Rotation::Unknown && stale,
                        "rotate {presented} at {now}: ledger {got:?}, model {expected:?}"
                    );
                    // The ledger had dropped a record past its retention and
                    // changed nothing: neither does the model.
                    model = before;
                }
            }
            Op::RevokeSession { session, wrong_subject } => {
                let Some((id, subject, _)) = chains.get(session % chains.len().max(1)).cloned() else { continue };
                let subject = if wrong_subject { mallory.clone() } else { subject };
                let got = ledger.revoke_session(&subject, id, now).await.map_err(fail)?;
                let stale = model.past_retention(id, now);
                let before = model.clone();
                let expected = model.revoke_session(&subject, id, now);
                if got != expected {
                    prop_assert!(got == Revocation::Unknown && stale, "revoke: ledger {got:?}, model {expected:?}");
                    model = before;
                }
            }
            Op::RevokeUser { subject } => {
                let listed = ledger.sessions(subjects[subject].as_str(), now).await.map_err(fail)?;
                let modeled = model.sessions(subjects[subject].as_str(), now);
                let got = ledger.revoke_user(subjects[subject].as_str(), now).await.map_err(fail)?;
                let expected = model.revoke_user(subjects[subject].as_str(), now);
                prop_assert_eq!(listed, modeled, "sessions before revoke_user at {}", now);
                prop_assert_eq!(got, expected, "revoke_user at {}", now);
            }
            Op::AccessState { access, wrong_subject } => {
                let id = pick(&accesses, access).unwrap();
                let subject = chains
                    .iter()
                    .find(|(s, _, _)| *s == id.session())
                    .map_or_else(|| subjects[0].clone(), |(_, subject, _)| subject.clone());
                let subject = if wrong_subject { mallory.clone() } else { subject };
                let got = ledger.access_state(&subject, id).await.map_err(fail)?;
                let expected = model.access_state(&subject, id);
                let stale = model.past_retention(id.session(), now);
                prop_assert!(
                    got == expected || (got == AccessState::Revoked && stale),
                    "access_state {} at {}: ledger {:?}, model {:?}",
                    id,
                    now,
                    got,
                    expected
                );
            }
            Op::Sessions { subject } => {
                let got = ledger.sessions(subjects[subject].as_str(), now).await.map_err(fail)?;
                prop_assert_eq!(got, model.sessions(subjects[subject].as_str(), now), "sessions at {}", now);
            }
        }
    }
    Ok(())
}

fn new_pair(subject: &str, session: SessionId, now: i64, refresh_ttl: i64) -> PairClaims {
    PairClaims {
        subject: subject.to_owned(),
        account: format!("acc-{subject}"),
        role: "ROLE_USER".to_owned(),
        access_id: session.new_token_id(),
        access_expires_at: now + 10,
        refresh_id: session.new_token_id(),
        refresh_expires_at: now + refresh_ttl,
    }
}
