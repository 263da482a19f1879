"""The live feed: every change, in order, exactly once, across reconnects.

Pub/sub is fire-and-forget and keyspace ``expired`` events can come minutes late, so
they are only hints. The event log (``event:logs``, with a strictly increasing ``seq``)
is the truth: after every (re)subscribe the feed catches up from the log, drops what it
has already delivered (by ``seq``), and tells the reader to resync its views. A
heartbeat reads the newest log line on its own short-timeout connection, which both
detects a frozen server (redis-py's pub/sub does not) and picks up plain-text lines that
other apps push to the log without publishing.

:class:`FeedState` holds the logic with no I/O; :class:`EventFeed` (threads) and
:func:`afeed` (asyncio) only move bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff

from .aio import AsyncSessionStore
from .connection import REDIS_ERRORS
from .errors import StoreError
from .model import Event, parse_event
from .plans import EventsSince
from .schema import Schema
from .store import SessionStore


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """The feed's connection changed state."""

    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Resync:
    """Subscribed (again) and caught up: reload pages and counts now. ``gap`` means the
    log had been trimmed past the last event seen, so some events could not be replayed."""

    gap: bool = False


@dataclass(frozen=True, slots=True)
class ExpiryHint:
    """A keyspace ``expired`` notification for a session or cache key."""

    key: str


FeedItem = Event | FeedStatus | Resync | ExpiryHint


@dataclass(slots=True)
class FeedState:
    """Where a reader is in the event log, and what to do with each thing that arrives."""

    schema: Schema
    db: int = 0
    backlog: int = 200
    last_seq: int | None = None
    last_raw: str | None = None
    top_raw: str | None = None
    started: bool = False
    pending_subscribes: int = 0
    channels: list[str] = field(default_factory=list)

    def subscribe_channels(self, keyspace: bool) -> list[str]:
        self.channels = [self.schema.channel]
        if keyspace:
            self.channels.append(self.schema.expired_channel(self.db))
        self.pending_subscribes = len(self.channels)
        return self.channels

    def accept(self, events: list[Event]) -> list[Event]:
        """Keep events not yet delivered, in order, and move the position past them."""
        out = []
        for ev in events:
            if ev.seq is not None:
                if self.last_seq is not None and ev.seq <= self.last_seq:
                    continue
                self.last_seq = ev.seq
                self.last_raw = ev.raw
            out.append(ev)
        if events:
            self.top_raw = events[-1].raw
        return out

    def initial(self, newest_first: list[Event]) -> list[Event]:
        """First connect: deliver the recent backlog, oldest first."""
        self.started = True
        events = list(reversed(newest_first))
        if not events:
            self.last_seq = self.last_seq or 0
        return self.accept(events)

    def on_message(self, msg: dict[str, Any]) -> tuple[list[FeedItem], bool]:
        """Items to deliver for one pub/sub message, and whether a catch-up is needed."""
        kind, channel, data = msg.get("type"), msg.get("channel"), msg.get("data")
        if kind == "subscribe":
            if self.pending_subscribes > 0:
                self.pending_subscribes -= 1
                return [], False
            return [], True  # redis-py re-subscribed by itself after a reconnect
        if kind != "message":
            return [], False
        if channel == self.schema.channel:
            ev = parse_event(data)
            if ev.seq is None:
                return [], True
            if self.last_seq is not None and ev.seq <= self.last_seq:
                return [], False
            if self.last_seq is not None and ev.seq > self.last_seq + 1:
                return [], True  # a gap: replay it from the log
            return list(self.accept([ev])), False
        if isinstance(data, str) and (self.schema.is_session_key(data)
                                      or data.startswith(self.schema.cache(""))):
            return [ExpiryHint(data)], False
        return [], False

    def catch_up_items(self, since: EventsSince) -> list[FeedItem]:
        """What a catch-up delivers. If the log was rewound the position is forgotten and
        the caller must start over with :meth:`initial`."""
        if since.rewound:
            self.started = False
            self.last_seq = self.last_raw = self.top_raw = None
            return [Resync(True)]
        return [*self.accept(since.events), Resync(since.gap)]

    def head_changed(self, head: str | None) -> bool:
        """Whether the newest log line is one this reader has not delivered yet."""
        if head is None or head == self.top_raw:
            return False
        ev = parse_event(head)
        return not (ev.seq is not None and self.last_seq is not None and ev.seq <= self.last_seq)


def _heartbeat_client(client: redis.Redis, timeout: float) -> redis.Redis:
    """A client on the same server whose calls give up after ``timeout``, with no retry."""
    kwargs = dict(client.connection_pool.connection_kwargs)
    kwargs.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    kwargs.pop("retry", None)
    pool = redis.ConnectionPool(connection_class=client.connection_pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=pool, retry=redis.retry.Retry(NoBackoff(), 0))


def _async_heartbeat_client(client: redis.asyncio.Redis, timeout: float) -> redis.asyncio.Redis:
    kwargs = dict(client.connection_pool.connection_kwargs)
    kwargs.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    kwargs.pop("retry", None)
    pool = redis.asyncio.ConnectionPool(connection_class=client.connection_pool.connection_class, **kwargs)
    return redis.asyncio.Redis(connection_pool=pool, retry=redis.asyncio.retry.Retry(NoBackoff(), 0))


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


