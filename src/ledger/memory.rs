//! The in-memory session ledger: the default for one process.
//!
//! Layout: one record per session, inline in a sharded map keyed by the
//! session's 64-bit tag (which every token id of the session carries, see
//! [`TokenId::session`]). Nothing is stored per rotation: a rotation
//! overwrites the record's current ids and keeps only the immediate
//! predecessor's, so a session costs the same after any number of
//! refreshes. Token ids are stored as their 58 random bits; the tag is the
//! map key, and the version and variant bits are fixed.
//!
//! Each user has one entry in a sharded user index whose key is the user's
//! identity (subject, account and role packed in one string, hashed and
//! compared by the subject alone, so the subject is stored once) and whose
//! value orders the user's sessions by the instant each stops being live
//! (a `BTreeSet` of end of life, login sequence and tag; a lone session is kept
//! inline as its tag). The sessions of a user share that identity while it
//! stays the same.
//!
//! Concurrency: every decision about a session is made under its shard's
//! mutex, so the compare-and-swap of the current refresh id is atomic and
//! refreshes of sessions in other shards never wait for each other. The
//! lock order is `user shard → session shard`: a login holds its user's
//! shard while it counts, evicts and inserts (so two logins of one user
//! cannot both take the last free place), a rotation and a revocation hold
//! it while they move the session in the user's index, and nothing takes a
//! user shard while holding a session shard. Poisoned locks are recovered: entries are
//! inserted and removed whole, and a decision writes the record's fields
//! after its one fallible step.
//!
//! Expiry: a record carries the time until which it must be kept (its
//! current tokens' expiry plus leeway; for a revoked session at most
//! [`TOMBSTONE_SECONDS`] after its revocation, and a session the cap evicts
//! is removed at once). A shard is swept with `extract_if`
//! once the writes since its last sweep pass a quarter of its capacity:
//! amortized O(1) per write. Each swept session is then taken out of its
//! user's index (O(log n)), outside the session shard's lock. A record kept past its retention
//! cannot change what the crate answers: the flows refuse a token at its
//! own `exp` plus leeway before they reach the ledger.
//!
//! Per-user cap ([contract](crate::ledger)): a login drops the first
//! entries of the user's index that ended more than `LIST_SLACK` ago, then,
//! at the cap, takes the first ones (the dead before any live one) and
//! removes the live ones among them, record and all: a flood of logins
//! leaves at most the cap's records behind, not one per login. Ties in end
//! of life go to the earliest login by the ledger's login sequence (login
//! times have one-second resolution). A rotation moves its session to its
//! new end of life and a revocation takes it out, so every step is O(log n)
//! in the user's sessions and none walks the user's list.
//!
//! Hashing: the session map uses the tag's own random bits as the hash.
//! That is safe only because a tag reaches a lookup after its token's
//! signature verified, and every tag we issue is random: nobody can choose
//! tags to collide (a collision would only lengthen probing in one shard;
//! keys are still compared whole). Subjects, which users choose, are hashed
//! with the standard keyed hasher.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::StoreError;
use crate::ledger::rules::{self, Decision, SessionView};
use crate::ledger::{
    AccessState, Created, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
    SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use crate::token::ids::{SessionId, TokenId};

/// How long a user's index keeps a session past its end of life: callers
/// whose clocks disagree by less than this may still rotate it (the slack
/// the shared ledgers keep for clock skew between instances).
const LIST_SLACK: i64 = 60;

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
    sessions: Shards<u64, SessionRecord, TagHashing>,
    users: Shards<UserKey, UserSessions, RandomState>,
    /// The login sequence: orders logins made within one second.
    logins: AtomicU64,
}

/// What a [`MemoryLedger`] holds; see [`MemoryLedger::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LedgerStats {
    /// Session records held (live, or kept until their tokens expire).
    pub sessions: usize,
    /// Of those, revoked.
    pub revoked_sessions: usize,
    /// Sum of the sessions' generations: rotations performed.
    pub rotations: u64,
    /// Grace replays of the sessions' latest rotations.
    pub grace_replays: u64,
    /// Users in the user index.
    pub users: usize,
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

/// A user's sessions, ordered by the instant each stops being live (see
/// [`Entry`]): pruning the ended ones and finding the cap's victim take the
/// first entries, O(log n), never a walk of the list. Most users have one
/// session, kept inline as its tag (its entry is read from its record when
/// a second one arrives).
#[derive(Debug)]
enum UserSessions {
    One(u64),
    #[expect(clippy::box_collection, reason = "a thin pointer keeps the enum, and each user's index entry, small")]
    Many(Box<BTreeSet<Entry>>),
}

