"""Samples, ratios and tables: what every benchmark reports, formatted one way.

A cell is ``median (min–max, n)`` over interleaved repetitions. Ratios are taken per
repetition (variant and reference measured back to back) and then summarised, so a
noisy moment moves both sides of a ratio together.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Sample:
    """Repeated measurements of one quantity."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")

    def cell(self, digits: int | None = None) -> str:
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{fmt(self.median, digits)} (n=1)"
        lo, hi = fmt(self.lo, digits), fmt(self.hi, digits)
        return f"{fmt(self.median, digits)} ({lo}–{hi}, n={len(self.values)})"


def ratio(num: Sample, den: Sample) -> Sample:
    """Per-repetition ratios of two samples taken in the same repetitions."""
    return Sample([a / b for a, b in zip(num.values, den.values, strict=False) if b])


def fmt(value: float, digits: int | None = None) -> str:
    """Thousands separators for big numbers, a sensible number of decimals otherwise."""
    if value != value:  # NaN
        return "n/a"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ops_per_second(n: int, body: Callable[[], None]) -> float:
    """Run ``body`` (which does ``n`` operations) once; ops/s by wall clock."""
    start = time.perf_counter()
    body()
    return n / (time.perf_counter() - start)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += self.notes
        return "\n".join(lines)


@dataclass
class Target:
    """One stated target and whether this run met it."""

    what: str
    measured: str
    target: str
    met: bool | None
    """``None`` when it could not be measured in this run."""
    why: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


@dataclass
class Section:
    """What one benchmark contributes to the report."""

    name: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)


class Progress:
    """One line per step on stderr, with elapsed time, so a long run shows where it is."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=self.stream, flush=True)
