//! The in-memory session ledger: the default for one process.
//!
//! Concurrency: state is split into independent shards, each behind its own
//! mutex, so refreshes of different sessions rarely meet. A rotation takes
//! the lock of its session's shard and makes every decision under it; the
//! only other locks it takes while holding it are *leaf* locks (the token
//! index and the revoked-access list), which never wait on anything. That
//! ordering cannot deadlock, and it makes each rotation atomic.
//!
//! Expiry: each shard keeps a min-heap of expiry times. Every write removes
//! a few expired entries, so memory follows the live set without a sweep
//! over all sessions.
//!
//! Hashing: maps keyed by token and session ids use the id's own random
//! bits as the hash. That is safe only because an id reaches a lookup after
//! its token's signature verified, and every id we sign is a fresh random
//! v4 UUID: nobody can choose ids to collide. Subjects, which users choose,
//! are hashed with the standard keyed hasher.

use std::cmp::Reverse;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BinaryHeap, HashMap};
use std::future::{Future, ready};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::ids::{SessionId, TokenId};
use crate::ledger::{NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionLedger};
use crate::users::StoreError;

/// Shard count: a power of two well above any core count we expect.
const SHARDS: usize = 64;
/// Expired entries removed per write, at most. More than one, so the
/// backlog shrinks even when writes slow down.
const PURGE_PER_WRITE: usize = 4;

/// The in-memory [`SessionLedger`].
///
/// ```
/// use token_refresh::MemoryLedger;
/// let ledger = MemoryLedger::new();
/// assert_eq!(ledger.live_sessions(), 0);
/// ```
#[derive(Debug, Default)]
pub struct MemoryLedger {
    sessions: Shards<SessionId, SessionRecord, IdHashing>,
    tokens: Shards<TokenId, TokenRecord, IdHashing>,
    revoked_access: Shards<TokenId, i64, IdHashing>,
    by_subject: Shards<Box<str>, Vec<SessionId>, RandomState>,
}

/// What a [`MemoryLedger`] holds; see [`MemoryLedger::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LedgerStats {
    /// Sessions held.
    pub sessions: usize,
    /// Of those, revoked.
    pub revoked_sessions: usize,
    /// Sum of the sessions' generations: rotations performed.
    pub rotations: u64,
    /// Grace replays of the sessions' latest rotations.
    pub grace_replays: u64,
    /// Refresh-token records held.
    pub token_records: usize,
    /// Access tokens on the revocation list.
    pub revoked_access_tokens: usize,
}

#[derive(Debug)]
struct SessionRecord {
    pair: PairClaims,
    generation: u64,
    absolute_expires_at: i64,
    rotated_at: i64,
    replays: u32,
    revoked: bool,
    retain_until: i64,
}

#[derive(Debug, Clone, Copy)]
struct TokenRecord {
    session: SessionId,
    generation: u64,
    retain_until: i64,
}

trait Retained {
    fn retain_until(&self) -> i64;
}

impl Retained for SessionRecord {
    fn retain_until(&self) -> i64 {
        self.retain_until
    }
}

impl Retained for TokenRecord {
    fn retain_until(&self) -> i64 {
        self.retain_until
    }
}

impl Retained for i64 {
    fn retain_until(&self) -> i64 {
        *self
    }
}

