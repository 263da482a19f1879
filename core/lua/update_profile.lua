-- update_profile: set profile fields and metadata of an active session; never revives an
-- ended or expired one. ARGV[OP..]: sid, then field/value pairs. Returns 1, or 0 if the
-- session is not active.
local sid = ARGV[OP]
local skey = P_SESSION .. sid
local h = redis.pcall('HMGET', skey, 'username', 'status', 'expires_at', 'app')
if h.err then return redis.error_reply(refuse(skey, 'is a ' .. kind_of(skey) .. ', not a hash')) end
if not h[1] then return 0 end
if h[2] and h[2] ~= 'active' then return 0 end
local exp = h[3] and tonumber(h[3])
if exp and (exp ~= exp or exp <= NOW) then return 0 end
local bad = check_emit()
if bad then return redis.error_reply(bad) end
local actor = ACTOR
if actor == '' then actor = h[1] end
local fields, names = {}, {}
for i = OP + 1, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  names[#names + 1] = ARGV[i]
end
if #fields > 0 then redis.call('HSET', skey, unpack(fields)) end
if redis.call('EXISTS', P_CACHE .. sid) == 1 then write_cache(sid, true) else write_cache(sid, false) end
emit('profile', sid, h[1], h[4], actor, {fields = names})
return 1
