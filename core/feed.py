"""The live feed: every change, in order, exactly once, across reconnects.

Pub/sub is fire-and-forget and keyspace ``expired`` events can come minutes late, so
they are only hints. The event log (``event:logs``, with a strictly increasing ``seq``)
is the truth: after every (re)subscribe the feed catches up from the log, drops what it
has already delivered, and tells the reader to resync its views. A heartbeat reads the
newest log line on its own short-timeout connection, which both detects a frozen server
(redis-py's pub/sub does not) and, with a catch-up whenever that line is new or events
came through pub/sub, picks up plain-text lines that other apps push to the log without
publishing. A rewound counter (FLUSHALL, a restart without persistence) is detected and
the reader starts over (``Resync(rewound=True)``); any failure of the reader itself is
reported as a :class:`FeedStatus` and the reader restarts.

:class:`FeedState` holds the logic with no I/O; :class:`EventFeed` (threads) and
:func:`afeed` (asyncio) only move bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff

from .aio import AsyncSessionStore
from .connection import REDIS_ERRORS
from .errors import StoreError
from .feed_merge import merge_oldest_first
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
    reader's position was no longer in the log (trimmed past it while away, or lost), so
    some events could not be replayed; ``rewound`` that the event counter went back
    (FLUSHALL, or a restart without persistence): positions start again."""

    gap: bool = False
    rewound: bool = False


@dataclass(frozen=True, slots=True)
class ExpiryHint:
    """A keyspace ``expired`` notification for a session or cache key."""

    key: str


FeedItem = Event | FeedStatus | Resync | ExpiryHint

RECENT = 5000
"""Delivered ``seq`` -> line pairs remembered, to tell a duplicate from a rewind."""


