-- logout_user: end every active session of one user. ARGV[OP]: username.
-- Returns the ids it ended.
local username = ARGV[OP]
local kind, reason = 'admin_logout', 'admin'
if ACTOR == '' or ACTOR == username then kind, reason = 'logout', 'logout' end
local actor = ACTOR
if actor == '' then actor = username end
local ended = {}
END_SCOPE = 'user'
for _, sid in ipairs(redis.call('SMEMBERS', P_ACTIVE .. username)) do
  if end_session(sid, reason, kind, actor) then
    ended[#ended + 1] = sid
  else
    redis.call('SREM', P_ACTIVE .. username, sid)
  end
end
return ended
