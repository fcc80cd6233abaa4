-- sessions, one batch: the live sessions among the next `limit` members of
-- the user's index after the cursor, oldest first; drops gone members.
-- KEYS: the user's index. ARGV: session key base, subject, now, cursor
-- (a ZRANGEBYLEX start), limit. Reply: {more ('1'|'0'), last member read,
-- then per live session: member, created, rotated, gen, rexp, abs}.
local index, base, subject = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[5])
local LISTED = {'sub', 'rev', 'abs', 'rexp', 'lee', 'crt', 'rot', 'gen'}
local members = redis.call('ZRANGEBYLEX', index, ARGV[4], '+', 'LIMIT', 0, limit)
local reply, gone = {'0', members[#members] or ''}, {}
if #members == limit then reply[1] = '1' end
for _, m in ipairs(members) do
  local s = load(session_key(base, m), LISTED)
  if s and s.sub == subject and is_live(s, now) then
    for _, v in ipairs({m, s.crt, s.rot, s.gen, s.rexp, s.abs}) do table.insert(reply, v) end
  elseif is_gone(s, subject, now) then
    table.insert(gone, m)
  end
end
zrem_all(index, gone)
return reply
