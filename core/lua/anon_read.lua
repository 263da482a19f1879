-- anon_read: read an anonymous session and, at most once per touch interval, slide its
-- idle expiry by the Redis server's clock. Lean and standalone: it runs on every request
-- that reads the session of a visitor who is not logged in.
-- KEYS: anonymous session key, anonymous index. ARGV: aid, touch interval, idle ttl.
-- Returns 0 (no such session) or the session hash as a field/value list.
local h = redis.pcall('HGETALL', KEYS[1])
if h.err then return redis.error_reply('WRONGTYPE anonymous session key is not a hash') end
if #h == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last
for i = 1, #h, 2 do
  if h[i] == 'last_seen' then last = tonumber(h[i + 1]) end
end
if last and now - last < tonumber(ARGV[2]) then return h end
-- Precondition of every write below: the index is a sorted set (or absent).
local ikind = redis.call('TYPE', KEYS[2]).ok
if ikind ~= 'zset' and ikind ~= 'none' then return h end
local idle = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'last_seen', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], idle * 1000)
redis.call('ZADD', KEYS[2], now + idle, ARGV[1])
return h