/// A session's place in its user's index: its end of life
/// (`min(absolute expiry, refresh exp + leeway)`), then its place in the
/// login sequence, so that among equals the earliest login goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: i64,
    login: u64,
    tag: u64,
}

impl UserSessions {
    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(index) => index.len(),
        }
    }

    fn tags(&self) -> Vec<u64> {
        match self {
            Self::One(only) => vec![*only],
            Self::Many(index) => index.iter().map(|entry| entry.tag).collect(),
        }
    }

    /// The inline form when one entry is left; `None` when none is.
    #[expect(clippy::box_collection, reason = "the box of `Many`, reused")]
    fn compacted(index: Box<BTreeSet<Entry>>) -> Option<Self> {
        match index.len() {
            0 => None,
            1 => index.first().map(|entry| Self::One(entry.tag)),
            _ => Some(Self::Many(index)),
        }
    }
}

/// The 58 random bits of a session-scoped token id; the tag is the map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdBits(u64);

const ID_RANDOM_MASK: u128 = (1 << 58) - 1;

impl IdBits {
    fn of(id: TokenId) -> Self {
        Self(u64::try_from(id.as_uuid().as_u128() & ID_RANDOM_MASK).unwrap_or(0))
    }

    /// No id: the random bits are 58 wide, so all-ones is never one.
    const NONE: Self = Self(u64::MAX);

    fn id(self, session: SessionId) -> TokenId {
        let bits = session.as_uuid().as_u128() | u128::from(self.0);
        TokenId::from_bytes(bits.to_be_bytes())
    }
}

/// One session, in 80 bytes: ids as their random bits, times as seconds
/// from the session's start (`i32`: ±68 years, far beyond the 400-day
/// limit of any policy lifetime; a time outside that range is refused with
/// a [`StoreError`] rather than stored wrong).
#[derive(Debug)]
struct SessionRecord {
    identity: Arc<Identity>,
    refresh_id: IdBits,
    /// The immediate predecessor of the current refresh token;
    /// [`IdBits::NONE`] before the first rotation.
    previous_refresh_id: IdBits,
    access_id: IdBits,
    created_at: i64,
    /// Place in the ledger's login sequence.
    login: u64,
    rotated_at: Offset,
    access_expires_at: Offset,
    refresh_expires_at: Offset,
    absolute_expires_at: Offset,
    /// Rotations so far, saturating at `u32::MAX` (four billion rotations;
    /// decisions compare ids, never generations).
    generation: u32,
    replays: u32,
    /// The leeway the session was created with (for liveness and
    /// retention); shortened when the session is revoked, so that its
    /// record is a tombstone for at most [`TOMBSTONE_SECONDS`].
    leeway: Offset,
    revoked: bool,
}

/// Seconds from a session's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offset(i32);

impl Offset {
    fn from(time: i64, base: i64) -> Result<Self, StoreError> {
        i32::try_from(time.saturating_sub(base))
            .map(Self)
            .map_err(|_| StoreError::new("a time more than 68 years from the session's start"))
    }

    fn at(self, base: i64) -> i64 {
        base.saturating_add(i64::from(self.0))
    }
}

impl SessionRecord {
    fn time(&self, offset: Offset) -> i64 {
        offset.at(self.created_at)
    }

    fn refresh_expires_at(&self) -> i64 {
        self.time(self.refresh_expires_at)
    }

    fn absolute_expires_at(&self) -> i64 {
        self.time(self.absolute_expires_at)
    }

    fn generation(&self) -> u64 {
        u64::from(self.generation)
    }

    fn pair(&self, session: SessionId) -> PairClaims {
        PairClaims {
            subject: self.identity.subject().to_owned(),
            account: self.identity.account().to_owned(),
            role: self.identity.role().to_owned(),
            access_id: self.access_id.id(session),
            access_expires_at: self.time(self.access_expires_at),
            refresh_id: self.refresh_id.id(session),
            refresh_expires_at: self.refresh_expires_at(),
        }
    }

    /// Until when the record must be kept: its current tokens' expiry plus
    /// leeway.
    fn retain_until(&self) -> i64 {
        let leeway = i64::from(self.leeway.0);
        self.refresh_expires_at().max(self.time(self.access_expires_at)).saturating_add(leeway)
    }