@dataclass(slots=True)
class FeedState:
    """Where a reader is in the event log, and what to do with each thing that arrives.

    The position in the log is its newest lines at the last full read (``top``), matched
    by content; ``seq`` only orders and de-duplicates our own events. A ``seq`` counts as
    ours only if it is at most the ``event:seq`` counter, so a foreign line with a huge
    ``seq`` is shown but moves nothing; a ``seq`` seen before with another line means
    the log was rewound. Events taken straight from pub/sub leave the position
    unverified: the next heartbeat reads the log down to ``top``, so plain-text lines
    pushed just before an event are never skipped."""

    schema: Schema
    db: int = 0
    backlog: int = 200
    last_seq: int | None = None
    counter: int | None = None
    top: tuple[str, ...] = ()
    recent: dict[int, str] = field(default_factory=dict)
    unverified: bool = False
    started: bool = False
    pending_subscribes: int = 0
    channels: list[str] = field(default_factory=list)

    def subscribe_channels(self, keyspace: bool) -> list[str]:
        self.channels = [self.schema.channel]
        if keyspace:
            self.channels.append(self.schema.expired_channel(self.db))
        self.pending_subscribes = len(self.channels)
        return self.channels

    @property
    def last_raw(self) -> str | None:
        return None if self.last_seq is None else self.recent.get(self.last_seq)

    @property
    def top_raw(self) -> str | None:
        return self.top[0] if self.top else None

    def _ours(self, ev: Event) -> bool:
        return ev.seq is not None and self.counter is not None and ev.seq <= self.counter

    def _remember(self, ev: Event) -> None:
        assert ev.seq is not None
        self.recent[ev.seq] = ev.raw
        if self.last_seq is None or ev.seq > self.last_seq:
            self.last_seq = ev.seq
        if len(self.recent) > RECENT:
            for seq in sorted(self.recent)[: len(self.recent) - RECENT]:
                del self.recent[seq]

    def reset(self) -> None:
        self.started = False
        self.last_seq = self.counter = None
        self.top = ()
        self.recent.clear()
        self.unverified = False

    def initial(self, since: EventsSince) -> list[Event]:
        """First read (or after a rewind): deliver the recent backlog, oldest first."""
        self.reset()
        self.started = True
        self.counter = since.counter
        self.top = since.top
        for ev in since.events:
            if self._ours(ev):
                self._remember(ev)
        if self.last_seq is None and self.counter is not None:
            self.last_seq = self.counter  # none of ours in the log: the next one is counter + 1
        return list(since.events)

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
            if ev.seq is None or self.last_seq is None:
                return [], True
            if self.recent.get(ev.seq) == ev.raw:
                return [], False  # already delivered
            if ev.seq != self.last_seq + 1:
                return [], True  # a gap, a rewind or a foreign seq: the log decides
            self.counter = max(self.counter or 0, ev.seq)
            self._remember(ev)
            self.unverified = True
            return [ev], False
        if isinstance(data, str) and (self.schema.is_session_key(data)
                                      or data.startswith(self.schema.cache(""))):
            return [ExpiryHint(data)], False
        return [], False

    def catch_up_items(self, since: EventsSince) -> list[FeedItem]:
        """What a catch-up delivers. On a rewind (the counter went back, or a ``seq`` we
        delivered now holds another line) the position is forgotten and the caller must
        start over with :meth:`initial`."""
        self.counter = since.counter
        rewound = since.rewound or any(
            self._ours(ev) and ev.seq in self.recent and self.recent[ev.seq] != ev.raw  # type: ignore[index]
            for ev in since.events)
        if rewound:
            self.reset()
            return [Resync(gap=True, rewound=True)]
        events = since.events
        if not since.found:
            # Position lost: keep only what is newer than the newest event we know.
            known = [i for i, ev in enumerate(events)
                     if self._ours(ev) and (ev.seq in self.recent
                                            or (self.last_seq is not None and ev.seq <= self.last_seq))]  # type: ignore[operator]
            if known:
                events = events[known[-1] + 1:]
        out: list[FeedItem] = []
        for ev in events:
            if self._ours(ev):
                if ev.seq in self.recent:
                    continue  # delivered from pub/sub already
                self._remember(ev)
            out.append(ev)
        self.top = since.top
        self.unverified = False
        out.append(Resync(gap=since.gap))
        return out

    def head_changed(self, head: str | None) -> bool:
        """Whether the log must be read: its newest line is not the one at the last read,
        or events came from pub/sub since (text lines may sit below them)."""
        return self.unverified or head != self.top_raw


