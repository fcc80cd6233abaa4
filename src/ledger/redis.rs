//! The session ledger on Redis or Redis Cluster, shared by every instance
//! of a service.
//!
//! The scripts live in `src/ledger/redis/*.lua`: `common.lua` (helpers,
//! prepended to each), `create.lua`, `rotate.lua`, `revoke_session.lua`,
//! `revoke_batch.lua` and `list_batch.lua`. Each starts with its Redis 7
//! `#!lua` line, whose flags say what Redis may do with it at `maxmemory`
//! ([`RedisLedger`] § A full Redis).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisFuture, Script, ScriptInvocation, ServerErrorKind, Value};

use crate::error::StoreError;
use crate::ledger::rules;
use crate::ledger::{
    AccessState, Created, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
    SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use crate::token::ids::{SessionId, TokenId};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "token_refresh:";

/// How many members of a user's index one `revoke_user` or `sessions`
/// script handles: each call does bounded work (about 2 ms for 200
/// members), so revoking a user with a million sessions never blocks the
/// server for longer than one batch.
const BATCH: usize = 200;

/// The scheme of a Redis Cluster target: `redis-cluster://HOST:PORT[,HOST:PORT…]`.
const CLUSTER_SCHEME: &str = "redis-cluster://";
/// The same over TLS: every node is reached as `rediss://`.
const TLS_CLUSTER_SCHEME: &str = "rediss-cluster://";

/// How long to wait to connect, and for any reply.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How often [`RedisLedger::ping`] reads `maxmemory-policy` again (the
/// connect check alone misses a `CONFIG SET`, a restart with another
/// configuration, or a failover to a differently configured replica).
const POLICY_RECHECK: Duration = Duration::from_secs(60);

/// Lua numbers are doubles: integers are exact up to 2^53.
const LUA_EXACT: i64 = 1 << 53;

/// How often a command refused with `MOVED` (the slot moved; the script
/// did not run) is sent again after the cluster client refreshed its slot
/// map.
const MOVED_RETRIES: usize = 2;

/// The value `maxmemory-policy` must have.
const NOEVICTION: &str = "noeviction";

/// The helpers every script shares.
const COMMON: &str = include_str!("redis/common.lua");

/// A ledger script from its file: the file's `#!lua` line first (Redis
/// reads the script's flags there, and only on the first line), then the
/// tombstone lifetime (one source of truth: [`TOMBSTONE_SECONDS`]) and
/// `common.lua`, then the rest of the file.
fn script_source(file: &str) -> String {
    let (shebang, body) = match file.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!lua") => (first, rest),
        // Every file has one (a unit test holds them to it); without, the
        // script would still run, with Redis 7's defaults for flagged
        // scripts.
        _ => ("#!lua", file),
    };
    format!("{shebang}\nlocal TOMBSTONE = {TOMBSTONE_SECONDS}\n{COMMON}{body}")
}

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| Script::new(&script_source(include_str!(concat!("redis/", $file)))))
    };
}

static CREATE: LazyLock<Script> = script!("create.lua");
static ROTATE: LazyLock<Script> = script!("rotate.lua");
static REVOKE_SESSION: LazyLock<Script> = script!("revoke_session.lua");
static REVOKE_BATCH: LazyLock<Script> = script!("revoke_batch.lua");
static LIST_BATCH: LazyLock<Script> = script!("list_batch.lua");

/// The ledger's connection: a standalone server's [`ConnectionManager`]
/// or a Redis Cluster's [`ClusterConnection`]. Cloning shares it.
///
/// It is a [`redis::aio::ConnectionLike`], so any `redis` command runs on
/// it (on a cluster, routed by its first key).
#[derive(Clone)]
pub struct RedisConnection(Link);

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Link::Cluster(_))
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection").field("cluster", &self.is_cluster()).finish_non_exhaustive()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Link::Single(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Link::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Link::Single(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

/// What a [`RedisLedgerBuilder`] connects to.
#[derive(Clone)]
enum Target {
    /// A URL: `redis://`, `rediss://`, `unix://` or `redis-cluster://`.
    Url(String),
    /// Cluster nodes, each a `redis://` URL.
    Cluster(Vec<String>),
}

/// Options for connecting a [`RedisLedger`]; from [`RedisLedger::builder`]
/// or [`RedisLedger::cluster_builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), token_refresh::StoreError> {
/// use std::time::Duration;
/// use token_refresh::RedisLedger;
///
/// let ledger = RedisLedger::builder("redis-cluster://10.0.0.1:6379,10.0.0.2:6379")
///     .prefix("auth:")
///     .timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisLedgerBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    check_eviction_policy: bool,
    policy_recheck: Duration,
    /// PEM CA certificates for `rediss://`, instead of the platform's.
    trusted_roots: Option<Vec<u8>>,
}

impl fmt::Debug for RedisLedgerBuilder {
    // The target is left out: a URL may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedgerBuilder")
            .field("cluster", &matches!(self.target, Target::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("check_eviction_policy", &self.check_eviction_policy)
            .field("policy_recheck", &self.policy_recheck)
            .field("private_ca", &self.trusted_roots.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisLedgerBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: TIMEOUT,
            check_eviction_policy: true,
            policy_recheck: POLICY_RECHECK,
            trusted_roots: None,
        }
    }

    /// The key prefix (default [`DEFAULT_PREFIX`]); it must not contain
    /// `{` or `}`, which would change the keys' Cluster hash tag.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait to connect and for any reply (default 5 s). It
    /// is also each writing script's deadline: Redis refuses, unchanged, a
    /// script it gets to run only after its caller stopped waiting (see
    /// [`RedisLedger`] § Stalls).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often [`RedisLedger::ping`] (readiness) reads every primary's
    /// `maxmemory-policy` again after the check at connect (default 60 s;
    /// skipped with the check). Between two reads it reports the last
    /// one's answer.
    pub fn policy_recheck_interval(mut self, interval: Duration) -> Self {
        self.policy_recheck = interval;
        self
    }

    /// Trusts the CA certificates of this PEM bundle for `rediss://` and
    /// `rediss-cluster://` targets, **instead of** the platform's roots
    /// (the default): for a private CA, as managed Redis services and
    /// in-house deployments use. A server whose certificate does not chain
    /// to one of them, or does not name the host connected to, is refused
    /// at [`connect`](Self::connect). The bundle is checked there too.
    pub fn trust_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trusted_roots = Some(pem.into());
        self
    }

    /// Skips the check that every server runs `maxmemory-policy
    /// noeviction`.
    ///
    /// Only for a managed Redis that hides `CONFIG` **and** is configured
    /// not to evict: a server that evicts under memory pressure drops
    /// session records, and every session that loses its record is logged
    /// out (its tokens become unknown). It never turns reuse into success,
    /// but it is an outage, and `revoke_user` cannot reach sessions whose
    /// index was evicted while their records live on.
    pub fn skip_eviction_policy_check(mut self) -> Self {
        self.check_eviction_policy = false;
        self
    }

