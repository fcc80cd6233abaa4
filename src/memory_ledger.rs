//! The in-memory session ledger: the default for one process.
//!
//! Layout: every refresh token still worth remembering has an entry in a
//! sharded index, `jti → (session cell, generation, retention)`, 32 bytes.
//! A session's state lives once, in a reference-counted cell behind its own
//! mutex, shared by the index entries of all its tokens. Each user has one
//! entry in a sharded user index whose key is the user's identity (subject,
//! account and role packed in one string, hashed and compared by the subject
//! alone, so the subject is stored once) and whose value lists the user's
//! sessions as weak references, inline when there is one; the sessions of
//! a user share that identity while it stays the same.
//!
//! Concurrency: a rotation finds the cell through the index (a shard lock
//! held only for the lookup) and makes every decision under the cell's own
//! mutex, so the consume-once step is atomic per session and refreshes of
//! different sessions never wait for each other. While holding a cell it
//! only takes locks further down one fixed order, `cell → index shard →
//! user shard`, with the revoked-access list a leaf: nothing is locked
//! under a user shard, no cell is locked under an index shard (sweeps read
//! only the entries), so no cycle can form. Poisoned locks are recovered:
//! entries are inserted and removed whole, and a decision writes the
//! record's fields after its one fallible step.
//!
//! Lifetime: only index entries (and short-lived lookups) hold a cell
//! strongly; the user index holds it weakly. Whoever drops the last strong
//! reference gets the record back from [`Arc::into_inner`] (exactly one
//! caller can, even when two shards drop a session's last entries at once)
//! and removes the session from its user's list, and the user from the
//! user index once the list is empty. Every place that drops a cell goes
//! through [`MemoryLedger::release`] for that reason. A weak reference keeps
//! the cell's allocation, so its address cannot be reused while the user
//! index names it: `revoke_user` reaches exactly the user's own sessions,
//! in time proportional to their number.
//!
//! Expiry: an index entry carries the time until which it must be kept
//! (`exp` plus leeway, as `u32` seconds after the ledger's epoch, rounded
//! towards keeping it). A shard is swept with `extract_if` once the writes
//! since its last sweep pass a quarter of its capacity: amortized O(1) per
//! write, and an entry outlives its retention by at most that many writes
//! to its shard. An entry kept longer than its retention cannot change
//! what the crate answers: the refresh and logout flows refuse a token at
//! its own `exp` plus leeway before they reach the ledger, and that is
//! exactly when its retention ends. A direct caller of the ledger may get
//! the answer the contract gives with the record present instead of
//! `Unknown`, both of which the contract allows after the retention. A
//! session's cell goes when the last index entry naming it goes: memory
//! follows the live set.
//!
//! Hashing: index maps use the id's own random bits as the hash. That is
//! safe only because an id reaches a lookup after its token's signature
//! verified, and every id we sign is a fresh random v4 UUID: nobody can
//! choose ids to collide (a collision would only lengthen probing in one
//! shard; keys are still compared whole). Subjects, which users choose, are
//! hashed with the standard keyed hasher.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::{Future, ready};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use crate::ids::{SessionId, TokenId};
use crate::ledger::{
    self, Decision, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionLedger, SessionView,
};
use crate::users::StoreError;

/// Shard count: a power of two well above any core count we expect.
const SHARDS: usize = 64;
/// A shard is swept once its writes since the last sweep pass its capacity
/// divided by this: the sweep's cost (one pass over the table) spread over
/// that many writes is a constant per write.
const SWEEP_DIVISOR: usize = 4;

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
    users: Shards<UserKey, Sessions, RandomState>,
    /// The origin of the index entries' `u32` retention times: the `now`
    /// of the first write, so they cover 136 years from the ledger's start.
    epoch: OnceLock<i64>,
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

/// Who a session belongs to, in one string: subject, account and role
/// back to back. All sessions of a user share one while it is the same.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    text: Box<str>,
    subject_len: u32,
    account_len: u32,
}

impl Identity {
    /// `None` if the subject or account is longer than `u32` can count
    /// (4 GiB): such a pair cannot have come from a token.
    fn new(subject: &str, account: &str, role: &str) -> Option<Self> {
        Some(Self {
            text: [subject, account, role].concat().into_boxed_str(),
            subject_len: u32::try_from(subject.len()).ok()?,
            account_len: u32::try_from(account.len()).ok()?,
        })
    }

