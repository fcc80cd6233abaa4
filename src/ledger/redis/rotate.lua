#!lua flags=allow-oom
-- `allow-oom`: a rotation rewrites its session's fields in place (Redis
-- does not grow), so a full Redis keeps refreshing its users instead of
-- refusing every refresh.
--
-- rotate: one refresh, `ledger::decide` applied to the session's one key.
-- KEYS: the session's key, the user's index. ARGV: subject, presented
-- refresh id, now, leeway, grace window, max replays, then the successor:
-- acc, role, access id, access exp, refresh id, refresh exp; then the
-- session's tag (8 bytes), not_after (unix ms). A rotation moves the
-- session to its new end of life in the index; a detected reuse takes it
-- out and leaves the record a tombstone.
-- Reply: {'stale'} (too late, nothing written) | {'unknown'} | {'revoked'}
-- | {'expired'} | {'rotated', gen, rexp}
-- | {'replayed', gen, replay, acc, role, aid, aexp, rid, rexp}
-- | {'reused', presented gen or '', current gen}.
local skey, index, subject, presented = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local leeway = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if stale(ARGV[14]) then return {'stale'} end
local s = load(skey)
if not s or s.sub ~= subject then return {'unknown'} end
if s.rev == '1' then return {'revoked'} end
local m = member_of(skey, s, ARGV[13])
local abs = tonumber(s.abs)
if now >= abs then return {'expired'} end
local gen = tonumber(s.gen)
if presented == s.rid then
  -- Idle expiry with the session's own leeway, the instant its liveness
  -- ends (`ledger::decide`).
  if now >= tonumber(s.rexp) + tonumber(s.lee) then return {'expired'} end
  local rexp = math.min(tonumber(ARGV[12]), abs)
  local ngen = gen + 1
  -- Kept until the current tokens expire plus the session's leeway, and
  -- never for less than before.
  local ret = math.max(tonumber(s.ret), math.max(rexp, tonumber(ARGV[10])) + tonumber(s.lee))
  redis.call('HSET', skey, 'acc', ARGV[7], 'role', ARGV[8], 'aid', ARGV[9], 'aexp', ARGV[10], 'rid', ARGV[11],
    'rexp', int(rexp), 'prev', s.rid, 'gen', int(ngen), 'rot', ARGV[3], 'rep', '0', 'ret', int(ret))
  keep_until(skey, ret, now)
  -- Plain ZADD: a session an instance with a faster clock already took
  -- out of the index (ended by its clock, not by ours) comes back.
  redis.call('ZADD', index, int(math.min(abs, rexp + tonumber(s.lee))), m)
  extend_until(index, abs, now)
  return {'rotated', int(ngen), int(rexp)}
end
local is_predecessor = s.prev ~= '' and presented == s.prev
local since = now - tonumber(s.rot)
local replays = tonumber(s.rep)
if is_predecessor and window > 0 and since >= -leeway and since <= window and replays < tonumber(ARGV[6]) then
  replays = replays + 1
  redis.call('HSET', skey, 'rep', int(replays))
  return {'replayed', s.gen, int(replays), s.acc, s.role, s.aid, s.aexp, s.rid, s.rexp}
end
redis.call('HSET', skey, 'rev', '1')
tombstone(skey)
redis.call('ZREM', index, m)
local presented_gen = ''
if is_predecessor then presented_gen = int(math.max(gen - 1, 0)) end
return {'reused', presented_gen, s.gen}
