"""Paced login load for the live-path benchmark, run as its own process so it does not
share the measuring process's GIL: ``python -m bench.loadgen URL RATE SECONDS [spread]``.
With ``spread`` each user logs in from an address of its own (10.1.x.y) instead of all
from 10.1.0.1, so the anomaly rules see ordinary traffic."""

from __future__ import annotations

import sys
import time

from core import SessionStore


def main() -> None:
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    spread = sys.argv[4:5] == ["spread"]
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
        user = i // 3
        ip = f"10.1.{user // 250 % 250}.{user % 250 + 1}" if spread else "10.1.0.1"
        store.login(f"live{user:06d}", app=("crm", "billing", "admin")[i % 3], type="web", ip=ip)
    elapsed = time.perf_counter() - start
    print(f"{total} {elapsed:.3f} {behind}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
