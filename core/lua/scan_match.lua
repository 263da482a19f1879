-- scan_match: one bounded step of the dashboard's substring filter. Walks an index in
-- small batches until a time budget on the server's clock is spent, reads the fields the
-- query needs from each session hash and returns only the sessions that may match.
-- Matching here is ASCII case-insensitive; a value holding a "suspect" byte sequence
-- (text whose Unicode casefold could match where ASCII lowering does not) comes back too,
-- so the caller, which matches every candidate exactly, never misses one. Reads only; a
-- session key of the wrong type is skipped.
-- KEYS: the index. Walk 'lex': members '<value>\0<sid>' in lex order (cursor: the last
-- member met, '' at the start); walk 'scan': members are sids (cursor: ZSCAN's).
-- ARGV: walk, cursor, session key prefix, batch, budget (µs), most sessions per call,
--   field count, fields..., term count, per term: mode ('s' substring, 'e' whole value),
--   value (casefolded), position count, positions (-1 the lex value, 0 the sid, i field i),
--   suspects: a Lua pattern class of the bytes that make a session a candidate anyway.
-- Returns {next cursor ('' or '0': done), index size, sessions met,
--   {sid, lex value, field values..., sid, ...}: the candidates to match exactly,
--   {sid, ...}: sessions that match (every term fits and no suspect byte is in sight,
--   where ASCII lowering and Unicode casefold agree)}.
local walk, cursor, prefix = ARGV[1], ARGV[2], ARGV[3]
local batch, budget, most = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nf = tonumber(ARGV[7])
local fields = {}
for i = 1, nf do fields[i] = ARGV[7 + i] end
local a = 8 + nf
local nterms = tonumber(ARGV[a]); a = a + 1
local terms = {}
for t = 1, nterms do
  local term = {mode = ARGV[a], want = ARGV[a + 1], at = {}}
  local np = tonumber(ARGV[a + 2]); a = a + 3
  for p = 1, np do term.at[p] = tonumber(ARGV[a]); a = a + 1 end
  terms[t] = term
end
local suspects = ARGV[a]
local find, lower, sub, concat = string.find, string.lower, string.sub, table.concat

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Positions: -1 the lex value, 0 the sid, i field i. A term that looks at the sid and every
-- field (a bare word) is tested on all of them joined, lowered once per session (the
-- lex value joined too can only add candidates, never lose one).
local nall = nf + 2
for t = 1, nterms do
  local seen, n = {}, 0
  for _, p in ipairs(terms[t].at) do
    if p >= 0 and not seen[p] then seen[p] = true; n = n + 1 end
  end
  -- (a term holding the separator could match across two values: tested value by value)
  terms[t].every = n == nf + 1 and not find(terms[t].want, '\1', 1, true)
end
local met, out, exact = 0, {}, {}
local vals = {}
local function visit(sid, value)
  met = met + 1
  if nf > 0 then
    local got = redis.pcall('HMGET', prefix .. sid, unpack(fields))
    if type(got) ~= 'table' or got.err then return end
    for i = 1, nf do vals[i] = got[i] or '' end
  end
  vals[nf + 1], vals[nf + 2] = sid, value
  local every = concat(vals, '\1', 1, nall)
  local low = lower(every)
  local fits = true
  for t = 1, nterms do
    local term = terms[t]
    local hit = false
    if term.every and term.mode == 's' then
      hit = find(low, term.want, 1, true) ~= nil
    else
      for _, p in ipairs(term.at) do
        local v = lower(p < 0 and value or p == 0 and sid or vals[p])
        if term.mode == 'e' then hit = v == term.want else hit = find(v, term.want, 1, true) ~= nil end
        if hit then break end
      end
    end
    if not hit then fits = false; break end
  end
  local suspect = find(every, suspects)
  if not suspect then
    if fits then exact[#exact + 1] = sid end
    return
  end
  out[#out + 1] = sid
  out[#out + 1] = value
  for i = 1, nf do out[#out + 1] = vals[i] end
end

local started = clock()
local done = false
repeat
  if walk == 'lex' then
    local from = cursor == '' and '-' or '(' .. cursor
    local members = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, batch)
    for i = 1, #members do
      local m = members[i]
      local cut, nxt = nil, find(m, '\0', 1, true)
      while nxt do cut, nxt = nxt, find(m, '\0', nxt + 1, true) end -- the sid follows the last NUL
      if cut then visit(sub(m, cut + 1), sub(m, 1, cut - 1)) else visit(m, '') end
    end
    if #members < batch then cursor, done = '', true else cursor = members[#members] end
  else
    local r = redis.call('ZSCAN', KEYS[1], cursor, 'COUNT', batch)
    cursor = r[1]
    local flat = r[2]
    for i = 1, #flat, 2 do visit(flat[i], '') end
    done = cursor == '0'
  end
until done or met >= most or clock() - started >= budget
return {cursor, redis.call('ZCARD', KEYS[1]), met, out, exact}