    /// Byte offsets of the account and the role in `text`.
    fn bounds(&self) -> (usize, usize) {
        let subject = usize::try_from(self.subject_len).unwrap_or(usize::MAX);
        let account = usize::try_from(self.account_len).unwrap_or(usize::MAX);
        (subject, subject.saturating_add(account))
    }

    // The offsets were taken from the very strings concatenated, so each
    // falls on a char boundary and the `get`s below always succeed.
    fn subject(&self) -> &str {
        self.text.get(..self.bounds().0).unwrap_or_default()
    }

    fn account(&self) -> &str {
        let (start, end) = self.bounds();
        self.text.get(start..end).unwrap_or_default()
    }

    fn role(&self) -> &str {
        self.text.get(self.bounds().1..).unwrap_or_default()
    }

    fn is(&self, subject: &str, account: &str, role: &str) -> bool {
        self.subject() == subject && self.account() == account && self.role() == role
    }
}

/// A user index key: the user's latest identity, hashed, compared and
/// borrowed as its subject, so the subject is stored once per user.
#[derive(Debug)]
struct UserKey(Arc<Identity>);

impl PartialEq for UserKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.subject() == other.0.subject()
    }
}

impl Eq for UserKey {}

impl Hash for UserKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash as the borrowed `str` does.
        self.0.subject().hash(state);
    }
}

impl Borrow<str> for UserKey {
    fn borrow(&self) -> &str {
        self.0.subject()
    }
}

type Cell = Arc<Mutex<SessionRecord>>;
type WeakCell = Weak<Mutex<SessionRecord>>;

/// A user's sessions. Most users have one, kept inline: the list costs a
/// user index entry nothing beyond the pointer.
#[derive(Debug)]
enum Sessions {
    One(WeakCell),
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps the enum, and each user's index entry, at 16 bytes"
    )]
    Many(Box<Vec<WeakCell>>),
}

impl Sessions {
    fn push(&mut self, session: WeakCell) {
        match self {
            Self::One(first) => {
                let first = std::mem::replace(first, Weak::new());
                *self = Self::Many(Box::new(vec![first, session]));
            }
            Self::Many(list) => {
                if list.len() == list.capacity() {
                    // A session missed by `release` would otherwise stay
                    // listed; dropping the dead ones here bounds that.
                    list.retain(|weak| weak.strong_count() > 0);
                }
                list.push(session);
            }
        }
    }

    /// Removes the session at `cell`; returns whether the list is empty.
    fn remove(&mut self, cell: *const Mutex<SessionRecord>) -> bool {
        match self {
            Self::One(only) => std::ptr::eq(only.as_ptr(), cell),
            Self::Many(list) => {
                // Order does not matter: swap the last one in.
                if let Some(at) = list.iter().position(|weak| std::ptr::eq(weak.as_ptr(), cell)) {
                    list.swap_remove(at);
                }
                list.is_empty()
            }
        }
    }

    fn to_vec(&self) -> Vec<WeakCell> {
        match self {
            Self::One(only) => vec![only.clone()],
            Self::Many(list) => list.to_vec(),
        }
    }
}

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
            subject: self.identity.subject().to_owned(),
            account: self.identity.account().to_owned(),
            role: self.identity.role().to_owned(),
            access_id: self.access_id,
            access_expires_at: self.access_expires_at,
            refresh_id: self.refresh_id,
            refresh_expires_at: self.refresh_expires_at,
        }
    }

    /// The generation of the presented token `presented`, whose index entry
    /// says `generation`. The current token is recognised by its id, so an
    /// entry's generation saturating at `u32::MAX` (after four billion
    /// rotations) can never make a consumed token pass for the current one;
    /// it can only make a predecessor count as older (reuse, not replay).
    fn presented_generation(&self, presented: TokenId, generation: u32) -> u64 {
        if presented == self.refresh_id {
            self.generation
        } else {
            u64::from(generation).min(self.generation.saturating_sub(1))
        }
    }
}

/// Seconds after the ledger's epoch until which an entry must be kept.
/// `u32` keeps [`TokenEntry`] at 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retention(u32);

