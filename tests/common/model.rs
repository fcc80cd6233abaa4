//! A plain-`HashMap` model of the ledger contract, and random operation
//! sequences that any ledger must answer as the model does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;

use proptest::prelude::*;
use token_refresh::{
    Grace, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionId, SessionLedger, TokenId,
};

// ---------------------------------------------------------------------------
// The model: the contract written as plainly as possible, no sharding, no
// purging.

#[derive(Debug, Clone)]
pub struct ModelSession {
    pair: PairClaims,
    generation: u64,
    absolute: i64,
    rotated_at: i64,
    replays: u32,
    revoked: bool,
    retain_until: i64,
}

#[derive(Debug, Default, Clone)]
pub struct Model {
    sessions: HashMap<SessionId, ModelSession>,
    /// token → (session, generation, retain until)
    tokens: HashMap<TokenId, (SessionId, u64, i64)>,
    /// access token → revoked until
    access: HashMap<TokenId, i64>,
}

impl Model {
    fn revoke_access(&mut self, pair: &PairClaims, leeway: i64, now: i64) {
        let until = pair.access_expires_at + leeway;
        if until > now {
            self.access.insert(pair.access_id, until);
        }
    }

    /// Whether a record the answer depends on is past its retention, so the
    /// real ledger may already have dropped it (then it answers Unknown).
    fn past_retention(&self, token: TokenId, now: i64) -> bool {
        match self.tokens.get(&token) {
            None => false,
            Some((session, _, retain)) => {
                *retain <= now || self.sessions.get(session).is_some_and(|s| s.retain_until <= now)
            }
        }
    }

    fn create(&mut self, new: &NewSession) {
        let retain_until = new.pair.refresh_expires_at + new.leeway;
        self.tokens.insert(new.pair.refresh_id, (new.session, 0, retain_until));
        self.sessions.insert(
            new.session,
            ModelSession {
                pair: new.pair.clone(),
                generation: 0,
                absolute: new.absolute_expires_at,
                rotated_at: new.created_at,
                replays: 0,
                revoked: false,
                retain_until,
            },
        );
    }

    fn rotate(&mut self, r: &RotationRequest) -> Rotation {
        let Some(&(id, token_gen, _)) = self.tokens.get(&r.presented) else { return Rotation::Unknown };
        let Some(mut s) = self.sessions.get(&id).cloned() else { return Rotation::Unknown };
        let outcome = if s.pair.subject != r.subject {
            Rotation::Unknown
        } else if s.revoked {
            Rotation::Revoked { session: id }
        } else if r.now >= s.absolute {
            Rotation::Expired { session: id }
        } else if token_gen == s.generation {
            if r.now >= s.pair.refresh_expires_at + r.leeway {
                Rotation::Expired { session: id }
            } else {
                let mut pair = r.successor.clone();
                pair.refresh_expires_at = pair.refresh_expires_at.min(s.absolute);
                self.revoke_access(&s.pair, r.leeway, r.now);
                let retain = pair.refresh_expires_at + r.leeway;
                s.generation += 1;
                self.tokens.insert(pair.refresh_id, (id, s.generation, retain));
                s.rotated_at = r.now;
                s.replays = 0;
                s.retain_until = s.retain_until.max(retain);
                s.pair = pair.clone();
                Rotation::Rotated { session: id, generation: s.generation, pair }
            }
        } else if token_gen + 1 == s.generation
            && r.grace.window > 0
            && r.now - s.rotated_at <= r.grace.window
            && s.replays < r.grace.max_replays
        {
            s.replays += 1;
            Rotation::Replayed { session: id, generation: s.generation, pair: s.pair.clone(), replay: s.replays }
        } else if token_gen < s.generation {
            s.revoked = true;
            self.revoke_access(&s.pair, r.leeway, r.now);
            Rotation::Reused { session: id, presented_generation: token_gen, current_generation: s.generation }
        } else {
            Rotation::Unknown
        };
        self.sessions.insert(id, s);
        outcome
    }

    fn revoke(&mut self, token: TokenId, now: i64) -> Revocation {
        let Some(&(id, _, _)) = self.tokens.get(&token) else { return Revocation::Unknown };
        self.revoke_session(id, now).unwrap_or(Revocation::Unknown)
    }

    fn revoke_session(&mut self, id: SessionId, now: i64) -> Option<Revocation> {
        let s = self.sessions.get_mut(&id)?;
        if s.revoked {
            return Some(Revocation::AlreadyRevoked { session: id });
        }
        s.revoked = true;
        let leeway = (s.retain_until - s.pair.refresh_expires_at).max(0);
        let pair = s.pair.clone();
        self.revoke_access(&pair, leeway, now);
        Some(Revocation::Revoked { session: id })
    }

    /// The count, and how many of the revoked sessions were past retention.
    fn revoke_user(&mut self, subject: &str, now: i64) -> (u64, u64) {
        let ids: Vec<SessionId> =
            self.sessions.iter().filter(|(_, s)| s.pair.subject == subject && !s.revoked).map(|(id, _)| *id).collect();
        let stale = ids.iter().filter(|id| self.sessions[id].retain_until <= now).count() as u64;
        for id in &ids {
            self.revoke_session(*id, now);
        }
        (ids.len() as u64, stale)
    }