    /// When the session stops being live, unless revoked first.
    fn deadline(&self) -> i64 {
        self.absolute_expires_at().min(self.refresh_expires_at().saturating_add(i64::from(self.leeway.0)))
    }

    fn entry(&self, tag: u64) -> Entry {
        Entry { deadline: self.deadline(), login: self.login, tag }
    }

    /// Revokes the session and keeps its record at most
    /// [`TOMBSTONE_SECONDS`] more. A revoked record's lifetimes no longer
    /// decide anything (the revocation is checked first), so the leeway is
    /// what shortens its retention. Take the record out of its user's index
    /// first: its entry changes with the leeway.
    fn revoke(&mut self, now: i64) {
        self.revoked = true;
        let retain_until = self.retain_until();
        let tombstone_until = now.saturating_add(TOMBSTONE_SECONDS);
        if tombstone_until < retain_until {
            let shorter = i64::from(self.leeway.0).saturating_sub(retain_until.saturating_sub(tombstone_until));
            if let Ok(leeway) = Offset::from(shorter, 0) {
                self.leeway = leeway;
            }
        }
    }

    /// Neither revoked nor past its absolute or idle lifetime.
    fn is_live(&self, now: i64) -> bool {
        let (absolute, refresh) = (self.absolute_expires_at(), self.refresh_expires_at());
        rules::is_live(self.revoked, absolute, refresh, i64::from(self.leeway.0), now)
    }

    fn info(&self, session: SessionId) -> SessionInfo {
        let at = UnixTime::from_seconds;
        SessionInfo::new(
            session,
            self.generation(),
            SessionTimes {
                created_at: at(self.created_at),
                rotated_at: at(self.time(self.rotated_at)),
                refresh_expires_at: at(self.refresh_expires_at()),
                absolute_expires_at: at(self.absolute_expires_at()),
            },
        )
    }
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A summary of everything held, for monitoring and for tests that
    /// assert a refused request changed nothing. Walks every entry.
    pub fn stats(&self) -> LedgerStats {
        let mut stats = LedgerStats::default();
        for i in 0..SHARDS {
            let shard = self.sessions.lock(i);
            for record in shard.map.values() {
                stats.sessions += 1;
                stats.revoked_sessions += usize::from(record.revoked);
                stats.rotations = stats.rotations.saturating_add(record.generation());
                stats.grace_replays = stats.grace_replays.saturating_add(u64::from(record.replays));
            }
        }
        stats.users = (0..SHARDS).map(|i| self.users.lock(i).map.len()).sum();
        stats
    }

