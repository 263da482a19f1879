"""Fill Redis fast with sessions in core's layout: a Lua bulk loader that writes, per
session, the same keys and fields ``core/lua/login.lua`` writes (the overview's sorted
sets and pair counts included) (key names from
:class:`core.Schema`, passed in as prefixes like core's own scripts), without the
per-login event line (the event log is capped, so it is filled once to its cap instead) and
the per-minute login counters (a few keys whatever the number of sessions).
``tests/test_bench_fill.py`` checks it against a real login.

Thousands of sessions per EVAL call: 1,000,000 sessions in well under two minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis

from core import Policy, Schema
from core.buckets import Buckets

LOADER = r"""
local G_EVENTS, G_SEQ, G_EXP, G_SEEN, G_LOGIN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local G_ENDED, G_SEARCH, G_APP, G_TYPE, G_MARKER = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local G_USER, G_APPLEX = KEYS[11], KEYS[12]
local O_IP_SESS, O_IP_USERS, O_USER_SESS, O_USER_IPS = KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local O_PAIRS, O_SEEN = KEYS[17], KEYS[18]
local P_SESSION, P_CACHE, P_HISTORY, P_ACTIVE = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local first, count, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local idle, absolute, retention = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local cache_ttl, user_ttl, history_ttl = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local per_user, spread = tonumber(ARGV[14]), tonumber(ARGV[15])
local tag, stride = ARGV[16] or 'beef', tonumber(ARGV[17] or '1')
local apps = {'crm', 'billing', 'admin', 'portal', 'reports'}
local types = {'web', 'mobile', 'api'}
local by_app, by_type = {}, {}
local per_ip, pairs_args, per_user_n = {}, {}, {}
local function fmt(ts) return string.format('%.3f', ts) end
local pol = string.format('%d/%d/%d', idle, absolute, retention) -- as core.plans.policy_field
for i = first, first + (count - 1) * stride, stride do
  local sid = string.format('%032x', i) .. tag
  local username = string.format('user%08d', math.floor(i / per_user))
  local app, stype = apps[i % 5 + 1], types[i % 3 + 1]
  local ip = '10.' .. (math.floor(i / 65536) % 256) .. '.' .. (math.floor(i / 256) % 256) .. '.' .. (i % 256)
  local login = now - (i % spread)
  local exp, max_exp = login + idle, login + absolute
  if exp > max_exp then exp = max_exp end
  local skey = P_SESSION .. sid
  redis.call('HSET', skey, 'username', username, 'app', app, 'type', stype, 'ip', ip,
    'user_agent', 'Mozilla/5.0 (bench loader)', 'login_time', fmt(login), 'last_seen', fmt(login),
    'expires_at', fmt(exp), 'pol', pol, 'status', 'active', 'email', username .. '@example.com')
  redis.call('PEXPIRE', skey, math.floor((exp - now + retention) * 1000))
  redis.call('SADD', P_ACTIVE .. username, sid)
  redis.call('EXPIRE', P_ACTIVE .. username, user_ttl)
  redis.call('LPUSH', P_HISTORY .. username, sid)
  redis.call('EXPIRE', P_HISTORY .. username, history_ttl)
  redis.call('ZADD', G_EXP, exp, sid)
  redis.call('ZADD', G_SEEN, login, sid)
  redis.call('ZADD', G_LOGIN, login, sid)
  redis.call('ZADD', G_USER, 0, username .. '\0' .. sid)
  redis.call('ZADD', G_APPLEX, 0, app .. '\0' .. sid)
  -- as login.lua: by id and address (user and app are found through the lex indexes above)
  redis.call('ZADD', G_SEARCH, 0, 's:' .. sid, 0, 'i:' .. ip .. '|' .. sid)
  redis.call('SET', P_CACHE .. sid, cjson.encode({username = username, app = app, type = stype,
    ip = ip, status = 'active', login_time = login, last_seen = login, expires_at = exp,
    email = username .. '@example.com'}), 'EX', cache_ttl)
  by_app[app] = (by_app[app] or 0) + 1
  per_ip[#per_ip + 1] = 1; per_ip[#per_ip + 1] = ip -- every address is its own here: one session, one user
  pairs_args[#pairs_args + 1] = ip .. '|' .. username; pairs_args[#pairs_args + 1] = 1
  per_user_n[username] = (per_user_n[username] or 0) + 1
  by_type[stype] = (by_type[stype] or 0) + 1
end
for k, v in pairs(by_app) do redis.call('HINCRBY', G_APP, k, v) end
for k, v in pairs(by_type) do redis.call('HINCRBY', G_TYPE, k, v) end
redis.call('ZADD', O_IP_SESS, unpack(per_ip))
redis.call('ZADD', O_IP_USERS, unpack(per_ip))
redis.call('HSET', O_PAIRS, unpack(pairs_args))
for u, n in pairs(per_user_n) do
  redis.call('ZINCRBY', O_USER_SESS, n, u)
  redis.call('ZINCRBY', O_USER_IPS, n, u)
  redis.call('SADD', O_SEEN, u)
end
redis.call('SET', G_MARKER, '1')
return count
"""

BATCH = 2000


def fill_buckets(client: redis.Redis, buckets: Buckets, first: int, count: int, *, now: float,
                 policy: Policy | None = None, spread: int = 300) -> None:
    """:func:`fill` over the bucketed layout: session ``i`` goes to bucket ``i % count``
    (its id ends with a tag routing it there), written by one loader call per bucket, so
    every script's keys share the bucket's slot (a cluster client can send it)."""
    for b, schema in enumerate(buckets.schemas):
        ids = range(first + (b - first) % buckets.count, first + count, buckets.count)
        if not ids:
            continue
        _fill_ids(client, ids, schema=schema, policy=policy, now=now, spread=spread, tag=f"{b:04x}")


def _fill_ids(client: redis.Redis, ids: range, *, schema: Schema, policy: Policy | None, now: float,
              spread: int, tag: str) -> None:
    """One bucket's sessions: every ``ids.step``-th number, up to :data:`BATCH` per call."""
    policy = policy or Policy()
    script = client.register_script(LOADER)
    tail = [now, policy.idle_ttl, policy.absolute_ttl, policy.ended_retention, policy.cache_ttl,
            policy.user_key_ttl, policy.history_retention, 2, spread, tag, ids.step]
    for lo in range(0, len(ids), BATCH):
        part = ids[lo:lo + BATCH]
        script(keys=[*schema.global_keys(), *schema.overview_keys()],
               args=[*schema.lua_layout(), part.start, len(part), *tail])


def sid_of(i: int, tag: str = "beef") -> str:
    """The session id the loader gives session number ``i`` (``tag``: its routing tag)."""
    return f"{i:032x}{tag}"


def fill(client: redis.Redis, first: int, count: int, *, now: float, schema: Schema | None = None,
         policy: Policy | None = None, per_user: int = 2, spread: int = 300,
         progress: Callable[[int], None] | None = None, tag: str = "beef") -> None:
    """Write sessions ``first .. first+count-1``: active, logged in within ``spread``
    seconds before ``now``, ``per_user`` sessions per user. ``tag``: the four hex digits
    ending every session id (the bucketed layout routes a session by them)."""
    schema, policy = schema or Schema(), policy or Policy()
    script = client.register_script(LOADER)
    head = [*schema.lua_layout()]
    tail = [now, policy.idle_ttl, policy.absolute_ttl, policy.ended_retention, policy.cache_ttl,
            policy.user_key_ttl, policy.history_retention, per_user, spread]
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        script(keys=[*schema.global_keys(), *schema.overview_keys()],
               args=[*head, first + done, n, *tail, tag, 1])
        done += n
        if progress is not None:
            progress(done)


def fill_event_log(client: redis.Redis, *, schema: Schema | None = None, policy: Policy | None = None,
                   now: float) -> None:
    """The event log at its cap, with lines shaped like core's (so reading it costs what it will)."""
    schema, policy = schema or Schema(), policy or Policy()
    pipe = client.pipeline(transaction=False)
    for seq in range(1, policy.event_log_max + 1):
        pipe.lpush(schema.events, json.dumps({"seq": seq, "ts": now, "kind": "login", "sid": sid_of(seq),
                                              "username": f"user{seq // 2:08d}", "app": "crm",
                                              "actor": f"user{seq // 2:08d}", "ip": "10.0.0.1",
                                              "type": "web"}, separators=(",", ":")))
        if seq % 1000 == 0:
            pipe.execute()
    pipe.set(schema.event_seq, policy.event_log_max)
    pipe.execute()
