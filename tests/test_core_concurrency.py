"""Concurrency on a real server: the cap under a login storm, touch vs logout."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from core import Policy, SessionStore


def test_200_concurrent_logins_under_cap_5_leave_exactly_5(real_url):
    store = SessionStore.from_url(real_url, policy=Policy(max_sessions_per_user=5))
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: store.login("storm", app="crm"), range(200)))
    sids = {s.sid for s, _ in results}
    assert len(sids) == 200
    active = store.client.smembers(store._for_user("storm").schema.user_active("storm"))
    assert len(active) == 5
    assert len([t for _, t in results if store.validate(t) is not None]) == 5
    ended = [e for e in store.events(limit=1000) if e.kind == "evicted"]
    assert len(ended) == 195 and {e.sid for e in ended} == sids - active
    assert store.stats().active == 5
    store.close()


def test_touch_racing_logout_never_revives(real_url):
    store = SessionStore.from_url(real_url, policy=Policy(touch_interval=0 + 1))
    clock_store = SessionStore.from_url(real_url, policy=Policy(touch_interval=1),
                                        clock=lambda: 4_000_000_000.0)  # always due for a touch
    session, token = store.login("racer", app="crm")
    go = threading.Event()

    def validate_many() -> int:
        go.wait()
        return sum(clock_store.validate(token) is not None for _ in range(100))

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(validate_many) for _ in range(8)]
        go.set()
        assert store.logout(session.sid, actor="admin")
        [f.result() for f in futures]
    assert store.validate(token) is None
    assert clock_store.validate(token) is None
    h = store.client.hgetall(store._for_sid(session.sid).schema.session(session.sid))
    assert h["status"] == "inactive"
    assert store.client.zscore(store.schema.idx_expiry, session.sid) is None
    assert session.sid not in store.client.smembers(store._for_user("racer").schema.user_active("racer"))
    store.close()
    clock_store.close()


def test_concurrent_sweepers_end_each_session_once(real_url, clock):
    store = SessionStore.from_url(real_url, policy=Policy(idle_ttl=60), clock=clock)
    sids = {store.login(f"u{i}", app="crm")[0].sid for i in range(300)}
    clock.advance(61)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: store.sweep(batch=20), range(4)))
    assert sum(r.expired for r in results) == 300
    expired = [e.sid for e in store.events(limit=1000) if e.kind == "expired"]
    assert sorted(expired) == sorted(sids)
    store.close()
