#!lua flags=allow-oom
-- `allow-oom`: a logout only shrinks Redis, and must work when it is full.
--
-- revoke_session: logout. KEYS: the session's key, the user's index.
-- ARGV: subject, tag (8 bytes), not_after (unix ms).
-- Reply: 'revoked' | 'already' | 'unknown' | 'stale' (too late, nothing
-- written).
local skey, index, subject = KEYS[1], KEYS[2], ARGV[1]
if stale(ARGV[3]) then return 'stale' end
local s = load(skey, {'sub', 'rev', 'crt'})
if not s or s.sub ~= subject then return 'unknown' end
redis.call('ZREM', index, member_of(skey, s, ARGV[2]))
-- Also for one revoked already: a tombstone of an older version (kept for
-- its whole retention) gets the short life too.
tombstone(skey)
if s.rev == '1' then return 'already' end
redis.call('HSET', skey, 'rev', '1')
return 'revoked'
