//! The in-memory session ledger: the default for one process.
//!
//! Layout: every refresh token still worth remembering has an entry in a
//! sharded index, `jti → (session cell, generation)`. A session's state
//! lives once, in a reference-counted cell behind its own mutex, shared by
//! the index entries of all its tokens. Users' identities (subject, account,
//! role) are interned, so a session costs one small allocation.
//!
//! Concurrency: a rotation finds the cell through the index (a shard lock
//! held only for the lookup) and makes every decision under the cell's own
//! mutex, so the consume-once step is atomic per session and refreshes of
//! different sessions never wait for each other. While holding a cell it
//! only takes *leaf* locks (an index shard, the revoked-access list), and
//! index shards only take user shards: `cell → index → users`, always in
//! that order, so no cycle can form.
//!
//! Expiry: each index shard keeps a min-heap of expiry times, and every
//! write removes a few expired entries. A session's cell goes when the last
//! index entry naming it goes: memory follows the live set, without a sweep
//! over all sessions.
//!
//! Hashing: index maps use the id's own random bits as the hash. That is
//! safe only because an id reaches a lookup after its token's signature
//! verified, and every id we sign is a fresh random v4 UUID: nobody can
//! choose ids to collide. Subjects, which users choose, are hashed with the
//! standard keyed hasher.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::future::{Future, ready};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::ids::{SessionId, TokenId};
use crate::ledger::{
    self, Decision, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionLedger, SessionView,
};
use crate::users::StoreError;

/// Shard count: a power of two well above any core count we expect.
const SHARDS: usize = 64;
/// Expired entries removed per write, at most. More than one, so a backlog
/// shrinks even when writes slow down.
const PURGE_PER_WRITE: usize = 4;

/// The in-memory [`SessionLedger`].
///
/// ```
/// use token_refresh::MemoryLedger;
/// let ledger = MemoryLedger::new();
/// assert_eq!(ledger.stats().sessions, 0);
/// ```
#[derive(Debug, Default)]
pub struct MemoryLedger {
    tokens: Shards<TokenId, TokenEntry, IdHashing>,
    revoked_access: Shards<TokenId, i64, IdHashing>,
    users: Shards<Box<str>, UserEntry, RandomState>,
}

/// What a [`MemoryLedger`] holds; see [`MemoryLedger::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LedgerStats {
    /// Sessions held (live, or kept for reuse detection).
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

/// Who a session belongs to, interned: all sessions of a user share one.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    subject: Box<str>,
    account: Box<str>,
    role: Box<str>,
}

type Cell = Arc<Mutex<SessionRecord>>;

#[derive(Debug)]
struct SessionRecord {
    identity: Arc<Identity>,
    session: SessionId,
    access_id: TokenId,
    refresh_id: TokenId,
    access_expires_at: i64,
    refresh_expires_at: i64,
    absolute_expires_at: i64,
    rotated_at: i64,
    /// Until when the session must be remembered: its latest refresh
    /// token's expiry plus leeway, never moved earlier.
    retain_until: i64,
    generation: u64,
    replays: u32,
    revoked: bool,
}

impl SessionRecord {
    /// The leeway the session's records are kept with.
    fn leeway(&self) -> i64 {
        self.retain_until.saturating_sub(self.refresh_expires_at).max(0)
    }

    fn pair(&self) -> PairClaims {
        PairClaims {
            subject: self.identity.subject.to_string(),
            account: self.identity.account.to_string(),
            role: self.identity.role.to_string(),
            access_id: self.access_id,
            access_expires_at: self.access_expires_at,
            refresh_id: self.refresh_id,
            refresh_expires_at: self.refresh_expires_at,
        }
    }
}

#[derive(Debug, Clone)]
struct TokenEntry {
    cell: Cell,
    generation: u64,
}

#[derive(Debug, Default)]
struct UserEntry {
    identity: Option<Arc<Identity>>,
    sessions: Vec<Cell>,
}

