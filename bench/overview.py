"""Benchmark 9: what the overview and the anomaly rules cost. Redis CPU and memory each
login adds for the overview's sorted sets, pair counts, per-minute kinds and the
never-seen-usernames set (login.lua against the same script with those lines taken
out, interleaved), and flag latency: how long after a spraying run crosses its threshold
its ``flag_raised`` event is out, while a load generator logs in 1,000 users a second.
The overview refresh at 1k/100k/1M sessions is in benchmark 4 (scale)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import redis

from core import Event, SessionStore
from core.flagger import Flagger
from core.scripts import script_source

from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt, percentile
from .redisstats import measure

OVERVIEW_LINES = (
    ("count_kind('login')\n", ""),
    ("overview_adjust(username, ip, 1)\n", ""),
    ("if redis.call('SADD', O_SEEN, username) == 1 and history_len == 1 then", "if false then"),
)
"""What login.lua does for the overview and the rules, and what it becomes without them."""


def login_without_overview() -> str:
    src = script_source("login")
    for old, new in OVERVIEW_LINES:
        if old not in src:
            raise RuntimeError(f"login.lua changed: {old.strip()!r} not found; update bench/overview.py")
        src = src.replace(old, new)
    return src


def _settled(admin: redis.Redis) -> int:
    """used_memory once a previous FLUSHALL ASYNC has freed everything (the scale benchmark
    leaves a million sessions being freed in the background)."""
    deadline = time.monotonic() + 120
    while int(admin.info("memory").get("lazyfree_pending_objects", 0)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return int(admin.info("memory")["used_memory"])


def _logins(store: SessionStore, n: int, tag: str) -> None:
    for i in range(n):
        store.login(f"{tag}{i // 2:07d}", app=("crm", "billing", "admin")[i % 3], type="web",
                    ip=f"10.{i % 7}.{i % 250}.{i % 199 + 1}", user_agent="Mozilla/5.0 (bench)")


def _cost_per_login(url: str, cfg: Config, progress: Progress) -> tuple[Sample, Sample, Sample, Sample]:
    admin = redis.Redis.from_url(url, decode_responses=True)
    full = SessionStore.from_url(url)
    bare = SessionStore.from_url(url)
    bare._scripts["login"] = bare.client.register_script(login_without_overview())
    for store in (full, bare):  # both by EVALSHA, so the only difference is the script body
        store._script_mode = "eval"
    n = cfg.memory_sessions
    cpu = {"with": Sample(), "without": Sample()}
    mem = {"with": Sample(), "without": Sample()}
    for rep in range(cfg.memory_reps):
        order = (("with", full), ("without", bare))
        for name, store in order[::-1] if rep % 2 else order:
            progress(f"overview: repetition {rep + 1}, {n:,} logins {name} the overview")
            admin.flushall()
            _logins(store, min(n, 2000), "warm")  # scripts loaded, event log growing as usual
            before = _settled(admin)
            cost = measure(admin, lambda s=store: _logins(s, n, "user"))
            mem[name].add((int(admin.info("memory")["used_memory"]) - before) / n)
            cpu[name].add(cost.usec["evalsha"] / max(1, cost.commands["evalsha"]))
    admin.flushall()
    full.close()
    bare.close()
    admin.close()
    return cpu["with"], cpu["without"], mem["with"], mem["without"]


def flag_latency(url: str, rate: int, seconds: float, injections: int) -> tuple[list[float], float, float]:
    """Spraying runs (10 users from one new address) injected into ``rate`` logins/s;
    returns the seconds from each run's 10th login to its flag_raised event, the load
    achieved, and the evaluator process's CPU share."""
    store = SessionStore.from_url(url)
    flagger = Flagger(store, actor="bench")
    stop = threading.Event()
    seen: dict[str, float] = {}
    ready = threading.Event()

    def on_event(ev: Event) -> None:
        if ev.kind == "flag_raised" and ev.data.get("rule") == "spray":
            seen.setdefault(str(ev.data.get("subject")), time.monotonic())

    def on_status(_item: object) -> None:
        ready.set()

    runner = threading.Thread(target=flagger.run, args=(stop,), kwargs={"on_event": on_event,
                                                                         "on_status": on_status}, daemon=True)
    runner.start()
    ready.wait(10)
    proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen", url, str(rate), str(seconds), "spread"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu0, wall0 = time.process_time(), time.monotonic()
    crossed: dict[str, float] = {}
    gap = seconds / (injections + 1)
    sprayer = SessionStore.from_url(url)
    for k in range(injections):
        time.sleep(gap)
        ip = f"203.0.113.{200 + k}"
        for i in range(flagger.thresholds.spray_users):
            sprayer.login(f"target{k}x{i}", app="shop", type="web", ip=ip)
        crossed[ip] = time.monotonic()
    out, err = proc.communicate(timeout=seconds + 120)
    cpu = (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
    deadline = time.monotonic() + 5
    while len(seen) < len(crossed) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join(10)
    sprayer.close()
    store.close()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {(err.strip().splitlines() or ['?'])[-1]}")
    total, elapsed, _behind = out.split()
    lat = [seen[ip] - t for ip, t in crossed.items() if ip in seen]
    lat += [float("inf")] * (len(crossed) - len(lat))
    return lat, int(total) / float(elapsed), cpu


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("overview and anomaly rules")
    cpu_with, cpu_without, mem_with, mem_without = _cost_per_login(url, cfg, progress)
    t = Table(f"9. What the overview and the rules add to each login ({cfg.memory_sessions:,} logins, "
              "2 per user, interleaved)",
              ["login.lua", "Redis CPU µs per login (EVALSHA)", "bytes per login"])
    t.add("with the overview (as shipped)", cpu_with.cell(1), mem_with.cell())
    t.add("without (its overview lines taken out)", cpu_without.cell(1), mem_without.cell())
    t.add("added by the overview", fmt(cpu_with.median - cpu_without.median, 1),
          fmt(mem_with.median - mem_without.median))
    t.notes.append("Added per login: 4 ZINCRBY (sessions and distinct counts per address and user), "
                   "1 HINCRBY on the ip|user pair, 1 HINCRBY (+ EXPIRE once a minute) on the "
                   "per-minute kinds hash, 1 SADD to the seen-usernames set. An end undoes the first "
                   "five. Bytes: used_memory delta, the event log growing the same way in both runs.")
    sec.tables.append(t)
    progress(f"overview: flag latency at {cfg.live_rate} logins/s")
    lat, achieved, cpu = flag_latency(url, cfg.live_rate, max(4.0, cfg.live_seconds * 2), cfg.flag_injections)
    ms = [x * 1000 for x in lat]
    finite = [x for x in ms if x != float("inf")]
    f = Table(f"9b. Flag latency under load ({achieved:,.0f} logins/s achieved)",
              ["spraying runs", "flagged", "median ms", "max ms", "evaluator process CPU"])
    f.add(len(ms), len(finite), fmt(percentile(finite, 0.5), 0) if finite else "-",
          fmt(max(ms), 0) if ms else "-", f"{cpu * 100:.0f}% of a core")
    f.notes.append("A run: 10 distinct users log in from one new address; latency is from the return of its "
                   "10th login to the flag_raised event reaching a feed reader, with the evaluator "
                   "(core.flagger, ticking every 0.25 s) following the same feed in this process. The load "
                   "generator is a separate process, each user on its own address.")
    sec.tables.append(f)
    ok = bool(finite) and len(finite) == len(ms) and max(finite) <= 2000
    sec.targets.append(Target(f"spray flagged within 2 s at {cfg.live_rate} logins/s",
                              f"max {fmt(max(ms), 0)} ms" if ms else "-", "≤ 2000 ms", ok))
    sec.headline.append(("overview + rules per login",
                         f"+{fmt(cpu_with.median - cpu_without.median, 1)} µs Redis CPU, "
                         f"+{fmt(mem_with.median - mem_without.median)} B"))
    sec.headline.append((f"flag latency at {cfg.live_rate} logins/s",
                         f"median {fmt(percentile(finite, 0.5), 0) if finite else '-'} ms, "
                         f"max {fmt(max(ms), 0) if ms else '-'} ms"))
    return sec
