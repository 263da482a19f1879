-- anon_end: end an anonymous session (session.clear(), or its data emptied).
-- KEYS: anonymous session key, anonymous index. ARGV: aid. Returns 1 if it existed.
local ikind = redis.call('TYPE', KEYS[2]).ok
if ikind ~= 'zset' and ikind ~= 'none' then
  return redis.error_reply('WRONGTYPE anonymous index is not a sorted set')
end
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
