"""Benchmark 7: Redis bytes per session (``INFO memory`` used_memory delta over N
sessions), sessionwatch's layout (real ``store.login`` calls) against the classic one
(:mod:`bench.classic`), two sessions per user for both."""

from __future__ import annotations

import redis

from core import Policy, SessionStore

from .classic import ClassicStore
from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt

TARGET_RATIO = 1.6
"""Issue #12: memory per session at most 1.6x the classic session holding the same fields."""


def _used(admin: redis.Redis) -> int:
    return int(admin.info("memory")["used_memory"])


def _event_bytes(admin: redis.Redis, key: str) -> int:
    return int(admin.memory_usage(key, samples=0) or 0)


GROUPS = (("session hashes", "session:"), ("cache summaries", "cache:session:"),
          ("user active sets", "user:active_sessions:"), ("user history lists", "user:sessions:"),
          ("sort indexes (idx:active:*)", "idx:active:"), ("search index", "idx:search"),
          ("overview (ov:*)", "ov:"), ("event log", "event:logs"))


def breakdown(admin: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE summed per key group (one pipelined call per key): where the bytes go.
    It leaves out the keyspace's own tables (expires entries, dict growth)."""
    keys = list(admin.scan_iter(count=1000))
    pipe = admin.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    out: dict[str, int] = {name: 0 for name, _ in GROUPS}
    out["other"] = 0
    for key, used in zip(keys, pipe.execute(raise_on_error=False), strict=True):
        name = next((g for g, prefix in GROUPS if key.startswith(prefix)), "other")
        out[name] += used if isinstance(used, int) else 0
    return out


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("memory per session")
    admin = redis.Redis.from_url(url, decode_responses=True)
    store = SessionStore.from_url(url)
    classic = ClassicStore(store.client, prefix="")
    n = cfg.memory_sessions
    warm = Policy().event_log_max
    ours, ours_ex, cls, cls_ex, ratio, ratio_ex = Sample(), Sample(), Sample(), Sample(), Sample(), Sample()
    for rep in range(cfg.memory_reps):
        progress(f"memory: repetition {rep + 1}: {n:,} sessions each way")
        admin.flushall()
        for i in range(min(warm, n)):  # event log at its cap first: steady state, not its growth
            store.login(f"warm{i}", app="crm")
        last = rep == cfg.memory_reps - 1
        warm_parts = breakdown(admin) if last else {}
        before, ev0 = _used(admin), _event_bytes(admin, store.schema.events)
        for i in range(n):
            store.login(f"user{i // 2:07d}", app=("crm", "billing", "admin")[i % 3], type="web",
                        ip=f"10.0.{i % 250}.{i % 199 + 1}", user_agent="Mozilla/5.0 (bench)")
        delta, ev = _used(admin) - before, _event_bytes(admin, store.schema.events) - ev0
        ours.add(delta / n)
        ours_ex.add((delta - ev) / n)
        if last:
            parts = {k: v - warm_parts.get(k, 0) for k, v in breakdown(admin).items()}

        admin.flushall()
        before = _used(admin)
        for i in range(n):
            classic.login(f"user{i // 2:07d}", app=("crm", "billing", "admin")[i % 3], type="web",
                          ip=f"10.0.{i % 250}.{i % 199 + 1}", user_agent="Mozilla/5.0 (bench)")
        delta, ev = _used(admin) - before, _event_bytes(admin, classic.schema.events)
        cls.add(delta / n)
        cls_ex.add((delta - ev) / n)
        ratio.add(ours.values[-1] / cls.values[-1])
        ratio_ex.add(ours_ex.values[-1] / cls_ex.values[-1])
    admin.flushall()

    t = Table(f"7. Redis memory per active session ({n:,} sessions, 2 per user)",
              ["layout", "bytes/session (used_memory delta)", "excluding the event log", "per 1M sessions"])
    t.add("sessionwatch (hash + TTL, sort indexes by last seen, login, expiry, user and app, search index, "
          "overview, cache summary, user set + history list, counters)", ours.cell(), ours_ex.cell(),
          f"≈ {ours.median * 1e6 / 2**30:.2f} GiB")
    t.add("classic (hash + TTL, user list + set, cache summary, uncapped event list)", cls.cell(),
          cls_ex.cell(), f"≈ {cls.median * 1e6 / 2**30:.2f} GiB")
    t.add("ratio sessionwatch / classic (same rep)", ratio.cell(2), ratio_ex.cell(2), "")
    t.notes.append("Ours is measured with the event log already at its cap (10,000 lines), so its growth is "
                   "not charged to sessions; the classic event list is never trimmed, so it grows by one "
                   "line per login for ever (shown separately by excluding it: MEMORY USAGE of the list).")
    sec.tables.append(t)
    b = Table(f"7b. Where sessionwatch's bytes go (MEMORY USAGE growth per key group over the {n:,} "
              "sessions / n, last repetition)", ["key group", "bytes per session"])
    for name, used in parts.items():
        b.add(name, fmt(used / n))
    b.notes.append("MEMORY USAGE leaves out the keyspace's own tables (key entries' TTLs, hash-table slots), "
                   "which the used_memory delta above counts; the event log grows here only while it is "
                   "below its cap (the quick run).")
    sec.tables.append(b)
    sec.headline.append(("Redis memory per session", f"{fmt(ours.median)} B ours vs {fmt(cls.median)} B "
                         f"classic ({fmt(ratio.median, 2)}×)"))
    sec.targets.append(Target("Redis memory per session vs classic", f"{fmt(ratio.median, 2)}×",
                              f"≤ {TARGET_RATIO}×", ratio.median <= TARGET_RATIO))
    store.close()
    admin.close()
    return sec
