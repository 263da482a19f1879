"""The event log and live feed of a bucketed store (the Redis Cluster layout), on one
real Redis 7 server: merged reads in time order, and a feed that delivers every bucket's
events once, in order per bucket, across reconnects."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from feed_collector import Collector

from core import AsyncSessionStore, Event, SessionStore
from core.embedded import RedisServer
from core.feed import BucketFeedState, EventFeed, ExpiryHint, FeedStatus, Resync, afeed
from core.plans import EventsSince
from core.schema import Schema

BUCKETS = 16


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.01  # every reading later than the last: one order to check against
        return self.now


@pytest.fixture
def client(debian_server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(debian_server.url, decode_responses=True)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def store(debian_server: RedisServer, client: redis.Redis) -> Iterator[SessionStore]:
    s = SessionStore.from_url(debian_server.url)
    s = SessionStore(s.client, buckets=BUCKETS)
    yield s
    s.close()


def per_bucket(events: list[Event]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for ev in events:
        assert ev.bucket is not None and ev.seq is not None
        out.setdefault(ev.bucket, []).append(ev.seq)
    return out


def assert_once_in_order(events: list[Event], store: SessionStore) -> None:
    """Every bucket's events 1..seq exactly once, in order."""
    seqs = per_bucket(events)
    for b in range(BUCKETS):
        counter = int(store.client.get(store.buckets.schema(b).event_seq) or 0)
        assert seqs.get(b, []) == list(range(1, counter + 1)), b


def test_merged_events_are_the_newest_across_buckets_in_time_order(client: redis.Redis) -> None:
    store = SessionStore(client, buckets=BUCKETS, clock=Clock())
    names = [f"user{i}" for i in range(60)] + ["busy"] * 80 + [f"late{i}" for i in range(10)]
    for name in names:
        store.login(name, app="crm")
    for limit in (1, 5, 25, 100, 150, 400):
        got = store.events(limit=limit)
        assert [ev.username for ev in got] == list(reversed(names))[:limit]
        assert all(ev.bucket == store.buckets.of_user(ev.username) for ev in got)
    assert store.event_head() == store.events(limit=1)[0].raw
    heads = store.event_heads()
    assert len(heads) == BUCKETS and store.events(limit=1)[0].raw in heads
    with pytest.raises(TypeError):
        store.events_since(None)


def test_start_and_since_read_each_bucket_from_its_own_position(client: redis.Redis) -> None:
    store = SessionStore(client, buckets=BUCKETS, clock=Clock())
    for i in range(40):
        store.login(f"a{i}", app="crm")
    since, merged = store.events_start(backlog=10)
    assert [ev.username for ev in merged] == [f"a{i}" for i in range(30, 40)]
    assert len(since) == BUCKETS
    for b, one in enumerate(since):
        assert one.counter == int(client.get(store.buckets.schema(b).event_seq) or 0)
    positions = {b: (one.counter, one.top) for b, one in enumerate(since)}
    for i in range(20):
        store.login(f"b{i}", app="crm")
    after = store.bucket_events_since(positions)
    new = sorted((ev for one in after.values() for ev in one.events), key=lambda ev: ev.ts or 0)
    assert [ev.username for ev in new] == [f"b{i}" for i in range(20)]
    assert all(one.found and not one.gap for one in after.values())


def test_feed_delivers_every_buckets_logins_once_in_order_across_reconnects(store: SessionStore) -> None:
    for i in range(30):
        store.login(f"early{i}", app="crm")
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    assert len(col.events()) == 30
    for i in range(120):
        store.login(f"u{i}", app="crm")
        if i in (40, 80):
            store.client.client_kill_filter(_type="pubsub")
        if i == 60:
            store.client.client_kill_filter(_type="normal", skipme=True)
    store.logout_user("u7")
    col.wait_for(lambda: len(col.events()) == 151)
    store.login("marker", app="crm")  # once it arrives, any duplicate sent before it has too
    col.wait_for(lambda: any(ev.username == "marker" for ev in col.events()))
    assert_once_in_order(col.events(), store)
    col.close()


def test_feed_catches_up_per_bucket_after_being_away(store: SessionStore, client: redis.Redis) -> None:
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    col.close()
    state = col.feed.buckets
    for i in range(50):
        store.login(f"away{i}", app="crm")
    # a new reader over the same positions: only what happened while away, in time order
    feed = EventFeed(store, heartbeat=0.3, backoff=(0.05, 0.3))
    feed.buckets = state
    stop = threading.Event()
    got: list[object] = []

    def run() -> None:
        for item in feed.run(stop):
            got.append(item)
            if isinstance(item, Resync):
                stop.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    feed.close()
    events = [x for x in got if isinstance(x, Event)]
    assert sorted(ev.username for ev in events) == sorted(f"away{i}" for i in range(50))
    assert [ev.ts for ev in events] == sorted(ev.ts for ev in events)  # type: ignore[type-var]
    assert_once_in_order(events, store)


