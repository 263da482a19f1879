"""The status bar: where we are connected, how healthy, how busy."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Sparkline

from ..model import DashboardModel
from .line import Line

PART_CLASSES = ("connected", "reconnecting", "connecting", "detail", "target", "version", "latency",
                "count", "memory", "paused", "readonly")


class StatusText(Line):
    """One line of status; each part is styled from the stylesheet (component classes)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"status--{name}" for name in PART_CLASSES}

    def show(self, parts: list[tuple[str, str]]) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (part, kind) in enumerate(parts):
            if i:
                text.append("  ")
            text.append(part, style=self.get_component_rich_style(f"status--{kind}", partial=True))
        self.say(text)


class StatusBar(Vertical):
    """Two lines: connection and server; session counts and logins per minute."""

    label_width = 0
    """Cells of the logins-per-minute scale."""

    def compose(self) -> ComposeResult:
        yield StatusText(id="status-text")
        with Horizontal(id="status-counts"):
            yield StatusText(id="counts-text")
            yield Line(id="spark-label")
            yield Sparkline([], id="logins-spark")

    def show(self, model: DashboardModel) -> None:
        try:
            status = self.query_one("#status-text", StatusText)
            counts = self.query_one("#counts-text", StatusText)
            spark = self.query_one(Sparkline)
            label = self.query_one("#spark-label", Line)
        except NoMatches:  # composing, or the app is shutting down: nothing to draw into
            return
        status.show(model.status_parts())
        counts.show(model.count_parts())
        data = model.logins_per_minute()
        # the scale: what the bars stand for
        scale = f"logins/min peak {max(data)} now {data[-1]}" if data else "logins/min"
        need = cell_len(scale) + 1  # and its right padding
        if need > self.label_width:  # it widens (a layout pass), never narrows: rarely
            self.label_width = need
            label.styles.width = need
        label.say(scale)
        if list(spark.data or []) != data:
            spark.data = data