    /// Connects, checks every server answers and (unless skipped) runs
    /// `maxmemory-policy noeviction`. Fails when a server is unreachable,
    /// so a service learns at start, not at its first refresh.
    pub async fn connect(self) -> Result<RedisLedger, StoreError> {
        check_prefix(&self.prefix)?;
        let nodes = match &self.target {
            Target::Url(url) => cluster_nodes(url)?,
            Target::Cluster(nodes) => Some(nodes.clone()),
        };
        let roots = self.trusted_roots.as_deref();
        let tls = match (&nodes, &self.target) {
            (Some(nodes), _) => nodes.iter().any(|node| node.starts_with("rediss://")),
            (None, Target::Url(url)) => url.starts_with("rediss://"),
            (None, Target::Cluster(_)) => false,
        };
        // Only a TLS target needs rustls: a plaintext ledger leaves the
        // process-wide provider to the application.
        if tls {
            ensure_crypto_provider();
        }
        let link = match (nodes, &self.target) {
            (Some(nodes), _) => Link::Cluster(connect_cluster(&nodes, self.timeout, roots).await?),
            (None, Target::Url(url)) => Link::Single(connect_single(url, self.timeout, roots).await?),
            (None, Target::Cluster(_)) => return Err(StoreError::misuse("no Redis Cluster node given")),
        };
        let ledger = RedisLedger {
            connection: RedisConnection(link),
            prefix: self.prefix,
            timeout: self.timeout,
            policy: Arc::new(PolicyWatch::new(self.policy_recheck)),
        };
        // Only that it answers: a Redis at its maxmemory still serves
        // refreshes, so an instance may start while it is full.
        ledger.answers().await?;
        if self.check_eviction_policy {
            ledger.check_eviction_policy().await?;
        }
        Ok(ledger)
    }
}

/// Makes sure rustls has a process-wide crypto provider before the `redis`
/// crate builds a TLS client with it: ring, unless the application has
/// installed one already. Without this, an application whose dependency
/// graph enables a second rustls provider (aws-lc-rs, common through HTTP
/// clients) would see the redis crate panic at its first `rediss://`
/// connection, since rustls then cannot pick one on its own.
fn ensure_crypto_provider() {
    // Err means a provider is installed already: keep it.
    #[expect(deprecated, reason = "ring's provider lacks post-quantum key exchange; the price of no C build")]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS trust for a connection: the platform's roots unless a PEM bundle
/// is given.
fn tls_certificates(roots: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates { client_tls: None, root_cert: Some(roots.to_vec()) }
}

async fn connect_single(url: &str, timeout: Duration, roots: Option<&[u8]>) -> Result<ConnectionManager, StoreError> {
    let client = match roots {
        Some(roots) if url.starts_with("rediss://") => redis::Client::build_with_tls(url, tls_certificates(roots)),
        _ => redis::Client::open(url),
    }
    .map_err(StoreError::new)?;
    // The manager reconnects after a lost connection but never sends a
    // command twice.
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    ConnectionManager::new_with_config(client, config).await.map_err(StoreError::new)
}

async fn connect_cluster(
    nodes: &[String],
    timeout: Duration,
    roots: Option<&[u8]>,
) -> Result<ClusterConnection, StoreError> {
    if nodes.is_empty() {
        return Err(StoreError::misuse("no Redis Cluster node given"));
    }
    // No retries: the cluster client would send a command again after a
    // lost connection, and a rotation whose first attempt ran would then
    // look like reuse. `MOVED` is retried by the ledger itself.
    let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .retries(0)
        .connection_timeout(timeout)
        .response_timeout(timeout);
    if let Some(roots) = roots {
        builder = builder.certs(tls_certificates(roots));
    }
    let client = builder.build().map_err(StoreError::new)?;
    client.get_async_connection().await.map_err(StoreError::new)
}

/// The node URLs of a `redis-cluster://[user:password@]HOST:PORT[,HOST:PORT…]`
/// target (`rediss-cluster://` for TLS), `None` for any other URL.
fn cluster_nodes(target: &str) -> Result<Option<Vec<String>>, StoreError> {
    let (rest, scheme) = match (target.strip_prefix(CLUSTER_SCHEME), target.strip_prefix(TLS_CLUSTER_SCHEME)) {
        (Some(rest), _) => (rest, "redis"),
        (None, Some(rest)) => (rest, "rediss"),
        (None, None) => return Ok(None),
    };
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}://{credentials}{host}"))
        .collect();
    if nodes.is_empty() || hosts.contains('/') {
        return Err(StoreError::misuse("a Redis Cluster target is redis-cluster://HOST:PORT[,HOST:PORT…]"));
    }
    Ok(Some(nodes))
}

fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.contains(['{', '}']) {
        Err(StoreError::misuse("a Redis ledger key prefix must not contain '{' or '}' (they set the Cluster hash tag)"))
    } else {
        Ok(())
    }
}