/// Index lists are removed explicitly when their last session goes.
impl Retained for Vec<SessionId> {
    fn retain_until(&self) -> i64 {
        i64::MAX
    }
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sessions currently held (live, or kept for reuse detection).
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Token records currently held (one per issued refresh token until its
    /// expiry).
    pub fn token_records(&self) -> usize {
        self.tokens.len()
    }

    /// A summary of everything held, for monitoring and for tests that
    /// assert a refused request changed nothing.
    pub fn stats(&self) -> LedgerStats {
        let mut stats = LedgerStats {
            sessions: 0,
            revoked_sessions: 0,
            rotations: 0,
            grace_replays: 0,
            token_records: self.tokens.len(),
            revoked_access_tokens: self.revoked_access.len(),
        };
        for i in 0..SHARDS {
            for record in self.sessions.lock(i).map.values() {
                stats.sessions += 1;
                stats.revoked_sessions += usize::from(record.revoked);
                stats.rotations += record.generation;
                stats.grace_replays += u64::from(record.replays);
            }
        }
        stats
    }

    fn revoke_access(&self, pair: &PairClaims, leeway: i64, now: i64) {
        let until = pair.access_expires_at.saturating_add(leeway);
        if until > now {
            self.revoked_access.with(&pair.access_id, |shard| {
                shard.insert(pair.access_id, until);
                shard.purge(now);
            });
        }
    }

    fn forget_purged_sessions(&self, purged: Vec<(SessionId, SessionRecord)>) {
        for (id, record) in purged {
            let subject: &str = &record.pair.subject;
            self.by_subject.with_str(subject, |shard| {
                if let Some(list) = shard.map.get_mut(subject) {
                    list.retain(|s| *s != id);
                    if list.is_empty() {
                        shard.map.remove(subject);
                    }
                }
            });
        }
    }

    fn create_now(&self, new: &NewSession) {
        let retain_until = new.pair.refresh_expires_at.saturating_add(new.leeway);
        let record = SessionRecord {
            pair: new.pair.clone(),
            generation: 0,
            absolute_expires_at: new.absolute_expires_at,
            rotated_at: new.created_at,
            replays: 0,
            revoked: false,
            retain_until,
        };
        self.by_subject.with_str(&new.pair.subject, |shard| match shard.map.get_mut(new.pair.subject.as_str()) {
            Some(list) => list.push(new.session),
            None => shard.insert(new.pair.subject.as_str().into(), vec![new.session]),
        });
        let token = TokenRecord { session: new.session, generation: 0, retain_until };
        self.tokens.with(&new.pair.refresh_id, |shard| {
            shard.insert(new.pair.refresh_id, token);
            shard.purge(new.created_at);
        });
        let purged = self.sessions.with(&new.session, |shard| {
            shard.insert(new.session, record);
            shard.purge(new.created_at)
        });
        self.forget_purged_sessions(purged);
    }

    fn rotate_now(&self, request: &RotationRequest) -> Rotation {
        let now = request.now;
        let Some(token) = self.tokens.with(&request.presented, |shard| shard.map.get(&request.presented).copied())
        else {
            return Rotation::Unknown;
        };
        let session = token.session;
        let (outcome, purged) = self.sessions.with(&session, |shard| {
            let outcome = match shard.map.get_mut(&session) {
                None => Rotation::Unknown,
                Some(record) => self.decide(session, record, token, request),
            };
            if let Rotation::Rotated { .. } = outcome {
                // The retention time grew: re-queue so purge sees the new one.
                shard.requeue(session);
            }
            (outcome, shard.purge(now))
        });
        self.forget_purged_sessions(purged);
        outcome
    }

    /// The rotation decision for one session; runs under its shard lock.
    fn decide(
        &self,
        session: SessionId,
        record: &mut SessionRecord,
        token: TokenRecord,
        request: &RotationRequest,
    ) -> Rotation {
        let now = request.now;
        if record.pair.subject != request.subject {
            return Rotation::Unknown;
        }
        if record.revoked {
            return Rotation::Revoked { session };
        }
        if now >= record.absolute_expires_at {
            return Rotation::Expired { session };
        }
        if token.generation == record.generation {
            if now >= record.pair.refresh_expires_at.saturating_add(request.leeway) {
                return Rotation::Expired { session };
            }
            let mut pair = request.successor.clone();
            pair.refresh_expires_at = pair.refresh_expires_at.min(record.absolute_expires_at);
            self.revoke_access(&record.pair, request.leeway, now);
            let generation = record.generation + 1;
            let retain_until = pair.refresh_expires_at.saturating_add(request.leeway);
            let successor = TokenRecord { session, generation, retain_until };
            self.tokens.with(&pair.refresh_id, |shard| {
                shard.insert(pair.refresh_id, successor);
                shard.purge(now);
            });
            record.generation = generation;
            record.rotated_at = now;
            record.replays = 0;
            record.retain_until = record.retain_until.max(retain_until);
            record.pair = pair.clone();
            return Rotation::Rotated { session, generation, pair };
        }
        let grace = request.grace;
        let within_grace = token.generation + 1 == record.generation
            && grace.window > 0
            && now.saturating_sub(record.rotated_at) <= grace.window
            && record.replays < grace.max_replays;
        if within_grace {
            record.replays += 1;
            return Rotation::Replayed {
                session,
                generation: record.generation,
                pair: record.pair.clone(),
                replay: record.replays,
            };
        }
        if token.generation < record.generation {
            record.revoked = true;
            self.revoke_access(&record.pair, request.leeway, now);
            return Rotation::Reused {
                session,
                presented_generation: token.generation,
                current_generation: record.generation,
            };
        }
        Rotation::Unknown
    }

    fn revoke_now(&self, presented: TokenId, now: i64) -> Revocation {
        let Some(token) = self.tokens.with(&presented, |shard| shard.map.get(&presented).copied()) else {
            return Revocation::Unknown;
        };
        self.revoke_session(token.session, now).unwrap_or(Revocation::Unknown)
    }

    fn revoke_session(&self, session: SessionId, now: i64) -> Option<Revocation> {
        self.sessions.with(&session, |shard| {
            let record = shard.map.get_mut(&session)?;
            if record.revoked {
                return Some(Revocation::AlreadyRevoked { session });
            }
            record.revoked = true;
            // The access token lives on until its own exp; keep it listed
            // that long, with the leeway the session was created with.
            let leeway = record.retain_until.saturating_sub(record.pair.refresh_expires_at).max(0);
            self.revoke_access(&record.pair, leeway, now);
            Some(Revocation::Revoked { session })
        })
    }

    fn revoke_user_now(&self, subject: &str, now: i64) -> u64 {
        let sessions = self.by_subject.with_str(subject, |shard| shard.map.get(subject).cloned()).unwrap_or_default();
        let revoked = sessions
            .into_iter()
            .filter(|session| matches!(self.revoke_session(*session, now), Some(Revocation::Revoked { .. })))
            .count();
        u64::try_from(revoked).unwrap_or(u64::MAX)
    }

    fn is_access_revoked_now(&self, access_id: TokenId, now: i64) -> bool {
        self.revoked_access.with(&access_id, |shard| shard.map.get(&access_id).is_some_and(|until| *until > now))
    }
}

impl SessionLedger for MemoryLedger {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.create_now(session);
        ready(Ok(()))
    }

    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        ready(Ok(self.rotate_now(request)))
    }

    fn revoke(&self, presented: TokenId, now: i64) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
        ready(Ok(self.revoke_now(presented, now)))
    }

    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(Ok(self.revoke_user_now(subject, now)))
    }

    fn is_access_revoked(&self, access_id: TokenId, now: i64) -> impl Future<Output = Result<bool, StoreError>> + Send {
        ready(Ok(self.is_access_revoked_now(access_id, now)))
    }
}

