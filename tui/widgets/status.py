"""The status bar: where we are connected, how healthy, how busy."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Sparkline, Static

from ..model import DashboardModel

PART_CLASSES = ("connected", "reconnecting", "connecting", "detail", "target", "version", "latency",
                "count", "memory", "paused", "readonly")


class StatusText(Static):
    """One line of status; each part is styled from the stylesheet (component classes)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"status--{name}" for name in PART_CLASSES}

    def show(self, parts: list[tuple[str, str]]) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (part, kind) in enumerate(parts):
            if i:
                text.append("  ")
            text.append(part, style=self.get_component_rich_style(f"status--{kind}", partial=True))
        self.update(text)


class StatusBar(Vertical):
    """Two lines: connection and server; session counts and logins per minute."""

    def compose(self) -> ComposeResult:
        yield StatusText(id="status-text")
        with Horizontal(id="status-counts"):
            yield StatusText(id="counts-text")
            yield Static("logins/min", id="spark-label")
            yield Sparkline([], id="logins-spark")

    def show(self, model: DashboardModel) -> None:
        try:
            status = self.query_one("#status-text", StatusText)
            counts = self.query_one("#counts-text", StatusText)
            spark = self.query_one(Sparkline)
            label = self.query_one("#spark-label", Static)
        except NoMatches:  # composing, or the app is shutting down: nothing to draw into
            return
        status.show(model.status_parts())
        counts.show(model.count_parts())
        data = model.logins_per_minute()
        # the scale: what the bars stand for
        label.update(f"logins/min peak {max(data)} now {data[-1]}" if data else "logins/min")
        if list(spark.data or []) != data:
            spark.data = data
