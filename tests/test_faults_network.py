"""Network faults through the loopback proxy: black-holed and reset connections. No call
blocks past its bound; the feed notices and recovers; no thread or task is left behind."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from core import AsyncSessionStore, ConnectOptions, SessionStore, StoreUnavailable
from core.embedded import RedisServer
from core.feed import EventFeed, FeedStatus, Resync, afeed
from core.model import Event
from tests.faults import FaultProxy, aof_server, live_threads, wait_until

pytestmark = [pytest.mark.real, pytest.mark.slow]

OPTS = ConnectOptions(socket_timeout=0.5, connect_timeout=0.5, retries=1, backoff_cap=0.2)
BOUND = OPTS.worst_case_seconds + 0.5  # + scheduling slack


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with aof_server() as srv:
        yield srv


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def timed(call) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.mark.parametrize("fault", ["blackhole", "reset"])
def test_calls_fail_within_the_bound_then_recover(proxy: FaultProxy, fault: str) -> None:
    before = live_threads()
    store = SessionStore.from_url(proxy.url(), options=OPTS)
    session, token = store.login("alice", app="crm")
    proxy.set(fault)
    if fault == "reset":
        proxy.reset_all()
    for call in (lambda: store.validate(token), lambda: store.login("bob", app="crm"),
                 lambda: store.active_page(), lambda: store.logout(session.sid)):
        elapsed, exc = timed(call)
        assert isinstance(exc, StoreUnavailable), exc
        assert elapsed <= BOUND, elapsed
        assert "\n" not in str(exc)
    proxy.set("pass")
    assert store.validate(token) is not None
    store.close()
    assert live_threads() - before == set()


def test_reset_mid_use_is_retried_transparently(proxy: FaultProxy) -> None:
    store = SessionStore.from_url(proxy.url(), options=OPTS)
    _, token = store.login("alice", app="crm")
    for _ in range(5):
        proxy.reset_all()  # the pooled connection is dead; the retry opens a new one
        assert store.validate(token) is not None
    assert proxy.accepted >= 6
    store.close()


async def test_async_calls_fail_within_the_bound_and_leave_no_tasks(proxy: FaultProxy) -> None:
    store = AsyncSessionStore.from_url(proxy.url(), options=OPTS)
    _, token = await store.login("alice", app="crm")
    proxy.set("blackhole")
    start = time.monotonic()
    results = await asyncio.gather(*(store.validate(token) for _ in range(20)), return_exceptions=True)
    assert time.monotonic() - start <= BOUND
    assert all(isinstance(r, StoreUnavailable) for r in results)
    proxy.set("pass")
    assert await store.validate(token) is not None
    await store.close()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


def test_feed_notices_a_black_hole_and_recovers_without_gap(proxy: FaultProxy, server: RedisServer) -> None:
    before = live_threads()
    store = SessionStore.from_url(proxy.url(), options=OPTS)
    writer = SessionStore.from_url(server.url, options=OPTS)  # direct: keeps writing meanwhile
    feed = EventFeed(store, heartbeat=0.3, backoff=(0.05, 0.3))
    items: list[object] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [items.append(x) for x in feed.run(stop)])
    thread.start()
    wait_until(lambda: Resync(False) in items)
    writer.login("w0", app="crm")
    proxy.set("blackhole")
    start = time.monotonic()
    wait_until(lambda: any(isinstance(x, FeedStatus) and not x.connected for x in items), timeout=30)
    noticed = time.monotonic() - start
    for i in range(1, 20):
        writer.login(f"w{i}", app="crm")
    proxy.set("pass")
    head = int(writer.client.get(writer.schema.event_seq))
    wait_until(lambda: any(isinstance(x, Event) and x.seq == head for x in items), timeout=30)
    stop.set()
    thread.join(5)
    feed.close()
    store.close()
    writer.close()
    assert not thread.is_alive()
    assert noticed <= 2.0  # heartbeat 0.3 s: well within the 2 s a banner must take
    seqs = [x.seq for x in items if isinstance(x, Event)]
    assert seqs == list(range(seqs[0], head + 1))  # no gap, no duplicate
    assert live_threads() - before == set()


async def test_async_feed_survives_resets_and_leaves_no_tasks(proxy: FaultProxy, server: RedisServer) -> None:
    store = AsyncSessionStore.from_url(proxy.url(), options=OPTS)
    writer = SessionStore.from_url(server.url, options=OPTS)
    items: list[object] = []

    async def consume() -> None:
        async for item in afeed(store, heartbeat=0.3, backoff=(0.05, 0.3)):
            items.append(item)

    task = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()

    async def until(cond, timeout: float = 10.0) -> None:
        deadline = loop.time() + timeout
        while not cond():
            assert loop.time() < deadline, items[-5:]
            await asyncio.sleep(0.02)

    await until(lambda: Resync(False) in items)
    for i in range(3):
        writer.login(f"a{i}", app="crm")
        proxy.reset_all()
        writer.login(f"b{i}", app="crm")
    head = int(writer.client.get(writer.schema.event_seq))
    await until(lambda: any(isinstance(x, Event) and x.seq == head for x in items))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    writer.close()
    seqs = [x.seq for x in items if isinstance(x, Event)]
    assert seqs == list(range(seqs[0], head + 1))
    assert sum(isinstance(x, Resync) for x in items) >= 2  # resynced after the resets
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
