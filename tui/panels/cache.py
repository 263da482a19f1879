"""Cache entries (``cache:session:<sid>``): one page, newest activity first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from core import CacheEntry, StoreError

from ..model import CACHE_COLUMNS, PAGE_SIZE, cache_row, clean
from ..widgets.table import SessionTable
from .base import FilterInput, Panel


class CachePanel(Panel):
    ID = "cache"
    TITLE = "Cache"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="view.filter"),
    ]

    @dataclass
    class Read(Message):
        entries: list[CacheEntry]
        error: str = ""

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.entries: list[CacheEntry] = []

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="/ filter cache entries (any text)", id="cache-filter")
        yield Static(id="cache-info", classes="info")
        yield SessionTable(CACHE_COLUMNS, id="cache-table")

    def main_widget(self) -> Widget:
        return self.query_one(SessionTable)

    def refresh_data(self) -> None:
        self.read()

    @work(thread=True, exclusive=True, group="cache", exit_on_error=False)
    def read(self) -> None:
        try:
            self.post_message(self.Read(self.source.cache_page(PAGE_SIZE)))
        except StoreError as exc:
            self.post_message(self.Read([], error=str(exc)))

    @on(Read)
    def _read(self, msg: Read) -> None:
        msg.stop()
        if self.frozen or not self.is_attached:
            return
        if not msg.error:
            self.entries = msg.entries
        self.show(msg.error)

    def show(self, error: str = "") -> None:
        needle = self.filter_text.strip().casefold()
        rows = [(e.sid, cache_row(e.sid, e.summary, e.raw, e.ttl)) for e in self.entries]
        if needle:
            rows = [r for r in rows if needle in " ".join(r[1]).casefold()]
        self.query_one(SessionTable).sync(rows)
        text = f"{len(rows)} cache entries (newest activity first, one page of {PAGE_SIZE})"
        self.query_one("#cache-info", Static).update(Text(clean(error, 100) if error else text))

    def filter_changed(self) -> None:
        self.show()
