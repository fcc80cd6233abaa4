-- token-refresh: helpers shared by every ledger script (prepended to each,
-- after the script's own `#!lua` line and the `TOMBSTONE` constant the
-- ledger defines from `ledger::TOMBSTONE_SECONDS`).
--
-- A session is one hash; a user's sessions are one sorted set scored by
-- each session's end of life (`deadline`: the instant it stops being
-- live), whose members are 8 bytes of the session's place in the user's
-- login sequence (big-endian) then its 8-byte tag: among equal deadlines
-- (logins within one second end in the same second) the earliest login
-- sorts first, and a member names its session's key. The ended sessions
-- and the cap's victims are therefore the first members: a login touches
-- O(log n) entries, never the whole index. The login sequence is a
-- per-user counter (`INCR`), kept as long as the index.
-- Every key of a user shares the user's hash tag, so one script only ever
-- touches one Cluster slot.
--
-- Every writing script first checks `stale`, and reads and validates all
-- it needs before its first write (Redis does not roll a script back).

-- Seconds a key outlives its retention, for clock skew between instances:
-- an instance whose clock runs ahead must not drop a record that an
-- instance with a slower clock still needs to detect reuse.
local SLACK = 60

local function int(n)
  return string.format('%d', n)
end

local function hex(bytes)
  return string.format(string.rep('%02x', #bytes), string.byte(bytes, 1, -1))
end

-- ZREM of `members` (a list, possibly empty) in one call.
local function zrem_all(key, members)
  if #members > 0 then redis.call('ZREM', key, unpack(members)) end
end

-- Keeps `key` until `untl` on the caller's clock, plus the slack (never
-- less than the slack: EXPIRE with 0 would delete the key at once).
local function keep_until(key, untl, now)
  local ttl = untl - now
  if ttl < 0 then ttl = 0 end
  redis.call('EXPIRE', key, int(ttl + SLACK))
end

-- Makes the revoked session in `key` a tombstone: it answers "revoked"
-- for `TOMBSTONE` seconds (plus the slack), then its key expires and its
-- tokens are unknown. `LT` only ever shortens the key's life (a key
-- without expiry counts as infinite), so a second revocation or an older
-- tombstone is never extended.
local function tombstone(key)
  redis.call('EXPIRE', key, int(TOMBSTONE + SLACK), 'LT')
end

-- Whether this call comes too late to act: `not_after` is the caller's
-- deadline (unix milliseconds on the caller's clock: when it sent the call,
-- plus its response timeout), and Redis's clock is past it. A call queued
-- in the socket behind a stall then runs after its caller has given up
-- (a 500, which the client retries with the same token): acting on it
-- would consume the token behind the client's back and turn the retry into
-- reuse. A stale call answers 'stale' and writes nothing.
local function stale(not_after)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(not_after)
end

-- Like keep_until, but never shortens a longer expiry.
local function extend_until(key, untl, now)
  local ttl = untl - now
  if ttl < 0 then ttl = 0 end
  ttl = ttl + SLACK
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, int(ttl)) end
end

-- The index member of the session with login sequence number `seq` (0 to
-- 2^53) and the 8-byte tag `tag`.
local function member(seq, tag)
  local bytes = {}
  local n = seq
  for i = 8, 1, -1 do
    bytes[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(bytes) .. tag
end

-- The index member of the session in hash `key` (loaded as `s`, with its
-- `crt`). A session recorded before the login sequence has no `seq`: its
-- member starts with its login time instead.
local function member_of(key, s, tag)
  local seq = redis.call('HGET', key, 'seq')
  if seq then return member(tonumber(seq), tag) end
  return member(tonumber(s.crt), tag)
end

-- The key of the session an index member names; `base` is the user's
-- session key prefix (`PREFIX{H}s:`).
local function session_key(base, m)
  return base .. hex(string.sub(m, 9, 16))
end

-- Every field of a session hash.
local FIELDS = {'sub', 'acc', 'role', 'aid', 'aexp', 'rid', 'rexp', 'prev', 'gen', 'crt', 'abs', 'rot', 'rep',
  'rev', 'ret', 'lee'}
-- What liveness needs (`is_live`).
local LIVENESS = {'sub', 'rev', 'abs', 'rexp', 'lee'}

-- The session hash's `fields` (default: all) as a table, nil when the key
-- is missing. A record missing one of them is an error reply; every
-- script reads all it needs before its first write, so that error changes
-- nothing.
local function load(key, fields)
  fields = fields or FIELDS
  local v = redis.call('HMGET', key, unpack(fields))
  if not v[1] then return nil end
  local s = {}
  for i, name in ipairs(fields) do
    if not v[i] then return error('token_refresh: corrupt session record ' .. key) end
    s[name] = v[i]
  end
  return s
end

-- Not revoked, before its absolute expiry, and its current refresh token
-- not idle past its expiry plus the session's leeway.
local function is_live(s, now)
  return s.rev ~= '1' and now < tonumber(s.abs) and now < tonumber(s.rexp) + tonumber(s.lee)
end

-- The instant the session stops being live, unless revoked first: its
-- absolute expiry, or its refresh token's expiry plus its leeway.
local function deadline(s)
  return math.min(tonumber(s.abs), tonumber(s.rexp) + tonumber(s.lee))
end
