"""Benchmark 4: what a dashboard refresh and a CLI listing page cost Redis at 1,000,
100,000 and 1,000,000 sessions (commands and bytes per refresh must not grow), and the
dashboard's time to first paint and RSS on the biggest data set."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil
import redis

from core import SessionStore
from tui.model import PAGE_SIZE

from . import dashboard_probe, fill
from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt
from .redisstats import Cost, measure

CLI_PAGE = 500
"""Page size of ``sessionwatch sessions`` (tui/cli.py pages by 500)."""


SCREEN = 48
"""Rows on a 160x50 dashboard's Active table; a read is a screenful and a margin each side."""
WINDOW = 3 * SCREEN


def dashboard_poll(store: SessionStore) -> None:
    """What one dashboard refresh reads: the health poll (tui/app.py) and the Active panel's
    window at the head (tui/panels/sessions.py)."""
    store.ping()
    store.stats()
    store.server_info()
    store.window("seen", start=0, count=WINDOW)


def screenful(order: str, where: str) -> Callable[[int], Callable[[SessionStore], object]]:
    """A screenful of the Active table in ``order``: at the top, the middle or the end."""
    def make(size: int) -> Callable[[SessionStore], object]:
        start = {"top": 0, "middle": max(0, size // 2 - SCREEN), "end": -WINDOW}[where]
        return lambda s: s.window(order, descending=order != "user", start=start, count=WINDOW)
    return make


def dashboard_refresh(store: SessionStore) -> None:
    """The poll plus the other panels' reads: cache page and the newest events."""
    dashboard_poll(store)
    store.cache_page(limit=PAGE_SIZE)
    store.events(limit=PAGE_SIZE)


def cli_page(size: int) -> Callable[[SessionStore], object]:
    """A page from the middle of ``sessionwatch sessions`` (offset grows with the data)."""
    offset = max(0, (size // 2 // CLI_PAGE) * CLI_PAGE)
    offset = min(offset, max(0, size - CLI_PAGE))
    return lambda s: s.active_page(sort="last_seen", offset=offset, limit=CLI_PAGE)


def overview_refresh(store: SessionStore) -> None:
    """What the Overview panel reads per refresh, plus one anomaly-rules tick."""
    store.overview()
    store.rule_inputs(min_addresses=4, baseline_minutes=15)


WORK = {
    f"dashboard poll (ping + stats + server_info + Active window of {WINDOW} rows)":
        lambda size: dashboard_poll,
    f"screenful by last seen, middle of the set ({WINDOW} rows)": screenful("seen", "middle"),
    f"screenful by last seen, End: the last rows ({WINDOW} rows)": screenful("seen", "end"),
    f"screenful by user (lex index), middle of the set ({WINDOW} rows)": screenful("user", "middle"),
    "full refresh (poll + cache_page 100 + events 100)": lambda size: dashboard_refresh,
    f"CLI listing page ({CLI_PAGE} sessions, middle of the list)": cli_page,
    "overview refresh (overview 60 min + top 10s + flags, and one rules tick)": lambda size: overview_refresh,
}


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("dashboard refresh at scale")
    admin = redis.Redis.from_url(url, decode_responses=True)
    store = SessionStore.from_url(url)
    now = time.time()
    fill.fill_event_log(admin, now=now)
    costs: dict[str, dict[int, Cost]] = {k: {} for k in WORK}
    times: dict[str, dict[int, Sample]] = {k: {} for k in WORK}
    fills: dict[int, tuple[float, int]] = {}
    loaded = 0
    base_mem = int(admin.info("memory")["used_memory"])
    sizes = list(cfg.scale_sizes)
    for size in sizes:
        need = size - loaded
        avail = psutil.virtual_memory().available
        if need * 2500 > avail * 0.6:
            sec.not_done.append(f"scale {size:,}: skipped, needs ≈ {need * 2500 / 2**30:.1f} GiB and only "
                                f"{avail / 2**30:.1f} GiB is available")
            break
        progress(f"scale: filling to {size:,} sessions")
        t = time.perf_counter()
        step = max(fill.BATCH, need // 5)

        def report(done: int, base: int = loaded, size: int = size, step: int = step) -> None:
            if done % step < fill.BATCH:
                progress(f"scale: {base + done:,}/{size:,}")
        fill.fill(admin, loaded, need, now=now, progress=report)
        fills[size] = (time.perf_counter() - t, need)
        loaded = size
        progress(f"scale: measuring at {size:,}")
        for name, make in WORK.items():
            work = make(size)
            work(store)  # warm: connection open, indexes checked
            costs[name][size] = measure(admin, lambda w=work: w(store))
            sample = Sample()
            for _ in range(cfg.refreshes):
                t = time.perf_counter()
                work(store)
                sample.add((time.perf_counter() - t) * 1000)
            times[name][size] = sample
        mem = int(admin.info("memory")["used_memory"])
        sec.notes.append(f"- {size:,} sessions: Redis used_memory {mem / 2**20:,.0f} MiB "
                         f"(≈ {(mem - base_mem) / size:,.0f} B per bulk-loaded session, all keys core "
                         "writes)")
    measured = [s for s in sizes if s in fills]

    t = Table("4. Redis cost per dashboard refresh and per CLI page, by number of sessions",
              ["work", *[f"{s:,} sessions: commands / bytes in / bytes out" for s in measured]])
    for name in WORK:
        t.add(name, *[f"{costs[name][s].total_commands} / {costs[name][s].bytes_in:,} / "
                      f"{costs[name][s].bytes_out:,}" for s in measured])
    first = measured[0] if measured else None
    if first is not None:
        t.notes.append("Commands per refresh, by command (same at every size): " + "; ".join(
            f"{name.split(' (')[0]}: {costs[name][first].breakdown()}" for name in WORK))
    t.notes.append("From CONFIG RESETSTAT + INFO commandstats / INFO stats (total_net_input_bytes, "
                   "total_net_output_bytes) around one refresh, measuring calls subtracted. Commands inside "
                   "scripts are not involved: every read here is a plain command or pipeline.")
    sec.tables.append(t)

    w = Table("4b. Wall time per refresh (client + server, ms)", ["work", *[f"{s:,}" for s in measured]])
    for name in WORK:
        w.add(name, *[times[name][s].cell(2) for s in measured])
    w.notes.append(f"{cfg.refreshes} refreshes per size, back to back, one connection.")
    sec.tables.append(w)

    f = Table("4c. Bulk fill (Lua loader, same keys and fields as core's login)",
              ["to size", "sessions written", "seconds", "sessions/s"])
    for s in measured:
        secs, n = fills[s]
        f.add(f"{s:,}", f"{n:,}", fmt(secs, 1), fmt(n / secs))
    sec.tables.append(f)

    for name in WORK:
        counts = {costs[name][s].total_commands for s in measured}
        same = len(counts) == 1
        sec.targets.append(Target(f"commands per {name.split(' (')[0]} identical at all sizes",
                                  " / ".join(str(costs[name][s].total_commands) for s in measured),
                                  "identical", same if len(measured) > 1 else None))
    if measured:
        big = measured[-1]
        full = next(name for name in WORK if name.startswith("full refresh"))
        sec.headline.append((f"dashboard full refresh at {big:,} sessions",
                             f"{costs[full][big].total_commands} commands "
                             f"(same at {measured[0]:,}), "
                             f"{times[full][big].median:.1f} ms"))
        _scan(admin, store, big, sec, progress)
        if cfg.tui:
            _dashboard(url, cfg, big, sec, progress)
        else:
            sec.not_done.append("dashboard first paint and RSS: not measured in this configuration")
    store.close()
    admin.close()
    return sec


def scan_queries(size: int) -> list[tuple[str, str]]:
    """(what, filter text) of the substring filters timed at ``size`` sessions (user
    ``user%08d`` has sessions 2u and 2u+1; apps repeat every 5 sessions)."""
    mid = f"{size // 4:08d}"[:7]
    return [("a common word: an app name's middle, 1 session in 5", "rm"),
            ("rare, early in user order: 20 sessions", "SER0000123"),
            (f"rare, a quarter into user order: 20 sessions (user{mid}0–9)", f"SER{mid}")]


def _scan_once(admin: redis.Redis, store: SessionStore, text: str) -> dict[str, float]:
    """One whole scan as the Active panel's worker runs it: bounded server-side steps
    (``scan_match``), the candidates matched exactly here, the matches' hashes read up to
    the filter cap."""
    from tui.panels.sessions import FILTER_LIMIT
    from tui.query import parse

    from .bulk import ServerCpu

    query = parse(text)
    fields, terms = query.scan_plan()
    admin.slowlog_reset()
    cpu = ServerCpu(admin)
    cpu0, calls0 = cpu()
    t0 = time.perf_counter()
    first = None
    matches = steps = scanned = candidates = held = 0
    longest = 0.0
    cursor: int | str = 0
    while steps == 0 or cursor:
        t = time.perf_counter()
        step = store.scan_step("active", cursor, fields=fields, terms=terms)
        hits = [*step.matched, *(sid for sid, got in step.rows if query.matches(sid, got))]
        keep = hits[:max(0, FILTER_LIMIT - held)]
        if keep:
            store.sessions_by_id(keep)
            held += len(keep)
            if first is None:
                first = time.perf_counter() - t0
        longest = max(longest, time.perf_counter() - t)
        matches += len(hits)
        candidates += len(step.rows) + len(step.matched)
        scanned += step.met
        steps += 1
        cursor = step.cursor
    total = time.perf_counter() - t0
    cpu1, calls1 = cpu()
    slow = admin.slowlog_get(admin.slowlog_len() or 1)
    return {"first": float("nan") if first is None else first, "total": total, "scanned": scanned,
            "candidates": candidates, "matches": matches, "steps": steps, "longest": longest,
            "cpu": (cpu1 - cpu0) / max(1, calls1 - calls0), "slow": len(slow),
            "worst": max((e["duration"] for e in slow), default=0) / 1000}


def _scan(admin: redis.Redis, store: SessionStore, size: int, sec: Section, progress: Progress) -> None:
    """The Active filter's substring scan over the whole set, for a common and two rare terms."""
    old = admin.config_get("slowlog-*")
    admin.config_set("slowlog-log-slower-than", 5000)
    admin.config_set("slowlog-max-len", 100_000)  # every slow call counted, not the last 128
    runs = []
    from tui.query import parse

    fields, terms = parse("warm-up").scan_plan()
    store.scan_step("active", 0, fields=fields, terms=terms)  # loads the function library (not a scan step)
    try:
        for what, text in scan_queries(size):
            progress(f"scale: substring filter '{text}' over {size:,} sessions")
            runs.append((what, text, _scan_once(admin, store, text)))
    finally:
        for name, value in old.items():
            admin.config_set(name, value)
    t = Table(f"4e. Substring filter over {size:,} active sessions (case-insensitive)",
              ["filter", "first matches (ms)", "whole set (s)", "sessions/s",
               "met / sent back / matches / steps", "redis-server CPU per step (ms)",
               "longest step, client (ms)", "calls > 5 ms (SLOWLOG, longest)"])
    for what, text, r in runs:
        t.add(f"'{text}': {what}", "none" if r["first"] != r["first"] else f"{r['first'] * 1000:,.0f}",
              f"{r['total']:,.2f}", f"{r['scanned'] / r['total']:,.0f}",
              f"{r['scanned']:,.0f} / {r['candidates']:,.0f} / {r['matches']:,.0f} / {r['steps']:,.0f}",
              f"{r['cpu']:.2f}", f"{r['longest'] * 1000:,.1f}", f"{r['slow']:.0f} ({r['worst']:,.1f} ms)")
    from core.plans import SCAN_BATCH, SCAN_BUDGET_US

    t.notes.append("One step: one FCALL_RO of scan_match, which walks the user index (ZRANGEBYLEX, "
                   f"{SCAN_BATCH} members a batch, so a session is met once), reads the fields the filter "
                   "needs of each session (HMGET; the user comes from the index member) and tests the "
                   f"terms (ASCII case-insensitive) until {SCAN_BUDGET_US / 1000:g} ms of the server's "
                   "clock are spent; sessions it decides come "
                   "back as ids, those holding text a Unicode casefold could read differently come back with "
                   "their fields for the client's exact test, and the client reads the matches' hashes (up "
                   "to the filter's cap of 10,000 held). Matches appear in user order, "
                   "so a rare term's first match comes when the walk reaches it: a quarter into the order "
                   "takes a quarter of the whole scan. CPU per step is redis-server's main-thread CPU "
                   "(/proc schedstat) over the script calls; SLOWLOG counts wall time inside Redis, which "
                   "on a shared machine includes moments the kernel ran something else.")
    sec.tables.append(t)
    common = runs[0][2]
    sec.targets.append(Target(f"substring filter first matches at {size:,} (a common term)",
                              f"{common['first'] * 1000:,.0f} ms", "< 200 ms", common["first"] < 0.2))
    slowest = max(r["total"] for _, _, r in runs)
    sec.targets.append(Target(f"substring filter whole scan at {size:,} (slowest of {len(runs)})",
                              f"{slowest:,.1f} s", "< 10 s", slowest < 10))
    slow = sum(r["slow"] for _, _, r in runs)
    sec.targets.append(Target("Redis calls over 5 ms during the scans (SLOWLOG, wall)", str(slow), "0",
                              not slow))


def _dashboard(url: str, cfg: Config, size: int, sec: Section, progress: Progress) -> None:
    progress(f"scale: dashboard first paint and RSS at {size:,} sessions ({cfg.paint_runs} runs)")
    paint, rss, peak, imports = Sample(), Sample(), Sample(), Sample()
    for _ in range(cfg.paint_runs):
        res = dashboard_probe.run_paint(url)
        paint.add(res["first_paint_ms"])
        rss.add(res["rss_mib"])
        peak.add(res["peak_rss_mib"])
        imports.add(res["import_ms"])
    t = Table(f"4d. Dashboard (tui.app.build_app, headless run_test 160x50) at {size:,} sessions",
              ["measure", "value"])
    t.add("time to first paint: app start → Active table holds rows (ms)", paint.cell())
    t.add("import of tui.app (ms, before the app starts)", imports.cell())
    t.add("RSS after first paint (MiB)", rss.cell(1))
    t.add("peak RSS of the process (MiB)", peak.cell(1))
    ends = Sample()
    for _ in range(cfg.paint_runs):
        ends.add(dashboard_probe.run_paint(url, "end")["end_ms"])
    t.add("End pressed → last row of the set selected and drawn (ms)", ends.cell())
    t.notes.append("Each run is a fresh process (bench/dashboard_probe.py), so RSS is the dashboard's alone.")
    sec.tables.append(t)
    sec.targets.append(Target(f"dashboard first paint at {size:,}", f"{paint.median:,.0f} ms", "< 1,000 ms",
                              paint.median < 1000))
    sec.targets.append(Target(f"dashboard RSS at {size:,}", f"{peak.median:,.1f} MiB peak", "< 150 MiB",
                              peak.median < 150))
    sec.targets.append(Target(f"End to screen at {size:,}", f"{ends.median:,.0f} ms", "< 300 ms",
                              ends.median < 300))
    sec.headline.append((f"dashboard at {size:,} sessions",
                         f"first paint {paint.median:,.0f} ms, peak RSS {peak.median:,.0f} MiB"))
