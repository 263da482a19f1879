"""The status bar: where we are connected, how healthy, how busy."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from ..model import DashboardModel

PART_CLASSES = ("connected", "reconnecting", "connecting", "detail", "target", "version", "latency",
                "count", "memory", "paused", "readonly")


class StatusText(Static):
    """One line of status; each part is styled from the stylesheet (component classes)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"status--{name}" for name in PART_CLASSES}

    def show(self, model: DashboardModel) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (part, kind) in enumerate(model.status_parts()):
            if i:
                text.append("  ")
            text.append(part, style=self.get_component_rich_style(f"status--{kind}", partial=True))
        self.update(text)


class StatusBar(Horizontal):
    """Status text plus a sparkline of logins per minute."""

    def compose(self) -> ComposeResult:
        yield StatusText(id="status-text")
        yield Static("logins/min", id="spark-label")
        yield Sparkline([], id="logins-spark")

    def show(self, model: DashboardModel) -> None:
        self.query_one(StatusText).show(model)
        data = model.logins_per_minute()
        spark = self.query_one(Sparkline)
        if list(spark.data or []) != data:
            spark.data = data
