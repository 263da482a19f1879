-- audit: append an event about no session: who opened or closed a dashboard over SSH.
-- ARGV[OP]: kind (ssh_connect or ssh_disconnect), ARGV[OP + 1]: client address (may be '').
-- ACTOR (the prelude's) names who: '<key comment>@ssh-key:<fingerprint>'.
-- Returns the event's seq. Nothing is written unless every argument is acceptable.
local kind, ip = ARGV[OP], ARGV[OP + 1]
if kind ~= 'ssh_connect' and kind ~= 'ssh_disconnect' then
  return redis.error_reply('ERR audit: unknown event kind')
end
if ACTOR == '' then
  return redis.error_reply('ERR audit: an actor is required')
end
local bad = check_emit()
if bad then return redis.error_reply(bad) end
return emit(kind, '', '', '', ACTOR, {ip = ip or ''})