/// The [`SessionLedger`] on Redis or Redis Cluster: one ledger shared by
/// every instance that connects to the same servers and key prefix.
/// Needs Redis 7.0 or later (script flags, `EXPIRE … LT`).
///
/// # Keys
///
/// One hash per session, and per user one sorted set and one counter,
/// nothing else:
///
/// - `PREFIX{H}s:<tag>`: the session (`<tag>` is the 16 hex digits of
///   [`SessionId::tag`], the tag every token id of the session carries):
///   the claims (`sub`, `acc`, `role`), the current access id and expiry,
///   the current refresh id and expiry, the previous refresh id (empty
///   before the first rotation), the generation, the start, the absolute
///   expiry, the last rotation's time and its replay count, the revoked
///   flag, the retention, the session's leeway and its place in the
///   user's login sequence. Ids are 16 raw bytes.
/// - `PREFIX{H}d:<subject>`: the user's index, a sorted set scored by each
///   session's end of life (`min(absolute expiry, refresh exp + leeway)`),
///   members spelled login sequence number (8 bytes, big-endian) then tag,
///   so that among equal ends the earliest login sorts first. A rotation
///   moves its session to its new end; a revocation takes it out.
/// - `PREFIX{H}n:<subject>`: the user's login counter (`INCR` at each
///   login), the sequence the index breaks ties by. Login times have
///   one-second resolution, so without it a burst of logins within one
///   second would evict by random tag instead of the earliest login. It
///   lives as long as the index.
///
/// `H` is the 16 hex digits of the FNV-1a-64 hash of the subject: the
/// Redis Cluster hash tag. Every key of a user lives in one slot, so a
/// login (prune the ended sessions, evict the one nearest its end, insert) and a
/// revocation are each one atomic script on one node, and every rotation
/// is one script on one key. Tagging by user rather than by session costs
/// nothing in spread: a user's sessions are bounded by the per-user cap,
/// and users spread over the slots. Since every method takes the subject
/// (the verified token's `sub`), the ledger always knows the key; a token
/// presented with another subject reads another key and is unknown.
///
/// # How it keeps the contract
///
/// - **Consume once.** A rotation is one Lua script (`EVALSHA`, loaded on
///   `NOSCRIPT` by [`redis::Script`]) on the session's one key. Redis runs
///   a script to completion before it serves any other command, so the
///   read, the decision (`rules::decide`'s rules, in Lua) and the write
///   are one step for every client of that server or slot: of N
///   concurrent rotations of one token, exactly one sees it current.
/// - **No half rotation.** Every script reads and validates all it needs
///   before its first write, so it never stops half way. A connection lost
///   while a script runs loses only the reply: the caller gets a
///   [`StoreError`] (a 500) and the token is either untouched or consumed
///   with its successor recorded, whole. No command is ever sent twice
///   after a lost connection (a retried rotation would look like reuse);
///   only a Cluster `MOVED` refusal, which means the script did not run,
///   is sent again.
/// - **Logins, logouts, listings, `revoke_user`** are scripts on the
///   user's slot. A login drops the index's first members that ended more
///   than the slack ago (`ZREMRANGEBYSCORE`) and, at the cap, takes the
///   next ones (`ZRANGE 0 k`): O(log n) plus the sessions it removes, never
///   a walk of the index (at a cap of 10 000 a login looked up 10 004 keys
///   and held the server 92 ms; now 5 keys and 60 µs). `revoke_user` and
///   `sessions` go through the index in batches of 200 members, one script
///   each, so one user with 100 000 sessions never blocks the server for
///   more than a batch.
/// - **Retention.** A live session's key expires (`EXPIRE`) when its
///   retention ends: its current tokens' expiry plus the session's leeway
///   (never earlier than before). The TTL is `retain_until − now` on the
///   ledger's clock (the `now` each call carries) plus 60 s of slack: the
///   same instant as `EXPIREAT` when that clock is the wall clock,
///   independent of the server's clock. The slack covers skew between
///   instances: one whose clock runs ahead does not drop a record another
///   may still need to detect reuse. A user's index and login counter live
///   until the latest absolute expiry of its sessions (plus slack): no
///   session is live after it. Decisions never depend on a key having
///   expired: expiry checks compare stored times with `now` inside the
///   scripts.
/// - **Bounded state.** A session the per-user cap evicts is deleted in
///   the login's script (record and index entry): its tokens become
///   unknown, a 401 as before, and 10 000 logins of one subject at a cap of
///   100 leave 102 keys, not 10 001. A session revoked by logout, reuse or
///   `revoke_user` stays a revoked tombstone: its key's TTL drops to
///   [`TOMBSTONE_SECONDS`] plus the 60 s slack (`EXPIRE … LT`, which never
///   lengthens it), so its tokens answer "revoked" for a minute or two,
///   then unknown. Redis expires all of it by itself:
///   [`purge`](SessionLedger::purge) has nothing to do and returns 0.
/// - **Fail closed.** A session record that is lost anyway (flushed, or
///   evicted by a server that evicts) makes its session's tokens unknown:
///   refused, never accepted. A lost user index would hide live sessions
///   from `revoke_user` and the cap, so [`connect`](Self::connect) refuses
///   a server whose `maxmemory-policy` is not `noeviction`, and
///   [`ping`](Self::ping) reads it again every minute.
/// - **No bearer material.** Ids, expiries and the claims needed to
///   re-sign a pair; never a token.
///
/// # A full Redis
///
/// At `maxmemory` (policy `noeviction`), Redis refuses what would grow it
/// and the ledger keeps working for what does not. The scripts say which is
/// which with Redis 7 script flags (`#!lua flags=…`, checked before a
/// script runs):
///
/// - **A login is refused whole.** The login script has no `allow-oom`, so
///   a full Redis refuses it before it runs: nothing is written (without
///   the flag, its first write, which is not one Redis refuses at the
///   limit, let every later write through, and logins grew Redis past
///   `maxmemory` without bound). The ledger answers
///   [`StoreError::full`], which the login flow turns into 503
///   `SERVICE_UNAVAILABLE` with `Retry-After: 60`.
/// - **Refreshes, logouts and `revoke_user` keep working.** Their scripts
///   are `allow-oom`: they rewrite a session's fields in place or shrink
///   Redis. Listings are `no-writes`.
/// - **Readiness fails.** [`ping`](Self::ping) fails, naming the limit,
///   while `used_memory` is at `maxmemory` (within 1 %, at most 1 MiB:
///   Redis's own buffers move it by that much, so a full Redis hovers
///   around the limit) on any primary, so `/readyz` answers
///   503 and monitoring sees it. (An orchestrator that takes every
///   instance out of rotation on a failed readiness probe also stops the
///   refreshes that still work: alert on it rather than restart.)
///
/// # Stalls
///
/// A command sent to a Redis that has stopped answering (a long fork for
/// `BGSAVE`, a failover, a slow script, a frozen VM) waits in the socket;
/// its caller gives up after the response timeout (a 500, which the client
/// retries with the same token). When Redis resumes it would run every
/// queued command in order: the first rotation consumes the token behind
/// its caller's back and each retry queued after it is reuse, which
/// revokes the session. So every writing script carries a deadline,
/// `not_after`: this host's wall clock when the call is sent plus the
/// response timeout, in milliseconds. The script compares it with Redis's
/// own clock (`TIME`) before anything else, and past it answers "stale"
/// and writes nothing; the ledger turns that into a [`StoreError`] (logged
/// at WARN) nobody is waiting for, and the client's retry, whose deadline
/// has not passed, finds its token still current. A 20 s `SIGSTOP` under 8
/// refreshing clients revoked 8 of 8 sessions before; it revokes none now.
///
/// No slack is added to the deadline on purpose: any slack is time during
/// which Redis may still run a command whose caller has given up, which
/// is the failure the guard exists to stop. Clock skew between this host
/// and Redis moves the deadline instead: a Redis clock *behind* this
/// host's by `d` lets a command run up to `d` after its caller gave up (a
/// lost answer, which the grace window covers); one *ahead* by `d`
/// refuses commands that take longer than the timeout minus `d`, and every
/// write when `d` reaches the timeout (each refused one is logged at WARN,
/// naming clock skew as a cause). Keep the clocks in sync (NTP) as the
/// lifetimes need anyway. A ledger call that times out is logged at WARN
/// (feature `tracing`, target `token_refresh`) and counted in
/// `token_refresh_ledger_timeouts_total{op}` (feature `metrics`).
///
/// # Deployment notes
///
/// - **Standalone or Cluster.** A single primary (replicated with
///   Sentinel or not), or Redis Cluster: `redis-cluster://HOST:PORT,…`
///   (`rediss://` and `rediss-cluster://` for TLS)
///   ([`RedisLedger::connect`]) or a list of node URLs
///   ([`RedisLedger::connect_cluster`]). Reads go to primaries.
/// - **`maxmemory-policy noeviction` is required**, checked at connect on
///   every primary (`CONFIG GET`) and again by [`ping`](Self::ping) at most
///   once a minute ([`RedisLedgerBuilder::policy_recheck_interval`]): a
///   policy changed at runtime, a restart with another configuration or a
///   failover to a differently configured replica makes readiness fail
///   and logs a WARN naming the setting. A managed Redis that hides
///   `CONFIG` can opt out of both with
///   `RedisLedger::builder(url).skip_eviction_policy_check()` once its
///   policy is known to be `noeviction`.
/// - **Durability** is Redis's: with asynchronous replication or
///   `appendfsync everysec`, a failover or crash can forget the last
///   writes. **A Redis restored from an older snapshot (or a replica that
///   was behind) undoes everything since**: rotations (consumed refresh
///   tokens become current again), logouts, reuse revocations, evictions
///   and `revoke_user` (the tokens of logged-out and revoked sessions work
///   again). After such a restore or failover, treat every session as
///   suspect: rotate the signing key (which ends every session) or
///   `revoke_user` the users who logged out or were revoked since the
///   snapshot. Use the PostgreSQL ledger where that matters.
/// - **Lowering the per-user cap** below a user's current number of
///   sessions makes that user's next login evict the excess in one script
///   (a few microseconds per session, during which the node serves nobody
///   else); at a steady cap a login evicts at most one.
/// - A taken session tag is refused per user (every lookup names the user,
///   so two users' sessions never meet even with equal tags).
///
/// # Use
///
/// Cloning is cheap and shares the connection (a multiplexed
/// `ConnectionManager` that reconnects by itself after a lost connection,
/// or the Cluster client's connection to every node).
///
/// ```no_run
/// # async fn demo() -> Result<(), token_refresh::StoreError> {
/// use token_refresh::{MemoryUserStore, RedisLedger, Store};
///
/// let ledger = RedisLedger::connect("redis://127.0.0.1:6379/0", "auth:").await?;
/// let cluster = RedisLedger::connect("redis-cluster://10.0.0.1:6379,10.0.0.2:6379", "auth:").await?;
/// let store = Store::new(MemoryUserStore::default(), ledger);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLedger {
    connection: RedisConnection,
    prefix: String,
    /// The connection's response timeout: a writing script's deadline is
    /// the wall clock at send time plus this.
    timeout: Duration,
    /// The periodic `maxmemory-policy` check, shared by clones.
    policy: Arc<PolicyWatch>,
}

impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedger")
            .field("prefix", &self.prefix)
            .field("cluster", &self.connection.is_cluster())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The periodic re-check of `maxmemory-policy` behind [`RedisLedger::ping`].
#[derive(Debug)]
struct PolicyWatch {
    /// Whether to re-check: set by [`RedisLedger::check_eviction_policy`]
    /// (which `connect` calls unless the check is skipped).
    enabled: AtomicBool,
    interval: Duration,
    /// When the policy was last read, and what was wrong with it then.
    last: Mutex<Option<(Instant, Option<String>)>>,
}

impl PolicyWatch {
    fn new(interval: Duration) -> Self {
        Self { enabled: AtomicBool::new(false), interval, last: Mutex::new(None) }
    }

    /// The last reading's problem, `Some(None)` for none, or `None` when it
    /// is due to be read again.
    fn cached(&self) -> Option<Option<String>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((at, problem)) if at.elapsed() < self.interval => Some(problem.clone()),
            _ => None,
        }
    }

    fn record(&self, problem: Option<String>) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), problem));
    }
}

impl RedisLedger {
    /// Connects to `target` with keys under `prefix`: a standalone server
    /// (`redis://host:port/db`, or `rediss://` for TLS) or a Redis Cluster
    /// (`redis-cluster://[user:password@]HOST:PORT[,HOST:PORT…]`, or
    /// `rediss-cluster://` for TLS; any reachable nodes, the rest are
    /// discovered). TLS is rustls, verifying the server's certificate and
    /// host name against the platform's roots; a private CA goes through
    /// [`RedisLedgerBuilder::trust_pem`]. Checks every server
    /// answers and runs `maxmemory-policy noeviction`; see
    /// [`builder`](Self::builder) for the options.
    pub async fn connect(target: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(target).prefix(prefix).connect().await
    }

