"""The live feed on real servers: no gap and no duplicate across forced reconnects."""

from __future__ import annotations

import asyncio
import time

import pytest
from feed_collector import Collector

from core import AsyncSessionStore, Event, SessionStore
from core.embedded import RedisServer
from core.feed import ExpiryHint, FeedState, FeedStatus, Resync, afeed
from core.plans import EventsSince
from core.schema import Schema


@pytest.fixture
def server():
    with RedisServer(args=["--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                           "--notify-keyspace-events", "Ex"]) as srv:
        yield srv


def test_backlog_then_live_then_pubsub_kill_no_gap_no_duplicate(server):
    store = SessionStore.from_url(server.url)
    for i in range(3):
        store.login(f"early{i}", app="crm")
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    assert col.seqs() == [1, 2, 3]
    for i in range(20):
        store.login(f"u{i}", app="crm")
        if i == 10:
            store.client.client_kill_filter(_type="pubsub")
    col.wait_for(lambda: len(col.seqs()) == 23)
    store.login("last", app="crm")  # a marker: once it arrives, any duplicate before it has too
    col.wait_for(lambda: 24 in col.seqs())
    assert col.seqs() == list(range(1, 25))
    col.close()
    store.close()


def wait_aof_written(client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while int(client.info("persistence").get("aof_buffer_length", 0)):
        assert time.monotonic() < deadline, "AOF buffer not written"
        time.sleep(0.02)


def test_crash_and_restart_with_aof_catches_up(server):
    store = SessionStore.from_url(server.url)
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    for i in range(5):
        store.login(f"a{i}", app="crm")
    col.wait_for(lambda: len(col.seqs()) == 5)
    # kill -9 keeps what Redis has write()n to the AOF (the page cache survives a process
    # crash; everysec only delays the fsync): wait until its AOF buffer is empty.
    wait_aof_written(store.client)
    server.kill()
    col.wait_for(lambda: any(isinstance(x, FeedStatus) and not x.connected for x in col.items), 5)
    server.start()
    for i in range(5):
        store.login(f"b{i}", app="crm")
    col.wait_for(lambda: len(col.seqs()) == 10)
    assert col.seqs() == list(range(1, 11))
    assert isinstance([x for x in col.items if isinstance(x, FeedStatus)][-1], FeedStatus)
    assert [x for x in col.items if isinstance(x, FeedStatus)][-1].connected
    col.close()
    store.close()


def test_data_loss_is_detected_as_rewind(server):
    store = SessionStore.from_url(server.url)
    col = Collector(store)
    for i in range(3):
        store.login(f"a{i}", app="crm")
    col.wait_for(lambda: len(col.seqs()) == 3)
    store.client.flushall()  # the server lost everything: seq starts again at 1
    store.client.client_kill_filter(_type="pubsub")
    for i in range(3):
        store.login(f"b{i}", app="crm")
    col.wait_for(lambda: [e.username for e in col.items if isinstance(e, Event)][-3:] == ["b0", "b1", "b2"])
    assert any(isinstance(x, Resync) and x.gap for x in col.items)
    col.close()
    store.close()


def test_frozen_server_is_noticed_by_the_heartbeat(server):
    store = SessionStore.from_url(server.url)
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    server.pause()
    try:
        started = time.monotonic()
        col.wait_for(lambda: any(isinstance(x, FeedStatus) and not x.connected for x in col.items), 5)
        noticed = time.monotonic() - started
    finally:
        server.resume()
    assert noticed < 2.0
    store.login("after", app="crm")
    col.wait_for(lambda: [e.username for e in col.items if isinstance(e, Event)][-1:] == ["after"])
    col.close()
    store.close()


def test_plain_text_lines_from_other_apps_are_picked_up(server):
    store = SessionStore.from_url(server.url)
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    store.client.lpush(store.schema.events, "legacy app: olduser logged in")
    col.wait_for(lambda: any(isinstance(x, Event) and x.kind == "text" for x in col.items))
    store.login("next", app="crm")
    col.wait_for(lambda: len(col.seqs()) == 1)
    texts = [x.raw for x in col.items if isinstance(x, Event) and x.kind == "text"]
    assert texts == ["legacy app: olduser logged in"]
    col.close()
    store.close()


def test_expiry_hint_from_keyspace_notifications(server):
    store = SessionStore.from_url(server.url)
    col = Collector(store)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    store.client.set(store._for_sid("short").schema.cache("short"), "x", px=50)
    deadline = time.monotonic() + 30
    while store.client.get(store._for_sid("short").schema.cache("short")) is not None:  # an access past expiry deletes it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    col.wait_for(lambda: any(isinstance(x, ExpiryHint) for x in col.items))
    col.close()
    store.close()


async def test_async_feed_catches_up_after_pubsub_kill(server):
    store = AsyncSessionStore.from_url(server.url)
    seen: list[int] = []
    resyncs = 0

    async def consume() -> None:
        nonlocal resyncs
        async for item in afeed(store, heartbeat=0.3, backoff=(0.05, 0.3)):
            if isinstance(item, Event) and item.seq is not None:
                seen.append(item.seq)
            elif isinstance(item, Resync):
                resyncs += 1

    task = asyncio.create_task(consume())
    for _ in range(100):
        if resyncs:
            break
        await asyncio.sleep(0.02)
    for i in range(10):
        await store.login(f"u{i}", app="crm")
        if i == 4:
            await store.client.client_kill_filter(_type="pubsub")
    for _ in range(300):
        if len(seen) >= 10:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == list(range(1, 11))
    await store.close()


def test_feed_state_dedupes_and_detects_gaps():
    state = FeedState(Schema())
    state.subscribe_channels(keyspace=False)
    assert state.on_message({"type": "subscribe", "channel": "event:live", "data": 1}) == ([], False)
    state.initial(EventsSince([], False, counter=0, found=True))
    line = '{"seq": %d, "kind": "login", "sid": "s", "username": "u", "app": "a", "actor": "u", "ts": 1}'
    items, need = state.on_message({"type": "message", "channel": "event:live", "data": line % 1})
    assert [x.seq for x in items] == [1] and not need
    assert state.on_message({"type": "message", "channel": "event:live", "data": line % 1}) == ([], False)
    assert state.on_message({"type": "message", "channel": "event:live", "data": line % 3}) == ([], True)
    assert state.on_message({"type": "subscribe", "channel": "event:live", "data": 1}) == ([], True)
