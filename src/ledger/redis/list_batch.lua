#!lua flags=no-writes
-- `no-writes`: a listing only reads (Redis then also runs it at maxmemory).
--
-- sessions: the live sessions of the subject among index members.
-- KEYS: the user's index. ARGV: session key base, subject, now, limit,
-- then either nothing (read the members that end after `now` from the
-- index, at most `limit` of them) or the members to look at (at most
-- `limit`, read beforehand by the caller). Reply: {'more'} when the index
-- holds more than `limit` such members and none were given (the caller then
-- reads them itself and sends them in batches); otherwise {'ok', then per
-- live session: member, created, rotated, gen, rexp, abs}. Bounded work
-- per call.
local index, base, subject = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local members = {}
if #ARGV > 4 then
  for i = 5, #ARGV do table.insert(members, ARGV[i]) end
else
  members = redis.call('ZRANGE', index, '(' .. int(now), '+inf', 'BYSCORE', 'LIMIT', 0, limit + 1)
  if #members > limit then return {'more'} end
end
local LISTED = {'sub', 'rev', 'abs', 'rexp', 'lee', 'crt', 'rot', 'gen'}
local reply = {'ok'}
for _, m in ipairs(members) do
  local s = load(session_key(base, m), LISTED)
  if s and s.sub == subject and is_live(s, now) then
    for _, v in ipairs({m, s.crt, s.rot, s.gen, s.rexp, s.abs}) do table.insert(reply, v) end
  end
end
return reply
