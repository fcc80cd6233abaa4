-- revoke_session: logout. KEYS: the session's key, the user's index.
-- ARGV: subject, tag (8 bytes). Reply: 'revoked' | 'already' | 'unknown'.
local skey, index, subject = KEYS[1], KEYS[2], ARGV[1]
local s = load(skey, {'sub', 'rev', 'crt'})
if not s or s.sub ~= subject then return 'unknown' end
redis.call('ZREM', index, member(tonumber(s.crt), ARGV[2]))
if s.rev == '1' then return 'already' end
redis.call('HSET', skey, 'rev', '1')
return 'revoked'
