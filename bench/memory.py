"""Benchmark 7: Redis bytes per session (``INFO memory`` used_memory delta over N
sessions), sessionwatch's layout (real ``store.login`` calls) against the classic one
(:mod:`bench.classic`), two sessions per user for both."""

from __future__ import annotations

import redis

from core import Policy, SessionStore

from .classic import ClassicStore
from .config import Config
from .measure import Progress, Sample, Section, Table, fmt


def _used(admin: redis.Redis) -> int:
    return int(admin.info("memory")["used_memory"])


def _event_bytes(admin: redis.Redis, key: str) -> int:
    return int(admin.memory_usage(key, samples=0) or 0)


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("memory per session")
    admin = redis.Redis.from_url(url, decode_responses=True)
    store = SessionStore.from_url(url)
    classic = ClassicStore(store.client, prefix="")
    n = cfg.memory_sessions
    warm = Policy().event_log_max
    ours, ours_ex, cls, cls_ex = Sample(), Sample(), Sample(), Sample()
    for rep in range(cfg.memory_reps):
        progress(f"memory: repetition {rep + 1}: {n:,} sessions each way")
        admin.flushall()
        for i in range(min(warm, n)):  # event log at its cap first: steady state, not its growth
            store.login(f"warm{i}", app="crm")
        before, ev0 = _used(admin), _event_bytes(admin, store.schema.events)
        for i in range(n):
            store.login(f"user{i // 2:07d}", app=("crm", "billing", "admin")[i % 3], type="web",
                        ip=f"10.0.{i % 250}.{i % 199 + 1}", user_agent="Mozilla/5.0 (bench)")
        delta, ev = _used(admin) - before, _event_bytes(admin, store.schema.events) - ev0
        ours.add(delta / n)
        ours_ex.add((delta - ev) / n)

        admin.flushall()
        before = _used(admin)
        for i in range(n):
            classic.login(f"user{i // 2:07d}", app=("crm", "billing", "admin")[i % 3], type="web",
                          ip=f"10.0.{i % 250}.{i % 199 + 1}", user_agent="Mozilla/5.0 (bench)")
        delta, ev = _used(admin) - before, _event_bytes(admin, classic.schema.events)
        cls.add(delta / n)
        cls_ex.add((delta - ev) / n)
    admin.flushall()

    t = Table(f"7. Redis memory per active session ({n:,} sessions, 2 per user)",
              ["layout", "bytes/session (used_memory delta)", "excluding the event log", "per 1M sessions"])
    t.add("sessionwatch (hash + TTL, 3 index zsets, search index, cache summary, user set + history list, "
          "counters)", ours.cell(), ours_ex.cell(), f"≈ {ours.median * 1e6 / 2**30:.2f} GiB")
    t.add("classic (hash, user list + set, cache summary, uncapped event list)", cls.cell(), cls_ex.cell(),
          f"≈ {cls.median * 1e6 / 2**30:.2f} GiB")
    t.notes.append("Ours is measured with the event log already at its cap (10,000 lines), so its growth is "
                   "not charged to sessions; the classic event list is never trimmed, so it grows by one "
                   "line per login for ever (shown separately by excluding it: MEMORY USAGE of the list).")
    sec.tables.append(t)
    sec.headline.append(("Redis memory per session", f"{fmt(ours.median)} B ours vs {fmt(cls.median)} B "
                         f"classic ({fmt(ours.median / cls.median, 2)}×)"))
    store.close()
    admin.close()
    return sec