fn lock(cell: &Cell) -> MutexGuard<'_, SessionRecord> {
    // Every decision replaces fields of the record before any fallible work,
    // so a poisoned cell is still consistent.
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A summary of everything held, for monitoring and for tests that
    /// assert a refused request changed nothing. Walks every entry.
    pub fn stats(&self) -> LedgerStats {
        let mut seen = std::collections::HashSet::new();
        let mut stats = LedgerStats::default();
        for i in 0..SHARDS {
            // Collect first, lock cells after: a rotation holds its cell
            // while it waits for an index shard, never the other way round.
            let cells: Vec<Cell> = {
                let shard = self.tokens.lock(i);
                stats.token_records += shard.map.len();
                shard.map.values().map(|entry| Arc::clone(&entry.cell)).collect()
            };
            for cell in cells {
                if seen.insert(Arc::as_ptr(&cell)) {
                    let record = lock(&cell);
                    stats.sessions += 1;
                    stats.revoked_sessions += usize::from(record.revoked);
                    stats.rotations += record.generation;
                    stats.grace_replays += u64::from(record.replays);
                }
            }
        }
        stats.revoked_access_tokens = (0..SHARDS).map(|i| self.revoked_access.lock(i).map.len()).sum();
        stats
    }

    /// The interned identity for `pair`'s user, and registers `cell` as one
    /// of the user's sessions (for [`SessionLedger::revoke_user`]).
    fn register(&self, pair: &PairClaims, cell: Option<&Cell>) -> Arc<Identity> {
        let subject = pair.subject.as_str();
        self.users.with_str(subject, |shard| {
            let entry = match shard.map.get_mut(subject) {
                Some(entry) => entry,
                None => shard.map.entry(subject.into()).or_default(),
            };
            let identity = match &entry.identity {
                Some(identity) if *identity.account == *pair.account && *identity.role == *pair.role => {
                    Arc::clone(identity)
                }
                _ => {
                    let identity = Arc::new(Identity {
                        subject: subject.into(),
                        account: pair.account.as_str().into(),
                        role: pair.role.as_str().into(),
                    });
                    entry.identity = Some(Arc::clone(&identity));
                    identity
                }
            };
            if let Some(cell) = cell {
                entry.sessions.push(Arc::clone(cell));
            }
            identity
        })
    }

    fn index(&self, id: TokenId, entry: TokenEntry, retain_until: i64, now: i64) {
        let purged = self.tokens.with(&id, |shard| {
            shard.insert(id, entry, retain_until);
            shard.purge(now)
        });
        for entry in purged {
            self.forget_if_last(entry);
        }
    }

    /// Drops a session from its user's list once no index entry names it:
    /// the list's reference and the purged entry's are all that is left.
    fn forget_if_last(&self, purged: TokenEntry) {
        if Arc::strong_count(&purged.cell) > 2 {
            return;
        }
        // No index entry and no rotation holds this cell any more, so locking
        // it here (under an index shard) cannot wait on a rotation.
        let subject = lock(&purged.cell).identity.subject.clone();
        self.users.with_str(&subject, |shard| {
            if let Some(entry) = shard.map.get_mut(&*subject) {
                entry.sessions.retain(|cell| !Arc::ptr_eq(cell, &purged.cell));
                if entry.sessions.is_empty() {
                    shard.map.remove(&*subject);
                }
            }
        });
    }

    fn revoke_access(&self, access_id: TokenId, access_expires_at: i64, leeway: i64, now: i64) {
        let until = access_expires_at.saturating_add(leeway);
        self.list_revoked((until > now).then_some((access_id, until)), now);
    }

    /// Lists an access token as revoked until the given time, if any.
    fn list_revoked(&self, revoke: Option<(TokenId, i64)>, now: i64) {
        if let Some((access_id, until)) = revoke {
            self.revoked_access.with(&access_id, |shard| {
                shard.insert(access_id, until, until);
                shard.purge(now);
            });
        }
    }

    fn create_now(&self, new: &NewSession) {
        let identity = self.register(&new.pair, None);
        let record = SessionRecord {
            identity,
            session: new.session,
            access_id: new.pair.access_id,
            refresh_id: new.pair.refresh_id,
            access_expires_at: new.pair.access_expires_at,
            refresh_expires_at: new.pair.refresh_expires_at,
            absolute_expires_at: new.absolute_expires_at,
            rotated_at: new.created_at,
            retain_until: new.pair.refresh_expires_at.saturating_add(new.leeway),
            generation: 0,
            replays: 0,
            revoked: false,
        };
        let cell = Arc::new(Mutex::new(record));
        self.register(&new.pair, Some(&cell));
        let retain_until = new.pair.refresh_expires_at.saturating_add(new.leeway);
        self.index(new.pair.refresh_id, TokenEntry { cell, generation: 0 }, retain_until, new.created_at);
    }

    fn lookup(&self, id: TokenId) -> Option<TokenEntry> {
        self.tokens.with(&id, |shard| shard.map.get(&id).cloned())
    }

    fn rotate_now(&self, request: &RotationRequest) -> Rotation {
        let Some(token) = self.lookup(request.presented) else {
            return Rotation::Unknown;
        };
        let mut record = lock(&token.cell);
        self.decide(&mut record, &token, request)
    }

    /// Applies the contract's decision ([`ledger::decide`]) to one session;
    /// runs under its cell lock.
    fn decide(&self, record: &mut SessionRecord, token: &TokenEntry, request: &RotationRequest) -> Rotation {
        let (now, session) = (request.now, record.session);
        let view = SessionView {
            subject_matches: *record.identity.subject == *request.subject,
            revoked: record.revoked,
            absolute_expires_at: record.absolute_expires_at,
            generation: record.generation,
            presented_generation: token.generation,
            refresh_expires_at: record.refresh_expires_at,
            access_id: record.access_id,
            access_expires_at: record.access_expires_at,
            rotated_at: record.rotated_at,
            replays: record.replays,
        };
        match ledger::decide(&view, request) {
            Decision::Unknown => Rotation::Unknown,
            Decision::Revoked => Rotation::Revoked { session },
            Decision::Expired => Rotation::Expired { session },
            Decision::Rotate { generation, refresh_expires_at, token_retain_until, revoke_access } => {
                self.list_revoked(revoke_access, now);
                let successor = &request.successor;
                if *record.identity.account != *successor.account || *record.identity.role != *successor.role {
                    record.identity = self.register(successor, None);
                }
                record.generation = generation;
                record.access_id = successor.access_id;
                record.access_expires_at = successor.access_expires_at;
                record.refresh_id = successor.refresh_id;
                record.refresh_expires_at = refresh_expires_at;
                record.rotated_at = now;
                record.replays = 0;
                record.retain_until = record.retain_until.max(token_retain_until);
                let entry = TokenEntry { cell: Arc::clone(&token.cell), generation };
                self.index(successor.refresh_id, entry, token_retain_until, now);
                Rotation::Rotated { session, generation, pair: record.pair() }
            }
            Decision::Replay { replay } => {
                record.replays = replay;
                Rotation::Replayed { session, generation: record.generation, pair: record.pair(), replay }
            }
            Decision::Reuse { revoke_access } => {
                record.revoked = true;
                self.list_revoked(revoke_access, now);
                Rotation::Reused {
                    session,
                    presented_generation: token.generation,
                    current_generation: record.generation,
                }
            }
        }
    }

    fn revoke_cell(&self, cell: &Cell, now: i64) -> Revocation {
        let mut record = lock(cell);
        let session = record.session;
        if record.revoked {
            return Revocation::AlreadyRevoked { session };
        }
        record.revoked = true;
        // The access token lives on until its own exp: list it that long,
        // with the leeway the session was created with.
        self.revoke_access(record.access_id, record.access_expires_at, record.leeway(), now);
        Revocation::Revoked { session }
    }

    fn revoke_now(&self, presented: TokenId, now: i64) -> Revocation {
        match self.lookup(presented) {
            Some(token) => self.revoke_cell(&token.cell, now),
            None => Revocation::Unknown,
        }
    }

    fn revoke_user_now(&self, subject: &str, now: i64) -> u64 {
        let cells = self
            .users
            .with_str(subject, |shard| shard.map.get(subject).map(|entry| entry.sessions.clone()).unwrap_or_default());
        let revoked =
            cells.iter().filter(|cell| matches!(self.revoke_cell(cell, now), Revocation::Revoked { .. })).count();
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
        // hashbrown takes its 7-bit tags from the top bits: mix the id's
        // random bits up there (the raw top bits hold the UUID version and
        // the byte that also picks the shard, so tags would barely vary).
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
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

/// Keys pick their shard from bits the map's hash does not lean on.
trait ShardKey: Eq + std::hash::Hash + Ord {
    fn shard(&self) -> usize;
}

impl ShardKey for TokenId {
    fn shard(&self) -> usize {
        usize::from(self.as_bytes()[15]) % SHARDS
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
        // Entries are inserted and removed whole, so a poisoned shard is
        // still consistent.
        self.shards[index % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
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

impl<K: ShardKey + Copy, V, S: BuildHasher> Shard<K, V, S> {
    /// Inserts an entry that lives until `retain_until`. Keys are fresh
    /// random ids, never re-inserted, so each has one queue entry.
    fn insert(&mut self, key: K, value: V, retain_until: i64) {
        self.expiry.push(Reverse((retain_until, key)));
        self.map.insert(key, value);
    }

    /// Removes up to [`PURGE_PER_WRITE`] entries whose retention ended.
    fn purge(&mut self, now: i64) -> Vec<V> {
        let mut removed = Vec::new();
        while removed.len() < PURGE_PER_WRITE {
            match self.expiry.peek() {
                Some(Reverse((until, _))) if *until <= now => {}
                _ => break,
            }
            let Some(Reverse((_, key))) = self.expiry.pop() else { break };
            removed.extend(self.map.remove(&key));
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
        assert_eq!(ledger.stats().sessions, 200);
        // Each later write purges a few; enough writes empty the old ones.
        for _ in 0..200 {
            start(&ledger, 100_000);
        }
        let removed = 400 - ledger.stats().sessions;
        assert!(removed >= 150, "purging keeps pace with writes: removed {removed}");
        // The user index forgets purged sessions too.
        let listed = ledger.users.with_str("bob", |shard| shard.map.get("bob").map_or(0, |e| e.sessions.len()));
        assert_eq!(listed, 400 - removed);
    }

    #[test]
    fn sessions_of_one_user_share_one_identity() {
        let ledger = MemoryLedger::new();
        let (_, a) = start(&ledger, 0);
        let (_, b) = start(&ledger, 0);
        let identity = |id| ledger.lookup(id).map(|e| Arc::as_ptr(&lock(&e.cell).identity));
        assert!(identity(a.refresh_id).is_some());
        assert_eq!(identity(a.refresh_id), identity(b.refresh_id));
    }
}
