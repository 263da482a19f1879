-- anon_save: create or change an anonymous session (data kept before login), by the
-- Redis server's clock: idle expiry is the key's TTL, slid on every save, and the index
-- score is the idle deadline. Every precondition is checked before the first write.
-- KEYS: anonymous session key, anonymous index, [an anonymous session key this one
-- replaces (session.clear() then new data): deleted in the same call].
-- ARGV: aid, mode ('new' or 'update'), idle ttl, size cap in bytes (0: none), app,
-- replaced aid (or ''), number of set pairs N, N field/value pairs, fields to delete.
-- Returns 1 saved, 2 ended (no data left), 0 gone (update of a session that no longer
-- exists: the caller starts a new one); errors SIDCOLLISION, TOOBIG <bytes>, WRONGTYPE.
local key, idx = KEYS[1], KEYS[2]
local aid, mode, idle, cap, app = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local old_aid, nsets = ARGV[6], tonumber(ARGV[7])
local first_del = 8 + 2 * nsets

local kind = redis.call('TYPE', key).ok
if mode == 'new' then
  if kind ~= 'none' then return redis.error_reply('SIDCOLLISION anonymous id already exists') end
elseif kind == 'none' then
  return 0
elseif kind ~= 'hash' then
  return redis.error_reply('WRONGTYPE anonymous session key is not a hash')
end
local ikind = redis.call('TYPE', idx).ok
if ikind ~= 'zset' and ikind ~= 'none' then
  return redis.error_reply('WRONGTYPE anonymous index is not a sorted set')
end

-- The data's size after this change: every d:<key> field name and value, in bytes.
local size = {}
if mode ~= 'new' then
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'd:' then size[h[i]] = #h[i] + #h[i + 1] end
  end
end
for i = 8, first_del - 1, 2 do size[ARGV[i]] = #ARGV[i] + #ARGV[i + 1] end
for i = first_del, #ARGV do size[ARGV[i]] = nil end
local total = 0
for _, n in pairs(size) do total = total + n end
if cap > 0 and total > cap then return redis.error_reply('TOOBIG ' .. total) end

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if old_aid ~= '' and KEYS[3] then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', idx, old_aid)
end
if next(size) == nil then
  -- Nothing left: the session ends, as Flask drops an emptied session's cookie.
  redis.call('DEL', key)
  redis.call('ZREM', idx, aid)
  return 2
end
if first_del <= #ARGV and mode ~= 'new' then
  redis.call('HDEL', key, unpack(ARGV, first_del, #ARGV))
end
local now_s = string.format('%.3f', now)
if mode == 'new' then
  redis.call('HSET', key, 'created_at', now_s, 'last_seen', now_s, 'app', app)
else
  redis.call('HSET', key, 'last_seen', now_s)
end
if nsets > 0 then redis.call('HSET', key, unpack(ARGV, 8, first_del - 1)) end
redis.call('PEXPIRE', key, idle * 1000)
redis.call('ZADD', idx, now + idle, aid)
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
return 1
