"""The panels' one way to Redis: a small interface over :mod:`core`.

Every method blocks (it is called from thread workers, never on the event loop) and
returns core's own result types. Tests can hand the panels a double of this class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import core
from core import CacheEntry, Event, PermissionDenied, ServerInfo, Session, Stats, StoreError
from core.model import parse_cache
from core.overview import Overview
from core.plans import AnonymousPage, ScanStep, ScanTerm, Window

from .screens.detail import Detail


@dataclass(frozen=True, slots=True)
class Health:
    stats: Stats
    server: ServerInfo
    latency_ms: float


class DataSource:
    """Reads and the two admin writes, over one :class:`core.SessionStore`."""

    def __init__(self, store: core.SessionStore, perf_counter: Callable[[], float]) -> None:
        self.store = store
        self.perf_counter = perf_counter
        self.server_match = True
        """Filter scans matched by the server (``scan_match``) until it refuses."""

    @property
    def clock(self) -> Callable[[], float]:
        return self.store.ctx.clock

    def health(self, *, sweep: bool = False) -> Health:
        """Ping (timed), an optional bounded sweep, counts and server info: constant cost."""
        started = self.perf_counter()
        self.store.ping()
        latency = (self.perf_counter() - started) * 1000
        if sweep:
            self.store.sweep(batch=50, max_calls=2)
        return Health(self.store.stats(), self.store.server_info(), latency)

    def window(self, order: str, *, descending: bool, start: int, count: int, anchor: str | None = None,
               extra: tuple[str, ...] = ()) -> Window:
        return self.store.window(order, descending=descending, start=start, count=count, anchor=anchor,
                                 extra=extra)

    def scan_step(self, which: str, cursor: int | str, *, count: int, fields: tuple[str, ...],
                  terms: list[ScanTerm] | None = None) -> ScanStep:
        """One bounded step of a scan over the active or ended set. With ``terms`` the server
        matches (one script call per step); a user not allowed to run it (or to load the
        function library) gets the plain steps from then on, matched here."""
        if terms is not None and self.server_match:
            try:
                return self.store.scan_step(which, cursor, count=count, fields=fields, terms=terms)
            except PermissionDenied:
                self.server_match = False
        return self.store.scan_step(which, cursor, count=count, fields=fields)

    def sessions_by_id(self, sids: list[str]) -> dict[str, Session]:
        return self.store.sessions_by_id(sids)

    def search(self, kind: str, query: str, limit: int) -> list[Session]:
        return self.store.search(kind, query, limit=limit)

    def user_sessions(self, username: str) -> list[Session]:
        return [s for s in self.store.user_history(username, limit=1000) if s.is_active(self.clock())]

    def overview(self) -> Overview:
        """The Overview panel's figures: a fixed number of commands at any size."""
        return self.store.overview()

    def anonymous_page(self, limit: int) -> AnonymousPage:
        """The most recently active anonymous sessions (two round trips at any count)."""
        return self.store.anonymous_page(limit=limit)

    def cache_page(self, limit: int) -> list[CacheEntry]:
        return self.store.cache_page(limit=limit)

    def cache_entries(self, sids: list[str]) -> dict[str, CacheEntry | None]:
        """The cache entries of ``sids`` (``None``: it has none): one GET and one PTTL each,
        in one round trip; what a screenful of the Cache panel costs."""
        if not sids:
            return {}
        pipe = self.store.client.pipeline(transaction=False)
        for sid in sids:
            key = self.store._for_sid(sid).schema.cache(sid)  # its bucket's key in the bucketed layout
            pipe.get(key)
            pipe.pttl(key)
        try:
            replies = pipe.execute(raise_on_error=False)
        except Exception as exc:
            raise StoreError(f"cannot read the cache entries: {exc}") from exc
        out: dict[str, CacheEntry | None] = {}
        for i, sid in enumerate(sids):
            raw, pttl = replies[2 * i], replies[2 * i + 1]
            out[sid] = None if raw is None else parse_cache(sid, raw, pttl)
        return out

    def detail(self, sid: str) -> Detail:
        """A few round trips, bounded: the session, its cache entry and its recent events."""
        session = self.store.get(sid)
        client = self.store.client
        key = self.store._for_sid(sid).schema.cache(sid)  # its bucket's key in the bucketed layout
        try:
            raw, pttl = client.get(key), client.pttl(key)
        except Exception as exc:
            raise StoreError(f"cannot read the cache entry: {exc}") from exc
        cache = parse_cache(sid, raw, pttl) if raw is not None else None
        events: list[Event] = [e for e in self.store.events(limit=1000) if e.sid == sid][:50]
        return Detail(sid, session, cache, list(reversed(events)))

    def logout(self, sid: str, actor: str) -> bool:
        return self.store.logout(sid, actor=actor)

    def logout_user(self, username: str, actor: str) -> list[str]:
        return self.store.logout_user(username, actor=actor)
