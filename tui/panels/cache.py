"""Cache entries (``cache:session:<sid>``) of the active sessions, newest activity first:
a virtual table over the whole last-seen order like Active, so every entry is reachable.
The rows come from the window reads of :class:`SessionsPanel`; each time they are read,
the entries of the rows held (a few screenfuls) are read in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.message import Message

from core import CacheEntry, StoreError

from ..model import cache_row, clean
from ..widgets.virtual_table import Column
from ..window import Row
from .sessions import Order, SessionsPanel


@dataclass(frozen=True, slots=True)
class Held:
    entry: CacheEntry | None
    read_at: float
    """The store's clock when it was read: the TTL shown counts down from there."""


class CachePanel(SessionsPanel):
    ID = "cache"
    TITLE = "Cache"
    FILTER_HINT = "/ filter by session: any text, or user: app: ip: sid: email: type:"
    COLUMNS: ClassVar[Sequence[Column]] = (
        Column("sid", "Session", 8), Column("user", "User", 16, grow=24), Column("app", "App", 10, grow=20),
        Column("status", "Status", 8), Column("ttl", "TTL left", 8),
        Column("summary", "Summary", 20, grow=200),
    )
    ORDERS: ClassVar[Sequence[Order]] = (Order("seen", "last seen", ""),)

    @dataclass
    class Entries(Message):
        entries: dict[str, Held]
        error: str = ""

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.entries: dict[str, Held] = {}

    def cells(self, row: Row) -> Sequence[str]:
        held = self.entries.get(row.sid)
        s = row.session
        user, app = (clean(s.username, 40), clean(s.app, 30)) if s is not None else ("", "")
        if held is None:
            return (clean(row.sid[:8], 8), user, app, "", "…", "")
        if held.entry is None:
            return (clean(row.sid[:8], 8), user, app, "", "-", "no cache entry")
        e = held.entry
        ttl = e.ttl if e.ttl is None or e.ttl < 0 else max(0.0, e.ttl - (self.source.clock() - held.read_at))
        return tuple(cache_row(e.sid, e.summary, e.raw, ttl))

    def rows_changed(self) -> None:
        sids = [r.sid for r in self.table.window.rows.values()]
        self.entries = {sid: h for sid, h in self.entries.items() if sid in set(sids)}
        if sids:
            self.read_entries(sids)

    @work(thread=True, exclusive=True, group="cache", exit_on_error=False)
    def read_entries(self, sids: list[str]) -> None:
        try:
            now = self.source.clock()
            found = self.source.cache_entries(sids)
            self.post_message(self.Entries({sid: Held(e, now) for sid, e in found.items()}))
        except StoreError as exc:
            self.post_message(self.Entries({}, error=str(exc)))

    @on(Entries)
    def _entries(self, msg: Entries) -> None:
        msg.stop()
        if not self.is_attached:
            return
        self.entries.update(msg.entries)
        if msg.error:
            self.note = f"cache entries: {msg.error}"
            self.show_info()
        self.table.remeasure()
        self.table.sync()
