"""Messages from the Redis workers (threads) to the UI: data flows to widgets only so."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from core import CacheEntry, ServerInfo, Session, Stats


@dataclass
class Polled(Message):
    """One reconciliation round: counts, server info and the visible panel's page."""

    stats: Stats
    server: ServerInfo
    latency_ms: float | None
    panel: str
    sessions: list[Session] = field(default_factory=list)
    total: int = 0
    cache: list[CacheEntry] = field(default_factory=list)
    note: str = ""
    log_head: str | tuple[str | None, ...] | None = None
    """The event log's newest line when polled (``log_checked``), to check the live feed;
    each bucket's newest line on the bucketed layout."""
    log_checked: bool = False
    topology: str | None = None
    """The deployment as the header names it (cluster, Sentinel); ``None`` for one server."""


@dataclass
class PollFailed(Message):
    detail: str


@dataclass
class FeedItems(Message):
    """Items from the live feed (core.feed): events, status changes, resyncs, hints."""

    items: list[object]


@dataclass
class SearchResults(Message):
    query: str
    kind: str
    sessions: list[Session]
    error: str = ""
