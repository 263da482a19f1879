"""The dashboard measured from outside: a separate process (so its RSS and CPU are its
own) runs ``tui.app.build_app`` headless with ``run_test`` and reports JSON on stdout.

``paint``: time from app start to the Active table holding rows, and RSS.
``live``: CPU share while idle, then (after printing ``READY``) while the parent runs a
load generator; event-to-screen latency = event timestamp → the line is appended to the
dashboard's event log widget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

T_START = time.perf_counter()


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux folds the parent's peak
    into it across fork+exec, so a probe started by a parent that holds a 1M-session fill
    would report the parent's memory."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu() -> float:
    t = resource.getrusage(resource.RUSAGE_SELF)
    return t.ru_utime + t.ru_stime


async def _wait_rows(app, pilot, timeout: float = 30.0) -> None:
    table = app.query_one("#active-table")
    deadline = time.perf_counter() + timeout
    while table.row_count == 0:
        if time.perf_counter() > deadline:
            raise TimeoutError("the Active table showed no rows")
        await asyncio.sleep(0.005)


async def paint(url: str) -> dict[str, float]:
    t0 = time.perf_counter()
    from core import SessionStore
    from tui.app import build_app

    imported = time.perf_counter()
    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, sweep=False)
    start = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        first = time.perf_counter()
        await pilot.pause()
        rss = _rss_mib()
    store.close()
    return {"first_paint_ms": (first - start) * 1000, "import_ms": (imported - t0) * 1000, "rss_mib": rss,
            "peak_rss_mib": _peak_rss_mib()}


async def end(url: str) -> dict[str, float]:
    """End pressed on the Active table: time until the last row of the set is selected and
    drawn (the window read from the end of the index, not the whole set)."""
    from core import SessionStore
    from tui.app import build_app
    from tui.widgets.virtual_table import VirtualTable

    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, sweep=False, feed=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        table = app.query_one("#active-table", VirtualTable)
        total = table.window.total
        t0 = time.perf_counter()
        await pilot.press("end")
        while not (table.window.selected is not None and table.window.cursor == total - 1
                   and table.window.selected.session is not None):
            if time.perf_counter() - t0 > 30:
                raise TimeoutError("End did not reach the last row")
            await asyncio.sleep(0.002)
        await pilot.pause()  # drawn
        took = (time.perf_counter() - t0) * 1000
        rss = _rss_mib()
    store.close()
    return {"end_ms": took, "rows": total, "rss_mib": rss}


async def live(url: str, idle: float, load: float) -> dict[str, object]:
    from core import SessionStore
    from tui.app import build_app
    from tui.widgets.events import EventLog

    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, sweep=False)
    latencies: list[float] = []
    window = [float("inf"), float("inf")]
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        # The Events tab on screen: events are drawn as they come (the worst case for CPU;
        # a hidden tail is only redrawn when shown), and their arrival can be timed.
        await pilot.press("3")
        log = app.query_one(EventLog)
        original = log.append

        def timed_append(events):
            events = list(events)
            now = time.time()
            latencies.extend(now - ev.ts for ev in events
                             if ev.kind == "login" and ev.ts is not None and window[0] <= ev.ts <= window[1])
            return original(events)

        log.append = timed_append  # type: ignore[method-assign]
        await asyncio.sleep(1.0)
        c0, w0 = _cpu(), time.perf_counter()
        await asyncio.sleep(idle)
        idle_share = (_cpu() - c0) / (time.perf_counter() - w0)
        window[0] = time.time()
        print("READY", flush=True)
        c0, w0 = _cpu(), time.perf_counter()
        await asyncio.sleep(load)
        load_share = (_cpu() - c0) / (time.perf_counter() - w0)
        window[1] = time.time()
        await asyncio.sleep(1.5)  # let the last events of the window arrive
        await pilot.pause()
    store.close()
    return {"idle_cpu": idle_share, "load_cpu": load_share, "latencies": latencies,
            "peak_rss_mib": _peak_rss_mib()}


def run_paint(url: str, mode: str = "paint") -> dict[str, float]:
    """Run one paint (or ``end``) probe in a fresh process."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "bench.dashboard_probe", mode, url], capture_output=True,
                         text=True, timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dashboard probe failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["paint", "live", "end"])
    parser.add_argument("url")
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--load", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "paint":
        result = asyncio.run(paint(args.url))
    elif args.mode == "end":
        result = asyncio.run(end(args.url))
    else:
        result = asyncio.run(live(args.url, args.idle, args.load))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
