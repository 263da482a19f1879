"""Paced login load for the live-path benchmark, run as its own process so it does not
share the measuring process's GIL: ``python -m bench.loadgen URL RATE SECONDS``."""

from __future__ import annotations

import sys
import time

from core import SessionStore


def main() -> None:
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    store = SessionStore.from_url(url)
    store.ping()
    total = int(rate * seconds)
    start = time.perf_counter()
    behind = 0
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            behind += 1
        store.login(f"live{i // 3:06d}", app=("crm", "billing", "admin")[i % 3], type="web", ip="10.1.0.1")
    elapsed = time.perf_counter() - start
    print(f"{total} {elapsed:.3f} {behind}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
