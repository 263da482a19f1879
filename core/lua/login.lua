-- login: create the session and its index entries, enforce the per-user cap, emit.
-- The client computes the expiry and encodes the event and the cache summary (JSON built
-- in Lua costs Redis CPU that every other client waits for); the script stores them.
-- ARGV[OP..]: sid, username, app, type, ip, expires_at, event body (JSON without seq),
-- cache summary (JSON), then the hash's field/value pairs.
local sid, username, app, stype = ARGV[OP], ARGV[OP + 1], ARGV[OP + 2], ARGV[OP + 3]
local ip, exp_s, event_body, cache_json = ARGV[OP + 4], ARGV[OP + 5], ARGV[OP + 6], ARGV[OP + 7]
local exp = tonumber(exp_s)
local skey = P_SESSION .. sid
if redis.call('EXISTS', skey) == 1 then
  return redis.error_reply('SIDCOLLISION session id already exists')
end
local active_key = P_ACTIVE .. username
local history_key = P_HISTORY .. username

-- Every precondition before the first write.
local active_kind, history_kind = kind_of(active_key), kind_of(history_key)
local bad = check_kind(active_key, active_kind, 'set') or check_kind(history_key, history_kind, 'list')
  or check_types({O_SEEN, 'set'})
  or check_zsets({G_EXP, G_SEEN, G_LOGIN, G_SEARCH, G_USER, G_APPLEX, unpack(OVERVIEW_ZSETS)})
  or check_emit({K_LOGINS_MIN}) or check_counter_field(G_APP, app)
  or check_counter_field(G_TYPE, stype) or check_overview(username, ip)
  or check_counter_fields(K_KINDS_MIN, {'login', 'new_user'})
if bad then return redis.error_reply(bad) end

-- Per-user cap, decided before writing: stale members are dropped, expired ones ended,
-- then the oldest beyond the cap.
local stale, expired, evict = {}, {}, {}
if MAX_SESSIONS > 0 and redis.call('SCARD', active_key) + 1 > MAX_SESSIONS then
  local live = {}
  for _, m in ipairs(redis.call('SMEMBERS', active_key)) do
    local h = redis.pcall('HMGET', P_SESSION .. m, 'status', 'expires_at', 'login_time')
    if h.err or (not h[1] and not h[3]) then
      stale[#stale + 1] = m
    elseif h[1] and h[1] ~= 'active' then
      stale[#stale + 1] = m
    elseif h[2] and tonumber(h[2]) and tonumber(h[2]) <= NOW then
      expired[#expired + 1] = m
    else
      live[#live + 1] = {m, tonumber(h[3]) or 0}
    end
  end
  local excess = #live + 1 - MAX_SESSIONS
  if excess > 0 then
    table.sort(live, function(a, b)
      if a[2] == b[2] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
    for i = 1, excess do evict[#evict + 1] = live[i][1] end
  end
  if #expired + #evict > 0 then
    bad = check_end_globals()
    for _, m in ipairs(expired) do bad = bad or check_end_session(m) end
    for _, m in ipairs(evict) do bad = bad or check_end_session(m) end
    if bad then return redis.error_reply(bad) end
  end
end

-- SADD comes first on purpose: a user whose ACL may end sessions but not create them
-- (the admin dashboard) is refused here, before anything is written (Lua has no rollback).
redis.call('SADD', active_key, sid)
extend_ttl_after(active_key, USER_TTL, active_kind)
redis.call('HSET', skey, unpack(ARGV, OP + 8))
redis.call('PEXPIRE', skey, gc_ms(exp, math.max(RETENTION, SWEEP_GRACE)))
local history_len = redis.call('LPUSH', history_key, sid)
if history_len > HISTORY_MAX then
  redis.call('LTRIM', history_key, 0, HISTORY_MAX - 1)
end
extend_ttl_after(history_key, HISTORY_TTL, history_kind)

redis.call('ZADD', G_EXP, exp, sid)
redis.call('ZADD', G_SEEN, NOW, sid)
redis.call('ZADD', G_LOGIN, NOW, sid)
redis.call('ZADD', G_USER, 0, username .. '\0' .. sid)
redis.call('ZADD', G_APPLEX, 0, app .. '\0' .. sid)
-- The search index: by id and address. By user and app, an active session is found in
-- the two lex indexes above; end_session adds its 'u:' and 'a:' entries when it ends.
if ip ~= '' then
  redis.call('ZADD', G_SEARCH, 0, 's:' .. sid, 0, 'i:' .. ip .. '|' .. sid)
else
  redis.call('ZADD', G_SEARCH, 0, 's:' .. sid)
end
redis.call('HINCRBY', G_APP, app, 1)
redis.call('HINCRBY', G_TYPE, stype, 1)
count_minute(K_LOGINS_MIN)
count_kind('login')
overview_adjust(username, ip, 1)
-- A username never seen before (and with no history left from before the seen set existed).
if redis.call('SADD', O_SEEN, username) == 1 and history_len == 1 then
  count_kind('new_user')
  event_body = string.sub(event_body, 1, -2) .. ',"new_user":true}'
end
-- The marker says this Redis has sessionwatch indexes (readers probe it with the expiry
-- index): set with a user's first session, not on every login.
if history_len == 1 then redis.call('SET', G_MARKER, '1') end
redis.call('SET', P_CACHE .. sid, cache_json, 'EX', CACHE_TTL)
drop_anonymous()
emit_body(event_body)

local ended = {}
for _, m in ipairs(stale) do redis.call('SREM', active_key, m) end
for _, m in ipairs(expired) do end_session(m, 'expired', 'expired', 'system') end
local reason = 'evicted'
if MAX_SESSIONS == 1 then reason = 'replaced' end
for _, m in ipairs(evict) do
  if end_session(m, reason, reason, ACTOR) then ended[#ended + 1] = m end
end
return ended