    /// Connects to the Redis Cluster with these nodes (each
    /// `redis://host:port`, or `rediss://` with the `redis` crate's TLS
    /// feature), keys under `prefix`; as [`connect`](Self::connect).
    pub async fn connect_cluster<I, S>(nodes: I, prefix: impl Into<String>) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::cluster_builder(nodes).prefix(prefix).connect().await
    }

    /// Options for connecting to `target` (as [`connect`](Self::connect)
    /// takes it).
    pub fn builder(target: &str) -> RedisLedgerBuilder {
        RedisLedgerBuilder::new(Target::Url(target.to_owned()))
    }

    /// Options for connecting to the Redis Cluster with these nodes.
    pub fn cluster_builder<I, S>(nodes: I) -> RedisLedgerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisLedgerBuilder::new(Target::Cluster(nodes.into_iter().map(|node| node.as_ref().to_owned()).collect()))
    }

    /// A ledger on an existing connection (TLS, Sentinel), keys under
    /// `prefix`. Does not connect, and does not check the eviction policy:
    /// call [`check_eviction_policy`](Self::check_eviction_policy) (after
    /// which [`ping`](Self::ping) re-checks it periodically). Assumes the
    /// connection's response timeout is the default 5 s; give another with
    /// [`with_timeout`](Self::with_timeout).
    pub fn new(connection: ConnectionManager, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Self::with_link(Link::Single(connection), prefix.into())
    }

    /// A ledger on an existing Redis Cluster connection, keys under
    /// `prefix`; as [`new`](Self::new). Build the client with
    /// `retries(0)`: the cluster client otherwise sends a command again
    /// after a lost connection, and a rotation that ran twice is reuse.
    pub fn new_cluster(connection: ClusterConnection, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Self::with_link(Link::Cluster(connection), prefix.into())
    }

    fn with_link(link: Link, prefix: String) -> Result<Self, StoreError> {
        check_prefix(&prefix)?;
        Ok(Self {
            connection: RedisConnection(link),
            prefix,
            timeout: TIMEOUT,
            policy: Arc::new(PolicyWatch::new(POLICY_RECHECK)),
        })
    }

    /// The response timeout of the connection given to [`new`](Self::new)
    /// or [`new_cluster`](Self::new_cluster), when it is not the default
    /// 5 s. Each writing script's deadline is the wall clock at send time
    /// plus this (§ Stalls): a longer value than the connection's lets a
    /// script that Redis runs after its caller gave up act all the same; a
    /// shorter one refuses slow calls whose caller still waits.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connection (a clone sharing it).
    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the ledger is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.connection.is_cluster()
    }

    /// Readiness: checks the server (every primary of a cluster) answers
    /// and is below its `maxmemory`, and, unless the check was skipped,
    /// that its `maxmemory-policy` is still `noeviction` (read again at
    /// most once per [`RedisLedgerBuilder::policy_recheck_interval`]).
    /// Fails, naming the problem, when a primary is at its `maxmemory`
    /// (`used_memory` within 1 %, at most 1 MiB, of `maxmemory > 0`:
    /// logins are refused until memory is freed; refreshes and logouts
    /// still work) or evicts.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.check_memory().await?;
        self.recheck_eviction_policy().await
    }

    /// One round trip to every primary: they answer.
    async fn answers(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<Value>(&mut connection).await.map_err(|e| self.failed("ping", e))?;
        Ok(())
    }

    /// `INFO memory` on every primary: each answers, and none is at its
    /// `maxmemory`. A server that refuses `INFO` (renamed, or denied by an
    /// ACL) has answered all the same; its memory goes unchecked.
    async fn check_memory(&self) -> Result<(), StoreError> {
        let mut command = redis::cmd("INFO");
        command.arg("memory");
        for (node, reply) in self.on_every_primary("ping", command).await? {
            let info = match reply {
                Ok(info) => text_of(&info),
                Err(error) if info_refused(&error) => continue,
                Err(error) => return Err(self.failed("ping", error)),
            };
            if let Some((used, max)) = memory_of(&info)
                && is_full(used, max)
            {
                return Err(StoreError::full(format!(
                    "{node} is at its maxmemory (used_memory {used} of maxmemory {max} bytes): logins are refused \
                     until memory is freed or maxmemory is raised; refreshes and logouts still work"
                )));
            }
        }
        Ok(())
    }

    /// Checks that the server, or every primary of a cluster, runs
    /// `maxmemory-policy noeviction`; [`connect`](Self::connect) calls it.
    /// Fails, naming the setting, when a server evicts or hides `CONFIG`.
    /// From then on [`ping`](Self::ping) checks it again periodically.
    pub async fn check_eviction_policy(&self) -> Result<(), StoreError> {
        self.policy.enabled.store(true, Ordering::Relaxed);
        let problem = self.eviction_policy_problem().await?;
        self.policy.record(problem.clone());
        problem.map_or(Ok(()), |problem| Err(StoreError::new(problem)))
    }

    /// The periodic part of [`ping`](Self::ping): the last reading of the
    /// policy, read again when it is older than the interval. Only a
    /// reading is remembered: a server that did not answer is the memory
    /// check's failure, and the next ping reads again.
    async fn recheck_eviction_policy(&self) -> Result<(), StoreError> {
        if !self.policy.enabled.load(Ordering::Relaxed) {
            return Ok(());
        }
        let problem = match self.policy.cached() {
            Some(problem) => problem,
            None => {
                let problem = self.eviction_policy_problem().await?;
                if let Some(_problem) = &problem {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "token_refresh", problem = %_problem, "the Redis ledger is not ready: its eviction policy changed");
                }
                self.policy.record(problem.clone());
                problem
            }
        };
        problem.map_or(Ok(()), |problem| Err(StoreError::new(problem)))
    }

    /// What is wrong with the servers' `maxmemory-policy`, if anything;
    /// an error when a server did not answer.
    async fn eviction_policy_problem(&self) -> Result<Option<String>, StoreError> {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("maxmemory-policy");
        for (node, reply) in self.on_every_primary("check_eviction_policy", command).await? {
            let reply = match reply {
                Ok(reply) => Some(reply),
                // The server answered, with a refusal (CONFIG renamed away,
                // or denied).
                Err(error) if error.kind() != ErrorKind::Io => None,
                Err(error) => return Err(self.failed("check_eviction_policy", error)),
            };
            let Some(policy) = reply.as_ref().and_then(policy_of) else {
                return Ok(Some(format!(
                    "could not read maxmemory-policy from {node} (CONFIG GET refused?): the ledger needs \
                     maxmemory-policy noeviction, since an evicted session record logs its user out; if this \
                     managed Redis hides CONFIG and does not evict, use skip_eviction_policy_check"
                )));
            };
            if policy != NOEVICTION {
                return Ok(Some(format!(
                    "{node} has maxmemory-policy {policy}: the ledger needs maxmemory-policy noeviction (an \
                     evicted session record logs its user out)"
                )));
            }
        }
        Ok(None)
    }

    /// Sends `command` (for `op`) to the server, or to every primary of a
    /// cluster: each node's name (for messages) and its own answer.
    async fn on_every_primary(
        &self,
        op: &'static str,
        command: Cmd,
    ) -> Result<Vec<(String, redis::RedisResult<Value>)>, StoreError> {
        Ok(match &self.connection.0 {
            Link::Single(connection) => {
                let reply = command.query_async::<Value>(&mut connection.clone()).await;
                vec![("the Redis server".to_owned(), reply)]
            }
            Link::Cluster(connection) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                match connection.clone().route_command(command, routing).await {
                    Ok(Value::Map(entries)) => entries
                        .into_iter()
                        .map(|(node, reply)| (format!("Redis node {}", text_of(&node)), server_reply(reply)))
                        .collect(),
                    Ok(_) => return Err(StoreError::corrupt("unexpected reply from a Redis Cluster")),
                    Err(error) => return Err(self.failed(op, error)),
                }
            }
        })
    }

    fn session_key(&self, subject: &str, session: SessionId) -> String {
        session_key(&self.prefix, subject, session)
    }

    fn user_keys(&self, subject: &str) -> (String, String) {
        user_keys(&self.prefix, subject)
    }

    /// Runs a script for `op`; a `MOVED` refusal (the script did not run)
    /// is sent again, anything else is the caller's error.
    async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let mut moved = 0;
        loop {
            match invocation.invoke_async(&mut connection).await {
                Ok(value) => return Ok(value),
                Err(error) if moved < MOVED_RETRIES && error.kind() == ErrorKind::Server(ServerErrorKind::Moved) => {
                    moved += 1;
                }
                Err(error) => return Err(self.failed(op, error)),
            }
        }
    }

    /// A failed Redis call of `op` as the ledger's error. A timeout is
    /// logged and counted: the command may still be waiting in Redis's
    /// socket (§ Stalls). Redis refusing to grow at its `maxmemory` is
    /// [`StoreError::full`].
    fn failed(&self, op: &'static str, error: redis::RedisError) -> StoreError {
        if error.is_timeout() {
            timed_out(op, self.timeout);
            return StoreError::timeout(error);
        }
        if error.code() == Some("OOM") {
            return StoreError::full("Redis is at its maxmemory (noeviction) and refused to grow: nothing was written");
        }
        StoreError::new(error)
    }

    /// A writing script's deadline (§ Stalls): this host's wall clock now,
    /// as the call is sent, plus the response timeout, in unix
    /// milliseconds.
    fn not_after(&self) -> Result<i64, StoreError> {
        not_after_of(self.timeout)
    }

    async fn list_batch(
        &self,
        index: &str,
        base: &str,
        subject: &str,
        now: i64,
        members: &[Vec<u8>],
    ) -> Result<Reply, StoreError> {
        let mut invocation = LIST_BATCH.prepare_invoke();
        invocation.key(index).arg(base).arg(subject).arg(lua_int(now)?).arg(BATCH);
        for member in members {
            invocation.arg(member.as_slice());
        }
        Ok(Reply(self.eval("sessions", &invocation).await?))
    }
}