@dataclass(slots=True)
class BucketFeedState:
    """A reader of the bucketed layout: one :class:`FeedState` (position, duplicates,
    rewind) per bucket, each bucket's shard channel routed to its state, and catch-ups
    that read only the buckets that need one and deliver what they find merged in time
    order. A rewind in any bucket starts the whole reader over, as on a single node."""

    schemas: tuple[Schema, ...]
    db: int = 0
    backlog: int = 200
    states: list[FeedState] = field(init=False)
    by_channel: dict[str, int] = field(init=False)
    by_prefix: dict[str, int] = field(init=False)
    pending_subscribes: int = 0

    def __post_init__(self) -> None:
        self.states = [FeedState(s, db=self.db, backlog=self.backlog) for s in self.schemas]
        self.by_channel = {s.channel: b for b, s in enumerate(self.schemas)}
        self.by_prefix = {s.prefix: b for b, s in enumerate(self.schemas)}

    @property
    def started(self) -> bool:
        return all(st.started for st in self.states)

    def shard_channels(self) -> list[str]:
        return [s.channel for s in self.schemas]

    def keyspace_channel(self) -> str:
        return Schema.expired_channel(self.db)

    def _bucket_of_key(self, key: str) -> int | None:
        end = key.find("}")
        return self.by_prefix.get(key[:end + 1]) if end >= 0 else None

    def on_message(self, msg: dict[str, Any]) -> tuple[list[FeedItem], set[int]]:
        """Items to deliver for one pub/sub message, and the buckets to catch up."""
        kind, channel, data = msg.get("type"), msg.get("channel"), msg.get("data")
        if kind in ("subscribe", "ssubscribe"):
            if self.pending_subscribes > 0:
                self.pending_subscribes -= 1
                return [], set()
            return [], set(range(len(self.states)))  # redis-py re-subscribed after a reconnect
        if kind not in ("message", "smessage") or not isinstance(channel, str):
            return [], set()
        b = self.by_channel.get(channel)
        if b is None:
            b = self._bucket_of_key(data) if isinstance(data, str) else None
            if b is None:
                return [], set()
            items, _ = self.states[b].on_message({**msg, "type": "message"})
            return items, set()
        items, need = self.states[b].on_message({**msg, "type": "message"})
        tagged: list[FeedItem] = [replace(x, bucket=b) if isinstance(x, Event) else x for x in items]
        return tagged, {b} if need else set()

    def start(self, since: list[EventsSince], merged: list[Event]) -> list[FeedItem]:
        """First read (or after a rewind): every bucket's position, and the merged backlog."""
        for st, one in zip(self.states, since, strict=True):
            st.initial(one)
        return [*merged, Resync(False)]

    def positions(self, buckets: set[int] | None = None) -> dict[int, tuple[int | None, tuple[str, ...]]]:
        chosen = range(len(self.states)) if buckets is None else sorted(buckets)
        return {b: (self.states[b].last_seq, self.states[b].top) for b in chosen}

    def catch_up_items(self, results: dict[int, EventsSince]) -> list[FeedItem]:
        per: dict[int, list[Event]] = {}
        gap = False
        for b, since in results.items():
            items = self.states[b].catch_up_items(since)
            resyncs = [x for x in items if isinstance(x, Resync)]
            if any(x.rewound for x in resyncs):
                self.reset()
                return [Resync(gap=True, rewound=True)]
            gap = gap or any(x.gap for x in resyncs)
            per[b] = [x for x in items if isinstance(x, Event)]
        return [*merge_oldest_first({b: evs for b, evs in per.items() if evs}), Resync(gap=gap)]

    def stale(self, heads: tuple[str | None, ...]) -> set[int]:
        """Buckets whose log must be read: its newest line is not the one at the last
        read, or events came from pub/sub since (the liveness check, per bucket)."""
        return {b for b, (st, head) in enumerate(zip(self.states, heads, strict=True))
                if st.head_changed(head)}

    def reset(self) -> None:
        for st in self.states:
            st.reset()


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


def in_time_order(items: list[FeedItem]) -> list[FeedItem]:
    """One poll's items with its events merged in time order: messages from several
    masters are read one connection after another, so a batch may hold a later event of
    one master before an earlier one of another. Each bucket keeps its own order."""
    events = [x for x in items if isinstance(x, Event)]
    if len(events) < 2:
        return items
    per: dict[int, list[Event]] = {}
    for ev in events:
        per.setdefault(ev.bucket or 0, []).append(ev)
    return [*merge_oldest_first(per), *(x for x in items if not isinstance(x, Event))]


def _db(client: Any) -> int:
    pool = getattr(client, "connection_pool", None)
    return int(pool.connection_kwargs.get("db", 0) or 0) if pool is not None else 0


def _is_cluster(client: Any) -> bool:
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


Source = Callable[[float], Any]


