-- adopt: bring one session hash into sessionwatch's indexes. Used by `import` (with the
-- hash's fields: written only if the key does not exist, so a restore never overwrites
-- live data) and by `reindex` (no fields: index a hash another app wrote).
-- ARGV[OP..]: sid, then field/value pairs. Returns 1 if the session was newly indexed.
local sid = ARGV[OP]
local skey = P_SESSION .. sid
local TIME_FIELDS = {login_time = true, last_seen = true, expires_at = true,
  max_expires_at = true, logout_time = true}

-- A timestamp that is present must be a finite number or not a number at all (an ISO
-- date another app wrote is read as absent); NaN and infinities are refused.
local function bad_time(key, name, value)
  local n = value and tonumber(value)
  if n and (n ~= n or n == math.huge or n == -math.huge) then
    return refuse(key, 'field ' .. name .. ' is not a finite number')
  end
  return nil
end

local h
if #ARGV > OP then
  if redis.call('EXISTS', skey) == 1 then return 0 end
  local given = {}
  for i = OP + 1, #ARGV, 2 do
    if TIME_FIELDS[ARGV[i]] then
      local bad = bad_time(skey, ARGV[i], ARGV[i + 1])
      if bad then return redis.error_reply(bad) end
    end
    given[ARGV[i]] = ARGV[i + 1]
  end
  h = {given.username or false, given.status or false, given.app or false, given.type or false,
    given.ip or false, given.login_time or false, given.last_seen or false,
    given.expires_at or false, given.logout_time or false, given.pol or false}
else
  h = redis.pcall('HMGET', skey, 'username', 'status', 'app', 'type', 'ip', 'login_time',
    'last_seen', 'expires_at', 'logout_time', 'pol')
  if h.err then return 0 end
end
if not h[1] then return 0 end
local username, status, app, stype, ip = h[1], h[2] or 'active', h[3] or '', h[4] or '', h[5] or ''
for i, name in ipairs({'login_time', 'last_seen', 'expires_at', 'logout_time'}) do
  local bad = bad_time(skey, name, h[5 + i])
  if bad then return redis.error_reply(bad) end
end
local active_key, history_key = P_ACTIVE .. username, P_HISTORY .. username
local bad = check_types({active_key, 'set', history_key, 'list', O_SEEN, 'set'})
  or check_zsets({G_SEARCH, G_EXP, G_SEEN, G_LOGIN, G_ENDED, G_USER, G_APPLEX, unpack(OVERVIEW_ZSETS)})
  or check_counter_field(G_APP, app) or check_counter_field(G_TYPE, stype)
  or check_overview(username, ip)
if bad then return redis.error_reply(bad) end

if #ARGV > OP then redis.call('HSET', skey, unpack(ARGV, OP + 1)) end
local login_t = tonumber(h[6]) or NOW
local seen_t = tonumber(h[7]) or login_t
local exp = tonumber(h[8])
if not exp and status == 'active' then
  exp = seen_t + IDLE
  redis.call('HSET', skey, 'expires_at', fmt(exp))
end
local members = {0, 'u:' .. username, 0, 's:' .. sid}
if app ~= '' then members[#members + 1] = 0; members[#members + 1] = 'a:' .. app .. '|' .. sid end
if ip ~= '' then members[#members + 1] = 0; members[#members + 1] = 'i:' .. ip .. '|' .. sid end
redis.call('ZADD', G_SEARCH, unpack(members))
redis.call('SET', G_MARKER, '1')
redis.call('SADD', O_SEEN, username)
local added = 0
if status == 'active' then
  -- Counters count the members of the expiry index, due or not, so a later sweep that
  -- ends a past-due session takes out exactly what was put in here.
  added = redis.call('ZADD', G_EXP, 'NX', exp, sid)
  if added == 1 then
    adjust_counter(G_APP, app, 1)
    adjust_counter(G_TYPE, stype, 1)
    overview_adjust(username, ip, 1)
  end
  if exp > NOW then
    redis.call('ZADD', G_SEEN, 'NX', seen_t, sid)
    redis.call('ZADD', G_LOGIN, 'NX', login_t, sid)
    redis.call('ZADD', G_USER, 0, username .. '\0' .. sid)
    redis.call('ZADD', G_APPLEX, 0, app .. '\0' .. sid)
    local active_ttl = redis.call('TTL', active_key)
    redis.call('SADD', active_key, sid)
    extend_ttl(active_key, USER_TTL, active_ttl)
    redis.call('PEXPIRE', skey, gc_ms(exp, math.max(stored_retention(h[10]), SWEEP_GRACE)))
  end
else
  local ended_at = tonumber(h[9]) or seen_t
  added = redis.call('ZADD', G_ENDED, 'NX', ended_at + stored_retention(h[10]), sid)
end
if not redis.call('LPOS', history_key, sid) then
  local history_ttl = redis.call('TTL', history_key)
  redis.call('RPUSH', history_key, sid)
  redis.call('LTRIM', history_key, 0, HISTORY_MAX - 1)
  extend_ttl(history_key, HISTORY_TTL, history_ttl)
end
return added
