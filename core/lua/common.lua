-- Shared prelude of every sessionwatch write script (prepended by core/scripts.py).
-- KEYS: the global keys of Schema.global_keys(), the per-minute keys, the overview keys,
--       the settings hash (Schema.settings), then (login only) the anonymous keys.
-- ARGV: channel, the four key prefixes of Schema.lua_layout(), now (empty: read the Redis
--       server's clock), the policy values of ops.policy_args(), actor, the publish command
--       (PUBLISH, or SPUBLISH in the bucketed layout); then the operation's own arguments.
-- Per-session and per-user key names are built only from those prefixes.

-- Effects replication, so a script that read TIME may write afterwards on Redis 6.2
-- (Redis 7 always replicates effects; there the call does nothing).
if redis.replicate_commands then redis.replicate_commands() end

local G_EVENTS, G_SEQ, G_EXP, G_SEEN, G_LOGIN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local G_ENDED, G_SEARCH, G_APP, G_TYPE, G_MARKER = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local G_USER, G_APPLEX = KEYS[11], KEYS[12] -- lex sort indexes: '<user>\0<sid>', '<app>\0<sid>'
local K_LOGINS_MIN, K_ENDS_MIN, K_KINDS_MIN = KEYS[13], KEYS[14], KEYS[15]
-- The overview (Schema.overview_keys): top addresses and users, kept up at login and end.
local O_IP_SESS, O_IP_USERS, O_USER_SESS, O_USER_IPS = KEYS[16], KEYS[17], KEYS[18], KEYS[19]
local O_PAIRS, O_SEEN, O_FLAGS = KEYS[20], KEYS[21], KEYS[22]
-- Settings every writer shares (Schema.settings): the event-log cap.
local G_SETTINGS = KEYS[23]
-- Optional, login only: the anonymous session this login replaces, and the anonymous index.
local K_ANON, K_ANON_IDX = KEYS[24], KEYS[25]

local CHANNEL = ARGV[1]
local P_SESSION, P_CACHE, P_HISTORY, P_ACTIVE = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local NOW_S = ARGV[6]
if NOW_S == '' then
  -- One clock: expiry decisions follow the Redis server's clock, not the app server's.
  local t = redis.call('TIME')
  NOW_S = t[1] .. string.format('.%03d', math.floor(tonumber(t[2]) / 1000))
end
local NOW = tonumber(NOW_S)
local EVENT_MAX = tonumber(ARGV[7])
local RETENTION = tonumber(ARGV[8])
local CACHE_TTL = tonumber(ARGV[9])
local USER_TTL = tonumber(ARGV[10])
local HISTORY_TTL = tonumber(ARGV[11])
local HISTORY_MAX = tonumber(ARGV[12])
local IDLE = tonumber(ARGV[13])
local ABSOLUTE = tonumber(ARGV[14])
local MAX_SESSIONS = tonumber(ARGV[15])
local ACTOR = ARGV[16]
-- SPUBLISH keeps a bucket's events on its shard (Redis Cluster); PUBLISH on one node.
local SHARDED = ARGV[17] == 'SPUBLISH'
local OP = 18 -- index of the first operation argument

local COUNTER_TTL = 7200

-- An expired session nobody has swept yet keeps its hash at least this long after its
-- expiry, so a sweep can still end it and take it out of the counters.
local SWEEP_GRACE = 86400

local function fmt(ts)
  return string.format('%.3f', ts)
end

-- Milliseconds a session hash is kept: until it expires, then for ``retention`` seconds.
local function gc_ms(expires_at, retention)
  local ms = math.floor((expires_at - NOW + (retention or RETENTION)) * 1000)
  if ms < 1000 then ms = 1000 end
  return ms
end

-- The policy a session was created under, stored as 'idle/absolute/retention' in its
-- ``pol`` field. Sessions written before it existed, or by other apps, fall back to the
-- caller's policy.
local function stored_retention(pol)
  local r = pol and tonumber(string.match(pol, '^%d+/%d+/(%d+)$'))
  return r or RETENTION
end

-- Per-user keys are shared by every app writing this Redis: their TTL is only ever
-- extended, never shortened, and a key someone made persistent stays persistent.
-- ``before`` is the key's TTL read before this script touched it (-2: it did not exist).
local function extend_ttl(key, ttl, before)
  if before == -2 or (before >= 0 and before < ttl) then redis.call('EXPIRE', key, ttl) end
end

-- Redis 7's EXPIRE ... GT only ever lengthens a TTL and leaves a persistent key
-- persistent: one call where Redis 6.2 needs TTL then EXPIRE.
local HAS_EXPIRE_GT = (redis.REDIS_VERSION_NUM or 0) >= 0x070000

-- extend_ttl() after a write that does not change the TTL (SADD, LPUSH), for a key whose
-- type was read before it (``kind``: 'none' when it did not exist).
local function extend_ttl_after(key, ttl, kind)
  if kind == 'none' then
    redis.call('EXPIRE', key, ttl)
  elseif HAS_EXPIRE_GT then
    redis.call('EXPIRE', key, ttl, 'GT')
  else
    extend_ttl(key, ttl, redis.call('TTL', key))
  end
end

-- All or nothing. Lua has no rollback, so each script checks every key it will write
-- (type, and the integers that INCR/HINCRBY will change) before its first write, and
-- refuses with an SWDATA error naming the key. Commands that cannot fail on another
-- type (SET, DEL, EXPIRE, PUBLISH) need no check.
local function refuse(key, problem)
  return 'SWDATA ' .. string.sub(key, 1, 200) .. ' ' .. problem .. '; nothing was changed'
end

local function kind_of(key)
  return redis.call('TYPE', key)['ok']
end

-- One key whose type was already read (``kind``); absent is fine.
local function check_kind(key, kind, want)
  if kind ~= 'none' and kind ~= want then return refuse(key, 'is a ' .. kind .. ', not a ' .. want) end
  return nil
end

-- ``list`` alternates key and wanted type; absent keys are fine.
local function check_types(list)
  for i = 1, #list, 2 do
    local t = kind_of(list[i])
    if t ~= 'none' and t ~= list[i + 1] then
      return refuse(list[i], 'is a ' .. t .. ', not a ' .. list[i + 1])
    end
  end
  return nil
end

local function is_int(v)
  return #v <= 18 and string.match(v, '^%-?%d+$') ~= nil
end

-- A string that INCR will change: absent, or an integer.
local function check_counter(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return refuse(key, 'is a ' .. kind_of(key) .. ', not a string') end
  if v and not is_int(v) then return refuse(key, 'does not hold an integer') end
  return nil
end

-- A hash field that HINCRBY will change: absent, or an integer.
local function check_counter_field(key, field)
  if not field or field == '' then return nil end
  local v = redis.pcall('HGET', key, field)
  if type(v) == 'table' then return refuse(key, 'is a ' .. kind_of(key) .. ', not a hash') end
  if v and not is_int(v) then return refuse(key, 'field ' .. field .. ' does not hold an integer') end
  return nil
end

-- The sorted sets only sessionwatch writes: one TYPE each. (A one-command probe such as
-- ZINTER accepts a plain set as well, and a set planted at one of these keys would then
-- fail the script's ZADD half-way through its writes.)
local function check_zsets(list)
  for _, k in ipairs(list) do
    local t = kind_of(k)
    if t ~= 'none' and t ~= 'zset' then return refuse(k, 'is a ' .. t .. ', not a zset') end
  end
  return nil
end

-- Strings that INCR will change, read in one MGET: absent, or integers. (MGET answers
-- nil for a key of another type: only those are looked at again.)
local function check_counters(keys)
  local v = redis.call('MGET', unpack(keys))
  for i, key in ipairs(keys) do
    if v[i] then
      if not is_int(v[i]) then return refuse(key, 'does not hold an integer') end
    else
      local bad = check_types({key, 'string'})
      if bad then return bad end
    end
  end
  return nil
end

-- Hash fields that HINCRBY will change, read in one HMGET: absent, or integers.
local function check_counter_fields(key, fields)
  local v = redis.pcall('HMGET', key, unpack(fields))
  if v.err then return refuse(key, 'is a ' .. kind_of(key) .. ', not a hash') end
  for i, field in ipairs(fields) do
    if v[i] and not is_int(v[i]) then return refuse(key, 'field ' .. field .. ' does not hold an integer') end
  end
  return nil
end

-- What emit() writes: the event log and its sequence (the settings hash is only read);
-- ``counters``: other string counters the script increments, checked in the same MGET.
local function check_emit(counters)
  return check_types({G_EVENTS, 'list'}) or check_counters({G_SEQ, unpack(counters or {})})
end

-- The event-log cap is one setting stored in Redis, shared by every writer. The first
-- writer that trims stores its policy's value if none is set yet; a settings key of
-- another type is left alone (this writer's cap is used).
local function event_cap()
  local v = redis.pcall('HGET', G_SETTINGS, 'event_log_max')
  if type(v) == 'table' then return EVENT_MAX end
  v = tonumber(v)
  if v and v >= 1 and v < 1e12 then return math.floor(v) end
  redis.call('HSETNX', G_SETTINGS, 'event_log_max', EVENT_MAX)
  return EVENT_MAX
end

-- The event log is trimmed once every TRIM_EVERY events rather than on each one, so it
-- holds between the cap and the cap + TRIM_EVERY - 1 lines: one command less per change.
local TRIM_EVERY = 64

-- Appends one event and publishes it. ``body`` is the event as a JSON object without
-- ``seq``; the strictly increasing seq is put first here, where it is allocated.
local function emit_body(body)
  local seq = redis.call('INCR', G_SEQ)
  local line = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
  redis.call('LPUSH', G_EVENTS, line)
  if seq % TRIM_EVERY == 0 then redis.call('LTRIM', G_EVENTS, 0, event_cap() - 1) end
  if SHARDED then
    redis.call('SPUBLISH', CHANNEL, line)
  else
    redis.call('PUBLISH', CHANNEL, line)
  end
  return seq
end

local function emit(kind, sid, username, app, actor, extra)
  local ev = {ts = NOW, kind = kind, sid = sid, username = username or '', app = app or '',
              actor = actor or ''}
  if extra then
    for k, v in pairs(extra) do ev[k] = v end
  end
  return emit_body(cjson.encode(ev))
end

-- Fields of the session hash that the cache summary carries, read in one HMGET (the
-- policy comes last: summary() does not use it).
local SUMMARY_FIELDS = {'username', 'app', 'type', 'ip', 'status', 'login_time', 'last_seen',
  'expires_at', 'email', 'department', 'end_reason', 'pol'}

-- A value the summary leaves out when empty (nil is not encoded).
local function unless_empty(v)
  if v == '' then return nil end
  return v
end

-- The compact summary kept in cache:session:<sid>, from values already read (v[i] is
-- SUMMARY_FIELDS[i]). The id is the key's suffix, and empty profile fields and end reason
-- are left out: a shorter string falls into a smaller allocation (memory per session).
local function summary(sid, v)
  return cjson.encode({username = v[1] or '', app = v[2] or '', type = v[3] or '',
    ip = v[4] or '', status = v[5] or 'active', login_time = tonumber(v[6]),
    last_seen = tonumber(v[7]), expires_at = tonumber(v[8]), email = unless_empty(v[9]),
    department = unless_empty(v[10]), end_reason = unless_empty(v[11])})
end

local function write_cache(sid, keep_ttl_only)
  local text = summary(sid, redis.call('HMGET', P_SESSION .. sid, unpack(SUMMARY_FIELDS)))
  if keep_ttl_only then
    redis.call('SET', P_CACHE .. sid, text, 'XX', 'KEEPTTL')
  else
    redis.call('SET', P_CACHE .. sid, text, 'EX', CACHE_TTL)
  end
end

local function count_minute(key)
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, COUNTER_TTL) end
end

-- Per-minute count of one event kind; the hash gets its TTL when a kind first appears.
local function count_kind(kind)
  if redis.call('HINCRBY', K_KINDS_MIN, kind, 1) == 1 then redis.call('EXPIRE', K_KINDS_MIN, COUNTER_TTL) end
end

local function zadjust(key, member, by)
  if tonumber(redis.call('ZINCRBY', key, by, member)) <= 0 then redis.call('ZREM', key, member) end
end

-- One active session of ``username`` from ``ip`` starts (by = 1) or ends (by = -1):
-- sessions per user and per address, and distinct addresses per user and users per
-- address (through the ip|user pair counts). O(log n) whatever the number of sessions.
local function overview_adjust(username, ip, by)
  zadjust(O_USER_SESS, username, by)
  if not ip or ip == '' then return end
  zadjust(O_IP_SESS, ip, by)
  local pair = ip .. '|' .. username
  local n = redis.call('HINCRBY', O_PAIRS, pair, by)
  if n <= 0 then redis.call('HDEL', O_PAIRS, pair) end
  if (by > 0 and n == 1) or (by < 0 and n == 0) then
    zadjust(O_IP_USERS, ip, by)
    zadjust(O_USER_IPS, username, by)
  end
end

local function adjust_counter(hash, field, by)
  if field and field ~= '' then
    local n = redis.call('HINCRBY', hash, field, by)
    if n <= 0 then redis.call('HDEL', hash, field) end
  end
end

local function drop_from_active_indexes(sid, username, app)
  local was = redis.call('ZREM', G_EXP, sid)
  redis.call('ZREM', G_SEEN, sid)
  redis.call('ZREM', G_LOGIN, sid)
  if username then redis.call('ZREM', G_USER, username .. '\0' .. sid) end
  if app then redis.call('ZREM', G_APPLEX, app .. '\0' .. sid) end
  return was == 1
end

-- Set to 'user' by logout_user: its events say the whole user was logged out (the
-- comeback anomaly rule looks for users an admin logged out everywhere).
local END_SCOPE = nil

-- The sorted sets of the overview (top addresses and users).
local OVERVIEW_ZSETS = {O_USER_SESS, O_IP_SESS, O_IP_USERS, O_USER_IPS}

-- What the overview counts change for a session of ``username`` from ``ip``, besides
-- OVERVIEW_ZSETS: the ip|user pair count.
local function check_overview(username, ip)
  if not ip or ip == '' then return check_types({O_PAIRS, 'hash'}) end
  return check_counter_field(O_PAIRS, ip .. '|' .. username)
end

-- What end_session may write whatever the session: check once per script.
local function check_end_globals()
  return check_zsets({G_EXP, G_SEEN, G_LOGIN, G_ENDED, G_SEARCH, G_USER, G_APPLEX, unpack(OVERVIEW_ZSETS)})
    or check_emit({K_ENDS_MIN})
    or check_counter_fields(K_KINDS_MIN, {'expired', 'logout', 'admin_logout', 'evicted', 'replaced'})
end

-- What end_session writes for this session: its user's active set, the counters of its
-- app and type and the overview. Call check_end_globals() too. A session key of another
-- type is not a session: end_session leaves it alone, so it needs no check here.
local function check_end_session(sid)
  local v = redis.pcall('HMGET', P_SESSION .. sid, 'username', 'app', 'type', 'ip')
  if v.err or not v[1] then return nil end
  return check_types({P_ACTIVE .. v[1], 'set'}) or check_counter_field(G_APP, v[2])
    or check_counter_field(G_TYPE, v[3]) or check_overview(v[1], v[4])
end

-- Ends one session once. Returns true if this call ended it. The caller has checked
-- check_end_globals() and check_end_session(sid) first.
local function end_session(sid, reason, kind, actor)
  local skey = P_SESSION .. sid
  local v = redis.pcall('HMGET', skey, unpack(SUMMARY_FIELDS))
  if v.err then
    return false -- not a hash: another writer's data, left as it is
  end
  local username, status, app, stype = v[1], v[5], v[2], v[3]
  local indexed = drop_from_active_indexes(sid, username, app)
  if not username then
    return false -- no such session (or its hash was garbage-collected)
  end
  if status and status ~= 'active' then
    return false
  end
  local retention = stored_retention(v[12])
  redis.call('HSET', skey, 'status', 'inactive', 'logout_time', NOW_S, 'end_reason', reason,
    'ended_by', actor)
  redis.call('PEXPIRE', skey, gc_ms(NOW, retention))
  redis.call('SREM', P_ACTIVE .. username, sid)
  -- idx:ended is scored by when the session may be purged, under its own retention.
  redis.call('ZADD', G_ENDED, NOW + retention, sid)
  -- Found by user and app through the search index from now on (while active, through
  -- the lex sort indexes it has just left).
  if app and app ~= '' then
    redis.call('ZADD', G_SEARCH, 0, 'u:' .. username, 0, 'a:' .. app .. '|' .. sid)
  else
    redis.call('ZADD', G_SEARCH, 0, 'u:' .. username)
  end
  if indexed then
    adjust_counter(G_APP, app, -1)
    adjust_counter(G_TYPE, stype, -1)
    overview_adjust(username, v[4], -1)
  end
  count_minute(K_ENDS_MIN)
  count_kind(kind)
  v[5], v[11] = 'inactive', reason
  redis.call('SET', P_CACHE .. sid, summary(sid, v), 'XX', 'KEEPTTL')
  emit(kind, sid, username, app, actor, {reason = reason, scope = END_SCOPE})
  return true
end

-- A login that turns an anonymous session into a user session deletes the anonymous one
-- in the same call (its data is carried over by the login's fields).
local function drop_anonymous()
  if K_ANON then
    redis.call('DEL', K_ANON)
    redis.pcall('ZREM', K_ANON_IDX, string.match(K_ANON, '([^:]*)$'))
  end
end
