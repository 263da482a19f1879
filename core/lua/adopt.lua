-- adopt: bring one session hash into sessionwatch's indexes. Used by `import` (with the
-- hash's fields: written only if the key does not exist, so a restore never overwrites
-- live data) and by `reindex` (no fields: index a hash another app wrote).
-- ARGV[OP..]: sid, then field/value pairs. Returns 1 if the session was newly indexed.
local sid = ARGV[OP]
local skey = P_SESSION .. sid
if #ARGV > OP then
  if redis.call('EXISTS', skey) == 1 then return 0 end
  local fields = {}
  for i = OP + 1, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', skey, unpack(fields))
end
local h = redis.pcall('HMGET', skey, 'username', 'status', 'app', 'type', 'ip', 'login_time',
  'last_seen', 'expires_at', 'logout_time')
if h.err or not h[1] then return 0 end
local username, status, app, stype, ip = h[1], h[2] or 'active', h[3] or '', h[4] or '', h[5] or ''
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
if status == 'active' and exp > NOW then
  added = redis.call('ZADD', G_EXP, 'NX', exp, sid)
  redis.call('ZADD', G_SEEN, 'NX', seen_t, sid)
  redis.call('ZADD', G_LOGIN, 'NX', login_t, sid)
  redis.call('ZADD', G_USER, 0, username .. '\0' .. sid)
  redis.call('ZADD', G_APPLEX, 0, app .. '\0' .. sid)
  redis.call('SADD', P_ACTIVE .. username, sid)
  redis.call('EXPIRE', P_ACTIVE .. username, USER_TTL)
  if added == 1 then
    adjust_counter(G_APP, app, 1)
    adjust_counter(G_TYPE, stype, 1)
    overview_adjust(username, ip, 1)
  end
  redis.call('PEXPIRE', skey, gc_ms(exp))
elseif status == 'active' then
  -- past its expiry but never ended: index it as due, so the next sweep ends it once
  added = redis.call('ZADD', G_EXP, 'NX', exp, sid)
else
  added = redis.call('ZADD', G_ENDED, 'NX', tonumber(h[9]) or seen_t, sid)
end
local history_key = P_HISTORY .. username
if not redis.call('LPOS', history_key, sid) then
  redis.call('RPUSH', history_key, sid)
  redis.call('LTRIM', history_key, 0, HISTORY_MAX - 1)
  redis.call('EXPIRE', history_key, HISTORY_TTL)
end
return added
