//! The session ledger on Redis, shared by every instance of a service.

use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::ids::{SessionId, TokenId};
use crate::ledger::{NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionLedger};
use crate::users::StoreError;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "token_refresh:";

/// How long to wait to connect, and for any reply.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Lua numbers are doubles: integers are exact up to 2^53.
const LUA_EXACT: i64 = 1 << 53;

/// Helpers shared by every script. `ARGV[1]` is always the key prefix.
const LUA_PRELUDE: &str = r#"
local prefix = ARGV[1]
local function hex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
local function int(n) return string.format('%d', n) end
-- Seconds a key outlives its retention, for clock skew between instances:
-- a caller whose clock runs ahead must not expire a record before a caller
-- with a slower clock may still present the token.
local SLACK = 60
-- Keeps `key` until `untl` on the caller's clock, plus the slack.
local function expire_at(key, untl, now)
  local ttl = untl - now
  if ttl < 0 then ttl = 0 end
  redis.call('EXPIRE', key, int(ttl + SLACK))
end
-- Like expire_at, but never shortens a longer expiry.
local function extend(key, untl, now)
  local ttl = untl - now
  if ttl < 0 then ttl = 0 end
  ttl = ttl + SLACK
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, int(ttl)) end
end
-- Lists access token `aid` as revoked until `untl`, if that is ahead.
local function revoke_access(aid, untl, now)
  if untl <= now then return end
  local key = prefix .. 'a:' .. hex(aid)
  local old = tonumber(redis.call('GET', key) or '0')
  if old == nil or untl > old then
    redis.call('SET', key, int(untl))
    expire_at(key, untl, now)
  end
end
local FIELDS = {'sub', 'acc', 'role', 'aid', 'aexp', 'rid', 'rexp', 'gen', 'abs', 'rot', 'rep', 'rev', 'ret'}
-- The session hash as a table, nil when missing; an error reply when a
-- field is missing (nothing has been written yet when this runs).
local function load_session(sid)
  local key = prefix .. 's:' .. hex(sid)
  local v = redis.call('HMGET', key, unpack(FIELDS))
  if not v[1] then return key, nil end
  local s = {}
  for i, name in ipairs(FIELDS) do
    if not v[i] then error('token_refresh: corrupt session record ' .. key) end
    s[name] = v[i]
  end
  return key, s
end
"#;

/// KEYS: session, token, subject index. ARGV: prefix, session id, sub, acc,
/// role, access id, access exp, refresh id, refresh exp, absolute exp,
/// created at, retain until.
const CREATE: &str = r#"
local now = tonumber(ARGV[11])
local ret = tonumber(ARGV[12])
redis.call('HSET', KEYS[1], 'sub', ARGV[3], 'acc', ARGV[4], 'role', ARGV[5], 'aid', ARGV[6], 'aexp', ARGV[7],
  'rid', ARGV[8], 'rexp', ARGV[9], 'gen', '0', 'abs', ARGV[10], 'rot', ARGV[11], 'rep', '0', 'rev', '0',
  'ret', ARGV[12])
expire_at(KEYS[1], ret, now)
redis.call('HSET', KEYS[2], 'sid', ARGV[2], 'gen', '0')
expire_at(KEYS[2], ret, now)
redis.call('SADD', KEYS[3], ARGV[2])
extend(KEYS[3], ret, now)
return 'OK'
"#;

/// KEYS: presented token, successor token. ARGV: prefix, subject, now,
/// leeway, grace window, max replays, then the successor: sub, acc, role,
/// access id, access exp, refresh id, refresh exp.
const ROTATE: &str = r#"
local now = tonumber(ARGV[3])
local leeway = tonumber(ARGV[4])
local tok = redis.call('HMGET', KEYS[1], 'sid', 'gen')
if not tok[1] or not tok[2] then return {'unknown'} end
local sid = tok[1]
local skey, s = load_session(sid)
if not s then return {'unknown'} end
if s.sub ~= ARGV[2] then return {'unknown'} end
if s.rev == '1' then return {'revoked', sid} end
local abs = tonumber(s.abs)
if now >= abs then return {'expired', sid} end
local tgen = tonumber(tok[2])
local gen = tonumber(s.gen)
if tgen == gen then
  if now >= tonumber(s.rexp) + leeway then return {'expired', sid} end
  local rexp = ARGV[13]
  if tonumber(rexp) > abs then rexp = s.abs end
  revoke_access(s.aid, tonumber(s.aexp) + leeway, now)
  local ngen = int(gen + 1)
  local tret = tonumber(rexp) + leeway
  local sret = math.max(tonumber(s.ret), tret)
  redis.call('HSET', KEYS[2], 'sid', sid, 'gen', ngen)
  expire_at(KEYS[2], tret, now)
  redis.call('HSET', skey, 'sub', ARGV[7], 'acc', ARGV[8], 'role', ARGV[9], 'aid', ARGV[10], 'aexp', ARGV[11],
    'rid', ARGV[12], 'rexp', rexp, 'gen', ngen, 'rot', ARGV[3], 'rep', '0', 'ret', int(sret))
  expire_at(skey, sret, now)
  extend(prefix .. 'u:' .. s.sub, sret, now)
  return {'rotated', sid, ngen, ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], rexp}