/// Hashes an id by its own random bits (see the module docs for why that
/// is safe here).
#[derive(Debug, Default, Clone, Copy)]
struct IdHashing;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    // The length prefix carries no entropy; skip it.
    fn write_usize(&mut self, _: usize) {}
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher::default()
    }
}

/// Keys know their shard; ids use bits the map's hash does not lean on.
trait ShardKey: Hash + Eq + Clone + Ord {
    fn shard(&self) -> usize;
}

impl ShardKey for TokenId {
    fn shard(&self) -> usize {
        usize::from(self.as_bytes()[15]) % SHARDS
    }
}

impl ShardKey for SessionId {
    fn shard(&self) -> usize {
        usize::from(self.as_bytes()[15]) % SHARDS
    }
}

impl ShardKey for Box<str> {
    fn shard(&self) -> usize {
        str_shard(self)
    }
}

fn str_shard(text: &str) -> usize {
    // FNV-1a: only spreads subjects over shards; the maps inside use a keyed
    // hasher, so a chosen subject cannot degrade a map.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    usize::try_from(hash % SHARDS as u64).unwrap_or(0)
}

struct Shards<K, V, S> {
    shards: Box<[Mutex<Shard<K, V, S>>]>,
}

impl<K, V, S: Default> Default for Shards<K, V, S> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard { map: HashMap::with_hasher(S::default()), expiry: BinaryHeap::new() }))
                .collect(),
        }
    }
}

impl<K, V, S> std::fmt::Debug for Shards<K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("count", &self.shards.len()).finish_non_exhaustive()
    }
}

impl<K, V, S> Shards<K, V, S> {
    #[expect(clippy::indexing_slicing, reason = "the index is reduced modulo the fixed shard count")]
    fn lock(&self, index: usize) -> MutexGuard<'_, Shard<K, V, S>> {
        // A panic while holding a shard cannot leave a half-made decision
        // (records are replaced whole), so a poisoned lock is still usable.
        self.shards[index % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).map.len()).sum()
    }
}