    /// The identity (`subject`, `account`, `role`) from a user shard: the
    /// user's latest if it is the same, else a new one, which becomes the
    /// user's latest if the user is listed.
    fn identity_in(
        shard: &mut UserShard,
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

    /// Runs `f` on the record of `tag` under its shard's lock.
    fn with_record<R>(&self, tag: u64, f: impl FnOnce(Option<&mut SessionRecord>) -> R) -> R {
        self.sessions.with(&tag, |shard| f(shard.map.get_mut(&tag)))
    }

    /// Takes the records a sweep removed out of their users' indexes.
    /// Called without any lock held.
    fn unlist(&self, swept: Vec<(u64, SessionRecord)>) {
        for (tag, record) in swept {
            let subject = record.identity.subject();
            self.users.with_str(subject, |shard| self.relist(shard, subject, None, record.entry(tag), None));
        }
    }

    /// Moves a session in its user's index from `before` to `after` (`None`:
    /// out of it), under the user shard's lock and no session shard's.
    /// `identity` lists a user not listed yet.
    fn relist(
        &self,
        shard: &mut UserShard,
        subject: &str,
        identity: Option<&Arc<Identity>>,
        before: Entry,
        after: Option<Entry>,
    ) {
        let Some(sessions) = shard.map.get_mut(subject) else {
            if let (Some(after), Some(identity)) = (after, identity) {
                shard.map.insert(UserKey(Arc::clone(identity)), UserSessions::One(after.tag));
            }
            return;
        };
        let index = match sessions {
            // The inline session moved: nothing to reorder.
            UserSessions::One(only) if *only == before.tag => {
                if after.is_none() {
                    shard.map.remove(subject);
                }
                return;
            }
            UserSessions::One(_) if after.is_none() => return,
            // Another session is listed and this one comes back (a caller
            // whose clock is behind rotated it after it was pruned).
            UserSessions::One(only) => {
                let only = *only;
                let entry = self.with_record(only, |record| record.map(|r| r.entry(only)));
                *sessions = UserSessions::Many(Box::new(entry.into_iter().collect()));
                match sessions {
                    UserSessions::Many(index) => index,
                    UserSessions::One(_) => return,
                }
            }
            UserSessions::Many(index) => index,
        };
        index.remove(&before);
        if let Some(after) = after {
            index.insert(after);
        }
        if index.len() <= 1 {
            let index = std::mem::take(index);
            match UserSessions::compacted(index) {
                Some(compact) => *sessions = compact,
                None => {
                    shard.map.remove(subject);
                }
            }
        }
    }

    /// Applies the contract's decision ([`rules::decide`]) to one session;
    /// runs under its shard's lock.
    fn decide(
        record: &mut SessionRecord,
        session: SessionId,
        request: &RotationRequest,
    ) -> Result<Rotation, StoreError> {
        let now = request.now;
        let view = SessionView {
            subject_matches: record.identity.subject() == request.subject,
            revoked: record.revoked,
            absolute_expires_at: record.absolute_expires_at(),
            generation: record.generation(),
            refresh_id: record.refresh_id.id(session),
            previous_refresh_id: (record.previous_refresh_id != IdBits::NONE)
                .then(|| record.previous_refresh_id.id(session)),
            refresh_expires_at: record.refresh_expires_at(),
            leeway: i64::from(record.leeway.0),
            rotated_at: record.time(record.rotated_at),
            replays: record.replays,
        };
        Ok(match rules::decide(&view, request) {
            Decision::Unknown => Rotation::Unknown,
            Decision::Revoked => Rotation::Revoked { session },
            Decision::Expired => Rotation::Expired { session },
            Decision::Rotate { generation, refresh_expires_at } => {
                let successor = &request.successor;
                // The fallible step first: a failure changes nothing.
                // A session keeps its subject (the decision checked it);
                // account and role may change. The new identity is the
                // session's own: interning it would take a user shard under
                // this session shard, against the lock order.
                let identity = if record.identity.is(&successor.subject, &successor.account, &successor.role) {
                    None
                } else {
                    Some(Arc::new(
                        Identity::new(&successor.subject, &successor.account, &successor.role)
                            .ok_or_else(|| StoreError::new("subject or account longer than 4 GiB"))?,
                    ))
                };
                let pair = PairClaims { refresh_expires_at, ..successor.clone() };
                let offset = |time| Offset::from(time, record.created_at);
                let times = (offset(now)?, offset(pair.access_expires_at)?, offset(refresh_expires_at)?);
                if let Some(identity) = identity {
                    record.identity = identity;
                }
                record.previous_refresh_id = record.refresh_id;
                record.generation = u32::try_from(generation).unwrap_or(u32::MAX);
                record.access_id = IdBits::of(pair.access_id);
                record.refresh_id = IdBits::of(pair.refresh_id);
                (record.rotated_at, record.access_expires_at, record.refresh_expires_at) = times;
                record.replays = 0;
                Rotation::Rotated { session, generation, pair }
            }
            Decision::Replay { replay } => {
                record.replays = replay;
                Rotation::Replayed { session, generation: record.generation(), pair: record.pair(session), replay }
            }
            Decision::Reuse { presented_generation } => {
                record.revoke(now);
                Rotation::Reused { session, presented_generation, current_generation: record.generation() }
            }
        })
    }
}

impl SessionLedger for MemoryLedger {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        rules::check_pair_ids(new.session, &new.pair)?;
        let pair = &new.pair;
        let subject = pair.subject.as_str();
        let now = new.created_at;
        let tag = new.session.tag();
        let cap = usize::try_from(new.max_sessions_per_user.max(1)).unwrap_or(usize::MAX);
        let (evicted, swept) = self.users.with_str(subject, |shard| {
            let identity = Self::identity_in(shard, subject, &pair.account, &pair.role)?;
            let offset = |time| Offset::from(time, now);
            let record = SessionRecord {
                identity: Arc::clone(&identity),
                refresh_id: IdBits::of(pair.refresh_id),
                previous_refresh_id: IdBits::NONE,
                access_id: IdBits::of(pair.access_id),
                created_at: now,
                login: self.logins.fetch_add(1, Ordering::Relaxed),
                rotated_at: Offset(0),
                access_expires_at: offset(pair.access_expires_at)?,
                refresh_expires_at: offset(pair.refresh_expires_at)?,
                absolute_expires_at: offset(new.absolute_expires_at)?,
                generation: 0,
                replays: 0,
                leeway: Offset::from(new.leeway, 0)?,
                revoked: false,
            };
            let entry = record.entry(tag);
            // The record first: a refused login changes nothing. The user's
            // lock keeps the record and its index entry (and the evictions)
            // one step for every other operation on this user's sessions.
            let swept = self.sessions.with(&tag, |sessions| {
                if sessions.map.contains_key(&tag) {
                    return Err(StoreError::new("session id already taken"));
                }
                sessions.map.insert(tag, record);
                Ok(sessions.written(|_, record| record.retain_until() <= now))
            })?;
            let taken = shard.map.get_mut(subject).map(|sessions| std::mem::replace(sessions, UserSessions::One(tag)));
            let mut index = match taken {
                None => {
                    shard.map.insert(UserKey(identity), UserSessions::One(tag));
                    return Ok((Vec::new(), swept));
                }
                Some(UserSessions::Many(index)) => index,
                Some(UserSessions::One(only)) => {
                    Box::new(self.with_record(only, |record| record.map(|r| r.entry(only))).into_iter().collect())
                }
            };
            // Ended for longer than the slack: dead on every clock.
            let ended = now.saturating_sub(LIST_SLACK);
            while index.first().is_some_and(|entry| entry.deadline <= ended) {
                index.pop_first();
            }
            // The sessions nearest their end come first, the dead ones
            // before any live one: a live session goes only when `cap` of
            // them are live.
            let mut evicted = Vec::new();
            while index.len() >= cap {
                let Some(victim) = index.pop_first() else { break };
                // A live one goes record and all, so that a flood of logins
                // leaves the cap's records and no more (its tokens become
                // unknown: 401 as before). A dead one only leaves the
                // index: it goes at the end of its retention, and until then
                // its tokens answer `Expired` (or `Reused`) as they did.
                let was_live = self.sessions.with(&victim.tag, |sessions| {
                    let live = sessions.map.get(&victim.tag).is_some_and(|record| record.is_live(now));
                    if live {
                        sessions.map.remove(&victim.tag);
                    }
                    live
                });
                if was_live {
                    evicted.push(SessionId::from_tag(victim.tag));
                }
            }
            index.insert(entry);
            if let (Some(sessions), Some(index)) = (shard.map.get_mut(subject), UserSessions::compacted(index)) {
                *sessions = index;
            }
            Ok::<_, StoreError>((evicted, swept))
        })?;
        self.unlist(swept);
        Ok(Created::evicting(evicted))
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        rules::check_successor(request)?;
        let session = request.presented.session();
        let tag = session.tag();
        let subject = request.subject.as_str();
        // Under the user's lock, so that the session's place in the user's
        // index moves in the same step as its record.
        let (swept, outcome) = self.users.with_str(subject, |users| {
            let (swept, outcome, moved) = self.sessions.with(&tag, |shard| {
                let Some(record) = shard.map.get_mut(&tag) else {
                    return Ok((Vec::new(), Rotation::Unknown, None));
                };
                let before = record.entry(tag);
                let outcome = Self::decide(record, session, request)?;
                let moved = match outcome {
                    Rotation::Rotated { .. } => Some((before, Some(record.entry(tag)), Arc::clone(&record.identity))),
                    Rotation::Reused { .. } => Some((before, None, Arc::clone(&record.identity))),
                    _ => None,
                };
                let swept = if matches!(outcome, Rotation::Rotated { .. }) {
                    shard.written(|_, record| record.retain_until() <= request.now)
                } else {
                    Vec::new()
                };
                Ok::<_, StoreError>((swept, outcome, moved))
            })?;
            if let Some((before, after, identity)) = moved {
                self.relist(users, subject, Some(&identity), before, after);
            }
            Ok::<_, StoreError>((swept, outcome))
        })?;
        self.unlist(swept);
        Ok(outcome)
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        let tag = session.tag();
        Ok(self.users.with_str(subject, |users| {
            let (revocation, listed) = self.with_record(tag, |record| match record {
                Some(record) if record.identity.subject() == subject => {
                    if record.revoked {
                        (Revocation::AlreadyRevoked { session }, None)
                    } else {
                        let entry = record.entry(tag);
                        record.revoke(now);
                        (Revocation::Revoked { session }, Some(entry))
                    }
                }
                _ => (Revocation::Unknown, None),
            });
            if let Some(entry) = listed {
                self.relist(users, subject, None, entry, None);
            }
            revocation
        }))
    }

