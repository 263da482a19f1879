"""The dashboard measured from outside: a separate process (so its RSS and CPU are its
own) runs ``tui.app.build_app`` headless with ``run_test`` and reports JSON on stdout.

``paint``: time from app start to the Active table holding rows, and RSS.
``live``: CPU share while idle, then (after printing ``READY``) while the parent runs a
load generator; event-to-screen latency = event timestamp → the line is appended to the
dashboard's event log widget.
``end``: End pressed → the last row drawn under the cursor (:class:`ScreenClock`).
``keys``: after ``READY``, keys pressed while the parent's load generator runs, each
timed to the frame that draws its effect.
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
    app = build_app(store, read_only=True, freeze_heap=True, sweep=False)
    start = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        first = time.perf_counter()
        await pilot.pause()
        rss = _rss_mib()
    store.close()
    return {"first_paint_ms": (first - start) * 1000, "import_ms": (imported - t0) * 1000, "rss_mib": rss,
            "peak_rss_mib": _peak_rss_mib()}


class ScreenClock:
    """When a key's effect is on screen: the first frame, after the key was handled, that
    draws the row under the cursor with its session read (a row still being read shows
    as "…" and does not count). Frames are timed where the compositor asks the table for
    its lines (headless: the same frames a terminal would get, minus the write)."""

    def __init__(self) -> None:
        from tui.widgets.virtual_table import VirtualTable

        self.handled = False
        self.want: object = None
        self.drawn: float | None = None
        self.drawn_cpu = 0.0
        self.cpu: list[float] = []
        """Event-loop thread CPU (ms) from each key's delivery to its frame: the app's own
        work, apart from time the machine gave to other processes."""
        clock = self
        render, moved, jumped = VirtualTable.render_line, VirtualTable._moved, VirtualTable._jumped

        def render_line(table, y):  # type: ignore[no-untyped-def]
            strip = render(table, y)
            w = table.window
            if (clock.want is not None and clock.handled and clock.drawn is None and y == w.cursor - w.top + 1
                    and w.selected is not None and w.selected.session is not None and clock.want(table)):
                clock.drawn, clock.drawn_cpu = time.perf_counter(), time.thread_time()
            return strip

        def _moved(table, *args):  # type: ignore[no-untyped-def]
            clock.handled = True
            return moved(table, *args)

        def _jumped(table):  # type: ignore[no-untyped-def]
            clock.handled = True
            return jumped(table)

        VirtualTable.render_line = render_line  # type: ignore[method-assign]
        VirtualTable._moved = _moved  # type: ignore[method-assign]
        VirtualTable._jumped = _jumped  # type: ignore[method-assign]

    async def press(self, app, key: str, want=lambda table: True, timeout: float = 30.0) -> float:  # type: ignore[no-untyped-def]
        """Deliver ``key`` as a terminal would (one Key event, no test-harness waits) and
        return milliseconds until its effect is drawn."""
        from textual import events

        self.handled, self.drawn, self.want = False, None, want
        c0, t0 = time.thread_time(), time.perf_counter()
        app.post_message(events.Key(key, key if len(key) == 1 else None))
        while self.drawn is None:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{key} was not drawn within {timeout:g} s")
            await asyncio.sleep(0.001)
        self.want = None
        self.cpu.append((self.drawn_cpu - c0) * 1000)
        return (self.drawn - t0) * 1000


async def end(url: str) -> dict[str, float]:
    """End pressed on the Active table: time until the last row of the set is drawn, under
    the cursor, with its session read (the window read from the end of the index, not the
    whole set); then Home back to the head, and again."""
    from core import SessionStore
    from tui.app import build_app
    from tui.widgets.virtual_table import VirtualTable

    clock = ScreenClock()
    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, freeze_heap=True, sweep=False, feed=False)
    ends: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        table = app.query_one("#active-table", VirtualTable)
        await pilot.pause()
        for _ in range(3):
            last = table.window.total - 1
            ends.append(await clock.press(app, "end", lambda t, last=last: t.window.cursor == last))
            await pilot.pause()
            await clock.press(app, "home", lambda t: t.window.cursor == 0)
            await pilot.pause()
        rows = table.window.total
        rss = _rss_mib()
    store.close()
    return {"end_ms": sorted(ends)[len(ends) // 2], "end_all_ms": ends, "rows": rows, "rss_mib": rss}  # type: ignore[dict-item]


KEY_MIX = ("down", "down", "down", "pagedown", "down", "up", "pageup", "up", "end", "home")
"""What an admin presses while reading the list: moves, pages, both ends, back to the head."""


async def keys(url: str, seconds: float) -> dict[str, object]:
    """Key-press to screen on the Active table while the parent runs a load generator
    (started after ``READY``): a key of :data:`KEY_MIX` every 50–100 ms, each timed from its
    delivery to the frame that draws its effect (:class:`ScreenClock`)."""
    import random

    from core import SessionStore
    from tui.app import build_app
    from tui.widgets.virtual_table import VirtualTable

    clock = ScreenClock()
    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, freeze_heap=True, sweep=False)
    out: dict[str, list[float]] = {}
    rng = random.Random(7)
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait_rows(app, pilot)
        app.query_one("#active-table", VirtualTable).focus()
        await pilot.pause()
        print("READY", flush=True)
        await asyncio.sleep(0.5)
        t_end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < t_end:
            key = KEY_MIX[i % len(KEY_MIX)]
            i += 1
            out.setdefault(key, []).append(await clock.press(app, key))
            await asyncio.sleep(rng.uniform(0.05, 0.1))
    store.close()
    return {"latencies": out, "cpu_ms": clock.cpu, "peak_rss_mib": _peak_rss_mib()}


async def live(url: str, idle: float, load: float) -> dict[str, object]:
    from core import SessionStore
    from tui.app import build_app
    from tui.widgets.events import EventLog

    store = SessionStore.from_url(url)
    app = build_app(store, read_only=True, freeze_heap=True, sweep=False)
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
    parser.add_argument("mode", choices=["paint", "live", "end", "keys"])
    parser.add_argument("url")
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--load", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "paint":
        result = asyncio.run(paint(args.url))
    elif args.mode == "end":
        result = asyncio.run(end(args.url))
    elif args.mode == "keys":
        result = asyncio.run(keys(args.url, args.load))
    else:
        result = asyncio.run(live(args.url, args.idle, args.load))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