impl SessionLedger for RedisLedger {
    async fn ping(&self) -> Result<(), StoreError> {
        RedisLedger::ping(self).await
    }

    /// Redis expires every record by its TTL: nothing to do.
    async fn purge(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        rules::check_pair_ids(new.session, &new.pair)?;
        let pair = &new.pair;
        if new.created_at < 0 {
            return Err(StoreError::new("a session cannot start before 1970"));
        }
        let retain_until = rules::retain_until(pair, new.leeway);
        let (index, base) = self.user_keys(&pair.subject);
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .key(self.session_key(&pair.subject, new.session))
            .key(index)
            .key(counter_key(&self.prefix, &pair.subject))
            .arg(base)
            .arg(&new.session.tag().to_be_bytes()[..])
            .arg(&pair.subject)
            .arg(&pair.account)
            .arg(&pair.role)
            .arg(&pair.access_id.as_bytes()[..])
            .arg(lua_int(pair.access_expires_at)?)
            .arg(&pair.refresh_id.as_bytes()[..])
            .arg(lua_int(pair.refresh_expires_at)?)
            .arg(lua_int(new.created_at)?)
            .arg(lua_int(new.absolute_expires_at)?)
            .arg(lua_int(new.leeway)?)
            .arg(lua_int(retain_until)?)
            .arg(new.max_sessions_per_user.max(1))
            .arg(self.not_after()?);
        let reply = Reply(self.eval("create", &invocation).await?);
        match reply.field(0)? {
            b"created" => {}
            b"stale" => return Err(stale("create")),
            _ => return Err(StoreError::corrupt("unexpected reply from the login script")),
        }
        let evicted = reply.0.iter().skip(1).map(|member| session_of(member)).collect::<Result<Vec<_>, _>>()?;
        Ok(Created::evicting(evicted))
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        rules::check_successor(request)?;
        let session = request.presented.session();
        let successor = &request.successor;
        let mut invocation = ROTATE.prepare_invoke();
        let (index, _) = self.user_keys(&request.subject);
        invocation
            .key(self.session_key(&request.subject, session))
            .key(index)
            .arg(&request.subject)
            .arg(&request.presented.as_bytes()[..])
            .arg(lua_int(request.now)?)
            .arg(lua_int(request.leeway)?)
            .arg(lua_int(request.grace.window)?)
            .arg(request.grace.max_replays)
            .arg(&successor.account)
            .arg(&successor.role)
            .arg(&successor.access_id.as_bytes()[..])
            .arg(lua_int(successor.access_expires_at)?)
            .arg(&successor.refresh_id.as_bytes()[..])
            .arg(lua_int(successor.refresh_expires_at)?)
            .arg(&session.tag().to_be_bytes()[..])
            .arg(self.not_after()?);
        let reply = Reply(self.eval("rotate", &invocation).await?);
        Ok(match reply.field(0)? {
            b"stale" => return Err(stale("rotate")),
            b"unknown" => Rotation::Unknown,
            b"revoked" => Rotation::Revoked { session },
            b"expired" => Rotation::Expired { session },
            b"rotated" => Rotation::Rotated {
                session,
                generation: reply.unsigned(1)?,
                pair: PairClaims { refresh_expires_at: reply.int(2)?, ..successor.clone() },
            },
            b"replayed" => Rotation::Replayed {
                session,
                generation: reply.unsigned(1)?,
                replay: u32::try_from(reply.unsigned(2)?).map_err(StoreError::new)?,
                pair: PairClaims {
                    subject: request.subject.clone(),
                    account: reply.text(3)?,
                    role: reply.text(4)?,
                    access_id: TokenId::from_bytes(reply.id(5)?),
                    access_expires_at: reply.int(6)?,
                    refresh_id: TokenId::from_bytes(reply.id(7)?),
                    refresh_expires_at: reply.int(8)?,
                },
            },
            b"reused" => Rotation::Reused {
                session,
                presented_generation: match reply.field(1)? {
                    b"" => None,
                    _ => Some(reply.unsigned(1)?),
                },
                current_generation: reply.unsigned(2)?,
            },
            _ => return Err(StoreError::corrupt("unexpected reply from the rotation script")),
        })
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, _now: i64) -> Result<Revocation, StoreError> {
        let (index, _) = self.user_keys(subject);
        let mut invocation = REVOKE_SESSION.prepare_invoke();
        invocation
            .key(self.session_key(subject, session))
            .key(index)
            .arg(subject)
            .arg(&session.tag().to_be_bytes()[..])
            .arg(self.not_after()?);
        let reply: Vec<u8> = self.eval("revoke_session", &invocation).await?;
        Ok(match reply.as_slice() {
            b"stale" => return Err(stale("revoke_session")),
            b"revoked" => Revocation::Revoked { session },
            b"already" => Revocation::AlreadyRevoked { session },
            b"unknown" => Revocation::Unknown,
            _ => return Err(StoreError::corrupt("unexpected reply from the revoke script")),
        })
    }

    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        let (index, base) = self.user_keys(subject);
        let mut revoked = 0_u64;
        loop {
            let mut invocation = REVOKE_BATCH.prepare_invoke();
            invocation.key(&index).arg(&base).arg(subject).arg(lua_int(now)?).arg(BATCH).arg(self.not_after()?);
            let reply = Reply(self.eval("revoke_user", &invocation).await?);
            if reply.field(0)? == b"stale" {
                // The batches before it stand; the caller's retry goes on
                // from there.
                return Err(stale("revoke_user"));
            }
            revoked = revoked.saturating_add(reply.unsigned(0)?);
            if reply.field(1)? != b"1" {
                return Ok(revoked);
            }
        }
    }

    /// The live sessions, oldest login first. Up to `BATCH` candidates
    /// (index members that end after `now`) take one script, an atomic
    /// snapshot. Beyond that, one `ZRANGE … BYSCORE` reads every candidate
    /// (a snapshot too, so no session is skipped while the index changes),
    /// then their records are read `BATCH` per script.
    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let (index, base) = self.user_keys(subject);
        let mut sessions = Vec::new();
        let first = self.list_batch(&index, &base, subject, now, &[]).await?;
        if first.field(0)? == b"ok" {
            push_listed(&first, &mut sessions)?;
        } else {
            let mut connection = self.connection.clone();
            let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(format!("({}", lua_int(now)?))
                .arg("+inf")
                .arg("BYSCORE")
                .query_async(&mut connection)
                .await
                .map_err(|e| self.failed("sessions", e))?;
            for batch in members.chunks(BATCH) {
                push_listed(&self.list_batch(&index, &base, subject, now, batch).await?, &mut sessions)?;
            }
        }
        // Oldest login first, ties (logins within one second) in login
        // order: the order the contract lists in.
        sessions.sort_unstable_by_key(|(sequence, info)| (info.created_at, *sequence, info.session));
        Ok(sessions.into_iter().map(|(_, info)| info).collect())
    }

    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        let mut connection = self.connection.clone();
        let fields: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.session_key(subject, access_id.session()))
            .arg("sub")
            .arg("rev")
            .arg("aid")
            .query_async(&mut connection)
            .await
            .map_err(|e| self.failed("access_state", e))?;
        Ok(match fields.as_slice() {
            [Some(sub), Some(revoked), Some(current)] if sub == subject.as_bytes() && revoked != b"1" => {
                if current == access_id.as_bytes() { AccessState::Current } else { AccessState::Superseded }
            }
            _ => AccessState::Revoked,
        })
    }
}