    /// Revokes the user's live sessions and empties the user's index.
    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        Ok(self.users.with_str(subject, |users| {
            let tags = users.map.remove(subject).map(|sessions| sessions.tags()).unwrap_or_default();
            let mut revoked = 0_u64;
            for tag in tags {
                let was_live = self.with_record(tag, |record| match record {
                    Some(record) if record.identity.subject() == subject && record.is_live(now) => {
                        record.revoke(now);
                        true
                    }
                    _ => false,
                });
                revoked = revoked.saturating_add(u64::from(was_live));
            }
            revoked
        }))
    }

    /// The user's live sessions, oldest login first.
    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let tags = self.users.with_str(subject, |shard| shard.map.get(subject).map(UserSessions::tags));
        let mut listed: Vec<(u64, SessionInfo)> = tags
            .unwrap_or_default()
            .into_iter()
            .filter_map(|tag| {
                self.with_record(tag, |record| {
                    record
                        .filter(|r| r.identity.subject() == subject && r.is_live(now))
                        .map(|r| (r.login, r.info(SessionId::from_tag(tag))))
                })
            })
            .collect();
        listed.sort_unstable_by_key(|(login, _)| *login);
        Ok(listed.into_iter().map(|(_, info)| info).collect())
    }

    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        let session = access_id.session();
        Ok(self.with_record(session.tag(), |record| match record {
            Some(r) if r.identity.subject() == subject && !r.revoked => {
                if r.access_id == IdBits::of(access_id) {
                    AccessState::Current
                } else {
                    AccessState::Superseded
                }
            }
            _ => AccessState::Revoked,
        }))
    }

    /// Removes every record past its retention, in every shard, and takes
    /// them out of their users' indexes. One pass over the table.
    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        let mut purged = 0_u64;
        for i in 0..SHARDS {
            let swept: Vec<(u64, SessionRecord)> =
                self.sessions.lock(i).map.extract_if(|_, record| record.retain_until() <= now).collect();
            purged = purged.saturating_add(u64::try_from(swept.len()).unwrap_or(u64::MAX));
            self.unlist(swept);
        }
        Ok(purged)
    }

    /// In process: it cannot be unreachable.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Hashes a session tag by its own random bits (see the module docs for
