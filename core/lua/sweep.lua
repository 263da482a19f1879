-- sweep: one bounded batch of expiry and purge work. Safe to run from many processes at
-- once: end_session ends a session only while it is still active. Each session's own
-- stored expiry and retention decide, not this sweeper's policy.
-- ARGV[OP]: batch size.
-- Returns {expired ended, purged, more work left (0/1), skipped}.
local batch = tonumber(ARGV[OP])
local bad = check_end_globals() -- the search index among them
if bad then return redis.error_reply(bad) end
local RETRY_LATER = 3600

-- Reads and checks first: a session whose own keys another writer changed the type of
-- is left untouched and looked at again later; nothing is half-ended.
local due = redis.call('ZRANGEBYSCORE', G_EXP, '-inf', NOW, 'LIMIT', 0, batch)
local plan, rows = {}, {}
for i, sid in ipairs(due) do
  local h = redis.pcall('HMGET', P_SESSION .. sid, 'status', 'expires_at', 'username', 'app')
  rows[i] = h
  local exp = (not h.err) and tonumber(h[2])
  if (not h.err) and h[1] == 'active' and exp and exp == exp and exp > NOW then
    plan[i] = 'repair' -- index behind the data: repair, do not end
  elseif (not h.err) and h[3] and not h[2] and (not h[1] or h[1] == 'active') then
    -- another app's session with no expiry of its own (reindexed): never ended here; look
    -- again when its Redis TTL runs out
    plan[i] = 'no expiry'
  elseif check_end_session(sid) then
    plan[i] = 'skip'
  else
    plan[i] = 'end'
  end
end
local old = redis.call('ZRANGEBYSCORE', G_ENDED, '-inf', NOW, 'LIMIT', 0, batch)
local old_rows = {}
for i, sid in ipairs(old) do
  local h = redis.pcall('HMGET', P_SESSION .. sid, 'username', 'status', 'ip', 'app', 'logout_time',
    'pol')
  local row = {h = h}
  if not h.err and h[2] ~= 'active' then
    local ended_at = tonumber(h[5])
    local purge_at = ended_at and ended_at == ended_at and ended_at + stored_retention(h[6])
    if purge_at and purge_at > NOW then row.rescore = purge_at end
    if h[1] then row.history_ok = check_types({P_HISTORY .. h[1], 'list'}) == nil end
  end
  old_rows[i] = row
end

local expired, purged, skipped = 0, 0, 0
for i, sid in ipairs(due) do
  if plan[i] == 'repair' then
    redis.call('ZADD', G_EXP, tonumber(redis.call('HGET', P_SESSION .. sid, 'expires_at')), sid)
  elseif plan[i] == 'no expiry' then
    local pttl = redis.call('PTTL', P_SESSION .. sid)
    redis.call('ZADD', G_EXP, pttl > 0 and fmt(NOW + pttl / 1000) or '+inf', sid)
  elseif plan[i] == 'skip' then
    redis.call('ZADD', G_EXP, NOW + RETRY_LATER, sid)
    skipped = skipped + 1
  elseif end_session(sid, 'expired', 'expired', ACTOR) then
    expired = expired + 1
  elseif rows[i].err then
    drop_from_active_indexes(sid)
  else
    drop_from_active_indexes(sid, rows[i][3], rows[i][4])
  end
end
for i, sid in ipairs(old) do
  local row, h = old_rows[i], old_rows[i].h
  local skey = P_SESSION .. sid
  if row.rescore then
    -- ended under a longer retention than its index score says (older layout): keep it
    redis.call('ZADD', G_ENDED, row.rescore, sid)
  else
    redis.call('ZREM', G_ENDED, sid)
    redis.call('ZREM', G_SEARCH, 's:' .. sid)
    if not h.err and h[2] ~= 'active' then
      redis.call('DEL', skey, P_CACHE .. sid)
      if h[3] then redis.call('ZREM', G_SEARCH, 'i:' .. h[3] .. '|' .. sid) end
      if h[4] then redis.call('ZREM', G_SEARCH, 'a:' .. h[4] .. '|' .. sid) end
      if h[1] then
        local history_key = P_HISTORY .. h[1]
        if row.history_ok then redis.call('LREM', history_key, 0, sid) end
        if redis.call('EXISTS', history_key, P_ACTIVE .. h[1]) == 0 then
          redis.call('ZREM', G_SEARCH, 'u:' .. h[1])
        end
      end
    end
    purged = purged + 1
  end
end
local more = 0
if #due == batch or #old == batch then more = 1 end
return {expired, purged, more, skipped}