class _Subscriptions:
    """The bucketed feed's pub/sub: every bucket's shard channel (``SSUBSCRIBE``; on a
    cluster through redis-py's cluster pub/sub, one connection per master owning some),
    and keyspace ``expired`` hints, which are node-local: one subscription on every
    master. Those are hints, so a master lost (killed, failed over) drops only its own
    subscription; :meth:`maintain`, on every heartbeat, subscribes on the masters there
    are now (their confirmations make the reader catch up)."""

    def __init__(self, client: Any, state: BucketFeedState, keyspace: bool) -> None:
        self.client = client
        self.cluster = _is_cluster(client)
        self.keyspace = keyspace
        self.state = state
        self.shard: Any = None
        self.get_shard: Source | None = None
        self.per_node: dict[str, Any] = {}
        """Keyspace subscriptions on a cluster, by master name (host:port)."""
        self.lost = False
        """A master's keyspace subscription failed: read the slot map again."""

    def _masters_to_add(self) -> list[Any]:
        nodes = self.client.get_primaries()
        names = {n.name for n in nodes}
        for name in [x for x in self.per_node if x not in names]:  # no longer a master
            self._close_one(self.per_node.pop(name))
        return [n for n in nodes if n.name not in self.per_node]

    def _close_one(self, pubsub: Any) -> None:
        with contextlib.suppress(Exception):
            pubsub.close()

    def _subscribe_masters(self) -> int:
        added = 0
        for node in self._masters_to_add():
            ps = self.client.pubsub(node=node)
            try:
                ps.subscribe(self.state.keyspace_channel())
            except REDIS_ERRORS:
                self._close_one(ps)
                self.lost = True
                continue
            self.per_node[node.name] = ps
            added += 1
        return added

    def open(self) -> None:
        st = self.state
        channels = st.shard_channels()
        expected = len(channels)
        self.shard = self.client.pubsub()
        if self.cluster:
            shard = self.shard
            self.get_shard = lambda t: shard.get_sharded_message(timeout=t)
            shard.ssubscribe(*channels)
            if self.keyspace:
                expected += self._subscribe_masters()
        else:
            shard = self.shard
            self.get_shard = lambda t: shard.get_message(timeout=t)
            shard.ssubscribe(*channels)
            if self.keyspace:
                shard.subscribe(st.keyspace_channel())
                expected += 1
        st.pending_subscribes = expected

    def get(self, timeout: float, wait: Callable[[float], Any]) -> list[dict[str, Any]]:
        """Messages waiting now (or within ``timeout`` when there is one connection)."""
        assert self.get_shard is not None
        if not self.per_node:
            msg = self.get_shard(timeout)
            return [msg] if msg else []
        out: list[dict[str, Any]] = []
        for _ in range(256):
            msg = self.get_shard(0.0)
            if not msg:
                break
            out.append(msg)
        for name, ps in list(self.per_node.items()):
            try:
                for _ in range(256):
                    msg = ps.get_message(timeout=0.0)
                    if not msg:
                        break
                    out.append(msg)
            except REDIS_ERRORS:
                self._close_one(self.per_node.pop(name))
                self.lost = True
        if not out:
            wait(min(timeout, 0.05))
        return out

    def maintain(self) -> None:
        """Every heartbeat on a cluster: subscribe to ``expired`` on masters not covered."""
        if not (self.cluster and self.keyspace):
            return
        if self.lost:
            self.lost = False
            _refresh_topology(self.client)
        self._subscribe_masters()

    def close(self) -> None:
        for ps in [self.shard, *self.per_node.values()]:
            if ps is not None:
                self._close_one(ps)
        self.per_node.clear()


