-- logout: end one session. A logout by anyone but the session's own user is an admin
-- logout. ARGV[OP]: sid. Returns 1 if this call ended it, 0 if it was not active.
local sid = ARGV[OP]
local skey = P_SESSION .. sid
local bad = check_types({skey, 'hash'}) or check_end_globals() or check_end_session(sid)
if bad then return redis.error_reply(bad) end
local username = redis.call('HGET', P_SESSION .. sid, 'username')
local kind, reason = 'admin_logout', 'admin'
if ACTOR == '' or ACTOR == username then
  kind, reason = 'logout', 'logout'
end
local actor = ACTOR
if actor == '' and type(username) == 'string' then actor = username end
if end_session(sid, reason, kind, actor) then return 1 end
return 0