impl Retention {
    /// Kept forever: a time past the range, which rounding down would drop
    /// too early.
    const FOREVER: Self = Self(u32::MAX);

    /// Rounds towards keeping: a time before the epoch becomes the epoch
    /// (the entry is dropped once `now` reaches the epoch, by which time
    /// the real time has passed too); a time past the range, forever.
    fn until(until: i64, epoch: i64) -> Self {
        let offset = until.saturating_sub(epoch);
        if offset <= 0 { Self(0) } else { u32::try_from(offset).map_or(Self::FOREVER, Self) }
    }

    /// Whether the retention has ended by `now`: only if provably so.
    fn ended(self, now: i64, epoch: i64) -> bool {
        let elapsed = now.saturating_sub(epoch);
        self != Self::FOREVER && elapsed >= 0 && i64::from(self.0) <= elapsed
    }
}

#[derive(Debug, Clone)]
struct TokenEntry {
    cell: Cell,
    /// The token's generation, saturating at `u32::MAX` (see
    /// [`SessionRecord::presented_generation`]).
    generation: u32,
    retention: Retention,
}

fn lock(cell: &Cell) -> MutexGuard<'_, SessionRecord> {
    // A decision's one fallible step (a new identity) comes before it writes
    // any field, and the writes cannot panic: a poisoned cell is consistent.
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
        let mut seen = HashSet::new();
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
                self.release(cell);
            }
        }
        stats.revoked_access_tokens = (0..SHARDS).map(|i| self.revoked_access.lock(i).map.len()).sum();
        stats
    }

    fn epoch(&self, now: i64) -> i64 {
        *self.epoch.get_or_init(|| now)
    }

    /// Drops a strong reference to a cell. If it was the last, the session
    /// is gone: take it off its user's list, and the user off the index if
    /// that was their last session. Must not be called under a user shard.
    fn release(&self, cell: Cell) {
        let address = Arc::as_ptr(&cell);
        let Some(mutex) = Arc::into_inner(cell) else { return };
        let record = mutex.into_inner().unwrap_or_else(PoisonError::into_inner);
        let subject = record.identity.subject();
        self.users.with_str(subject, |shard| {
            if shard.map.get_mut(subject).is_some_and(|sessions| sessions.remove(address)) {
                shard.map.remove(subject);
            }
        });
    }

    /// The identity (`subject`, `account`, `role`) from a user shard: the
    /// user's latest if it is the same, else a new one, which becomes the
    /// user's latest if the user is listed.
    fn identity_in(
        shard: &mut Shard<UserKey, Sessions, RandomState>,
        subject: &str,
        account: &str,
        role: &str,
    ) -> Result<Arc<Identity>, StoreError> {
        if let Some((key, _)) = shard.map.get_key_value(subject)
            && key.0.is(subject, account, role)
        {
            return Ok(Arc::clone(&key.0));
        }
        let identity = Arc::new(
            Identity::new(subject, account, role)
                .ok_or_else(|| StoreError::new("subject or account longer than 4 GiB"))?,
        );
        if let Some((_, sessions)) = shard.map.remove_entry(subject) {
            shard.map.insert(UserKey(Arc::clone(&identity)), sessions);
        }
        Ok(identity)
    }

    fn index(&self, id: TokenId, entry: TokenEntry, now: i64) {
        let epoch = self.epoch(now);
        let (replaced, swept) = self.tokens.with(&id, |shard| {
            let replaced = shard.map.insert(id, entry);
            (replaced, shard.written(|_, entry| entry.retention.ended(now, epoch)))
        });
        // Outside the shard lock: releasing may take a user shard.
        for entry in replaced.into_iter().chain(swept) {
            self.release(entry.cell);
        }
    }

    fn revoke_access(&self, access_id: TokenId, access_expires_at: i64, leeway: i64, now: i64) {
        let until = access_expires_at.saturating_add(leeway);
        self.list_revoked((until > now).then_some((access_id, until)), now);
    }

    /// Lists an access token as revoked until the given time, if any.
    fn list_revoked(&self, revoke: Option<(TokenId, i64)>, now: i64) {
        if let Some((access_id, until)) = revoke {
            self.revoked_access.with(&access_id, |shard| {
                shard.map.insert(access_id, until);
                shard.written(|_, until| *until <= now);
            });
        }
    }

    fn create_now(&self, new: &NewSession) -> Result<(), StoreError> {
        let pair = &new.pair;
        let subject = pair.subject.as_str();
        let retain_until = pair.refresh_expires_at.saturating_add(new.leeway);
        let cell = self.users.with_str(subject, |shard| {
            let identity = Self::identity_in(shard, subject, &pair.account, &pair.role)?;
            let cell = Arc::new(Mutex::new(SessionRecord {
                identity: Arc::clone(&identity),
                session: new.session,
                access_id: pair.access_id,
                refresh_id: pair.refresh_id,
                access_expires_at: pair.access_expires_at,
                refresh_expires_at: pair.refresh_expires_at,
                absolute_expires_at: new.absolute_expires_at,
                rotated_at: new.created_at,
                retain_until,
                generation: 0,
                replays: 0,
                revoked: false,
            }));
            let weak = Arc::downgrade(&cell);
            match shard.map.get_mut(subject) {
                Some(sessions) => sessions.push(weak),
                None => {
                    shard.map.insert(UserKey(identity), Sessions::One(weak));
                }
            }
            Ok::<_, StoreError>(cell)
        })?;
        let retention = Retention::until(retain_until, self.epoch(new.created_at));
        let entry = TokenEntry { cell: Arc::clone(&cell), generation: 0, retention };
        self.index(pair.refresh_id, entry, new.created_at);
        self.release(cell);
        Ok(())
    }

    fn lookup(&self, id: TokenId) -> Option<TokenEntry> {
        self.tokens.with(&id, |shard| shard.map.get(&id).cloned())
    }

    fn rotate_now(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        let Some(token) = self.lookup(request.presented) else {
            return Ok(Rotation::Unknown);
        };
        let outcome = {
            let mut record = lock(&token.cell);
            self.decide(&mut record, &token, request)
        };
        self.release(token.cell);
        outcome
    }

    /// Applies the contract's decision ([`ledger::decide`]) to one session;
    /// runs under its cell lock.
    fn decide(
        &self,
        record: &mut SessionRecord,
        token: &TokenEntry,
        request: &RotationRequest,
    ) -> Result<Rotation, StoreError> {
        let (now, session) = (request.now, record.session);
        let presented_generation = record.presented_generation(request.presented, token.generation);
        let view = SessionView {
            subject_matches: record.identity.subject() == request.subject,
            revoked: record.revoked,
            absolute_expires_at: record.absolute_expires_at,
            generation: record.generation,
            presented_generation,
            refresh_expires_at: record.refresh_expires_at,
            access_id: record.access_id,
            access_expires_at: record.access_expires_at,
            rotated_at: record.rotated_at,
            replays: record.replays,
        };
        Ok(match ledger::decide(&view, request) {
            Decision::Unknown => Rotation::Unknown,
            Decision::Revoked => Rotation::Revoked { session },
            Decision::Expired => Rotation::Expired { session },
            Decision::Rotate { generation, refresh_expires_at, token_retain_until, revoke_access } => {
                let successor = &request.successor;
                // The only fallible step, first: a failure changes nothing.
                // A session keeps its subject (the decision checked the
                // presented one against it); account and role may change.
                if record.identity.account() != successor.account || record.identity.role() != successor.role {
                    let current = Arc::clone(&record.identity);
                    let subject = current.subject();
                    record.identity = self.users.with_str(subject, |shard| {
                        Self::identity_in(shard, subject, &successor.account, &successor.role)
                    })?;
                }
                self.list_revoked(revoke_access, now);
                record.generation = generation;
                record.access_id = successor.access_id;
                record.access_expires_at = successor.access_expires_at;
                record.refresh_id = successor.refresh_id;
                record.refresh_expires_at = refresh_expires_at;
                record.rotated_at = now;
                record.replays = 0;
                record.retain_until = record.retain_until.max(token_retain_until);
                let entry = TokenEntry {
                    cell: Arc::clone(&token.cell),
                    generation: u32::try_from(generation).unwrap_or(u32::MAX),
                    retention: Retention::until(token_retain_until, self.epoch(now)),
                };
                self.index(successor.refresh_id, entry, now);
                Rotation::Rotated { session, generation, pair: record.pair() }
            }
            Decision::Replay { replay } => {
                record.replays = replay;
                Rotation::Replayed { session, generation: record.generation, pair: record.pair(), replay }
            }
            Decision::Reuse { revoke_access } => {
                record.revoked = true;
                self.list_revoked(revoke_access, now);
                Rotation::Reused { session, presented_generation, current_generation: record.generation }
            }
        })
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
        let Some(token) = self.lookup(presented) else {
            return Revocation::Unknown;
        };
        let revocation = self.revoke_cell(&token.cell, now);
        self.release(token.cell);
        revocation
    }

    fn revoke_user_now(&self, subject: &str, now: i64) -> u64 {
        let listed = self.users.with_str(subject, |shard| shard.map.get(subject).map(Sessions::to_vec));
        let mut revoked = 0_u64;
        for cell in listed.unwrap_or_default().iter().filter_map(Weak::upgrade) {
            // The list names the cell itself (its address cannot be reused
            // while listed), so this is the user's session; checking the
            // subject anyway costs nothing under the lock we take.
            let ours = lock(&cell).identity.subject() == subject;
            if ours && matches!(self.revoke_cell(&cell, now), Revocation::Revoked { .. }) {
                revoked = revoked.saturating_add(1);
            }
            self.release(cell);
        }
        revoked
    }

    fn is_access_revoked_now(&self, access_id: TokenId, now: i64) -> bool {
        self.revoked_access.with(&access_id, |shard| shard.map.get(&access_id).is_some_and(|until| *until > now))
    }
}

