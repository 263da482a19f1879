"""The event tail: bounded, coloured by kind, and still while the admin reads back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.widgets import RichLog

from core import Event
from core.display import display

from ..model import EVENT_LINES, event_text

KINDS = ("login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile", "text", "error")


class EventLog(RichLog):
    """A RichLog capped at ``max_lines`` that only follows new lines while the view is at
    the bottom (RichLog alone scrolls to the end on every write)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"event--{kind}" for kind in KINDS}

    BURST: ClassVar[int] = 40
    """Lines drawn per batch at most while following; the rest of a burst is summed up in
    one line (pausing, or showing the tab again, draws the full tail from the model)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(max_lines=EVENT_LINES, wrap=False, markup=False, highlight=False,
                         auto_scroll=False, **kw)  # type: ignore[arg-type]
        self._styles: dict[str, object] = {}

    def on_mount(self) -> None:
        self._styles.clear()  # styles resolve against the mounted theme

    def line_for(self, ev: Event) -> Text:
        kind = ev.kind if ev.kind in KINDS else "text"
        style = self._styles.get(kind)
        if style is None:
            style = self._styles[kind] = self.get_component_rich_style(f"event--{kind}", partial=True)
        return Text(display(event_text(ev), 1000), style=style, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]

    def append(self, events: Iterable[Event]) -> None:
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        batch = list(events)
        if follow and len(batch) > self.BURST:
            skipped = len(batch) - self.BURST
            batch = batch[-self.BURST:]
            self.write(Text(f"… {skipped} more events (p pauses and shows the whole tail)",
                            style="dim italic"), scroll_end=True)
        for ev in batch:
            self.write(self.line_for(ev), scroll_end=follow)

    def replace(self, events: Iterable[Event]) -> None:
        self.clear()
        for ev in events:
            self.write(self.line_for(ev), scroll_end=True)
