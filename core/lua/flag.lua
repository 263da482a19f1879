-- flag: raise, refresh or clear one anomaly flag in ov:flags, once across all evaluators.
-- Several dashboards may evaluate the same rules; HSETNX and HDEL decide which one of them
-- writes the flag_raised / flag_cleared event, so the log never holds a flag twice.
-- ARGV[OP..]: 'raise' or 'clear', flag id, flag JSON (raise), event body (JSON without seq).
-- Returns 1 if this call raised or cleared the flag, 0 if it was already so.
local mode, id, flag_json, event_body = ARGV[OP], ARGV[OP + 1], ARGV[OP + 2], ARGV[OP + 3]
if mode ~= 'raise' and mode ~= 'clear' then
  return redis.error_reply('BADMODE flag mode must be raise or clear')
end
-- All or nothing: the flags hash and the event log are checked before the first write.
local bad = check_types({O_FLAGS, 'hash'}) or check_emit()
if bad then return redis.error_reply(bad) end
if mode == 'raise' then
  if redis.call('HSETNX', O_FLAGS, id, flag_json) == 1 then
    emit_body(event_body)
    return 1
  end
  redis.call('HSET', O_FLAGS, id, flag_json) -- still raised: newer numbers, no new event
  return 0
end
if redis.call('HDEL', O_FLAGS, id) == 1 then
  emit_body(event_body)
  return 1
end
return 0