/// `PREFIX{H}`: the prefix and the user's hash tag.
fn user_prefix(prefix: &str, subject: &str) -> String {
    format!("{prefix}{{{:016x}}}", fnv1a64(subject.as_bytes()))
}

/// `PREFIX{H}s:<tag>`: a session's key.
fn session_key(prefix: &str, subject: &str, session: SessionId) -> String {
    format!("{}s:{:016x}", user_prefix(prefix, subject), session.tag())
}

/// The user's login counter, `PREFIX{H}n:<subject>`: the sequence that
/// orders logins made within one second.
fn counter_key(prefix: &str, subject: &str) -> String {
    format!("{}n:{subject}", user_prefix(prefix, subject))
}

/// The user's index key, `PREFIX{H}d:<subject>`, and session key base,
/// `PREFIX{H}s:`. (`d:` for "deadline": the index is scored by each
/// session's end of life. The earlier layout's `u:` index, scored 0, is
/// never read: it expires with its sessions.)
fn user_keys(prefix: &str, subject: &str) -> (String, String) {
    let user = user_prefix(prefix, subject);
    (format!("{user}d:{subject}"), format!("{user}s:"))
}

/// Appends the sessions of a `{'ok', …}` listing reply, each with its
/// place in the login sequence.
fn push_listed(reply: &Reply, sessions: &mut Vec<(u64, SessionInfo)>) -> Result<(), StoreError> {
    let mut at = 1;
    while at < reply.0.len() {
        let member = reply.field(at)?;
        sessions.push((
            sequence_of(member)?,
            SessionInfo::new(
                session_of(member)?,
                reply.unsigned(at + 3)?,
                SessionTimes {
                    created_at: UnixTime::from_seconds(reply.int(at + 1)?),
                    rotated_at: UnixTime::from_seconds(reply.int(at + 2)?),
                    refresh_expires_at: UnixTime::from_seconds(reply.int(at + 4)?),
                    absolute_expires_at: UnixTime::from_seconds(reply.int(at + 5)?),
                },
            ),
        ));
        at += 6;
    }
    Ok(())
}

/// FNV-1a, 64 bits: a user's hash tag. Only spreads users over Cluster
/// slots; a collision (chosen or not) puts two users in one slot, nothing
/// more, since every record is checked against its subject.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

/// The session an index member names: its last 8 bytes are the tag.
fn session_of(member: &[u8]) -> Result<SessionId, StoreError> {
    let tag = member
        .last_chunk::<8>()
        .filter(|_| member.len() == 16)
        .ok_or_else(|| StoreError::corrupt("a malformed member in a Redis ledger user index"))?;
    Ok(SessionId::from_tag(u64::from_be_bytes(*tag)))
}

/// An index member's place in the user's login sequence: its first 8
/// bytes (a session recorded before the sequence has its login time
/// there, which sorts it after the sequence's small numbers among equal
/// login times: only the order of listing ties).
fn sequence_of(member: &[u8]) -> Result<u64, StoreError> {
    let sequence = member
        .first_chunk::<8>()
        .filter(|_| member.len() == 16)
        .ok_or_else(|| StoreError::corrupt("a malformed member in a Redis ledger user index"))?;
    Ok(u64::from_be_bytes(*sequence))
}

/// A writing script that Redis ran after its caller's deadline: it wrote
/// nothing. Logged, since the caller that gets it (rarely: the one it was
/// sent for has usually given up) sees a clock problem or a stall.
fn stale(op: &'static str) -> StoreError {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "token_refresh", op, "Redis ran a ledger call after its caller's deadline and refused it, writing nothing (a stall, or Redis's clock ahead of this host's)");
    StoreError::timeout(StaleCall(op))
}

/// The cause of [`stale`].
#[derive(Debug, thiserror::Error)]
#[error("Redis got to the ledger's {0} call after its deadline (a stall, or clock skew) and wrote nothing")]
struct StaleCall(&'static str);

/// A ledger call that got no answer within the response timeout: a WARN
/// (feature `tracing`) and `token_refresh_ledger_timeouts_total{op}`
/// (feature `metrics`). No key, subject or token is named.
#[cfg_attr(not(feature = "tracing"), expect(unused_variables, reason = "logging is compiled out"))]
fn timed_out(op: &'static str, timeout: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "token_refresh", op, timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), "a Redis ledger call timed out; if Redis runs it later, its deadline makes it write nothing");
    crate::recording::ledger_timeout(op);
}

/// The wall clock now plus `timeout`, in unix milliseconds.
fn not_after_of(timeout: Duration) -> Result<i64, StoreError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(StoreError::new)?;
    let deadline = now.checked_add(timeout).map_or(u128::MAX, |deadline| deadline.as_millis());
    // An absurd timeout (beyond what Lua numbers hold exactly) means no
    // deadline.
    Ok(i64::try_from(deadline).unwrap_or(LUA_EXACT).min(LUA_EXACT))
}

/// Whether an `INFO` refusal means only that the server hides `INFO` (an
/// ACL, a renamed command): it answered, its memory goes unchecked.
fn info_refused(error: &redis::RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoPerm)
        || error.detail().is_some_and(|detail| detail.contains("unknown command"))
}

/// Whether a Redis using `used` bytes of `max` (`maxmemory`; 0 for no
/// limit) counts as full: at its limit, or within 1 % of it (at most
/// 1 MiB). Redis refuses a login only while it is over the limit, and its
/// own buffers move by tens of kilobytes, so a full Redis hovers around
/// the limit, refusing most logins and letting one through whenever it
/// dips under: readiness must not flap with it.
fn is_full(used: u64, max: u64) -> bool {
    max > 0 && used.saturating_add((max / 100).min(1 << 20)) >= max
}

/// `used_memory` and `maxmemory` from an `INFO memory` reply.
fn memory_of(info: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        info.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some((field("used_memory")?, field("maxmemory")?))
}

/// A time or leeway the scripts can compute with exactly.
fn lua_int(value: i64) -> Result<i64, StoreError> {
    if (-LUA_EXACT..=LUA_EXACT).contains(&value) {
        Ok(value)
    } else {
        Err(StoreError::new(format!("time {value} is outside the range the Redis ledger computes with exactly")))
    }
}

