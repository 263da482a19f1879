-- session_data: change the web framework's session data (d:<key> fields) of an active
-- user session. Never revives an ended or expired session (expiry by the Redis server's
-- clock). No event: apps may write their session on every request, and the event log is
-- for lifecycle changes. Every precondition is checked before the first write.
-- KEYS: session key. ARGV: size cap in bytes (0: none), number of set pairs N, N
-- field/value pairs, fields to delete.
-- Returns 1 saved, 0 not active; errors TOOBIG <bytes>, WRONGTYPE.
local key = KEYS[1]
local cap, nsets = tonumber(ARGV[1]), tonumber(ARGV[2])
local first_del = 3 + 2 * nsets
local h = redis.pcall('HGETALL', key)
if h.err then return redis.error_reply('WRONGTYPE session key is not a hash') end
if #h == 0 then return 0 end
local size, status, exp = {}, nil, nil
for i = 1, #h, 2 do
  local f = h[i]
  if string.sub(f, 1, 2) == 'd:' then
    size[f] = #f + #h[i + 1]
  elseif f == 'status' then
    status = h[i + 1]
  elseif f == 'expires_at' then
    exp = tonumber(h[i + 1])
  end
end
if status and status ~= 'active' then return 0 end
local t = redis.call('TIME')
if exp and exp <= tonumber(t[1]) + tonumber(t[2]) / 1000000 then return 0 end
for i = 3, first_del - 1, 2 do size[ARGV[i]] = #ARGV[i] + #ARGV[i + 1] end
for i = first_del, #ARGV do size[ARGV[i]] = nil end
local total = 0
for _, n in pairs(size) do total = total + n end
if cap > 0 and total > cap then return redis.error_reply('TOOBIG ' .. total) end
if first_del <= #ARGV then redis.call('HDEL', key, unpack(ARGV, first_del, #ARGV)) end
if nsets > 0 then redis.call('HSET', key, unpack(ARGV, 3, first_del - 1)) end
return 1
