-- sweep: one bounded batch of expiry and purge work. Safe to run from many processes at
-- once: end_session ends a session only while it is still active.
-- ARGV[OP..]: batch size, purge cutoff (ended before this time are purged).
-- Returns {expired ended, purged, more work left (0/1)}.
local batch = tonumber(ARGV[OP])
local cutoff = tonumber(ARGV[OP + 1])
local expired, purged = 0, 0
local due = redis.call('ZRANGEBYSCORE', G_EXP, '-inf', NOW, 'LIMIT', 0, batch)
for _, sid in ipairs(due) do
  local h = redis.pcall('HMGET', P_SESSION .. sid, 'status', 'expires_at', 'username', 'app')
  local exp = (not h.err) and tonumber(h[2])
  if (not h.err) and h[1] == 'active' and exp and exp > NOW then
    redis.call('ZADD', G_EXP, exp, sid) -- index behind the data: repair, do not end
  elseif (not h.err) and h[3] and not h[2] and (not h[1] or h[1] == 'active') then
    -- another app's session with no expiry of its own (reindexed): never ended here; look
    -- again when its Redis TTL runs out
    local pttl = redis.call('PTTL', P_SESSION .. sid)
    redis.call('ZADD', G_EXP, pttl > 0 and fmt(NOW + pttl / 1000) or '+inf', sid)
  elseif end_session(sid, 'expired', 'expired', ACTOR) then
    expired = expired + 1
  elseif h.err then
    drop_from_active_indexes(sid)
  else
    drop_from_active_indexes(sid, h[3], h[4])
  end
end
local old = redis.call('ZRANGEBYSCORE', G_ENDED, '-inf', cutoff, 'LIMIT', 0, batch)
for _, sid in ipairs(old) do
  local skey = P_SESSION .. sid
  local h = redis.pcall('HMGET', skey, 'username', 'status', 'ip', 'app')
  redis.call('ZREM', G_ENDED, sid)
  redis.call('ZREM', G_SEARCH, 's:' .. sid)
  if not h.err and h[2] ~= 'active' then
    redis.call('DEL', skey, P_CACHE .. sid)
    if h[3] then redis.call('ZREM', G_SEARCH, 'i:' .. h[3] .. '|' .. sid) end
    if h[4] then redis.call('ZREM', G_SEARCH, 'a:' .. h[4] .. '|' .. sid) end
    if h[1] then
      local history_key = P_HISTORY .. h[1]
      redis.call('LREM', history_key, 0, sid)
      if redis.call('EXISTS', history_key, P_ACTIVE .. h[1]) == 0 then
        redis.call('ZREM', G_SEARCH, 'u:' .. h[1])
      end
    end
  end
  purged = purged + 1
end
local more = 0
if #due == batch or #old == batch then more = 1 end
return {expired, purged, more}
