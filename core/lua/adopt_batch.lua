-- adopt_batch: bring many sessions into sessionwatch's indexes in one bounded call.
-- Used by `import` (mode 'restore': write each session from its fields, only if the key
-- does not exist) and `reindex` (mode 'index': index hashes another app wrote; the hash,
-- its TTL and its fields are never modified, so no session gains an expiry it did not have).
-- ARGV[OP..]: mode, trust ('1' lets restore create live sessions), record count, then per
-- record: sid, field count, field/value pairs (restore) or just sid (index).
-- All or nothing: every check runs before the first write. Returns
-- {written, skipped (already there / already indexed / not a session), {sid, problem, ...}}.
local mode, trust, count = ARGV[OP], ARGV[OP + 1] == '1', tonumber(ARGV[OP + 2])

local function key_is(key, ...)
  local t = kind_of(key)
  if t == 'none' then return true, t end
  for _, want in ipairs({...}) do
    if t == want then return true, t end
  end
  return false, t
end

local bad_global = check_types({G_EXP, 'zset', G_SEEN, 'zset', G_LOGIN, 'zset', G_ENDED, 'zset',
  G_SEARCH, 'zset', G_USER, 'zset', G_APPLEX, 'zset', G_APP, 'hash', G_TYPE, 'hash', G_MARKER, 'string',
  O_USER_SESS, 'zset', O_IP_SESS, 'zset', O_IP_USERS, 'zset', O_USER_IPS, 'zset', O_PAIRS, 'hash',
  O_SEEN, 'set'})
if bad_global then return redis.error_reply(bad_global) end

-- A time as epoch seconds, or nil: NaN, infinities and text are not times. Millisecond
-- and microsecond epochs (JavaScript apps write those) are recognised by their size.
local function epoch(v)
  local x = tonumber(v)
  if not x or x ~= x or x == math.huge or x == -math.huge or x < 0 then return nil end
  if x >= 1e14 then x = x / 1e6 elseif x >= 1e11 then x = x / 1e3 end
  if x >= 1e11 then return nil end
  return x
end

local FIELDS = {'username', 'status', 'app', 'type', 'ip', 'login_time', 'last_seen', 'expires_at',
  'logout_time', 'max_expires_at', 'pol'}