end
local window = tonumber(ARGV[5])
local rep = tonumber(s.rep)
if tgen + 1 == gen and window > 0 and now - tonumber(s.rot) <= window and rep < tonumber(ARGV[6]) then
  rep = rep + 1
  redis.call('HSET', skey, 'rep', int(rep))
  return {'replayed', sid, s.gen, s.sub, s.acc, s.role, s.aid, s.aexp, s.rid, s.rexp, int(rep)}
end
if tgen < gen then
  redis.call('HSET', skey, 'rev', '1')
  revoke_access(s.aid, tonumber(s.aexp) + leeway, now)
  return {'reused', sid, tok[2], s.gen}
end
return {'unknown'}
"#;

/// Revokes one session; its access token stays listed until its exp plus
/// the leeway the session was kept with.
const REVOKE_SESSION_FN: &str = r#"
local function revoke_session(skey, s, now)
  redis.call('HSET', skey, 'rev', '1')
  local leeway = math.max(tonumber(s.ret) - tonumber(s.rexp), 0)
  revoke_access(s.aid, tonumber(s.aexp) + leeway, now)
end
"#;

/// KEYS: token. ARGV: prefix, now.
const REVOKE: &str = r#"
local now = tonumber(ARGV[2])
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return {'unknown'} end
local skey, s = load_session(sid)
if not s then return {'unknown'} end
if s.rev == '1' then return {'already', sid} end
revoke_session(skey, s, now)
return {'revoked', sid}
"#;

/// KEYS: subject index. ARGV: prefix, now. Validates every session before
/// the first write.
const REVOKE_USER: &str = r#"
local now = tonumber(ARGV[2])
local live = {}
local gone = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local skey, s = load_session(sid)
  if not s then
    table.insert(gone, sid)
  elseif s.rev ~= '1' then
    table.insert(live, {skey, s})
  end
end
for _, sid in ipairs(gone) do redis.call('SREM', KEYS[1], sid) end
for _, entry in ipairs(live) do revoke_session(entry[1], entry[2], now) end
return #live
"#;

static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{LUA_PRELUDE}{CREATE}")));
static ROTATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{LUA_PRELUDE}{ROTATE}")));
static REVOKE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{LUA_PRELUDE}{REVOKE_SESSION_FN}{REVOKE}")));
static REVOKE_USER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{LUA_PRELUDE}{REVOKE_SESSION_FN}{REVOKE_USER}")));

