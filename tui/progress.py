"""Progress of the bulk commands on stderr: Rich's progress bar (count, rate, time left)
when stderr is a terminal, nothing while running otherwise (the command prints one
summary line at the end either way)."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Sessions per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class BulkProgress:
    """``with BulkProgress("exporting", total) as bar: bar(n, new_total)``: a
    :data:`core.bulk.Progress` callback drawing a bar when ``stream`` is a terminal."""

    def __init__(self, what: str, total: int | None = None, *, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    @property
    def drawing(self) -> bool:
        return self._bar is not None

    def __enter__(self) -> BulkProgress:
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 _RateColumn(), TimeElapsedColumn(), TextColumn("left"),
                                 TimeRemainingColumn(), console=Console(file=self.stream),
                                 transient=False, refresh_per_second=5)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def __call__(self, advance: int, total: int | None = None) -> None:
        self.done += advance
        if total is not None:
            self.total = max(total, self.done)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=advance, total=self.total)

    def phase(self, what: str, total: int | None) -> None:
        """Start a new phase (import: checking, then writing) on a fresh bar."""
        self.what, self.total, self.done = what, total, 0
        if self._bar is not None:
            if self._task is not None:
                self._bar.stop_task(self._task)
            self._task = self._bar.add_task(what, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
