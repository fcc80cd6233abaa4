#!lua
-- No `allow-oom`: a login grows Redis, so at `maxmemory` Redis refuses the
-- whole script before it runs (an OOM error, `StoreError::full`) instead
-- of letting its writes through once a first write has passed.
--
-- create: a login. KEYS: the new session's key, the user's index, the
-- user's login counter. ARGV: session key base, tag (8 bytes), sub, acc,
-- role, access id, access exp, refresh id, refresh exp, created at
-- (= now), absolute exp, leeway, retain until, cap, not_after (unix ms).
-- Reply: {'stale'} (too late, nothing written) | {'created', then the
-- members of the live sessions evicted to stay within the cap, nearest
-- their end first}; an error reply, changing nothing, if the key exists.
local skey, index, counter, base, tag, subject = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[10])
local abs = tonumber(ARGV[11])
local cap = tonumber(ARGV[14])
if stale(ARGV[15]) then return {'stale'} end
if redis.call('EXISTS', skey) == 1 then
  return redis.error_reply('ERR token_refresh: the session tag is taken')
end
-- Every read and check comes before the first write: Redis does not roll a
-- script back, so an error reply (a corrupt victim record) after a write
-- would leave half a login (sessions evicted, none created).
-- Sessions that ended more than the slack ago are dead on every clock:
-- they leave the index (their records expire on their own). They sort
-- first, so the victims are the entries right after them.
local dead = redis.call('ZCOUNT', index, '-inf', int(now - SLACK))
local listed = redis.call('ZCARD', index) - dead
local victims, evict = {}, {}
if listed >= cap then
  -- The first entries end soonest, the dead (for less than the slack)
  -- before any live one: a live session goes only when `cap` are live.
  -- A dead one only leaves the index: its record stays until its
  -- retention ends, so its tokens keep answering as they did (expired,
  -- or reuse).
  victims = redis.call('ZRANGE', index, dead, dead + listed - cap, 'WITHSCORES')
  for i = 1, #victims, 2 do
    local m = victims[i]
    if tonumber(victims[i + 1]) > now then
      local key = session_key(base, m)
      local s = load(key, LIVENESS)
      if s and s.sub == subject and is_live(s, now) then
        table.insert(evict, {key, m})
      end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', int(now - SLACK))
-- A live victim goes record and all: its tokens become unknown (401, as a
-- revoked one's), and a flood of logins leaves the cap's records behind,
-- not one per login.
local reply = {'created'}
for _, victim in ipairs(evict) do
  redis.call('DEL', victim[1])
  table.insert(reply, victim[2])
end
for i = 1, #victims, 2 do
  redis.call('ZREM', index, victims[i])
end
local seq = redis.call('INCR', counter)
redis.call('HSET', skey, 'sub', subject, 'acc', ARGV[4], 'role', ARGV[5], 'aid', ARGV[6], 'aexp', ARGV[7],
  'rid', ARGV[8], 'rexp', ARGV[9], 'prev', '', 'gen', '0', 'crt', ARGV[10], 'abs', ARGV[11], 'rot', ARGV[10],
  'rep', '0', 'rev', '0', 'ret', ARGV[13], 'lee', ARGV[12], 'seq', int(seq))
keep_until(skey, tonumber(ARGV[13]), now)
local ends = math.min(abs, tonumber(ARGV[9]) + tonumber(ARGV[12]))
redis.call('ZADD', index, int(ends), member(seq, tag))
-- A session can be live only before its absolute expiry: an index kept
-- until its members' latest absolute expiry lists every live session. The
-- counter lives as long, so the sequence never restarts under a member.
extend_until(index, abs, now)
extend_until(counter, abs, now)
return reply
