-- revoke_user, one batch: the next `limit` members of the user's index
-- after the cursor. KEYS: the user's index. ARGV: session key base,
-- subject, now, cursor (a ZRANGEBYLEX start: '-' or '(' .. member), limit.
-- Revokes the live sessions, drops gone ones from the index, keeps those
-- dead for less than the slack. Reply: {revoked, more ('1'|'0'), last
-- member read}. Bounded work per call: the caller loops.
local index, base, subject = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[5])
local members = redis.call('ZRANGEBYLEX', index, ARGV[4], '+', 'LIMIT', 0, limit)
local live, gone = {}, {}
for _, m in ipairs(members) do
  local key = session_key(base, m)
  local s = load(key, LIVENESS)
  if s and s.sub == subject and is_live(s, now) then
    table.insert(live, {key, m})
  elseif is_gone(s, subject, now) then
    table.insert(gone, m)
  end
end
zrem_all(index, gone)
local revoked = {}
for _, entry in ipairs(live) do
  redis.call('HSET', entry[1], 'rev', '1')
  table.insert(revoked, entry[2])
end
zrem_all(index, revoked)
local more = '0'
if #members == limit then more = '1' end
return {int(#live), more, members[#members] or ''}
