"""Dashboard commands per screenful on Redis Cluster, at 1,000 and 100,000 sessions
(``Config.screenful_sizes``).

A loopback cluster (3 masters, 3 replicas: tests/faults/cluster.py) holds the bucketed
layout (64 buckets), filled by the bulk loader one bucket at a time. Each dashboard read
runs once per size; the commands every master executed for it are summed (``INFO
commandstats`` deltas), and the store's requests are counted (each is one pipeline: one
round trip to each master it touches). The merged reads (core/merged.py) are built to cost
the same at any size, so the two columns must match; a far jump seeks a pivot in a number
of rounds bounded by ``SEEK_ROUNDS``, which may differ.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis

from core import SessionStore
from core.buckets import Buckets

from . import fill
from .config import Config
from .measure import Progress, Section, Table
from .redisstats import _snapshot

BUCKETS = 64
SCREEN = 48
"""Rows on a 160x50 dashboard's Active table (as bench/scale.py)."""
WINDOW = 3 * SCREEN
"""A refresh reads the screen and a screenful each side."""


def _anchor(store: SessionStore, order: str, descending: bool, rank: int) -> str:
    return store.window(order, descending=descending, start=rank, count=1).members[0]


def workloads(store: SessionStore, size: int) -> dict[str, Callable[[], object]]:
    """What the dashboard reads, named; anchors are read beforehand (not measured)."""
    mid_seen = _anchor(store, "seen", True, size // 2)
    mid_user = _anchor(store, "user", False, size // 2)
    return {
        f"Active, following the head ({WINDOW} rows)":
            lambda: store.window("seen", descending=True, start=0, count=WINDOW),
        f"Active, held mid-set: a refresh around the anchor ({WINDOW} rows)":
            lambda: store.window("seen", descending=True, start=-SCREEN, count=WINDOW, anchor=mid_seen),
        f"Active by user (lex), held mid-set ({WINDOW} rows)":
            lambda: store.window("user", descending=False, start=-SCREEN, count=WINDOW, anchor=mid_user),
        f"Active, End: the last rows ({WINDOW} rows)":
            lambda: store.window("seen", descending=True, start=-WINDOW, count=WINDOW),
        f"Active, jump to the middle rank (seek; {WINDOW} rows)":
            lambda: store.window("seen", descending=True, start=size // 2, count=WINDOW),
        "health poll counts (stats)": store.stats,
        "Overview refresh (60 min, top 10s, flags)": store.overview,
        "Cache panel (100 entries)": lambda: store.cache_page(limit=100),
        "Search, user prefix (50)": lambda: store.search("user", "user0000", limit=50),
        "Inactive page (50)": lambda: store.ended_page(limit=50),
    }


def _counted(store: SessionStore) -> Counter[str]:
    """Count the store's requests (one pipeline or script call each)."""
    counts: Counter[str] = Counter()
    real = store._execute

    def execute(request: Any) -> Any:
        counts["requests"] += 1
        return real(request)

    store._execute = execute  # type: ignore[method-assign]
    return counts


def _commands(masters: list[redis.Redis], work: Callable[[], object]) -> Counter[str]:
    for m in masters:
        m.config_resetstat()
    base = [_snapshot(m) for m in masters]
    for m in masters:
        m.config_resetstat()
    work()
    total: Counter[str] = Counter()
    for m, b in zip(masters, base, strict=True):
        total.update(_snapshot(m).minus(b).commands)
    total.pop("replconf", None)  # replicas' once-a-second acknowledgements, not the dashboard's
    return total


def run(url: str, cfg: Config, progress: Progress) -> Section:
    from tests.faults.cluster import ClusterGroup, missing_tools

    sec = Section("dashboard commands per screenful on Redis Cluster")
    sizes = cfg.screenful_sizes
    why = missing_tools()
    if why is not None:
        sec.not_done.append(f"cluster screenful: {why}")
        return sec
    progress("cluster screenful: starting a 3-master, 3-replica loopback cluster")
    group = ClusterGroup().start()
    try:
        client = group.client()
        store = SessionStore(client, buckets=BUCKETS)
        requests = _counted(store)
        masters = [redis.Redis(host="127.0.0.1", port=n.port, decode_responses=True) for n in group.masters()]
        results: dict[str, dict[int, tuple[Counter[str], int]]] = {}
        loaded = 0
        now = time.time()
        for size in sizes:
            progress(f"cluster screenful: filling to {size:,} sessions")
            fill.fill_buckets(client, Buckets("", BUCKETS), loaded, size - loaded, now=now, spread=size)
            loaded = size
            for name, work in workloads(store, size).items():
                requests.clear()
                n = _commands(masters, work)
                results.setdefault(name, {})[size] = (n, requests["requests"])
        for m in masters:
            m.close()
        client.close()
    finally:
        group.stop()
    table = Table(f"Dashboard reads on a 3-master cluster, bucketed layout ({BUCKETS} buckets)",
                  ["read", *[f"commands at {s:,}" for s in sizes],
                   "round trips (each: one pipeline per master)", "same at both sizes"])
    for name, by_size in results.items():
        cmds = [sum(by_size[s][0].values()) for s in sizes]
        trips = sorted({by_size[s][1] for s in sizes})
        extra = by_size[sizes[1]][0] - by_size[sizes[0]][0]
        fewer = by_size[sizes[0]][0] - by_size[sizes[1]][0]
        diff = ", ".join([*(f"+{n} {c}" for c, n in extra.items()), *(f"-{n} {c}" for c, n in fewer.items())])
        table.add(name, *cmds, "/".join(str(t) for t in trips), "yes" if not diff else f"no ({diff})")
    table.notes.append(f"Commands are summed over the masters (INFO commandstats, less the replicas' "
                       f"REPLCONF acknowledgements); {WINDOW} rows is a "
                       f"screenful of {SCREEN} and one each side. A read near the head, the tail or an "
                       "anchor costs a fixed number of commands per bucket plus one HGETALL per row.")
    sec.tables.append(table)
    screen = [by[sizes[0]][0] == by[sizes[1]][0] for name, by in results.items()
              if "Active" in name and "seek" not in name]  # a seek's rounds are bounded, not fixed
    what = f"dashboard commands per screenful on cluster, {sizes[0]:,} vs {sizes[1]:,} sessions"
    sec.headline.append((what, "identical" if all(screen) else "differ"))
    return sec