/// The [`SessionLedger`] on Redis: one ledger shared by every instance
/// that connects to the same server and key prefix.
///
/// # How it keeps the contract
///
/// - **Consume once.** Every rotation is one Lua script (`EVALSHA`, loaded
///   on first use by [`redis::Script`]). Redis runs a script to completion
///   before it serves any other command, so the read of the session, the
///   decision (the same as [`MemoryLedger`]'s) and every write it implies
///   happen as one step for all clients of that server: of N concurrent
///   rotations of one token, exactly one sees it current.
/// - **No half rotation.** A script validates everything it reads before
///   its first write, so it never stops half way. A connection lost while a
///   script runs loses only the reply: the caller gets a [`StoreError`]
///   (a 500) and the token is either untouched (the script never arrived)
///   or consumed with its successor recorded. Requests are never retried
///   by the client (a retried rotation would look like reuse).
/// - **Logout, [`revoke_user`](SessionLedger::revoke_user)** and login are
///   scripts too.
/// - **Retention.** Every key expires (`EXPIRE`) when its retention ends:
///   a token record at its `exp` plus leeway, a session at its latest
///   refresh expiry plus leeway, a revoked access token at its `exp` plus
///   leeway, a subject's session index with its last session. The TTL is
///   `retain_until − now` on the ledger's clock (the `now` each call
///   carries) plus 60 s of slack: the same instant as `EXPIREAT
///   retain_until` (plus slack) when that clock is the wall clock, but
///   independent of the Redis server's clock, and it keeps tests with an
///   injected clock honest. The slack covers skew between instances: one
///   whose clock runs ahead does not drop a record another may still need
///   for reuse detection. Decisions never depend on a key having expired:
///   expiry checks compare stored times with `now` inside the scripts.
/// - **No bearer material.** Ids are stored as 16 raw bytes (key names
///   spell them in hex), expiries as unix seconds, plus the claims needed
///   to re-sign a pair; never a token.
///
/// # Deployment notes
///
/// Use a single primary (standalone, or replicated with Sentinel). The
/// scripts derive a session's key from the token record they read, which
/// Redis Cluster does not route. Durability is Redis's: with asynchronous
/// replication or `appendfsync everysec`, a failover or crash can forget
/// the last rotations, making a consumed token current again; use the
/// PostgreSQL ledger where that matters.
///
/// # Keys
///
/// Under the configured prefix (default `token_refresh:`): `t:<token
/// hex>` (hash: session, generation), `s:<session hex>` (hash: the current
/// pair's claims and the rotation state), `a:<access hex>` (string: revoked
/// until), `u:<subject>` (set of session ids, for `revoke_user`).
///
/// # Use
///
/// Cloning is cheap and shares the connection (a multiplexed
/// `ConnectionManager` that reconnects by itself after a lost connection).
///
/// ```no_run
/// # async fn demo() -> Result<(), token_refresh::StoreError> {
/// use token_refresh::{MemoryUserStore, RedisLedger, Store};
///
/// let ledger = RedisLedger::connect("redis://127.0.0.1:6379/0", "auth:").await?;
/// let store = Store::new(MemoryUserStore::default(), ledger);
/// # Ok(()) }
/// ```
///
/// [`MemoryLedger`]: crate::MemoryLedger
#[derive(Clone)]
pub struct RedisLedger {
    connection: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedger").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisLedger {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` needs the
    /// `redis` crate's TLS feature) with keys under `prefix`, and checks the
    /// server answers. Fails when the server is unreachable, so a service
    /// learns at start, not at its first refresh.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let connection = ConnectionManager::new_with_config(client, config).await.map_err(StoreError::new)?;
        let ledger = Self::new(connection, prefix);
        ledger.ping().await?;
        Ok(ledger)
    }

    /// A ledger on an existing connection, keys under `prefix`.
    pub fn new(connection: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { connection, prefix: prefix.into() }
    }

    /// The connection (a clone sharing the same socket).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Checks the server answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<String>(&mut connection).await.map_err(StoreError::new)?;
        Ok(())
    }

    fn key(&self, kind: &str, id: &uuid::Uuid) -> String {
        let mut buf = uuid::Uuid::encode_buffer();
        format!("{}{kind}:{}", self.prefix, id.simple().encode_lower(&mut buf))
    }

    fn subject_key(&self, subject: &str) -> Vec<u8> {
        [self.prefix.as_bytes(), b"u:", subject.as_bytes()].concat()
    }

    async fn create_now(&self, new: &NewSession) -> Result<(), StoreError> {
        let pair = &new.pair;
        let retain_until = pair.refresh_expires_at.saturating_add(new.leeway);
        let mut invocation = CREATE_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("s", new.session.as_uuid()))
            .key(self.key("t", pair.refresh_id.as_uuid()))
            .key(self.subject_key(&pair.subject))
            .arg(&self.prefix)
            .arg(new.session.as_bytes())
            .arg(&pair.subject)
            .arg(&pair.account)
            .arg(&pair.role)
            .arg(pair.access_id.as_bytes())
            .arg(lua_int(pair.access_expires_at)?)
            .arg(pair.refresh_id.as_bytes())
            .arg(lua_int(pair.refresh_expires_at)?)
            .arg(lua_int(new.absolute_expires_at)?)
            .arg(lua_int(new.created_at)?)
            .arg(lua_int(retain_until)?);
        let mut connection = self.connection.clone();
        invocation.invoke_async::<String>(&mut connection).await.map_err(StoreError::new)?;
        Ok(())
    }

    async fn rotate_now(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        let successor = &request.successor;
        let mut invocation = ROTATE_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("t", request.presented.as_uuid()))
            .key(self.key("t", successor.refresh_id.as_uuid()))
            .arg(&self.prefix)
            .arg(&request.subject)
            .arg(lua_int(request.now)?)
            .arg(lua_int(request.leeway)?)
            .arg(lua_int(request.grace.window)?)
            .arg(request.grace.max_replays)
            .arg(&successor.subject)
            .arg(&successor.account)
            .arg(&successor.role)
            .arg(successor.access_id.as_bytes())
            .arg(lua_int(successor.access_expires_at)?)
            .arg(successor.refresh_id.as_bytes())
            .arg(lua_int(successor.refresh_expires_at)?);
        let mut connection = self.connection.clone();
        let reply: Vec<Vec<u8>> = invocation.invoke_async(&mut connection).await.map_err(StoreError::new)?;
        let reply = Reply(reply);
        Ok(match reply.tag()? {
            b"unknown" => Rotation::Unknown,
            b"revoked" => Rotation::Revoked { session: reply.session()? },
            b"expired" => Rotation::Expired { session: reply.session()? },
            b"rotated" => {
                Rotation::Rotated { session: reply.session()?, generation: reply.unsigned(2)?, pair: reply.pair(3)? }
            }
            b"replayed" => Rotation::Replayed {
                session: reply.session()?,
                generation: reply.unsigned(2)?,
                pair: reply.pair(3)?,
                replay: u32::try_from(reply.unsigned(10)?).map_err(StoreError::new)?,
            },
            b"reused" => Rotation::Reused {
                session: reply.session()?,
                presented_generation: reply.unsigned(2)?,
                current_generation: reply.unsigned(3)?,
            },
            _ => return Err(StoreError::new("unexpected reply from the rotation script")),
        })
    }

    async fn revoke_now(&self, presented: TokenId, now: i64) -> Result<Revocation, StoreError> {
        let mut invocation = REVOKE_SCRIPT.prepare_invoke();
        invocation.key(self.key("t", presented.as_uuid())).arg(&self.prefix).arg(lua_int(now)?);
        let mut connection = self.connection.clone();
        let reply: Vec<Vec<u8>> = invocation.invoke_async(&mut connection).await.map_err(StoreError::new)?;
        let reply = Reply(reply);
        Ok(match reply.tag()? {
            b"unknown" => Revocation::Unknown,
            b"already" => Revocation::AlreadyRevoked { session: reply.session()? },
            b"revoked" => Revocation::Revoked { session: reply.session()? },
            _ => return Err(StoreError::new("unexpected reply from the revoke script")),
        })
    }

    async fn revoke_user_now(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        let mut invocation = REVOKE_USER_SCRIPT.prepare_invoke();
        invocation.key(self.subject_key(subject)).arg(&self.prefix).arg(lua_int(now)?);
        let mut connection = self.connection.clone();
        invocation.invoke_async::<u64>(&mut connection).await.map_err(StoreError::new)
    }

    async fn is_access_revoked_now(&self, access_id: TokenId, now: i64) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let until: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key("a", access_id.as_uuid()))
            .query_async(&mut connection)
            .await
            .map_err(StoreError::new)?;
        match until {
            None => Ok(false),
            Some(bytes) => Ok(parse_int(&bytes)? > now),
        }
    }
}