def test_expired_session_keys_of_any_bucket_are_hinted(store: SessionStore, client: redis.Redis) -> None:
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    keys = [store.buckets.schema(b).session(f"gone{b}") for b in (0, 5, BUCKETS - 1)]
    for key in keys:
        client.set(key, "x", px=50)
    col.wait_for(lambda: {x.key for x in col.items if isinstance(x, ExpiryHint)} >= set(keys))
    client.set("unrelated:session:x", "x", px=50)
    client.set(store.buckets.schema(3).events + ":other", "x", px=50)
    store.login("marker", app="crm")
    col.wait_for(lambda: any(ev.username == "marker" for ev in col.events()))
    hinted = {x.key for x in col.items if isinstance(x, ExpiryHint)}
    assert hinted == set(keys)
    col.close()


def test_sharded_messages_are_delivered_at_once_and_the_log_decides_on_gaps(store: SessionStore,
                                                                          client: redis.Redis) -> None:
    """Published on the bucket's shard channel (what the scripts do on a cluster), an
    event comes straight through; one that skips a seq makes the feed read that bucket."""
    col = Collector(store, keyspace=False)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    store.login("first", app="crm")
    col.wait_for(lambda: len(col.events()) == 1)
    b = col.events()[0].bucket
    assert b is not None
    schema = store.buckets.schema(b)
    line = '{"seq":2,"ts":1800000000.5,"kind":"login","sid":"s","username":"by-hand","app":"x","actor":""}'
    client.incr(schema.event_seq)
    client.lpush(schema.events, line)
    client.spublish(schema.channel, line)
    col.wait_for(lambda: len(col.events()) == 2)
    assert col.events()[1].raw == line and col.events()[1].bucket == b
    assert_once_in_order(col.events(), store)
    col.close()


def test_a_rewound_bucket_starts_the_reader_over() -> None:
    schemas = tuple(Schema(f"{{b{i}}}") for i in range(3))
    st = BucketFeedState(schemas)
    line = '{{"seq":{},"ts":{},"kind":"login","sid":"s","username":"u{}"}}'
    since = [EventsSince([], False, False, 0, (), True) for _ in schemas]
    assert st.start(since, []) == [Resync(False)]
    ev = Event(raw=line.format(1, 1.0, 1), seq=1, ts=1.0)
    items, need = st.on_message({"type": "smessage", "channel": schemas[1].channel, "data": ev.raw})
    assert [x.bucket for x in items] == [1] and not need  # type: ignore[union-attr]
    assert st.stale((None, ev.raw, None)) == {1}  # from pub/sub: the log is read once more
    # bucket 2 went back (its counter is below the position held): start over
    st.states[2].last_seq = 5
    back = st.catch_up_items({2: EventsSince([], True, True, 0, (), False)})
    assert back == [Resync(gap=True, rewound=True)]
    assert not st.started


def test_async_feed_on_a_bucketed_store(debian_server: RedisServer, client: redis.Redis) -> None:
    async def main() -> list[object]:
        store = AsyncSessionStore(redis.asyncio.Redis.from_url(debian_server.url, decode_responses=True),
                                  buckets=BUCKETS)
        for i in range(10):
            await store.login(f"a{i}", app="crm")
        got: list[object] = []

        async def consume() -> None:
            async for item in afeed(store, heartbeat=0.3, backoff=(0.05, 0.3)):
                got.append(item)
                events = [x for x in got if isinstance(x, Event)]
                if len(events) == 10 and isinstance(item, Resync):  # the backlog is in: log in more
                    for i in range(10):
                        await store.login(f"b{i}", app="crm")
                if len(events) == 20:
                    return

        await asyncio.wait_for(consume(), 60)
        await store.close()
        return got

    got = asyncio.run(main())
    assert isinstance(got[0], FeedStatus) and got[0].connected
    events = [x for x in got if isinstance(x, Event)]
    assert sorted(ev.username for ev in events) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    seqs = per_bucket(events)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())


def test_merged_reads_are_total_over_lines_other_apps_or_attackers_wrote(client: redis.Redis) -> None:
    store = SessionStore(client, buckets=BUCKETS, clock=Clock())
    assert store.buckets is not None
    for i in range(6):
        store.login(f"user{i}", app="crm")
    b = store.buckets.of_user("user5")
    log = store.buckets.schema(b).events
    hostile = ["plain text line", '{"seq":"x","ts":"NaN","kind":"login"}', '{"ts":1e400,"kind":"x"}',
               "[" * 5000, '{"seq":99999999999999999999,"ts":-5,"kind":"logout"}', "\x1b[2J"]
    client.lpush(log, *hostile)
    got = store.events(limit=50)
    assert len(got) == 12
    mine = [ev.raw for ev in got if ev.bucket == b]
    assert mine[:len(hostile)] == list(reversed(hostile))  # the bucket's own order is kept
    assert store.event_head() is not None
    since, merged = store.events_start(backlog=50)
    assert len(merged) == 12 and since[b].top[0] == hostile[-1]
    # a log of the wrong type is shown as a problem, not raised
    client.delete(log)
    client.set(log, "not a list")
    assert got[0].kind != "error"
    shown = store.events(limit=5)
    assert len(shown) == 1 and shown[0].kind == "error"
