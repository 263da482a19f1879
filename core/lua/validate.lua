-- validate: read a session and, at most once per touch interval, slide its idle expiry
-- (never past max_expires_at). Never revives an ended session: status is checked here.
-- Lean on purpose (no shared prelude): this runs on every request.
-- KEYS: idx expiry, idx seen. ARGV: session prefix, cache prefix, active-set prefix, now,
-- touch interval, retention, cache ttl, user-key ttl, sid.
-- Returns 0 (not valid), {1, hash} (valid), or {2, hash, last_seen, expires_at} (touched).
local sid = ARGV[9]
local h = redis.pcall('HGETALL', ARGV[1] .. sid)
if h.err then return redis.error_reply('WRONGTYPE session key is not a hash') end
if #h == 0 then return 0 end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if f.status and f.status ~= 'active' then return 0 end
local now = tonumber(ARGV[4])
local exp = tonumber(f.expires_at)
if exp and exp <= now then return 0 end
local last = tonumber(f.last_seen) or 0
if now - last < tonumber(ARGV[5]) or not f.idle_ttl then return {1, h} end
local new_exp = now + tonumber(f.idle_ttl)
local max_exp = tonumber(f.max_expires_at)
if max_exp and new_exp > max_exp then new_exp = max_exp end
local new_exp_s = string.format('%.3f', new_exp)
redis.call('HSET', ARGV[1] .. sid, 'last_seen', ARGV[4], 'expires_at', new_exp_s)
redis.call('PEXPIRE', ARGV[1] .. sid, math.floor((new_exp - now + tonumber(ARGV[6])) * 1000))
redis.call('ZADD', KEYS[1], 'XX', new_exp, sid)
redis.call('ZADD', KEYS[2], 'XX', now, sid)
if f.username then redis.call('EXPIRE', ARGV[3] .. f.username, ARGV[8]) end
redis.call('EXPIRE', ARGV[2] .. sid, ARGV[7])
return {2, h, ARGV[4], new_exp_s}
