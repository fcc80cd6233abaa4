#!lua flags=allow-oom
-- `allow-oom`: revoking only shrinks Redis, and must work when it is full.
--
-- revoke_user, one batch: the first `limit` members of the user's index
-- (those ending soonest). KEYS: the user's index. ARGV: session key base,
-- subject, now, limit, not_after (unix ms). Revokes the live sessions
-- among them (each a tombstone for `TOMBSTONE` seconds) and takes every
-- one out of the index, so the next batch starts at the front again.
-- Reply: {revoked, more ('1'|'0')} | {'stale'} (too late, nothing
-- written). Bounded work per call: the caller loops.
local index, base, subject = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
if stale(ARGV[5]) then return {'stale'} end
local members = redis.call('ZRANGE', index, 0, limit - 1)
local revoked = {}
for _, m in ipairs(members) do
  local key = session_key(base, m)
  local s = load(key, LIVENESS)
  if s and s.sub == subject and is_live(s, now) then
    table.insert(revoked, key)
  end
end
for _, key in ipairs(revoked) do
  redis.call('HSET', key, 'rev', '1')
  tombstone(key)
end
zrem_all(index, members)
local more = '0'
if #members == limit then more = '1' end
return {int(#revoked), more}
