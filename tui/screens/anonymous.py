"""Anonymous sessions: visitors' data kept before login (``anon:<aid>``), listed apart.

They are not user sessions, so Active and Inactive never show them; the status line
counts them and ``A`` opens this list. Their data is counted (keys, bytes), never shown:
it is whatever the visitor's requests put there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from core import StoreError
from core.plans import AnonymousPage

from ..model import clean, fmt_bytes, fmt_clock, fmt_duration

PAGE = 100
"""Anonymous sessions listed: the most recently active ones, whatever the total."""


def render_anonymous(page: AnonymousPage | None, error: str, now: float) -> Text | Table:
    if error:
        return Text(f"cannot list anonymous sessions: {clean(error)}")
    if page is None:
        return Text("loading…")
    if not page.sessions:
        return Text("no anonymous sessions")
    table = Table(box=None, expand=True, show_header=True)
    for name in ("anon id", "app", "created", "last active", "keys", "bytes"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("keys", "bytes") else "left")
    for a in page.sessions:
        size = sum(len(k) + len(v) for k, v in a.data.items())
        seen = "-" if a.last_seen is None else f"{fmt_duration(max(0.0, now - a.last_seen))} ago"
        table.add_row(Text(clean(a.aid, 8)), Text(clean(a.app, 24) or "-"),
                      Text(fmt_clock(a.created_at, now)), Text(clean(seen, 20)), str(len(a.data)),
                      fmt_bytes(size))
    return table


def heading(page: AnonymousPage | None) -> str:
    if page is None:
        return "Anonymous sessions · before login, not user sessions"
    shown = len(page.sessions)
    more = f" · the {shown:,} most recently active shown" if page.total > shown else ""
    return f"Anonymous sessions: {page.total:,} · before login, not user sessions · data never shown{more}"


class AnonymousScreen(Screen[None]):
    """Reads one page in a thread worker (never on the event loop), again every
    :attr:`LIVE_EVERY` seconds and on ``r``."""

    LIVE_EVERY: ClassVar[float] = 2.0
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="anonymous.close"),
        Binding("q", "close", "Back", show=False, id="anonymous.close2"),
        Binding("r", "reload", "Reload", id="anonymous.reload"),
    ]

    def __init__(self, loader: Callable[[int], AnonymousPage], now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.loader = loader
        self.now = now
        self.page: AnonymousPage | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(heading(None)), id="anonymous-title")
        with VerticalScroll(id="anonymous-body"):
            yield Static(Text("loading…"), id="anonymous-content")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.LIVE_EVERY, self.load)

    @work(thread=True, exclusive=True, group="anonymous", exit_on_error=False)
    def load(self) -> None:
        page, error = None, ""
        try:
            page = self.loader(PAGE)
        except StoreError as exc:
            error = str(exc)
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self.show, page, error)

    def show(self, page: AnonymousPage | None, error: str = "") -> None:
        if page is not None:
            self.page = page
        self.query_one("#anonymous-title", Static).update(Text(heading(self.page)))
        self.query_one("#anonymous-content", Static).update(render_anonymous(page, error, self.now()))

    def action_reload(self) -> None:
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