/// why that is safe here).
#[derive(Debug, Default, Clone, Copy)]
struct TagHashing;

#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        // hashbrown takes its 7-bit tags from the top bits: mix the low bits
        // (which also pick the shard) up there.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.rotate_right(6);
    }
}

impl BuildHasher for TagHashing {
    type Hasher = TagHasher;
    fn build_hasher(&self) -> TagHasher {
        TagHasher::default()
    }
}

/// Keys pick their shard from bits the map's hash does not lean on.
trait ShardKey: Eq + Hash {
    fn shard(&self) -> usize;
}

impl ShardKey for u64 {
    fn shard(&self) -> usize {
        usize::try_from(*self % SHARDS as u64).unwrap_or(0)
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
        // Entries are inserted and removed whole, and a decision writes its
        // fields after its one fallible step, so a poisoned shard is still
        // consistent.
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

type UserShard = Shard<UserKey, UserSessions, RandomState>;

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
    fn written(&mut self, ended: impl Fn(&K, &V) -> bool) -> Vec<(K, V)> {
        self.writes = self.writes.saturating_add(1);
        if self.writes <= self.map.capacity() / SWEEP_DIVISOR {
            return Vec::new();
        }
        self.writes = 0;
        let removed: Vec<(K, V)> = self.map.extract_if(|key, value| ended(key, value)).collect();
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
    use crate::ledger::{DEFAULT_MAX_SESSIONS_PER_USER, Grace};
    use futures_util::FutureExt;

    /// The memory ledger's futures are ready at once: no runtime.
    fn ready<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        call.now_or_never().expect("the memory ledger answers at once")
    }

    fn pair(session: SessionId, subject: &str, now: i64) -> PairClaims {
        PairClaims {
            subject: subject.into(),
            account: "acc".into(),
            role: "role".into(),
            access_id: session.new_token_id(),
            access_expires_at: now + 300,
            refresh_id: session.new_token_id(),
            refresh_expires_at: now + 86_400,
        }
    }

    fn start_capped(ledger: &MemoryLedger, subject: &str, now: i64, cap: u32) -> (SessionId, PairClaims, Created) {
        let session = SessionId::random();
        let first = pair(session, subject, now);
        let created = ready(ledger.create(&NewSession {
            session,
            pair: first.clone(),
            created_at: now,
            absolute_expires_at: now + 30 * 86_400,
            leeway: 0,
            max_sessions_per_user: cap,
        }))
        .unwrap();
        (session, first, created)
    }

    fn start_as(ledger: &MemoryLedger, subject: &str, now: i64) -> (SessionId, PairClaims) {
        let (session, first, _) = start_capped(ledger, subject, now, DEFAULT_MAX_SESSIONS_PER_USER);
        (session, first)
    }

    fn rotate(ledger: &MemoryLedger, presented: TokenId, now: i64, grace: Grace) -> Rotation {
        ready(ledger.rotate(&RotationRequest {
            presented,
            subject: "bob".into(),
            successor: pair(presented.session(), "bob", now),
            now,
            grace,
            leeway: 0,
        }))
        .unwrap()
    }

    fn listed(ledger: &MemoryLedger, subject: &str) -> Option<usize> {
        ledger.users.with_str(subject, |shard| shard.map.get(subject).map(UserSessions::len))
    }

    #[test]
    fn rotate_then_reuse_revokes_the_family() {
        let ledger = MemoryLedger::new();
        let (session, first) = start_as(&ledger, "bob", 1000);
        let Rotation::Rotated { pair: second, generation: 1, .. } =
            rotate(&ledger, first.refresh_id, 1001, Grace::default())
        else {
            panic!("first rotation must succeed")
        };
        assert_eq!(ready(ledger.access_state("bob", first.access_id)).unwrap(), AccessState::Superseded);
        assert_eq!(ready(ledger.access_state("bob", second.access_id)).unwrap(), AccessState::Current);
        let reused = rotate(&ledger, first.refresh_id, 1002, Grace::default());
        assert_eq!(reused, Rotation::Reused { session, presented_generation: Some(0), current_generation: 1 });
        assert_eq!(ready(ledger.access_state("bob", second.access_id)).unwrap(), AccessState::Revoked);
        assert_eq!(rotate(&ledger, second.refresh_id, 1003, Grace::default()), Rotation::Revoked { session });
    }

    #[test]
    fn nothing_is_kept_per_rotation() {
        let ledger = MemoryLedger::new();
        let (_, first) = start_as(&ledger, "bob", 0);
        let mut current = first.refresh_id;
        for round in 1..=500 {
            let Rotation::Rotated { pair, .. } = rotate(&ledger, current, round, Grace::default()) else {
                panic!("round {round} must rotate")
            };
            current = pair.refresh_id;
        }
        let stats = ledger.stats();
        assert_eq!((stats.sessions, stats.users, stats.rotations), (1, 1, 500));
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
        let mut removed: Vec<i64> = shard.written(ended).into_iter().map(|(_, v)| v).collect();
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
            start_capped(&ledger, "bob", 0, 1000);
        }
        assert_eq!(ledger.stats().sessions, 200);
        // Kept until 86 400: still there at 86 399, whatever the writes.
        for _ in 0..2000 {
            start_capped(&ledger, "carol", 86_399, 100_000);
        }
        assert_eq!(ledger.stats().sessions, 2200);
        assert_eq!(listed(&ledger, "bob"), Some(200));
        // Every shard gets far more writes than a quarter of its capacity.
        for _ in 0..4000 {
            start_capped(&ledger, "dave", 86_400, 100_000);
        }
        let stats = ledger.stats();
        assert_eq!(stats.sessions, 6000);
        // The user index forgot bob with his last session.
        assert_eq!(listed(&ledger, "bob"), None);
        assert_eq!(listed(&ledger, "carol"), Some(2000));
    }