class _AsyncSubscriptions(_Subscriptions):
    """:class:`_Subscriptions` for asyncio clients."""

    async def _aclose_one(self, pubsub: Any) -> None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()

    async def _asubscribe_masters(self) -> int:
        nodes = self.client.get_primaries()
        names = {n.name for n in nodes}
        for name in [x for x in self.per_node if x not in names]:
            await self._aclose_one(self.per_node.pop(name))
        added = 0
        for node in nodes:
            if node.name in self.per_node:
                continue
            ps = self.client.pubsub(node=node)
            try:
                await ps.subscribe(self.state.keyspace_channel())
            except REDIS_ERRORS:
                await self._aclose_one(ps)
                self.lost = True
                continue
            self.per_node[node.name] = ps
            added += 1
        return added

    async def aopen(self) -> None:
        st = self.state
        channels = st.shard_channels()
        expected = len(channels)
        shard = self.shard = self.client.pubsub()
        if self.cluster:
            self.get_shard = lambda t: shard.get_sharded_message(timeout=t)
            await shard.ssubscribe(*channels)
            if self.keyspace:
                expected += await self._asubscribe_masters()
        else:
            self.get_shard = lambda t: shard.get_message(timeout=t)
            await shard.ssubscribe(*channels)
            if self.keyspace:
                await shard.subscribe(st.keyspace_channel())
                expected += 1
        st.pending_subscribes = expected

    async def aget(self, timeout: float) -> list[dict[str, Any]]:
        assert self.get_shard is not None
        if not self.per_node:
            msg = await self.get_shard(timeout)
            return [msg] if msg else []
        out: list[dict[str, Any]] = []
        for _ in range(256):
            msg = await self.get_shard(0.0)
            if not msg:
                break
            out.append(msg)
        for name, ps in list(self.per_node.items()):
            try:
                for _ in range(256):
                    msg = await ps.get_message(timeout=0.0)
                    if not msg:
                        break
                    out.append(msg)
            except REDIS_ERRORS:
                await self._aclose_one(self.per_node.pop(name))
                self.lost = True
        if not out:
            await asyncio.sleep(min(timeout, 0.05))
        return out

    async def amaintain(self) -> None:
        if not (self.cluster and self.keyspace):
            return
        if self.lost:
            self.lost = False
            await _arefresh_topology(self.client)
        await self._asubscribe_masters()

    async def aclose(self) -> None:
        for ps in [self.shard, *self.per_node.values()]:
            if ps is not None:
                await self._aclose_one(ps)
        self.per_node.clear()


def _refresh_topology(client: Any) -> None:
    """After a failure on a cluster: read the slot map again (a failover moves masters)."""
    if isinstance(client, redis.cluster.RedisCluster):
        with contextlib.suppress(*REDIS_ERRORS, redis.exceptions.RedisClusterException):
            client.nodes_manager.initialize()