impl<K: ShardKey, V, S> Shards<K, V, S> {
    fn with<R>(&self, key: &K, f: impl FnOnce(&mut Shard<K, V, S>) -> R) -> R {
        f(&mut self.lock(key.shard()))
    }
}

impl<V, S> Shards<Box<str>, V, S> {
    fn with_str<R>(&self, key: &str, f: impl FnOnce(&mut Shard<Box<str>, V, S>) -> R) -> R {
        f(&mut self.lock(str_shard(key)))
    }
}

struct Shard<K, V, S> {
    map: HashMap<K, V, S>,
    expiry: BinaryHeap<Reverse<(i64, K)>>,
}

impl<K: ShardKey, V: Retained, S: BuildHasher> Shard<K, V, S> {
    fn insert(&mut self, key: K, value: V) {
        let until = value.retain_until();
        if until != i64::MAX {
            self.expiry.push(Reverse((until, key.clone())));
        }
        self.map.insert(key, value);
    }

    /// Queues `key` again at its current retention time.
    fn requeue(&mut self, key: K) {
        if let Some(value) = self.map.get(&key) {
            self.expiry.push(Reverse((value.retain_until(), key)));
        }
    }

    /// Removes up to [`PURGE_PER_WRITE`] entries whose retention ended.
    fn purge(&mut self, now: i64) -> Vec<(K, V)> {
        let mut removed = Vec::new();
        for _ in 0..PURGE_PER_WRITE {
            match self.expiry.peek() {
                Some(Reverse((until, _))) if *until <= now => {}
                _ => break,
            }
            let Some(Reverse((until, key))) = self.expiry.pop() else { break };
            // Stale queue entries (the value was kept longer since) are
            // dropped; the value has a newer entry of its own.
            if let Entry::Occupied(entry) = self.map.entry(key)
                && entry.get().retain_until() <= until
            {
                removed.push(entry.remove_entry());
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Grace;

    fn pair(subject: &str, now: i64) -> PairClaims {
        PairClaims {
            subject: subject.into(),
            account: "acc".into(),
            role: "role".into(),
            access_id: TokenId::random(),
            access_expires_at: now + 300,
            refresh_id: TokenId::random(),
            refresh_expires_at: now + 86_400,
        }
    }

    fn start(ledger: &MemoryLedger, now: i64) -> (SessionId, PairClaims) {
        let session = SessionId::random();
        let first = pair("bob", now);
        ledger.create_now(&NewSession {
            session,
            pair: first.clone(),
            created_at: now,
            absolute_expires_at: now + 30 * 86_400,
            leeway: 0,
        });
        (session, first)
    }

    fn rotate(ledger: &MemoryLedger, presented: TokenId, now: i64, grace: Grace) -> Rotation {
        ledger.rotate_now(&RotationRequest {
            presented,
            subject: "bob".into(),
            successor: pair("bob", now),
            now,
            grace,
            leeway: 0,
        })
    }

    #[test]
    fn rotate_then_reuse_revokes_the_family() {
        let ledger = MemoryLedger::new();
        let (session, first) = start(&ledger, 1000);
        let Rotation::Rotated { pair: second, generation: 1, .. } =
            rotate(&ledger, first.refresh_id, 1001, Grace::default())
        else {
            panic!("first rotation must succeed")
        };
        assert!(ledger.is_access_revoked_now(first.access_id, 1001));
        let reused = rotate(&ledger, first.refresh_id, 1002, Grace::default());
        assert_eq!(reused, Rotation::Reused { session, presented_generation: 0, current_generation: 1 });
        assert!(ledger.is_access_revoked_now(second.access_id, 1002));
        assert_eq!(rotate(&ledger, second.refresh_id, 1003, Grace::default()), Rotation::Revoked { session });
    }

    #[test]
    fn expired_records_leave_without_a_sweep() {
        let ledger = MemoryLedger::new();
        for _ in 0..200 {
            start(&ledger, 0);
        }
        assert_eq!(ledger.live_sessions(), 200);
        // Each later write purges a few; enough writes empty the old ones.
        for _ in 0..200 {
            start(&ledger, 100_000);
        }
        assert!(ledger.live_sessions() < 400, "some expired sessions were purged");
        let removed = 400 - ledger.live_sessions();
        assert!(removed >= 150, "purging keeps pace with writes: removed {removed}");
    }
}