    #[test]
    fn the_login_past_the_cap_evicts_the_oldest() {
        let ledger = MemoryLedger::new();
        let sessions: Vec<_> = (0..3).map(|i| start_capped(&ledger, "bob", i, 3)).collect();
        assert!(sessions.iter().all(|(_, _, created)| created.evicted.is_empty()));
        let (_, _, created) = start_capped(&ledger, "bob", 10, 3);
        assert_eq!(created.evicted, vec![sessions[0].0]);
        assert_eq!(ready(ledger.access_state("bob", sessions[0].1.access_id)).unwrap(), AccessState::Revoked);
        assert_eq!(ready(ledger.sessions("bob", 10)).unwrap().len(), 3);
        // A revoked session frees its place: no eviction.
        assert_eq!(
            ready(ledger.revoke_session("bob", sessions[1].0, 0)).unwrap(),
            Revocation::Revoked { session: sessions[1].0 }
        );
        let (_, _, created) = start_capped(&ledger, "bob", 11, 3);
        assert!(created.evicted.is_empty());
    }

    #[test]
    fn a_flood_of_logins_keeps_the_caps_records_only() {
        let ledger = MemoryLedger::new();
        for _ in 0..10_000 {
            start_capped(&ledger, "bob", 1_000, 100);
        }
        let stats = ledger.stats();
        assert_eq!(stats.sessions, 100, "one record per live session, none per evicted login");
        assert_eq!(listed(&ledger, "bob"), Some(100));
    }

