-- create: a login. KEYS: the new session's key, the user's index.
-- ARGV: session key base, tag (8 bytes), sub, acc, role, access id,
-- access exp, refresh id, refresh exp, created at (= now), absolute exp,
-- leeway, retain until, cap.
-- Reply: the members of the sessions evicted to stay within the cap,
-- oldest first; an error reply, changing nothing, if the key exists.
local skey, index, base, tag, subject = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[10])
local abs = tonumber(ARGV[11])
local cap = tonumber(ARGV[14])
if redis.call('EXISTS', skey) == 1 then
  return redis.error_reply('ERR token_refresh: the session tag is taken')
end
local evicted = {}
-- Below the cap nothing is counted: the index holds at most `cap` members
-- (plus sessions dead for less than the slack), so a login costs
-- O(log n) below the cap and O(cap) at it.
if redis.call('ZCARD', index) >= cap then
  local live, gone = {}, {}
  for _, m in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local key = session_key(base, m)
    local s = load(key, LIVENESS)
    if s and s.sub == subject and is_live(s, now) then
      table.insert(live, {key, m})
    elseif is_gone(s, subject, now) then
      table.insert(gone, m)
    end
  end
  zrem_all(index, gone)
  for i = 1, #live + 1 - cap do
    local entry = live[i]
    redis.call('HSET', entry[1], 'rev', '1')
    redis.call('ZREM', index, entry[2])
    table.insert(evicted, entry[2])
  end
end
redis.call('HSET', skey, 'sub', subject, 'acc', ARGV[4], 'role', ARGV[5], 'aid', ARGV[6], 'aexp', ARGV[7],
  'rid', ARGV[8], 'rexp', ARGV[9], 'prev', '', 'gen', '0', 'crt', ARGV[10], 'abs', ARGV[11], 'rot', ARGV[10],
  'rep', '0', 'rev', '0', 'ret', ARGV[13], 'lee', ARGV[12])
keep_until(skey, tonumber(ARGV[13]), now)
redis.call('ZADD', index, 0, member(now, tag))
-- A session can be live only before its absolute expiry: an index kept
-- until its members' latest absolute expiry lists every live session.
extend_until(index, abs, now)
return evicted