    fn is_access_revoked(&self, access: TokenId, now: i64) -> bool {
        self.access.get(&access).is_some_and(|until| *until > now)
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Create {
        subject: usize,
        refresh_ttl: i64,
        session_ttl: i64,
        leeway: i64,
    },
    /// Presents a token of session `session`: `back` generations behind its
    /// latest recorded one (0 current, 1 the predecessor, …), or with
    /// `back` = 9 any token ever seen (mostly unknown ones).
    Rotate {
        token: usize,
        back: usize,
        wrong_subject: bool,
        window: i64,
        max_replays: u32,
        leeway: i64,
        refresh_ttl: i64,
    },
    Revoke {
        token: usize,
    },
    RevokeUser {
        subject: usize,
    },
    AccessRevoked {
        access: usize,
    },
    Advance {
        seconds: i64,
    },
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, 20..200i64, 50..400i64, 0..10i64).prop_map(|(subject, refresh_ttl, session_ttl, leeway)| {
            Op::Create { subject, refresh_ttl, session_ttl, leeway }
        }),
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
        1 => any::<usize>().prop_map(|token| Op::Revoke { token }),
        1 => (0..3usize).prop_map(|subject| Op::RevokeUser { subject }),
        2 => any::<usize>().prop_map(|access| Op::AccessRevoked { access }),
        3 => prop_oneof![3 => 0..8i64, 1 => 0..60i64].prop_map(|seconds| Op::Advance { seconds }),
    ]
}

pub const SUBJECTS: [&str; 3] = ["alice", "bob", "carol"];

pub fn pick<T: Copy>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()])
}

pub async fn check_sequence<L: SessionLedger>(ledger: &L, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    // Subjects of this sequence only, so sequences can share a backend.
    let case = SessionId::random();
    let subjects: Vec<String> = SUBJECTS.iter().map(|s| format!("{s}-{case}")).collect();
    let mut now = 1_000_000i64;
    // Every refresh id ever seen (recorded or only proposed), plus one that
    // never was; every access id.
    let mut tokens = vec![TokenId::random()];
    let mut accesses = vec![TokenId::random()];
    // Each session's recorded refresh ids, oldest first.
    let mut chains: Vec<(SessionId, Vec<TokenId>)> = Vec::new();
    for op in ops {
        match op.clone() {
            Op::Advance { seconds } => now += seconds,
            Op::Create { subject, refresh_ttl, session_ttl, leeway } => {
                let pair = new_pair(subjects[subject].as_str(), now, refresh_ttl);
                let new = NewSession {
                    session: SessionId::random(),
                    pair: PairClaims { refresh_expires_at: pair.refresh_expires_at.min(now + session_ttl), ..pair },
                    created_at: now,
                    absolute_expires_at: now + session_ttl,
                    leeway,
                };
                tokens.push(new.pair.refresh_id);
                chains.push((new.session, vec![new.pair.refresh_id]));
                accesses.push(new.pair.access_id);
                ledger.create(&new).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.create(&new);
            }
            Op::Rotate { token, back, wrong_subject, window, max_replays, leeway, refresh_ttl } => {
                let presented = match chains.get(token % chains.len().max(1)) {
                    Some((_, chain)) if back < 9 => chain[chain.len().saturating_sub(1 + back)],
                    _ => pick(&tokens, token).unwrap(),
                };
                let subject = model
                    .tokens
                    .get(&presented)
                    .and_then(|(s, _, _)| model.sessions.get(s))
                    .map_or_else(|| subjects[0].clone(), |s| s.pair.subject.clone());
                let subject = if wrong_subject { format!("mallory-{case}") } else { subject };
                let subject = subject.as_str();
                let successor = new_pair(subject, now, refresh_ttl);
                tokens.push(successor.refresh_id);
                accesses.push(successor.access_id);
                let request = RotationRequest {
                    presented,
                    subject: subject.to_owned(),
                    successor,
                    now,
                    grace: Grace { window, max_replays },
                    leeway,
                };
                let got = ledger.rotate(&request).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Rotation::Rotated { session, pair, .. } = &got
                    && let Some((_, chain)) = chains.iter_mut().find(|(id, _)| id == session)
                {
                    chain.push(pair.refresh_id);
                }
                let stale = model.past_retention(presented, now);
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
            Op::Revoke { token } => {
                let presented = match chains.get(token % chains.len().max(1)) {
                    Some((_, chain)) if token % 4 != 3 => chain[chain.len().saturating_sub(1 + token % 2)],
                    _ => pick(&tokens, token).unwrap(),
                };
                let got = ledger.revoke(presented, now).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let stale = model.past_retention(presented, now);
                let before = model.clone();
                let expected = model.revoke(presented, now);
                if got != expected {
                    prop_assert!(got == Revocation::Unknown && stale, "revoke: ledger {got:?}, model {expected:?}");
                    model = before;
                }
            }
            Op::RevokeUser { subject } => {
                let got = ledger
                    .revoke_user(subjects[subject].as_str(), now)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let (expected, stale) = model.revoke_user(subjects[subject].as_str(), now);
                prop_assert!(
                    got <= expected && got + stale >= expected,
                    "revoke_user: ledger {got}, model {expected} ({stale} past retention)"
                );
            }
            Op::AccessRevoked { access } => {
                let id = pick(&accesses, access).unwrap();
                let got = ledger.is_access_revoked(id, now).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.is_access_revoked(id, now), "is_access_revoked {} at {}", id, now);
            }
        }
    }
    Ok(())
}

pub fn new_pair(subject: &str, now: i64, refresh_ttl: i64) -> PairClaims {
    PairClaims {
        subject: subject.to_owned(),
        account: format!("acc-{subject}"),
        role: "ROLE_USER".to_owned(),
        access_id: TokenId::random(),
        access_expires_at: now + 10,
        refresh_id: TokenId::random(),
        refresh_expires_at: now + refresh_ttl,
    }
}
