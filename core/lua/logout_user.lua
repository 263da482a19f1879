-- logout_user: end every active session of one user. ARGV[OP]: username.
-- Returns the ids it ended.
local username = ARGV[OP]
local active_key = P_ACTIVE .. username
local bad = check_types({active_key, 'set'}) or check_end_globals()
if bad then return redis.error_reply(bad) end
local members = redis.call('SMEMBERS', active_key)
for _, sid in ipairs(members) do
  bad = check_end_session(sid)
  if bad then return redis.error_reply(bad) end
end
local kind, reason = 'admin_logout', 'admin'
if ACTOR == '' or ACTOR == username then kind, reason = 'logout', 'logout' end
local actor = ACTOR
if actor == '' then actor = username end
local ended = {}
END_SCOPE = 'user'
for _, sid in ipairs(members) do
  if end_session(sid, reason, kind, actor) then
    ended[#ended + 1] = sid
  else
    redis.call('SREM', active_key, sid)
  end
end
return ended
