"""Benchmark: the bulk commands (``reindex``, ``sweep``, ``export``, ``import``) at scale,
each against the time to write the same sessions with pipelined plain commands, measured
side by side in one repetition. Each command runs as ``sessionwatch`` does, in its own
process, so its peak RSS is that command's alone. Target: reindex, export and import
within 3x the plain write; memory well under 150 MiB at 1,000,000 sessions; no call
over 5 ms (SLOWLOG, which counts wall time, so a loaded machine's stalls show too)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from core import plans

from .config import Config
from .measure import Progress, Sample, Section, Table, Target, ratio

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = 1000
SLOW_US = 1000
"""SLOWLOG threshold during the run: calls over 1 ms are logged, so the worst shows."""
_CHILD = ("import re, sys; from tui.cli import main; rc = main(sys.argv[1:]); "
          "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
          "print('maxrss_kib', hwm, file=sys.stderr); sys.exit(rc)")
"""Runs one command and reports its peak RSS. VmHWM, not ru_maxrss: Linux carries
ru_maxrss over from the forking parent (here the benchmark itself) across exec."""


def classic_fields(i: int, now: float) -> dict[str, str]:
    """Session ``i`` as another app writes it: a 12-field hash; every fourth one past its expiry."""
    user = f"user{i // 2:08d}"
    login = now - 60 - i % 300
    return {"username": user, "app": ("crm", "billing", "admin", "portal", "reports")[i % 5],
            "type": ("web", "mobile", "api")[i % 3], "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            "user_agent": "Mozilla/5.0 (bench)", "login_time": f"{login:.3f}",
            "last_seen": f"{login + 30:.3f}",
            "expires_at": f"{(now - 5) if i % 4 == 0 else (now + 900):.3f}", "status": "active",
            "email": f"{user}@example.com", "department": "sales", "idle_ttl": "1800"}


def plain_write(client: redis.Redis, count: int, now: float) -> float:
    """The reference: HSET + EXPIRE + SADD per session, pipelined 1,000 sessions at a time."""
    start = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        sid = f"{i:032x}cafe"
        fields = classic_fields(i, now)
        pipe.hset(f"session:{sid}", mapping=fields)
        pipe.expire(f"session:{sid}", 2 * 86400)
        pipe.sadd(f"user:active_sessions:{fields['username']}", sid)
        if i % PIPELINE == PIPELINE - 1:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - start


def run_cli(url: str, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout+stderr) of one ``sessionwatch`` command in a child process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args, "--url", url, "--timeout", "30"],
                          capture_output=True, text=True, cwd=ROOT, timeout=3600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sessionwatch {' '.join(args)} exited {proc.returncode}: {proc.stderr[-300:]}")
    rss = next(float(line.split()[1]) / 1024 for line in proc.stderr.splitlines()
               if line.startswith("maxrss_kib"))
    return seconds, rss, proc.stdout + proc.stderr


def _flush(admin: redis.Redis) -> None:
    admin.flushall(asynchronous=True)
    while admin.dbsize():
        time.sleep(0.05)


class ServerCpu:
    """CPU time of redis-server's main thread and its script calls so far: (CPU ms, calls).
    The mean CPU per call is the work a call does, whatever else runs on the machine."""

    def __init__(self, admin: redis.Redis) -> None:
        pid = int(admin.info("server")["process_id"])
        self.path = Path(f"/proc/{pid}/task/{pid}/schedstat")
        self.admin = admin

    def __call__(self) -> tuple[float, int]:
        try:
            cpu_ms = int(self.path.read_text().split()[0]) / 1e6
        except OSError:
            cpu_ms = float("nan")
        stats = self.admin.info("commandstats")
        calls = sum(int(v.get("calls", 0)) for k, v in stats.items()
                    if k in ("cmdstat_fcall", "cmdstat_fcall_ro", "cmdstat_evalsha", "cmdstat_eval"))
        return cpu_ms, calls


def _slowlog(admin: redis.Redis) -> tuple[int, int, float]:
    """(calls over 1 ms, over 5 ms, longest ms) since the last reset."""
    entries = admin.slowlog_get(admin.slowlog_len() or 1)
    over = [int(e["duration"]) for e in entries if not str(e.get("command", "")).upper().startswith(
        ("B'FLUSHALL", "FLUSHALL", "B'DBSIZE"))]
    return len(over), sum(1 for d in over if d > 5000), max(over, default=0) / 1000


COMMANDS = ("reindex", "sweep", "export", "import")


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("bulk commands")
    admin = redis.Redis.from_url(url, decode_responses=True, socket_timeout=60)
    old = admin.config_get("slowlog-*")
    t = Table("Bulk commands vs the same sessions written with pipelined plain commands",
              ["sessions", "command", "time (s)", "sessions/s", "× plain write", "peak RSS (MiB)",
               "script calls", "server CPU per call (ms, mean)", "calls > 1 ms", "calls > 5 ms",
              "longest call (ms)"])
    worst_rss = 0.0
    cpu = ServerCpu(admin)
    try:
        admin.config_set("slowlog-max-len", 100_000)
        for n in cfg.bulk_sizes:
            secs: dict[str, Sample] = {c: Sample() for c in ("plain", *COMMANDS)}
            rss: dict[str, Sample] = {c: Sample() for c in COMMANDS}
            slow: dict[str, tuple[int, int, float]] = {}
            per_call: dict[str, tuple[int, float]] = {}
            handled = {"reindex": n, "sweep": n // 4, "export": n, "import": n}
            for rep in range(cfg.bulk_reps):
                _flush(admin)
                now = time.time()
                progress(f"bulk: {n:,} sessions, repetition {rep + 1}/{cfg.bulk_reps}: plain pipelined write")
                secs["plain"].add(plain_write(admin, n, now))
                with tempfile.TemporaryDirectory(prefix="sw-bulk-") as tmp:
                    dump = Path(tmp) / "sessions.jsonl"
                    for command, args in (("reindex", ["reindex"]), ("sweep", ["sweep"]),
                                          ("export", ["export", "--out", str(dump)]),
                                          ("import", ["import", str(dump), "--trust"])):
                        if command == "import":
                            _flush(admin)
                        progress(f"bulk: {n:,} sessions: {command}")
                        admin.config_set("slowlog-log-slower-than", SLOW_US)
                        admin.slowlog_reset()
                        cpu0, calls0 = cpu()
                        seconds, peak, out = run_cli(url, *args)
                        cpu1, calls1 = cpu()
                        calls = calls1 - calls0
                        per_call[command] = (calls, (cpu1 - cpu0) / calls if calls else float("nan"))
                        admin.config_set("slowlog-log-slower-than", old.get("slowlog-log-slower-than", 10000))
                        slow[command] = _slowlog(admin)
                        secs[command].add(seconds)
                        rss[command].add(peak)
                        worst_rss = max(worst_rss, peak)
                        if command == "import" and f"imported {n} " not in out:
                            raise RuntimeError(f"import restored fewer than {n}: {out[-300:]}")
            for command in ("plain", *COMMANDS):
                s = secs[command]
                per_s = Sample([(handled.get(command, n)) / v for v in s.values])
                if command == "plain":
                    t.add(f"{n:,}", "plain pipelined write (HSET+EXPIRE+SADD)", s.cell(1), per_s.cell(0), "1",
                          "-", "-", "-", "-", "-", "-")
                    continue
                r = ratio(s, secs["plain"])
                over1, over5, longest = slow[command]
                t.add(f"{n:,}", command + (" (ends the 1/4 past expiry)" if command == "sweep" else ""),
                      s.cell(1), per_s.cell(0), r.cell(2), rss[command].cell(0), f"{per_call[command][0]:,}",
                      f"{per_call[command][1]:.2f}" if per_call[command][0] else "-", over1, over5,
                      f"{longest:.1f}")
                if command != "sweep":
                    sec.targets.append(Target(f"{command} of {n:,} sessions vs the plain write",
                                              f"{r.median:.2f}×", "≤ 3×", r.median <= 3))
            sec.headline.append((f"bulk at {n:,} sessions (× plain write {secs['plain'].median:.1f} s)",
                                 ", ".join(f"{c} {ratio(secs[c], secs['plain']).median:.2f}×"
                                           for c in ("reindex", "export", "import"))
                                 + f"; peak RSS ≤ {max(rss[c].hi for c in COMMANDS):.0f} MiB"))
        sec.targets.append(Target(f"peak RSS of any bulk command (up to {max(cfg.bulk_sizes):,} sessions)",
                                  f"{worst_rss:.0f} MiB", "well under 150 MiB", worst_rss < 120))
    finally:
        admin.config_set("slowlog-log-slower-than", old.get("slowlog-log-slower-than", 10000))
        admin.config_set("slowlog-max-len", old.get("slowlog-max-len", 128))
        admin.slowlog_reset()
        _flush(admin)
        admin.close()
    t.notes.append(
        f"Each command is `sessionwatch <command>` in its own process (time includes Python's start, "
        f"≈ 0.3 s). Sessions: 12-field hashes as another app "
        f"writes them, 2 per user, a quarter past expiry; `reindex` indexes them "
        f"({plans.INDEX_BATCH} per script call), `sweep` ends the quarter past expiry, `export` writes "
        f"them all to a file, `import --trust` restores that file into an emptied Redis (two passes: "
        f"check, then {plans.BULK_BATCH} per script call). `calls > 1 ms / > 5 ms` and `longest call` "
        f"come from SLOWLOG (slowlog-log-slower-than {SLOW_US}) during that command: wall time inside "
        "Redis, so on a shared machine they include moments the kernel ran other processes. "
        "`server CPU per call` is redis-server's main-thread CPU time during the command "
        "(/proc schedstat, which excludes time spent waiting for a CPU) divided by its script "
        "calls (INFO commandstats): the work one call does (it also counts the command's SCAN "
        "and read pipelines, so it is an upper bound). Peak RSS is the child's VmHWM.")
    sec.tables.append(t)
    return sec

