"""Benchmark 5: the live path. A load generator (own process) logs in at a fixed rate;
we measure event-to-feed latency through :class:`core.feed.EventFeed` (event timestamp →
the feed yields it), then event-to-screen latency and CPU share of the dashboard
(:mod:`bench.dashboard_probe`, own process) idle and under that load."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time

from core import Event, SessionStore

from .config import Config
from .measure import Progress, Section, Table, Target, percentile


def _loadgen(url: str, rate: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench.loadgen", url, str(rate), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _achieved(proc: subprocess.Popen[str]) -> float:
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {(err.strip().splitlines() or ['?'])[-1]}")
    total, elapsed, _behind = out.split()
    return int(total) / float(elapsed)


def feed_latency(url: str, rate: int, seconds: float) -> tuple[list[float], float]:
    from core.feed import EventFeed

    store = SessionStore.from_url(url)
    feed = EventFeed(store, heartbeat=1.0, backlog=1, keyspace=False)
    stop = threading.Event()
    lat: list[float] = []
    window = [float("inf"), float("inf")]
    ready = threading.Event()

    def reader() -> None:
        for item in feed.run(stop):
            ready.set()
            if isinstance(item, Event) and item.ts is not None and window[0] <= item.ts <= window[1]:
                lat.append(time.time() - item.ts)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.3)
    window[0] = time.time()
    proc = _loadgen(url, rate, seconds)
    achieved = _achieved(proc)
    window[1] = time.time()
    time.sleep(1.0)
    stop.set()
    thread.join(5)
    feed.close()
    store.close()
    return lat, achieved


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("live path")
    rate, secs = cfg.live_rate, cfg.live_seconds
    progress(f"live: event-to-feed latency, core.feed.EventFeed, {rate} logins/s for {secs:g} s")
    lat, achieved = feed_latency(url, rate, secs)
    t = Table(f"5. Live path at {rate:,} logins/s (load generator in its own process, {secs:g} s)",
              ["path", "events measured", "achieved logins/s", "p50 latency (ms)", "p99 latency (ms)",
               "max (ms)", "CPU share idle", "CPU share under load"])
    t.add("core.feed.EventFeed (thread): event ts → yielded", f"{len(lat):,}", f"{achieved:,.0f}",
          f"{percentile(lat, .5) * 1000:.1f}", f"{percentile(lat, .99) * 1000:.1f}",
          f"{max(lat, default=float('nan')) * 1000:.1f}", "", "")
    sec.headline.append((f"event → feed at {rate:,} logins/s", f"p50 {percentile(lat, .5) * 1000:.1f} ms, "
                         f"p99 {percentile(lat, .99) * 1000:.1f} ms"))
    if cfg.tui and importlib.util.find_spec("tui.app") is not None:
        progress(f"live: dashboard event-to-screen latency and CPU, {rate} logins/s")
        idle = 3.0
        cmd = [sys.executable, "-m", "bench.dashboard_probe", "live", url, "--idle", str(idle),
               "--load", str(secs)]
        probe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert probe.stdout is not None
        line = probe.stdout.readline().strip()
        if line != "READY":
            probe.kill()
            raise RuntimeError(f"dashboard probe did not start: {line or probe.stderr.read()[-200:]}")
        gen = _loadgen(url, rate, secs)
        dash_achieved = _achieved(gen)
        out, err = probe.communicate(timeout=120)
        if probe.returncode != 0:
            raise RuntimeError(f"dashboard probe failed: {(err.strip().splitlines() or ['?'])[-1]}")
        res = json.loads(out.strip().splitlines()[-1])
        dl = res["latencies"]
        p99 = percentile(dl, .99) * 1000
        t.add("dashboard (tui.app, headless run_test): event ts → line appended to the event log",
              f"{len(dl):,}", f"{dash_achieved:,.0f}", f"{percentile(dl, .5) * 1000:.1f}", f"{p99:.1f}",
              f"{max(dl, default=float('nan')) * 1000:.1f}", f"{res['idle_cpu'] * 100:.1f}% of one core",
              f"{res['load_cpu'] * 100:.1f}% of one core")
        sec.targets += [
            Target(f"event-to-screen p99 at {rate:,} logins/s", f"{p99:.0f} ms", "< 250 ms", p99 < 250),
            Target(f"dashboard CPU at {rate:,} logins/s", f"{res['load_cpu'] * 100:.0f}%", "< 50% of a core",
                   res["load_cpu"] < 0.5),
            Target("dashboard CPU idle", f"{res['idle_cpu'] * 100:.1f}%", "< 2% of a core",
                   res["idle_cpu"] < 0.02),
        ]
        sec.headline.append((f"event → dashboard screen at {rate:,} logins/s",
                             f"p50 {percentile(dl, .5) * 1000:.0f} ms, p99 {p99:.0f} ms; CPU "
                             f"{res['load_cpu'] * 100:.0f}% of a core (idle {res['idle_cpu'] * 100:.1f}%)"))
        _keys(url, rate, cfg.keys_seconds, sec, progress)
    else:
        sec.not_done.append("dashboard event-to-screen latency and CPU share: dashboard not measured in this "
                            "configuration")
    t.notes.append("Latency = arrival time − the event's own timestamp (set by the login's clock before its "
                   "round trip), so it includes the login call, the PUBLISH and the reader's wake-up. "
                   "Headless "
                   "run_test renders without a terminal, so a real terminal adds its write cost.")
    sec.tables.append(t)
    return sec


def _keys(url: str, rate: int, secs: float, sec: Section, progress: Progress) -> None:
    """Key-press to screen on the Active table while ``rate`` logins/s arrive."""
    progress(f"live: dashboard key-press to screen, {rate} logins/s")
    cmd = [sys.executable, "-m", "bench.dashboard_probe", "keys", url, "--load", str(secs)]
    probe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert probe.stdout is not None
    line = probe.stdout.readline().strip()
    if line != "READY":
        probe.kill()
        raise RuntimeError(f"dashboard keys probe did not start: {line or probe.stderr.read()[-200:]}")
    gen = _loadgen(url, rate, secs + 1)
    achieved = _achieved(gen)
    out, err = probe.communicate(timeout=120)
    if probe.returncode != 0:
        raise RuntimeError(f"dashboard keys probe failed: {(err.strip().splitlines() or ['?'])[-1]}")
    res = json.loads(out.strip().splitlines()[-1])
    by_key: dict[str, list[float]] = res["latencies"]
    every = [x for xs in by_key.values() for x in xs]
    t = Table(f"5b. Key-press to screen on the Active table at {rate:,} logins/s ({achieved:,.0f}/s reached)",
              ["key", "presses", "p50 (ms)", "p99 (ms)", "max (ms)"])
    for key, xs in [*sorted(by_key.items()), ("all keys", every)]:
        t.add(key, f"{len(xs):,}", f"{percentile(xs, .5):.1f}", f"{percentile(xs, .99):.1f}",
              f"{max(xs, default=float('nan')):.1f}")
    cpu = res.get("cpu_ms", [])
    t.add("all keys: event-loop CPU from delivery to frame", f"{len(cpu):,}", f"{percentile(cpu, .5):.1f}",
          f"{percentile(cpu, .99):.1f}", f"{max(cpu, default=float('nan')):.1f}")
    t.notes.append("Keys (bench/dashboard_probe.py KEY_MIX: moves, pages, End, Home) delivered one at a time "
                   "as Key events, 50–100 ms apart, while the load generator logs in; each is timed from its "
                   "delivery to the first frame that draws the row under the cursor with its session read "
                   "(headless run_test, 160x50; a real terminal adds its write). The table follows the head "
                   "at the start and holds once the cursor leaves it; End and Home read a new window. The "
                   "last row is the dashboard's own work in those intervals (CPU time of its event-loop "
                   "thread, which also drains the live feed): wall time beyond it is time the machine ran "
                   "other processes.")
    sec.tables.append(t)
    p99 = percentile(every, .99)
    sec.targets.append(Target(f"key-press to screen p99 at {rate:,} logins/s", f"{p99:.0f} ms", "< 100 ms",
                              p99 < 100))
    sec.headline.append((f"key-press to screen at {rate:,} logins/s",
                         f"p50 {percentile(every, .5):.0f} ms, p99 {p99:.0f} ms ({len(every)} keys)"))