async def _arefresh_topology(client: Any) -> None:
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        with contextlib.suppress(*REDIS_ERRORS, redis.exceptions.RedisClusterException):
            await client.nodes_manager.initialize()


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
        db = _db(store.client)
        self.state = FeedState(store.schema, db=db, backlog=backlog)
        self.buckets: BucketFeedState | None = None
        self._probe: redis.Redis | None = None
        self._probe_store: SessionStore = store
        if store.buckets is not None:
            self.buckets = BucketFeedState(store.buckets.schemas, db=db, backlog=backlog)
            if not _is_cluster(store.client):
                # on a cluster the store's own client reads the heads: its failures make
                # it read the slot map again, which the feed's subscriptions follow
                probe = _heartbeat_client(store.client, heartbeat)
                self._probe_store = SessionStore(probe, prefix=store.buckets.prefix,
                                                 buckets=store.buckets.count)
        else:
            self._probe = _heartbeat_client(store.client, heartbeat)

    def _catch_up(self) -> Iterator[FeedItem]:
        st = self.state
        if st.started:
            yield from st.catch_up_items(self.store.events_since(st.last_seq, top=st.top))
        if not st.started:
            yield from st.initial(self.store.events_since(None, limit=st.backlog))
            yield Resync(False)

    def _head(self) -> str | None:
        assert self._probe is not None
        return self._probe.lindex(self.store.schema.events, 0)

    def _catch_up_buckets(self, buckets: set[int] | None) -> Iterator[FeedItem]:
        st = self.buckets
        assert st is not None
        if st.started:
            yield from st.catch_up_items(self.store.bucket_events_since(st.positions(buckets)))
        if not st.started:
            yield from st.start(*self.store.events_start(backlog=st.backlog))

    def _run_buckets(self, stop: threading.Event) -> Iterator[FeedItem]:
        """:meth:`run` on the bucketed layout (a cluster, or one server in tests)."""
        st = self.buckets
        assert st is not None
        connected: bool | None = None
        delay = self.backoff[0]
        poll = min(0.2, self.heartbeat)
        while not stop.is_set():
            subs = _Subscriptions(self.store.client, st, self.keyspace)
            try:
                subs.open()
                deadline = time.monotonic() + max(2.0, self.heartbeat * 2)
                early: list[FeedItem] = []  # events published between two confirmations
                while st.pending_subscribes and time.monotonic() < deadline:
                    for msg in subs.get(poll, stop.wait):
                        early += st.on_message(msg)[0]
                if st.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                self._probe_store.event_heads()
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                yield from early
                yield from self._catch_up_buckets(None)
                delay = self.backoff[0]
                last_beat = time.monotonic()
                while not stop.is_set():
                    need: set[int] = set()
                    batch: list[FeedItem] = []
                    for msg in subs.get(poll, stop.wait):
                        items, more = st.on_message(msg)
                        batch += items
                        need |= more
                    yield from in_time_order(batch)
                    if need:
                        yield from self._catch_up_buckets(need)
                    if time.monotonic() - last_beat >= self.heartbeat:
                        last_beat = time.monotonic()
                        stale = st.stale(self._probe_store.event_heads())
                        if stale:
                            yield from self._catch_up_buckets(stale)
                        subs.maintain()  # expired hints from the masters there are now
            except (*REDIS_ERRORS, StoreError, TimeoutError, redis.exceptions.RedisClusterException) as exc:
                if connected is not False:
                    connected = False
                    yield FeedStatus(False, _why(exc))
                stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                _refresh_topology(self.store.client)
            except Exception as exc:  # a bug or a line no parser foresaw: restart, say so
                connected = False
                yield FeedStatus(False, f"feed reader failed ({type(exc).__name__}: {_why(exc)}); restarting")
                stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                subs.close()

    def run(self, stop: threading.Event) -> Iterator[FeedItem]:
        """Yield feed items until ``stop`` is set. Redis failures are reported as
        :class:`FeedStatus` items and retried with backoff; they are never raised."""
        if self.buckets is not None:
            yield from self._run_buckets(stop)
            return
        connected: bool | None = None
        delay = self.backoff[0]
        poll = min(0.2, self.heartbeat)
        while not stop.is_set():
            pubsub = self.store.client.pubsub()
            try:
                pubsub.subscribe(*self.state.subscribe_channels(self.keyspace))
                deadline = time.monotonic() + max(1.0, self.heartbeat * 2)
                early: list[FeedItem] = []  # events published between two confirmations
                while self.state.pending_subscribes and time.monotonic() < deadline:
                    msg = pubsub.get_message(timeout=poll)
                    if msg:
                        early += self.state.on_message(msg)[0]
                if self.state.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                self._head()
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                yield from early
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
            except Exception as exc:  # a bug or a line no parser foresaw: restart, say so
                connected = False
                yield FeedStatus(False, f"feed reader failed ({type(exc).__name__}: {_why(exc)}); restarting")
                stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                with contextlib.suppress(REDIS_ERRORS):
                    pubsub.close()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        elif self._probe_store is not self.store:
            self._probe_store.close()


async def afeed(store: AsyncSessionStore, *, heartbeat: float = 1.0, backlog: int = 200,
                keyspace: bool = True, backoff: tuple[float, float] = (0.1, 2.0)) -> AsyncIterator[FeedItem]:
    """The live feed for asyncio. Cancel the consuming task (or stop iterating) to end it."""
    if store.buckets is not None:
        async for item in _afeed_buckets(store, heartbeat=heartbeat, backlog=backlog, keyspace=keyspace,
                                         backoff=backoff):
            yield item
        return
    db = _db(store.client)
    state = FeedState(store.schema, db=db, backlog=backlog)
    probe = _async_heartbeat_client(store.client, heartbeat)
    connected: bool | None = None
    delay = backoff[0]
    poll = min(0.2, heartbeat)

    async def catch_up() -> list[FeedItem]:
        items: list[FeedItem] = []
        if state.started:
            items += state.catch_up_items(await store.events_since(state.last_seq, top=state.top))
        if not state.started:
            items += [*state.initial(await store.events_since(None, limit=state.backlog)), Resync(False)]
        return items

    try:
        while True:
            pubsub = store.client.pubsub()
            try:
                await pubsub.subscribe(*state.subscribe_channels(keyspace))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + max(1.0, heartbeat * 2)
                early: list[FeedItem] = []  # events published between two confirmations
                while state.pending_subscribes and loop.time() < deadline:
                    msg = await pubsub.get_message(timeout=poll)
                    if msg:
                        early += state.on_message(msg)[0]
                if state.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                await probe.lindex(store.schema.events, 0)
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                for item in early:
                    yield item
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
            except Exception as exc:  # a bug or a line no parser foresaw: restart, say so
                connected = False
                yield FeedStatus(False, f"feed reader failed ({type(exc).__name__}: {_why(exc)}); restarting")
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff[1])
            finally:
                with contextlib.suppress(REDIS_ERRORS):
                    await pubsub.aclose()
    finally:
        await probe.aclose()


