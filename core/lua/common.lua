-- Shared prelude of every sessionwatch write script (prepended by core/scripts.py).
-- KEYS: the global keys of Schema.global_keys(), then the per-minute counters.
-- ARGV: channel, the four key prefixes of Schema.lua_layout(), now, the policy
--       values of ops.policy_args(), actor; then the operation's own arguments.
-- Per-session and per-user key names are built only from those prefixes.
local G_EVENTS, G_SEQ, G_EXP, G_SEEN, G_LOGIN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local G_ENDED, G_SEARCH, G_APP, G_TYPE, G_MARKER = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_LOGINS_MIN, K_ENDS_MIN = KEYS[11], KEYS[12]

local CHANNEL = ARGV[1]
local P_SESSION, P_CACHE, P_HISTORY, P_ACTIVE = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local NOW_S = ARGV[6]
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
local OP = 17 -- index of the first operation argument

local COUNTER_TTL = 7200

local function fmt(ts)
  return string.format('%.3f', ts)
end

-- Milliseconds a session hash is kept: until it expires, then for the retention time.
local function gc_ms(expires_at)
  local ms = math.floor((expires_at - NOW + RETENTION) * 1000)
  if ms < 1000 then ms = 1000 end
  return ms
end

local function emit(kind, sid, username, app, actor, extra)
  local seq = redis.call('INCR', G_SEQ)
  local ev = {seq = seq, ts = NOW, kind = kind, sid = sid, username = username or '',
              app = app or '', actor = actor or ''}
  if extra then
    for k, v in pairs(extra) do ev[k] = v end
  end
  local line = cjson.encode(ev)
  redis.call('LPUSH', G_EVENTS, line)
  redis.call('LTRIM', G_EVENTS, 0, EVENT_MAX - 1)
  redis.call('PUBLISH', CHANNEL, line)
  return seq
end

-- The compact summary kept in cache:session:<sid>.
local function write_cache(sid, keep_ttl_only)
  local h = redis.call('HMGET', P_SESSION .. sid, 'username', 'app', 'type', 'ip', 'status',
    'login_time', 'last_seen', 'expires_at', 'email', 'department', 'end_reason')
  local summary = cjson.encode({sid = sid, username = h[1] or '', app = h[2] or '',
    type = h[3] or '', ip = h[4] or '', status = h[5] or 'active',
    login_time = tonumber(h[6]), last_seen = tonumber(h[7]), expires_at = tonumber(h[8]),
    email = h[9] or '', department = h[10] or '', end_reason = h[11] or ''})
  if keep_ttl_only then
    redis.call('SET', P_CACHE .. sid, summary, 'XX', 'KEEPTTL')
  else
    redis.call('SET', P_CACHE .. sid, summary, 'EX', CACHE_TTL)
  end
end

local function adjust_counter(hash, field, by)
  if field and field ~= '' then
    local n = redis.call('HINCRBY', hash, field, by)
    if n <= 0 then redis.call('HDEL', hash, field) end
  end
end

local function drop_from_active_indexes(sid)
  local was = redis.call('ZREM', G_EXP, sid)
  redis.call('ZREM', G_SEEN, sid)
  redis.call('ZREM', G_LOGIN, sid)
  return was == 1
end

-- Ends one session once. Returns true if this call ended it.
local function end_session(sid, reason, kind, actor)
  local skey = P_SESSION .. sid
  local h = redis.pcall('HMGET', skey, 'username', 'status', 'app', 'type')
  if h.err then
    return false -- not a hash: another writer's data, left as it is
  end
  local username, status, app, stype = h[1], h[2], h[3], h[4]
  local indexed = drop_from_active_indexes(sid)
  if not username then
    return false -- no such session (or its hash was garbage-collected)
  end
  if status and status ~= 'active' then
    return false
  end
  redis.call('HSET', skey, 'status', 'inactive', 'logout_time', NOW_S, 'end_reason', reason,
    'ended_by', actor)
  redis.call('PEXPIRE', skey, gc_ms(NOW))
  redis.call('SREM', P_ACTIVE .. username, sid)
  redis.call('ZADD', G_ENDED, NOW, sid)
  if indexed then
    adjust_counter(G_APP, app, -1)
    adjust_counter(G_TYPE, stype, -1)
  end
  redis.call('INCR', K_ENDS_MIN)
  redis.call('EXPIRE', K_ENDS_MIN, COUNTER_TTL)
  write_cache(sid, true)
  emit(kind, sid, username, app, actor, {reason = reason})
  return true
end