class EventFeed:
    """The live feed for a thread (the dashboard's worker, ``sessionwatch events --follow``)."""

    def __init__(self, store: SessionStore, *, heartbeat: float = 1.0, backlog: int = 200,
                 keyspace: bool = True, backoff: tuple[float, float] = (0.1, 2.0)) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.keyspace = keyspace
        self.backoff = backoff
        db = int(store.client.connection_pool.connection_kwargs.get("db", 0) or 0)
        self.state = FeedState(store.schema, db=db, backlog=backlog)
        self._probe = _heartbeat_client(store.client, heartbeat)

    def _catch_up(self) -> Iterator[FeedItem]:
        st = self.state
        if st.started:
            yield from st.catch_up_items(self.store.events_since(st.last_seq, last_raw=st.last_raw,
                                                                 top_raw=st.top_raw))
        if not st.started:
            yield from st.initial(self.store.events(limit=st.backlog))
            yield Resync(False)

    def _head(self) -> str | None:
        return self._probe.lindex(self.store.schema.events, 0)

    def run(self, stop: threading.Event) -> Iterator[FeedItem]:
        """Yield feed items until ``stop`` is set. Redis failures are reported as
        :class:`FeedStatus` items and retried with backoff; they are never raised."""
        connected: bool | None = None
        delay = self.backoff[0]
        poll = min(0.2, self.heartbeat)
        while not stop.is_set():
            pubsub = self.store.client.pubsub()
            try:
                pubsub.subscribe(*self.state.subscribe_channels(self.keyspace))
                deadline = time.monotonic() + max(1.0, self.heartbeat * 2)
                while self.state.pending_subscribes and time.monotonic() < deadline:
                    msg = pubsub.get_message(timeout=poll)
                    if msg:
                        self.state.on_message(msg)
                if self.state.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                self._head()
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                yield from self._catch_up()
                delay = self.backoff[0]
                last_beat = time.monotonic()
                while not stop.is_set():
                    msg = pubsub.get_message(timeout=poll)
                    if msg:
                        items, need = self.state.on_message(msg)
                        yield from items
                        if need:
                            yield from self._catch_up()
                    if time.monotonic() - last_beat >= self.heartbeat:
                        last_beat = time.monotonic()
                        if self.state.head_changed(self._head()):
                            yield from self._catch_up()
            except (*REDIS_ERRORS, StoreError, TimeoutError) as exc:
                if connected is not False:
                    connected = False
                    yield FeedStatus(False, _why(exc))
                stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                with contextlib.suppress(REDIS_ERRORS):
                    pubsub.close()

    def close(self) -> None:
        self._probe.close()


async def afeed(store: AsyncSessionStore, *, heartbeat: float = 1.0, backlog: int = 200,
                keyspace: bool = True, backoff: tuple[float, float] = (0.1, 2.0)) -> AsyncIterator[FeedItem]:
    """The live feed for asyncio. Cancel the consuming task (or stop iterating) to end it."""
    db = int(store.client.connection_pool.connection_kwargs.get("db", 0) or 0)
    state = FeedState(store.schema, db=db, backlog=backlog)
    probe = _async_heartbeat_client(store.client, heartbeat)
    connected: bool | None = None
    delay = backoff[0]
    poll = min(0.2, heartbeat)

    async def catch_up() -> list[FeedItem]:
        items: list[FeedItem] = []
        if state.started:
            items += state.catch_up_items(await store.events_since(
                state.last_seq, last_raw=state.last_raw, top_raw=state.top_raw))
        if not state.started:
            items += [*state.initial(await store.events(limit=state.backlog)), Resync(False)]
        return items

    try:
        while True:
            pubsub = store.client.pubsub()
            try:
                await pubsub.subscribe(*state.subscribe_channels(keyspace))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + max(1.0, heartbeat * 2)
                while state.pending_subscribes and loop.time() < deadline:
                    msg = await pubsub.get_message(timeout=poll)
                    if msg:
                        state.on_message(msg)
                if state.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                await probe.lindex(store.schema.events, 0)
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                for item in await catch_up():
                    yield item
                delay = backoff[0]
                last_beat = loop.time()
                while True:
                    msg = await pubsub.get_message(timeout=poll)
                    if msg:
                        items, need = state.on_message(msg)
                        for item in items:
                            yield item
                        if need:
                            for item in await catch_up():
                                yield item
                    if loop.time() - last_beat >= heartbeat:
                        last_beat = loop.time()
                        if state.head_changed(await probe.lindex(store.schema.events, 0)):
                            for item in await catch_up():
                                yield item
            except (*REDIS_ERRORS, StoreError, TimeoutError) as exc:
                if connected is not False:
                    connected = False
                    yield FeedStatus(False, _why(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff[1])
            finally:
                with contextlib.suppress(REDIS_ERRORS):
                    await pubsub.aclose()
    finally:
        await probe.aclose()