impl SessionLedger for MemoryLedger {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.create_now(session))
    }

    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        ready(self.rotate_now(request))
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
trait ShardKey: Eq + Hash {
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
                .map(|_| Mutex::new(Shard { map: HashMap::with_hasher(S::default()), writes: 0 }))
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

impl<V, S> Shards<UserKey, V, S> {
    fn with_str<R>(&self, key: &str, f: impl FnOnce(&mut Shard<UserKey, V, S>) -> R) -> R {
        f(&mut self.lock(str_shard(key)))
    }
}

struct Shard<K, V, S> {
    map: HashMap<K, V, S>,
    /// Writes since the last sweep.
    writes: usize,
}

impl<K: Eq + Hash, V, S: BuildHasher> Shard<K, V, S> {
    /// Counts a write; once the writes since the last sweep pass a share of
    /// the capacity, removes and returns every entry `ended` says is over.
    /// The sweep walks the table once, so its cost spread over the writes
    /// that triggered it is a constant per write.
    fn written(&mut self, ended: impl Fn(&K, &V) -> bool) -> Vec<V> {
        self.writes = self.writes.saturating_add(1);
        if self.writes <= self.map.capacity() / SWEEP_DIVISOR {
            return Vec::new();
        }
        self.writes = 0;
        let removed: Vec<V> = self.map.extract_if(|key, value| ended(key, value)).map(|(_, value)| value).collect();
        // A burst of expiries leaves a sparse table: give the memory back
        // (the rehash costs O(len), paid for by the writes just counted).
        if self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to(self.map.len().saturating_mul(2));
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

    fn start_as(ledger: &MemoryLedger, subject: &str, now: i64) -> (SessionId, PairClaims) {
        let session = SessionId::random();
        let first = pair(subject, now);
        ledger
            .create_now(&NewSession {
                session,
                pair: first.clone(),
                created_at: now,
                absolute_expires_at: now + 30 * 86_400,
                leeway: 0,
            })
            .unwrap();
        (session, first)
    }

    fn start(ledger: &MemoryLedger, now: i64) -> (SessionId, PairClaims) {
        start_as(ledger, "bob", now)
    }

    fn rotate(ledger: &MemoryLedger, presented: TokenId, now: i64, grace: Grace) -> Rotation {
        ledger
            .rotate_now(&RotationRequest {
                presented,
                subject: "bob".into(),
                successor: pair("bob", now),
                now,
                grace,
                leeway: 0,
            })
            .unwrap()
    }

    fn listed(ledger: &MemoryLedger, subject: &str) -> Option<usize> {
        ledger.users.with_str(subject, |shard| shard.map.get(subject).map(|sessions| sessions.to_vec().len()))
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
    fn a_sweep_removes_exactly_the_ended_entries() {
        let mut shard: Shard<u32, i64, RandomState> = Shard { map: HashMap::default(), writes: 0 };
        for key in 0..1000 {
            shard.map.insert(key, i64::from(key));
        }
        let ended = |_: &u32, until: &i64| *until < 600;
        let capacity = shard.map.capacity();
        // No sweep until the writes pass a quarter of the capacity...
        for _ in 0..capacity / SWEEP_DIVISOR {
            assert!(shard.written(ended).is_empty());
        }
        assert_eq!(shard.map.len(), 1000);
        // ...then one sweep takes every ended entry and nothing else.
        let mut removed = shard.written(ended);
        removed.sort_unstable();
        assert_eq!(removed, (0..600).collect::<Vec<i64>>());
        assert_eq!(shard.map.len(), 400);
        assert!(shard.map.keys().all(|key| *key >= 600));
        assert_eq!(shard.writes, 0);
    }

    #[test]
    fn expired_records_leave_with_later_writes() {
        let ledger = MemoryLedger::new();
        for _ in 0..200 {
            start(&ledger, 0);
        }
        assert_eq!(ledger.stats().sessions, 200);
        // Kept until 86 400: still there at 86 399, whatever the writes.
        for _ in 0..2000 {
            start_as(&ledger, "carol", 86_399);
        }
        assert_eq!(ledger.stats().sessions, 2200);
        assert_eq!(listed(&ledger, "bob"), Some(200));
        // Every shard gets far more writes than a quarter of its capacity.
        for _ in 0..4000 {
            start_as(&ledger, "dave", 86_400);
        }
        let stats = ledger.stats();
        assert_eq!(stats.sessions, 6000);
        assert_eq!(stats.token_records, 6000);
        // The user index forgot bob with his last session.
        assert_eq!(listed(&ledger, "bob"), None);
        assert_eq!(listed(&ledger, "carol"), Some(2000));
    }

    #[test]
    fn a_rotated_session_outlives_its_first_token() {
        let ledger = MemoryLedger::new();
        let (session, first) = start(&ledger, 0);
        let Rotation::Rotated { pair: second, .. } = rotate(&ledger, first.refresh_id, 50_000, Grace::default()) else {
            panic!("rotation must succeed")
        };
        for _ in 0..5000 {
            start_as(&ledger, "carol", 86_400);
        }
        // The consumed token's record is gone; the session is not.
        assert!(ledger.lookup(first.refresh_id).is_none());
        assert_eq!(listed(&ledger, "bob"), Some(1));
        let third = rotate(&ledger, second.refresh_id, 86_401, Grace::default());
        assert!(matches!(third, Rotation::Rotated { session: s, generation: 2, .. } if s == session), "{third:?}");
    }

    #[test]
    fn revoke_user_never_touches_a_session_that_reused_a_freed_one() {
        let ledger = MemoryLedger::new();
        for round in 0..10_i64 {
            let t = round * 100_000;
            // alice's only session expires and is swept by bob's logins
            // (enough that every shard passes its sweep threshold)...
            let (alice_session, _) = start_as(&ledger, "alice", t);
            for _ in 0..6400 {
                start_as(&ledger, "bob", t + 86_400);
            }
            assert_eq!(listed(&ledger, "alice"), None, "round {round}");
            // ...then a new session takes the freed memory, perhaps alice's.
            let (_, mallory) = start_as(&ledger, "mallory", t + 86_400);
            assert_eq!(ledger.revoke_user_now("alice", t + 86_400), 0, "round {round}: {alice_session}");
            let still = ledger.lookup(mallory.refresh_id).map(|entry| lock(&entry.cell).revoked);
            assert_eq!(still, Some(false), "round {round}");
            assert_eq!(ledger.revoke_user_now("mallory", t + 86_400), 1);
        }
    }

    #[test]
    fn revoke_user_finds_sessions_whose_identity_changed() {
        let ledger = MemoryLedger::new();
        let (_, first) = start(&ledger, 0);
        start(&ledger, 0);
        let request = RotationRequest {
            presented: first.refresh_id,
            subject: "bob".into(),
            successor: PairClaims { account: "other".into(), ..pair("bob", 1) },
            now: 1,
            grace: Grace::default(),
            leeway: 0,
        };
        let Ok(Rotation::Rotated { pair, .. }) = ledger.rotate_now(&request) else { panic!("rotates") };
        assert_eq!((pair.subject.as_str(), pair.account.as_str(), pair.role.as_str()), ("bob", "other", "role"));
        // A new session with the new identity shares it.
        let (_, third) = start_as(&ledger, "bob", 2);
        assert_eq!(ledger.revoke_user_now("bob", 3), 3);
        assert_eq!(ledger.stats().revoked_sessions, 3);
        assert!(ledger.is_access_revoked_now(third.access_id, 3));
    }

    #[test]
    fn sessions_of_one_user_share_one_identity() {
        let ledger = MemoryLedger::new();
        let (_, a) = start(&ledger, 0);
        let (_, b) = start(&ledger, 0);
        let (_, c) = start_as(&ledger, "carol", 0);
        let identity = |id| ledger.lookup(id).map(|e| Arc::as_ptr(&lock(&e.cell).identity));
        assert!(identity(a.refresh_id).is_some());
        assert_eq!(identity(a.refresh_id), identity(b.refresh_id));
        assert_ne!(identity(a.refresh_id), identity(c.refresh_id));
    }

    #[test]
    fn index_entries_stay_small() {
        // What the memory per session rests on (hash tables store these
        // inline, one per bucket).
        assert_eq!(size_of::<(TokenId, TokenEntry)>(), 32);
        assert_eq!(size_of::<(UserKey, Sessions)>(), 24);
    }

    #[test]
    fn identities_split_where_they_were_joined() {
        let identity = Identity::new("é@x", "", "ROLE_ü").unwrap();
        assert_eq!((identity.subject(), identity.account(), identity.role()), ("é@x", "", "ROLE_ü"));
        assert!(identity.is("é@x", "", "ROLE_ü"));
        // Same bytes, other split: not the same identity.
        assert!(!identity.is("é@", "x", "ROLE_ü"));
        let empty = Identity::new("", "", "").unwrap();
        assert_eq!((empty.subject(), empty.account(), empty.role()), ("", "", ""));
    }

    #[test]
    fn retention_rounds_towards_keeping() {
        let epoch = 1_000;
        for (until, now, ended) in [
            (1_500, 1_499, false),
            (1_500, 1_500, true),
            // Before the epoch: kept until now reaches the epoch.
            (10, 999, false),
            (10, 1_000, true),
            (i64::MIN, 999, false),
            (i64::MIN, i64::MAX, true),
            // Past the range: forever.
            (epoch + i64::from(u32::MAX), i64::MAX, false),
            (i64::MAX, i64::MAX, false),
            // The last second the range holds.
            (epoch + i64::from(u32::MAX) - 1, epoch + i64::from(u32::MAX) - 2, false),
            (epoch + i64::from(u32::MAX) - 1, epoch + i64::from(u32::MAX) - 1, true),
        ] {
            assert_eq!(Retention::until(until, epoch).ended(now, epoch), ended, "until {until}, now {now}");
        }
        // An epoch at the edges of i64 must not overflow anything.
        assert!(!Retention::until(0, i64::MIN).ended(-1, i64::MIN));
        assert!(Retention::until(0, i64::MAX).ended(i64::MAX, i64::MAX));
    }

    #[test]
    fn a_saturated_generation_never_passes_for_the_current_token() {
        let ledger = MemoryLedger::new();
        let (_, first) = start(&ledger, 0);
        let entry = ledger.lookup(first.refresh_id).unwrap();
        let mut record = lock(&entry.cell);
        record.generation = u64::from(u32::MAX) + 5;
        // The current token is known by its id, whatever its entry says.
        assert_eq!(record.presented_generation(first.refresh_id, u32::MAX), u64::from(u32::MAX) + 5);
        // Any other token of the session is older than the current one.
        assert_eq!(record.presented_generation(TokenId::random(), u32::MAX), u64::from(u32::MAX));
        assert_eq!(record.presented_generation(TokenId::random(), 7), 7);
        record.generation = 3;
        assert_eq!(record.presented_generation(TokenId::random(), 3), 2);
    }
}
