"""Server faults on real redis-servers: frozen (SIGSTOP), crashed under load (kill -9,
restart with the same AOF directory), and sessions expiring with no events at all."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import AsyncSessionStore, ConnectOptions, Policy, SessionStore, StoreError, StoreUnavailable
from core.counters import counter_drift
from core.embedded import RedisServer
from core.feed import EventFeed, Resync
from core.model import Event, parse_event
from tests.faults import aof_server, frozen, wait_until

pytestmark = [pytest.mark.real, pytest.mark.slow]

OPTS = ConnectOptions(socket_timeout=0.5, connect_timeout=0.5, retries=1, backoff_cap=0.2)
SLACK = 0.5
"""Scheduling slack on a loaded 2-core machine; the bound itself is OPTS.worst_case_seconds."""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = aof_server()
    with srv:
        yield srv


def test_frozen_server_fails_every_call_within_the_bound(server: RedisServer) -> None:
    store = SessionStore.from_url(server.url, options=OPTS)
    session, token = store.login("alice", app="crm")
    calls = {
        "login": lambda: store.login("bob", app="crm"),
        "validate": lambda: store.validate(token),
        "logout": lambda: store.logout(session.sid),
        "get": lambda: store.get(session.sid),
        "active_page": lambda: store.active_page(),
        "stats": lambda: store.stats(),
        "events": lambda: store.events(),
        "sweep": lambda: store.sweep(),
        "ping": lambda: store.ping(),
    }

    def timed(call) -> tuple[float, BaseException | None]:
        start = time.monotonic()
        try:
            call()
        except BaseException as exc:
            return time.monotonic() - start, exc
        return time.monotonic() - start, None

    with frozen(server), ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = dict(zip(calls, pool.map(timed, calls.values()), strict=True))
    for name, (elapsed, exc) in results.items():
        assert isinstance(exc, StoreUnavailable), (name, exc)
        assert elapsed <= OPTS.worst_case_seconds + SLACK, (name, elapsed)
    recovered = wait_until(lambda: store.validate(token) is not None, timeout=OPTS.worst_case_seconds + 2)
    assert recovered <= OPTS.worst_case_seconds + SLACK
    store.close()


async def test_frozen_server_async_calls_fail_within_the_bound(server: RedisServer) -> None:
    store = AsyncSessionStore.from_url(server.url, options=OPTS)
    _, token = await store.login("alice", app="crm")

    async def timed(coro) -> tuple[float, BaseException | None]:
        start = time.monotonic()
        try:
            await coro
        except BaseException as exc:
            return time.monotonic() - start, exc
        return time.monotonic() - start, None

    with frozen(server):
        results = await asyncio.gather(timed(store.validate(token)), timed(store.login("bob", app="crm")),
                                       timed(store.active_page()), timed(store.stats()))
    for elapsed, exc in results:
        assert isinstance(exc, StoreUnavailable), exc
        assert elapsed <= OPTS.worst_case_seconds + SLACK
    assert await store.validate(token) is not None
    await store.close()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


class Load:
    """Two writer threads logging in and out until told to stop; records what the core
    acknowledged (returned without raising)."""

    def __init__(self, url: str) -> None:
        self.store = SessionStore.from_url(url, options=OPTS, policy=Policy(idle_ttl=3600))
        self.logins: dict[str, str] = {}
        self.logouts: set[str] = set()
        self.pending_logouts: set[str] = set()
        self.failures = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(2)]

    def run(self, n: int) -> None:
        i = 0
        while not self.stop.is_set() and i < 3000:
            i += 1
            try:
                if i % 4 == 0 and self.logins:
                    with self.lock:
                        sid = next(iter(set(self.logins) - self.logouts - self.pending_logouts), None)
                        if sid:
                            self.pending_logouts.add(sid)
                    if sid and self.store.logout(sid):
                        with self.lock:
                            self.logouts.add(sid)
                else:
                    session, token = self.store.login(f"user{n}-{i % 50}", app="crm")
                    with self.lock:
                        self.logins[session.sid] = token
            except StoreError:
                self.failures += 1
                time.sleep(0.05)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        self.store.close()


def test_crash_under_load_loses_no_acknowledged_login(server: RedisServer) -> None:
    feed_store = SessionStore.from_url(server.url, options=OPTS)
    feed = EventFeed(feed_store, heartbeat=0.3, backoff=(0.05, 0.3))
    items: list[object] = []
    stop_feed = threading.Event()
    feed_thread = threading.Thread(target=lambda: [items.append(x) for x in feed.run(stop_feed)])
    feed_thread.start()
    wait_until(lambda: any(isinstance(x, Resync) for x in items))
    with Load(server.url) as load:
        wait_until(lambda: len(load.logins) >= 1000, timeout=30)
        server.kill()  # kill -9 mid-stream
        acked_at_crash = len(load.logins)
        failures = load.failures
        wait_until(lambda: load.failures > failures, timeout=30)  # down, and the writers noticed
        server.start()
        wait_until(lambda: len(load.logins) >= acked_at_crash + 100, timeout=30)
    acked = dict(load.logins)
    check = SessionStore.from_url(server.url, options=OPTS, policy=Policy(idle_ttl=3600))
    lost = [sid for sid in acked if check.get(sid) is None]
    assert lost == []  # sessions lost: zero
    print(f"crash under load: {len(acked)} acknowledged logins ({acked_at_crash} before kill -9), "
          f"{len(load.logouts)} logouts, {load.failures} failed calls while down, 0 lost")
    for sid in load.logouts:
        assert check.get(sid).status == "inactive"
    for sid in set(acked) - load.logouts - load.pending_logouts:
        assert check.validate(acked[sid]) is not None
    check.sweep()
    s, raw = check.schema, check.client
    for idx in (s.idx_expiry, s.idx_seen, s.idx_login, s.idx_ended):
        members = raw.zrange(idx, 0, -1)
        pipe = raw.pipeline(transaction=False)
        for sid in members:
            pipe.exists(s.session(sid))
        assert all(pipe.execute()), f"{idx} points to a missing session"
    assert counter_drift(raw, s) == []  # the counters equal the truth after the crash
    # The live feed came back after the restart and delivered the log with no gap/duplicate.
    head = parse_event(raw.lindex(s.events, 0)).seq
    wait_until(lambda: any(isinstance(x, Event) and x.seq == head for x in items), timeout=30)
    stop_feed.set()
    feed_thread.join(10)
    feed.close()
    feed_store.close()
    seqs = [x.seq for x in items if isinstance(x, Event)]
    assert seqs == sorted(set(seqs)) and seqs == list(range(seqs[0], head + 1))
    assert sum(isinstance(x, Resync) for x in items) >= 2
    assert load.failures > 0  # the crash was noticed by the writers, not skipped over
    check.close()


def test_expiry_with_no_events_among_many_long_ttl_keys() -> None:
    """Keyspace notifications off; 200 short sessions among 20,000 long-TTL keys and 50
    long sessions: the short ones leave the Active view as soon as their expiry passes
    (no event needed) and one sweep leaves none of them in any index."""
    with aof_server(notify="") as srv:
        short = SessionStore.from_url(srv.url, policy=Policy(idle_ttl=1, touch_interval=60))
        long = SessionStore.from_url(srv.url, policy=Policy(idle_ttl=3600))
        raw = long.client
        pipe = raw.pipeline(transaction=False)
        for i in range(20_000):
            pipe.set(f"other:{i}", "x", ex=3600)
        pipe.execute()
        short_sids = {short.login(f"s{i % 40}", app="crm")[0].sid for i in range(200)}
        long_sids = {long.login(f"l{i}", app="crm")[0].sid for i in range(50)}
        assert raw.config_get("notify-keyspace-events")["notify-keyspace-events"] == ""
        wait_until(lambda: long.stats().expired_pending == 200, timeout=30)  # their 1 s idle passed
        page = long.active_page(limit=1000)
        assert {x.sid for x in page.sessions} == long_sids and page.total == 50
        assert long.stats().expired_pending == 200
        result = long.sweep()
        assert result.expired == 200
        s = long.schema
        for idx in (s.idx_expiry, s.idx_seen, s.idx_login):
            assert set(raw.zrange(idx, 0, -1)) == long_sids
        assert set(raw.zrange(s.idx_ended, 0, -1)) == short_sids
        for i in range(40):
            assert raw.smembers(s.user_active(f"s{i}")) == set()
        assert long.stats().by_app == {"crm": 50}
        assert counter_drift(raw, s) == []
        short.close()
        long.close()


def test_memory_full_with_noeviction_refuses_logins_loudly_and_keeps_sessions(server: RedisServer) -> None:
    """maxmemory reached under noeviction (what redis.conf ships): logins fail with one
    clear StoreUnavailable; nothing is evicted, so every existing session still validates."""
    store = SessionStore.from_url(server.url, options=OPTS)
    kept = [store.login(f"k{i}", app="crm") for i in range(20)]
    assert store.client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    store.client.config_set("maxmemory", int(store.client.info("memory")["used_memory"]) + 200_000)
    refused = None
    for i in range(2000):
        try:
            store.login(f"flood{i}", app="crm", user_agent="x" * 1000)
        except StoreUnavailable as exc:
            refused = exc
            break
    assert refused is not None and "out of memory" in str(refused) and "\n" not in str(refused)
    assert all(store.validate(token) is not None for _, token in kept)
    assert store.active_page(limit=1000).total >= 20
    store.client.config_set("maxmemory", 0)
    assert store.validate(store.login("after", app="crm")[1]) is not None
    store.close()
