"""The event tail: bounded, coloured by kind, and still while the admin reads back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import RichLog

from core import Event
from core.display import display

from ..model import EVENT_LINES, event_text

KINDS = ("login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile", "text", "error")


class EventLog(RichLog):
    """A RichLog capped at ``max_lines`` that follows new lines only while the view is at
    the bottom. Scrolled up, new lines are held back (not written: a write past the cap
    would drop a line from the top and move every line on screen) and counted; back at
    the bottom (End, ``G``, ``f`` or scrolling down) they are written."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end,G,f", "follow", "Follow", id="events.follow"),
        Binding("home,g", "scroll_home", "Oldest", show=False, id="events.home"),
    ]

    class HeldChanged(Message):
        """The number of lines held back changed."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"event--{kind}" for kind in KINDS}

    BURST: ClassVar[int] = 40
    """Lines drawn per batch at most while following; the rest of a burst is summed up in
    one line (pausing, or showing the tab again, draws the full tail from the model)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(max_lines=EVENT_LINES, wrap=False, markup=False, highlight=False,
                         auto_scroll=False, **kw)  # type: ignore[arg-type]
        self._styles: dict[str, object] = {}
        self.held: list[Event] = []

    @property
    def held_count(self) -> int:
        return len(self.held)

    @property
    def at_end(self) -> bool:
        return self.is_vertical_scroll_end or self.max_scroll_y == 0

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.held and self.at_end:
            self.call_later(self.release)

    def release(self) -> None:
        """Write the held lines and follow the tail again."""
        held, self.held = self.held, []
        if held:
            self._write_batch(held, follow=True)
        self.scroll_end(animate=False, immediate=True)
        self.post_message(self.HeldChanged())

    def action_follow(self) -> None:
        self.release()

    def on_mount(self) -> None:
        self._styles.clear()  # styles resolve against the mounted theme

    def line_for(self, ev: Event) -> Text:
        kind = ev.kind if ev.kind in KINDS else "text"
        style = self._styles.get(kind)
        if style is None:
            style = self._styles[kind] = self.get_component_rich_style(f"event--{kind}", partial=True)
        return Text(display(event_text(ev), 1000), style=style, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]

    def append(self, events: Iterable[Event]) -> None:
        batch = list(events)
        if not batch:
            return
        if not self.at_end or self.held:
            self.held.extend(batch)
            del self.held[: -self.max_lines]
            self.post_message(self.HeldChanged())
            return
        self._write_batch(batch, follow=True)

    def _write_batch(self, batch: list[Event], follow: bool) -> None:
        if follow and len(batch) > self.BURST:
            skipped = len(batch) - self.BURST
            batch = batch[-self.BURST:]
            self.write(Text(f"… {skipped} more events (p pauses and shows the whole tail)",
                            style="dim italic"), scroll_end=True)
        for ev in batch:
            self.write(self.line_for(ev), scroll_end=follow)

    def replace(self, events: Iterable[Event]) -> None:
        self.held = []
        self.clear()
        for ev in events:
            self.write(self.line_for(ev), scroll_end=True)