fn parse_int(bytes: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(bytes).map_err(StoreError::new)?.parse().map_err(StoreError::new)
}

/// A node's reply inside a cluster-wide answer: an error reply is an error.
fn server_reply(reply: Value) -> Result<Value, redis::RedisError> {
    match reply {
        Value::ServerError(error) => Err(error.into()),
        other => Ok(other),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => format!("{other:?}"),
    }
}

/// The value in a `CONFIG GET maxmemory-policy` reply (RESP2 array or
/// RESP3 map).
fn policy_of(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(items) => match items.as_slice() {
            [_, value] => Some(text_of(value)),
            _ => None,
        },
        Value::Map(entries) => entries.first().map(|(_, value)| text_of(value)),
        _ => None,
    }
}

/// A script's reply: an array of strings.
struct Reply(Vec<Vec<u8>>);

impl Reply {
    fn field(&self, index: usize) -> Result<&[u8], StoreError> {
        self.0.get(index).map(Vec::as_slice).ok_or_else(|| StoreError::new("short reply from a ledger script"))
    }

    fn id(&self, index: usize) -> Result<[u8; 16], StoreError> {
        <[u8; 16]>::try_from(self.field(index)?).map_err(StoreError::new)
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        parse_int(self.field(index)?)
    }

    fn unsigned(&self, index: usize) -> Result<u64, StoreError> {
        u64::try_from(self.int(index)?).map_err(StoreError::new)
    }

    fn text(&self, index: usize) -> Result<String, StoreError> {
        String::from_utf8(self.field(index)?.to_vec()).map_err(StoreError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_beyond_exact_lua_numbers_are_refused() {
        assert!(lua_int(1_700_000_000).is_ok());
        assert!(lua_int(LUA_EXACT).is_ok());
        assert!(lua_int(i64::MAX).is_err());
        assert!(lua_int(i64::MIN).is_err());
    }

    #[test]
    fn cluster_targets_name_their_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/0").unwrap(), None);
        assert_eq!(
            cluster_nodes("redis-cluster://127.0.0.1:7101,127.0.0.1:7102/").unwrap(),
            Some(vec!["redis://127.0.0.1:7101".to_owned(), "redis://127.0.0.1:7102".to_owned()])
        );
        assert_eq!(
            cluster_nodes("redis-cluster://app:s3cret@a:1,b:2").unwrap(),
            Some(vec!["redis://app:s3cret@a:1".to_owned(), "redis://app:s3cret@b:2".to_owned()])
        );
        assert_eq!(
            cluster_nodes("rediss-cluster://a:1,b:2").unwrap(),
            Some(vec!["rediss://a:1".to_owned(), "rediss://b:2".to_owned()])
        );
        assert!(cluster_nodes("redis-cluster://").is_err());
        assert!(cluster_nodes("redis-cluster://a:1/0").is_err());
    }

    #[test]
    fn keys_share_the_users_hash_tag() {
        let session = SessionId::from_tag(0x0123_4567_89ab_cdef);
        let key = session_key("p:", "bob", session);
        let (index, base) = user_keys("p:", "bob");
        let tag = format!("{{{:016x}}}", fnv1a64(b"bob"));
        assert_eq!(key, format!("p:{tag}s:0123456789abcdef"));
        assert_eq!(index, format!("p:{tag}d:bob"));
        assert!(key.starts_with(&base));
        // The FNV-1a-64 test vector for "a".
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// The connection takes every `redis` command, as the plain ones do.
    #[test]
    fn the_connection_takes_async_commands() {
        fn commands<T: redis::AsyncCommands + Clone + Send + Sync + 'static>() {}
        commands::<RedisConnection>();
    }

    #[test]
    fn braces_in_the_prefix_are_refused() {
        assert!(check_prefix("auth:").is_ok());
        assert!(check_prefix("auth{x}:").is_err());
        assert!(check_prefix("}").is_err());
    }

    #[test]
    fn members_name_their_session_and_login() {
        let mut member = 42_u64.to_be_bytes().to_vec();
        member.extend_from_slice(&0xfeed_u64.to_be_bytes());
        assert_eq!(session_of(&member).unwrap(), SessionId::from_tag(0xfeed));
        assert_eq!(sequence_of(&member).unwrap(), 42);
        assert!(session_of(&member[1..]).is_err());
        assert!(sequence_of(&member[1..]).is_err());
    }

    /// Redis reads a script's flags only on its first line: each script
    /// must start with its own `#!lua` line, whose flags say how it
    /// behaves at maxmemory.
    #[test]
    fn every_script_starts_with_its_flags() {
        let scripts = [
            (include_str!("redis/create.lua"), "#!lua"),
            (include_str!("redis/rotate.lua"), "#!lua flags=allow-oom"),
            (include_str!("redis/revoke_session.lua"), "#!lua flags=allow-oom"),
            (include_str!("redis/revoke_batch.lua"), "#!lua flags=allow-oom"),
            (include_str!("redis/list_batch.lua"), "#!lua flags=no-writes"),
        ];
        for (file, shebang) in scripts {
            assert_eq!(file.lines().next(), Some(shebang));
            let source = script_source(file);
            assert_eq!(source.lines().next(), Some(shebang));
            assert_eq!(source.lines().filter(|line| line.starts_with("#!")).count(), 1, "one shebang, first");
            assert!(source.contains(&format!("local TOMBSTONE = {TOMBSTONE_SECONDS}\n")));
            assert!(source.contains("local function stale("));
        }
        assert!(!include_str!("redis/common.lua").starts_with("#!"));
    }

    #[test]
    fn full_means_at_the_limit_give_or_take_redis_own_buffers() {
        let max = 8 * 1024 * 1024;
        assert!(!is_full(0, 0) && !is_full(u64::MAX, 0), "no maxmemory, never full");
        assert!(is_full(max, max) && is_full(max + 1, max));
        assert!(is_full(max - max / 100, max), "within 1 %");
        assert!(!is_full(max - max / 100 - 1, max));
        let big = 100 << 30;
        assert!(is_full(big - (1 << 20), big) && !is_full(big - (1 << 20) - 1, big), "at most 1 MiB short");
    }

    #[test]
    fn info_memory_is_read() {
        let info = "# Memory\r\nused_memory:8388704\r\nused_memory_human:8.00M\r\nmaxmemory:8388608\r\n";
        assert_eq!(memory_of(info), Some((8_388_704, 8_388_608)));
        assert_eq!(memory_of("used_memory:1\r\n"), None);
    }

    #[test]
    fn a_deadline_is_the_wall_clock_plus_the_timeout() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
        let ledger_timeout = Duration::from_secs(5);
        let deadline = not_after_of(ledger_timeout).unwrap();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
        let deadline = u128::try_from(deadline).unwrap();
        assert!((before + 5000..=after + 5000).contains(&deadline));
        assert_eq!(not_after_of(Duration::MAX).unwrap(), LUA_EXACT, "no deadline beyond exact Lua numbers");
    }
}