-- Phase 1: read and check everything; decide what each record becomes.
local plan, problems, skipped = {}, {}, 0
local in_batch = {}
local fresh = {} -- per-user keys that do not exist yet (this script creates them)
local user_ok = {} -- per-user keys of the right type (or absent)
local checked = {} -- app and type counters already checked
local i = OP + 3
for _ = 1, count do
  local sid = ARGV[i]
  local skey = P_SESSION .. sid
  local fields, v = nil, nil
  i = i + 1
  if mode == 'restore' then
    local n = tonumber(ARGV[i])
    fields = {}
    for j = i + 1, i + 2 * n do fields[#fields + 1] = ARGV[j] end
    i = i + 1 + 2 * n
  end
  local problem = nil
  if in_batch[sid] then
    skipped = skipped + 1
  elseif mode == 'restore' then
    if redis.call('EXISTS', skey) == 1 then
      skipped = skipped + 1 -- never overwrite: a rerun continues where it stopped
    else
      local f = {}
      for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
      v = {}
      for j, name in ipairs(FIELDS) do v[j] = f[name] end
    end
  else
    local ok, t = key_is(skey, 'hash')
    if t ~= 'hash' then
      skipped = skipped + 1 -- gone meanwhile, or another app's key of another kind
    elseif redis.call('ZSCORE', G_EXP, sid) or redis.call('ZSCORE', G_ENDED, sid) then
      skipped = skipped + 1 -- indexed already: reindex is idempotent
    else
      v = redis.call('HMGET', skey, unpack(FIELDS))
      if not v[1] or v[1] == '' then
        skipped = skipped + 1 -- a hash without a user is not a session
        v = nil
      end
    end
  end
  if v then
    in_batch[sid] = true
    local username = v[1]
    local status = v[2] or 'active'
    local login_t = epoch(v[6])
    local seen_t = epoch(v[7]) or login_t or NOW
    login_t = login_t or seen_t
    local exp = epoch(v[8])
    local r = {sid = sid, skey = skey, fields = fields, username = username, app = v[3] or '',
               stype = v[4] or '', ip = v[5] or '', login = login_t, seen = seen_t,
               active = status == 'active'}
    if mode == 'restore' then
      -- held to this store's policy: never live longer than idle and absolute allow
      local cap = login_t + ABSOLUTE
      local max_exp = epoch(v[10])
      if max_exp and max_exp < cap then cap = max_exp end
      if not exp then exp = seen_t + IDLE end
      if exp > NOW + IDLE then exp = NOW + IDLE end
      if exp > cap then exp = cap end
      r.exp, r.max_exp = exp, cap
      if r.active and exp > NOW and not trust then
        return redis.error_reply('UNTRUSTED session ' .. sid .. ' is live; restoring live sessions needs trust')
      end
    elseif r.active then
      -- index only: a session without an expiry of its own gets none; its Redis TTL (if
      -- any) only tells the sweep when to look again, and the sweep never ends it
      r.own_exp = exp ~= nil
      if not exp then
        local pttl = redis.call('PTTL', skey)
        if pttl > 0 then exp = NOW + pttl / 1000 else exp = math.huge end
      end
      r.exp = exp
    end
    r.ended_at = epoch(v[9]) or seen_t
    r.retention = stored_retention(v[11])
    -- the integers HINCRBY will change: this app's and type's counts, this address-user pair
    local bad = (not checked[r.app] and check_counter_field(G_APP, r.app))
      or (not checked[r.stype] and check_counter_field(G_TYPE, r.stype))
      or (r.ip ~= '' and check_counter_field(O_PAIRS, r.ip .. '|' .. username))
    if bad then return redis.error_reply(bad) end
    checked[r.app], checked[r.stype] = true, true
    local akey, hkey = P_ACTIVE .. username, P_HISTORY .. username
    if fresh[akey] == nil then
      local ok1, t1 = key_is(akey, 'set')
      local ok2, t2 = key_is(hkey, 'list')
      fresh[akey], fresh[hkey] = t1 == 'none', t2 == 'none'
      user_ok[username] = ok1 and ok2
    end
    if not user_ok[username] then
      problem = 'per-user keys of ' .. username .. ' have the wrong type'
      in_batch[sid] = nil
    else
      plan[#plan + 1] = r
    end
  end
  if problem then
    problems[#problems + 1] = sid
    problems[#problems + 1] = problem
  end
end

-- Phase 2: write.
local function score(x)
  if x == math.huge then return '+inf' end
  return fmt(x)
end

local function extend_user_ttl(key, seconds)
  -- per-user keys are shared with other writers: their TTL is only ever extended, and a
  -- key that has none keeps none unless this script created it
  local is_new = fresh[key]
  fresh[key] = false
  if seconds == math.huge then return end
  if is_new then
    redis.call('EXPIRE', key, math.ceil(seconds))
    return
  end
  local t = redis.call('TTL', key)
  if t >= 0 and t < seconds then redis.call('EXPIRE', key, math.ceil(seconds)) end
end

-- Index members are gathered and written with one command per index (and one SADD,
-- RPUSH per user key) for the whole batch: most of a session's cost is per command.
local by_app, by_type = {}, {}
local search, seen, login, ended, users, apps = {}, {}, {}, {}, {}, {}
local names = {}
local actives, histories, akeys, hkeys = {}, {}, {}, {}
local function add_to(map, order, key, sid)
  local list = map[key]
  if not list then
    list = {}
    map[key] = list
    order[#order + 1] = key
  end
  list[#list + 1] = sid
  return list
end
for _, r in ipairs(plan) do
  local sid = r.sid
  if mode == 'restore' then
    local f = r.fields
    f[#f + 1] = 'expires_at'; f[#f + 1] = fmt(r.exp)
    f[#f + 1] = 'max_expires_at'; f[#f + 1] = fmt(r.max_exp)
    redis.call('HSET', r.skey, unpack(f))
    if r.active then
      -- kept past its expiry long enough for a sweep to end it and take it out of the counts
      redis.call('PEXPIRE', r.skey, gc_ms(r.exp, math.max(r.retention, SWEEP_GRACE)))
    else
      redis.call('PEXPIRE', r.skey, gc_ms(r.ended_at, r.retention))
    end
  end
  local n = #search
  search[n + 1] = 0; search[n + 2] = 'u:' .. r.username; search[n + 3] = 0; search[n + 4] = 's:' .. sid
  if r.app ~= '' then n = #search; search[n + 1] = 0; search[n + 2] = 'a:' .. r.app .. '|' .. sid end
  if r.ip ~= '' then n = #search; search[n + 1] = 0; search[n + 2] = 'i:' .. r.ip .. '|' .. sid end
  if r.active then
    if redis.call('ZADD', G_EXP, 'NX', score(r.exp), sid) == 1 then
      -- counted whenever it enters the expiry index, so the sweep's decrement balances
      if r.app ~= '' then by_app[r.app] = (by_app[r.app] or 0) + 1 end
      if r.stype ~= '' then by_type[r.stype] = (by_type[r.stype] or 0) + 1 end
      overview_adjust(r.username, r.ip, 1)
    end
    if r.exp > NOW then
      n = #seen
      seen[n + 1] = r.seen; seen[n + 2] = sid
      login[n + 1] = r.login; login[n + 2] = sid
      users[n + 1] = 0; users[n + 2] = r.username .. '\0' .. sid
      apps[n + 1] = 0; apps[n + 2] = r.app .. '\0' .. sid
      local list = add_to(actives, akeys, P_ACTIVE .. r.username, sid)
      local want = USER_TTL
      if mode ~= 'restore' then want = r.exp - NOW + USER_TTL end
      if not list.ttl or want > list.ttl then list.ttl = want end
    end
  else
    n = #ended
    -- scored by when it may be purged, under its own retention
    ended[n + 1] = r.ended_at + r.retention; ended[n + 2] = sid
  end
  if not names[r.username] then
    names[r.username] = true
    names[#names + 1] = r.username
  end
  local hkey = P_HISTORY .. r.username
  if fresh[hkey] or not redis.call('LPOS', hkey, sid) then add_to(histories, hkeys, hkey, sid) end
end
if #search > 0 then redis.call('ZADD', G_SEARCH, unpack(search)) end
if #seen > 0 then
  redis.call('ZADD', G_SEEN, 'NX', unpack(seen))
  redis.call('ZADD', G_LOGIN, 'NX', unpack(login))
  redis.call('ZADD', G_USER, unpack(users))
  redis.call('ZADD', G_APPLEX, unpack(apps))
end
if #ended > 0 then redis.call('ZADD', G_ENDED, 'NX', unpack(ended)) end
for _, key in ipairs(akeys) do
  local list = actives[key]
  redis.call('SADD', key, unpack(list))
  extend_user_ttl(key, list.ttl)
end
for _, key in ipairs(hkeys) do
  if redis.call('RPUSH', key, unpack(histories[key])) > HISTORY_MAX then
    redis.call('LTRIM', key, 0, HISTORY_MAX - 1)
  end
  extend_user_ttl(key, HISTORY_TTL)
end
for app, k in pairs(by_app) do redis.call('HINCRBY', G_APP, app, k) end
for stype, k in pairs(by_type) do redis.call('HINCRBY', G_TYPE, stype, k) end
if #names > 0 then redis.call('SADD', O_SEEN, unpack(names)) end -- usernames seen, for the new-users rule
if #plan > 0 then redis.call('SET', G_MARKER, '1') end
return {#plan, skipped, problems}