async def _afeed_buckets(store: AsyncSessionStore, *, heartbeat: float, backlog: int, keyspace: bool,
                         backoff: tuple[float, float]) -> AsyncIterator[FeedItem]:
    """:func:`afeed` on the bucketed layout (a cluster, or one server in tests)."""
    assert store.buckets is not None
    st = BucketFeedState(store.buckets.schemas, db=_db(store.client), backlog=backlog)
    probe_store = store
    if not _is_cluster(store.client):
        probe_store = AsyncSessionStore(_async_heartbeat_client(store.client, heartbeat),
                                        prefix=store.buckets.prefix, buckets=store.buckets.count)
    connected: bool | None = None
    delay = backoff[0]
    poll = min(0.2, heartbeat)

    async def catch_up(buckets: set[int] | None) -> list[FeedItem]:
        items: list[FeedItem] = []
        if st.started:
            items += st.catch_up_items(await store.bucket_events_since(st.positions(buckets)))
        if not st.started:
            items += st.start(*await store.events_start(backlog=st.backlog))
        return items

    try:
        while True:
            subs = _AsyncSubscriptions(store.client, st, keyspace)
            try:
                await subs.aopen()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + max(2.0, heartbeat * 2)
                early: list[FeedItem] = []  # events published between two confirmations
                while st.pending_subscribes and loop.time() < deadline:
                    for msg in await subs.aget(poll):
                        early += st.on_message(msg)[0]
                if st.pending_subscribes:
                    raise TimeoutError("no subscribe confirmation")
                await probe_store.event_heads()
                if connected is not True:
                    connected = True
                    yield FeedStatus(True)
                for item in early:
                    yield item
                for item in await catch_up(None):
                    yield item
                delay = backoff[0]
                last_beat = loop.time()
                while True:
                    need: set[int] = set()
                    batch: list[FeedItem] = []
                    for msg in await subs.aget(poll):
                        items, more = st.on_message(msg)
                        batch += items
                        need |= more
                    for item in in_time_order(batch):
                        yield item
                    if need:
                        for item in await catch_up(need):
                            yield item
                    if loop.time() - last_beat >= heartbeat:
                        last_beat = loop.time()
                        stale = st.stale(await probe_store.event_heads())
                        if stale:
                            for item in await catch_up(stale):
                                yield item
                        await subs.amaintain()  # expired hints from the masters there are now
            except (*REDIS_ERRORS, StoreError, TimeoutError, redis.exceptions.RedisClusterException) as exc:
                if connected is not False:
                    connected = False
                    yield FeedStatus(False, _why(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff[1])
                await _arefresh_topology(store.client)
            except Exception as exc:  # a bug or a line no parser foresaw: restart, say so
                connected = False
                yield FeedStatus(False, f"feed reader failed ({type(exc).__name__}: {_why(exc)}); restarting")
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff[1])
            finally:
                await subs.aclose()
    finally:
        if probe_store is not store:
            await probe_store.close()
