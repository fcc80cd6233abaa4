-- revoke_user, one batch: the first `limit` members of the user's index
-- (those ending soonest). KEYS: the user's index. ARGV: session key base,
-- subject, now, limit. Revokes the live sessions among them and takes
-- every one out of the index, so the next batch starts at the front again.
-- Reply: {revoked, more ('1'|'0')}. Bounded work per call: the caller
-- loops.
local index, base, subject = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local members = redis.call('ZRANGE', index, 0, limit - 1)
local revoked = 0
for _, m in ipairs(members) do
  local key = session_key(base, m)
  local s = load(key, LIVENESS)
  if s and s.sub == subject and is_live(s, now) then
    redis.call('HSET', key, 'rev', '1')
    revoked = revoked + 1
  end
end
zrem_all(index, members)
local more = '0'
if #members == limit then more = '1' end
return {int(revoked), more}