impl SessionLedger for RedisLedger {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.create_now(session)
    }

    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        self.rotate_now(request)
    }

    fn revoke(&self, presented: TokenId, now: i64) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
        self.revoke_now(presented, now)
    }

    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.revoke_user_now(subject, now)
    }

    fn is_access_revoked(&self, access_id: TokenId, now: i64) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.is_access_revoked_now(access_id, now)
    }
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

/// A script's reply: a tag, then fields.
struct Reply(Vec<Vec<u8>>);

impl Reply {
    fn field(&self, index: usize) -> Result<&[u8], StoreError> {
        self.0.get(index).map(Vec::as_slice).ok_or_else(|| StoreError::new("short reply from a ledger script"))
    }

    fn tag(&self) -> Result<&[u8], StoreError> {
        self.field(0)
    }

    fn id(&self, index: usize) -> Result<[u8; 16], StoreError> {
        <[u8; 16]>::try_from(self.field(index)?).map_err(StoreError::new)
    }

    fn session(&self) -> Result<SessionId, StoreError> {
        Ok(SessionId::from_bytes(self.id(1)?))
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

    /// Seven fields from `start`: sub, acc, role, access id, access exp,
    /// refresh id, refresh exp.
    fn pair(&self, start: usize) -> Result<PairClaims, StoreError> {
        Ok(PairClaims {
            subject: self.text(start)?,
            account: self.text(start + 1)?,
            role: self.text(start + 2)?,
            access_id: TokenId::from_bytes(self.id(start + 3)?),
            access_expires_at: self.int(start + 4)?,
            refresh_id: TokenId::from_bytes(self.id(start + 5)?),
            refresh_expires_at: self.int(start + 6)?,
        })
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
}
