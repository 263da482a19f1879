-- validate: read a session and, at most once per touch interval, slide its idle expiry
-- (never past max_expires_at). Never revives an ended session: status is checked here.
-- Lean on purpose (no shared prelude): this runs on every request.
-- KEYS: idx expiry, idx seen. ARGV: session prefix, cache prefix, active-set prefix, now
-- (empty: read the Redis server's clock), touch interval, retention, cache ttl, user-key
-- ttl, sid.
-- Returns {0, now} (not valid), {1, hash, now} (valid), or {2, hash, last_seen, expires_at}
-- (touched). ``now`` is the time the script decided with.
local sid = ARGV[9]
local skey = ARGV[1] .. sid
local h = redis.pcall('HGETALL', skey)
if h.err then return redis.error_reply('SWDATA ' .. string.sub(skey, 1, 200) ..
  ' is not a hash; nothing was changed') end
local now_s = ARGV[4]
if now_s == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now_s = t[1] .. string.format('.%03d', math.floor(tonumber(t[2]) / 1000))
end
if #h == 0 then return {0, now_s} end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if f.status and f.status ~= 'active' then return {0, now_s} end
local now = tonumber(now_s)
-- A stored time that is present but unreadable (NaN, infinite, not a number) fails closed.
local function finite(v)
  local n = tonumber(v)
  if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
  return nil
end
local exp = finite(f.expires_at)
if f.expires_at and not exp then return {0, now_s} end
if exp and exp <= now then return {0, now_s} end
local max_exp = finite(f.max_expires_at)
if f.max_expires_at and not max_exp then return {0, now_s} end
-- The policy the session was created under ('idle/absolute/retention'); older sessions
-- carry idle_ttl only. Sessions that carry it and no max_expires_at end at login_time
-- plus the absolute lifetime.
local idle, retention
if f.pol then
  local i, a, r = string.match(f.pol, '^(%d+)/(%d+)/(%d+)$')
  idle, retention = tonumber(i), tonumber(r)
  if not f.max_expires_at and a then
    local login = finite(f.login_time)
    if login then max_exp = login + tonumber(a) end
  end
else
  idle = finite(f.idle_ttl)
end
local last = finite(f.last_seen) or 0
if now - last < tonumber(ARGV[5]) or not idle then return {1, h, now_s} end
local t1, t2 = redis.call('TYPE', KEYS[1])['ok'], redis.call('TYPE', KEYS[2])['ok']
if (t1 ~= 'zset' and t1 ~= 'none') or (t2 ~= 'zset' and t2 ~= 'none') then
  return redis.error_reply('SWDATA ' .. KEYS[1] .. ' or ' .. KEYS[2] ..
    ' is not a sorted set; nothing was changed')
end
local new_exp = now + idle
if max_exp and new_exp > max_exp then new_exp = max_exp end
local new_exp_s = string.format('%.3f', new_exp)
-- An active hash outlives its expiry by at least a day, so a sweep can still end it.
local keep = math.max(retention or tonumber(ARGV[6]), 86400)
redis.call('HSET', skey, 'last_seen', now_s, 'expires_at', new_exp_s)
redis.call('PEXPIRE', skey, math.floor((new_exp - now + keep) * 1000))
redis.call('ZADD', KEYS[1], 'XX', new_exp, sid)
redis.call('ZADD', KEYS[2], 'XX', now, sid)
if f.username then
  -- shared with other apps: only ever extended
  local akey, ttl = ARGV[3] .. f.username, tonumber(ARGV[8])
  local before = redis.call('TTL', akey)
  if before >= 0 and before < ttl then redis.call('EXPIRE', akey, ttl) end
end
redis.call('EXPIRE', ARGV[2] .. sid, ARGV[7])
return {2, h, now_s, new_exp_s}
