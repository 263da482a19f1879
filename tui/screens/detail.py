"""One session in full: every field, its cache entry and its events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from core import CacheEntry, Event, Session, StoreError

from ..model import clean, event_text, fmt_clock, fmt_duration, summary_text


@dataclass(frozen=True, slots=True)
class Detail:
    sid: str
    session: Session | None
    cache: CacheEntry | None
    events: list[Event] = field(default_factory=list)
    error: str = ""


TIME_FIELDS = ("login_time", "last_seen", "expires_at", "max_expires_at", "logout_time")


def render_detail(d: Detail, now: float) -> Text | Table:
    if d.error:
        return Text(f"cannot load session {clean(d.sid, 8)}: {clean(d.error)}")
    if d.session is None:
        return Text(f"session {clean(d.sid, 8)} no longer exists (ended and purged)")
    table = Table(show_header=False, box=None, expand=True)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    s = d.session
    for name, value in s.to_dict().items():
        if name == "sid":
            value = s.sid  # in full: the id an admin copies into a ticket or a log search
        elif name in TIME_FIELDS and value is not None:
            rel = fmt_duration(abs(value - now))
            value = f"{fmt_clock(value)} ({'in ' + rel if value > now else rel + ' ago'})"
        elif name == "metadata":
            value = json.dumps(value, ensure_ascii=False) if value else ""
        table.add_row(clean(name, 40), Text(clean(value, 300) if value not in (None, "") else "-"))
    for problem in s.problems:
        table.add_row("problem", Text(clean(problem)))
    table.add_section()
    if d.cache is None:
        table.add_row("cache", Text("no cache entry"))
    else:
        ttl = "no TTL" if d.cache.ttl is None else ("gone" if d.cache.ttl < 0 else fmt_duration(d.cache.ttl))
        table.add_row("cache TTL", Text(ttl))
        text = summary_text(d.cache.summary, skip=("sid",)) if d.cache.summary is not None else d.cache.raw
        table.add_row("cache", Text(clean(text, 600)))
    table.add_section()
    if not d.events:
        table.add_row("events", Text("none in the recent log"))
    for i, ev in enumerate(d.events):
        table.add_row("events" if i == 0 else "", Text(clean(event_text(ev), 1000)))
    return table


class DetailScreen(Screen[None]):
    """Loads its data in a thread worker with ``loader`` (never on the event loop), and
    again every :attr:`LIVE_EVERY` seconds and on each event about this session, so it
    shows touches and the end as they happen. ``logout`` (when given: not read-only)
    is what ``l`` calls for the session shown."""

    LIVE_EVERY: ClassVar[float] = 2.0
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="detail.close"),
        Binding("q", "close", "Back", show=False, id="detail.close2"),
        Binding("r", "reload", "Reload", id="detail.reload"),
    ]

    def __init__(self, sid: str, loader: Callable[[str], Detail], now: Callable[[], float],
                 logout: Callable[[Detail], None] | None = None) -> None:
        super().__init__()
        self.sid = sid
        self.loader = loader
        self.now = now
        self.logout = logout
        if logout is not None:
            self._bindings = BindingsMap.merge([self._bindings, BindingsMap(
                [Binding("l", "logout", "Log out", id="session.logout")])])

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Session {clean(self.sid, 80)}"), id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(Text("loading…"), id="detail-content")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.LIVE_EVERY, self.load)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load(self) -> None:
        try:
            detail = self.loader(self.sid)
        except StoreError as exc:
            detail = Detail(self.sid, None, None, error=str(exc))
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self.show, detail)

    def show(self, detail: Detail) -> None:
        self.detail = detail
        self.query_one("#detail-content", Static).update(render_detail(detail, self.now()))

    def action_reload(self) -> None:
        self.load()

    def action_logout(self) -> None:
        detail = getattr(self, "detail", None)
        if self.logout is not None and detail is not None:
            self.logout(detail)

    def action_close(self) -> None:
        self.dismiss(None)
