"""The live event tail: follows at the bottom, holds still while the admin reads back."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget

from core import Event

from ..model import event_matches
from ..widgets.events import EventLog
from ..widgets.line import Line
from .base import FilterInput, Panel


class EventsPanel(Panel):
    ID = "events"
    TITLE = "Events"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="view.filter"),
    ]

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.stale = False

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="/ filter events (any text)", id="events-filter")
        yield Line(id="events-info", classes="info")
        yield EventLog(id="events-log")

    @property
    def log_widget(self) -> EventLog:
        return self.query_one(EventLog)

    def main_widget(self) -> Widget:
        return self.log_widget

    def visible(self, events: list[Event]) -> list[Event]:
        return [ev for ev in events if event_matches(ev, self.filter_text)]

    def redraw(self) -> None:
        self.stale = False
        self.log_widget.replace(self.visible(list(self.dash.model.events)))
        self.show_info()

    def on_shown(self) -> None:
        if self.stale:
            self.redraw()

    def feed_events(self, events: list[Event]) -> None:
        if not self.is_attached:
            return
        if self.dash.panel != self.ID:
            # The tail is hidden: drawing every line into it costs CPU for nothing when
            # events come by the thousand. The model keeps them; the tab redraws on show.
            self.stale = True
            return
        self.log_widget.append(self.visible(events)[-self.dash.model.max_events:])

    @on(EventLog.HeldChanged)
    def show_info(self, _msg: object = None) -> None:
        held = self.log_widget.held_count
        parts = [f"{len(self.dash.model.events)} events"]
        if held:
            parts.append(f"holding · {held} new ↓ · End follows")
        else:
            parts.append("following")
        if self.filter_text.strip():
            parts.append(f"filter {self.filter_text.strip()[:60]}")
        self.query_one("#events-info", Line).say(Text(" · ".join(parts)))

    def filter_changed(self) -> None:
        self.redraw()