    #[test]
    fn logins_within_one_second_evict_the_earliest() {
        let ledger = MemoryLedger::new();
        let (first, _, _) = start_capped(&ledger, "bob", 1_000, 100);
        let (second, _, _) = start_capped(&ledger, "bob", 1_000, 100);
        for _ in 2..100 {
            start_capped(&ledger, "bob", 1_000, 100);
        }
        let (_, _, created) = start_capped(&ledger, "bob", 1_000, 100);
        assert_eq!(created.evicted, vec![first]);
        let (_, _, created) = start_capped(&ledger, "bob", 1_000, 100);
        assert_eq!(created.evicted, vec![second]);
    }

    #[test]
    fn a_revoked_session_is_a_tombstone_for_a_minute() {
        let ledger = MemoryLedger::new();
        let (session, first) = start_as(&ledger, "bob", 1_000);
        assert_eq!(ready(ledger.revoke_session("bob", session, 1_010)).unwrap(), Revocation::Revoked { session });
        assert_eq!(ready(ledger.purge(1_010 + TOMBSTONE_SECONDS - 1)).unwrap(), 0, "revoked, still answering so");
        assert_eq!(rotate(&ledger, first.refresh_id, 1_011, Grace::default()), Rotation::Revoked { session });
        assert_eq!(ready(ledger.purge(1_010 + TOMBSTONE_SECONDS)).unwrap(), 1);
        assert_eq!(ledger.stats().sessions, 0);
        assert_eq!(rotate(&ledger, first.refresh_id, 1_100, Grace::default()), Rotation::Unknown);
    }

    #[test]
    fn purge_keeps_live_sessions_and_drops_expired_ones() {
        let ledger = MemoryLedger::new();
        let (_, old) = start_as(&ledger, "bob", 0);
        start_as(&ledger, "alice", 86_000);
        assert_eq!(ready(ledger.purge(86_399)).unwrap(), 0);
        assert_eq!(ready(ledger.purge(86_400)).unwrap(), 1, "bob's tokens expired at 86 400");
        assert_eq!(ledger.stats().sessions, 1);
        assert_eq!(listed(&ledger, "bob"), None);
        assert_eq!(ready(ledger.access_state("bob", old.access_id)).unwrap(), AccessState::Revoked);
    }

    #[test]
    fn a_taken_tag_is_refused_not_merged() {
        let ledger = MemoryLedger::new();
        let (session, first) = start_as(&ledger, "bob", 0);
        let again = NewSession {
            session,
            pair: pair(session, "mallory", 0),
            created_at: 0,
            absolute_expires_at: 100,
            leeway: 0,
            max_sessions_per_user: 100,
        };
        assert!(ready(ledger.create(&again)).is_err());
        assert_eq!(ready(ledger.access_state("bob", first.access_id)).unwrap(), AccessState::Current);
        assert_eq!(listed(&ledger, "mallory"), None);
    }

    #[test]
    fn sessions_of_one_user_share_one_identity() {
        let ledger = MemoryLedger::new();
        let (a, _) = start_as(&ledger, "bob", 0);
        let (b, _) = start_as(&ledger, "bob", 0);
        let (c, _) = start_as(&ledger, "carol", 0);
        let identity = |s: SessionId| ledger.with_record(s.tag(), |r| r.map(|r| Arc::as_ptr(&r.identity)));
        assert!(identity(a).is_some());
        assert_eq!(identity(a), identity(b));
        assert_ne!(identity(a), identity(c));
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
    fn records_stay_small() {
        // What the memory per session rests on (hash tables store these
        // inline, one per bucket).
        assert_eq!(size_of::<(u64, SessionRecord)>(), 88);
    }

    #[test]
    fn id_bits_rebuild_the_id() {
        let session = SessionId::random();
        let id = session.new_token_id();
        assert_eq!(IdBits::of(id).id(session), id);
    }
}
