"""Benchmark 6: ending 100,000 expired sessions with ``store.sweep()``: total time, and
the longest single Redis call while it runs (SLOWLOG with a 0 µs threshold logs every
command with its server-side duration). Target: no call over 5 ms, so other clients
never wait longer than that. Batch sizes are compared to recommend one."""

from __future__ import annotations

import time

import redis

from core import SessionStore, plans

from . import fill
from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt, percentile
from .roundtrip import FrozenClock

LIMIT_US = 5000


def _durations(admin: redis.Redis) -> list[int]:
    n = int(admin.slowlog_len())
    entries = admin.slowlog_get(n) if n else []
    out = []
    for e in entries:
        cmd = e.get("command", b"")
        cmd = cmd.decode("utf-8", "replace") if isinstance(cmd, bytes) else str(cmd)
        if cmd.upper().startswith(("EVAL", "FCALL")):  # the script call (FCALL on Redis 7)
            out.append(int(e["duration"]))
    return out


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("sweep")
    admin = redis.Redis.from_url(url, decode_responses=True)
    old = admin.config_get("slowlog-*")
    n = cfg.sweep_sessions
    batches = sorted(set(cfg.sweep_batches) | {plans.SWEEP_BATCH})
    total: dict[int, Sample] = {b: Sample() for b in batches}
    worst: dict[int, Sample] = {b: Sample() for b in batches}
    p50: dict[int, Sample] = {b: Sample() for b in batches}
    p99: dict[int, Sample] = {b: Sample() for b in batches}
    calls: dict[int, int] = {}
    try:
        admin.config_set("slowlog-max-len", max(100_000, 4 * n))
        for rep in range(cfg.sweep_reps):
            for batch in batches:
                progress(f"sweep: repetition {rep + 1}/{cfg.sweep_reps}, batch {batch}: "
                         f"filling {n:,} sessions")
                admin.flushall()
                now = time.time()
                fill.fill(admin, 0, n, now=now)
                fill.fill_event_log(admin, now=now)
                later = now + 2 * 86400  # every session is past its idle and absolute expiry
                store = SessionStore.from_url(url, clock=FrozenClock(later))
                admin.config_set("slowlog-log-slower-than", 0)
                admin.slowlog_reset()
                t = time.perf_counter()
                result = store.sweep(batch=batch, max_calls=10 * n)
                total[batch].add(time.perf_counter() - t)
                admin.config_set("slowlog-log-slower-than", old.get("slowlog-log-slower-than", 10000))
                if result.expired != n:
                    raise RuntimeError(f"sweep ended {result.expired} of {n} expired sessions")
                d = _durations(admin)
                calls[batch] = result.calls
                worst[batch].add(max(d) / 1000)
                p50[batch].add(percentile(d, 0.5) / 1000)
                p99[batch].add(percentile(d, 0.99) / 1000)
                store.close()
    finally:
        admin.config_set("slowlog-log-slower-than", old.get("slowlog-log-slower-than", 10000))
        admin.config_set("slowlog-max-len", old.get("slowlog-max-len", 128))
        admin.slowlog_reset()
        admin.flushall()

    t = Table(f"6. Sweep of {n:,} expired sessions (store.sweep, clock injected 2 days ahead)",
              ["batch", "script calls", "total (s)", "sessions ended/s", "longest call (ms)", "p99 call (ms)",
               "median call (ms)"])
    for b in batches:
        t.add(f"{b}{' (default)' if b == plans.SWEEP_BATCH else ''}", f"{calls[b]:,}", total[b].cell(2),
              fmt(n / total[b].median), worst[b].cell(2), p99[b].cell(2), p50[b].cell(2))
    t.notes.append("Durations are server-side, from SLOWLOG (slowlog-log-slower-than 0) over every script "
                   "call (FCALL or EVALSHA) of the sweep: the time Redis was busy with one call and could "
                   "serve no other client.")
    sec.tables.append(t)
    d = plans.SWEEP_BATCH
    ok = [b for b in batches if worst[b].hi <= LIMIT_US / 1000]
    best = max(ok) if ok else None
    why = ""
    if worst[d].median > LIMIT_US / 1000:
        why = (f"each expired session costs ≈ {worst[d].median * 1000 / d:.0f} µs inside the script "
               f"(end_session: HMGET, 3 ZREM, HSET, PEXPIRE, SREM, ZADD, counters, cache JSON, event "
               f"INCR/LPUSH/LTRIM/PUBLISH); recommended SWEEP_BATCH = {best} (worst call "
               f"{worst[best].hi:.2f} ms)" if best else "no batch size measured meets it")
    sec.targets.append(Target(f"longest single call during the sweep (batch {d})",
                              f"{worst[d].median:.2f} ms", "≤ 5 ms", worst[d].median <= LIMIT_US / 1000, why))
    sec.headline.append((f"sweep of {n:,} expired sessions (batch {d})",
                         f"{total[d].median:.1f} s ({fmt(n / total[d].median)}/s), longest call "
                         f"{worst[d].median:.2f} ms"
                         + (f"; largest batch within 5 ms: {best}" if best else "")))
    admin.close()
    return sec
