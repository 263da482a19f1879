"""AsyncSessionStore has the same behaviour as the sync store (shared plans)."""

from __future__ import annotations

import asyncio

import pytest

from core import InvalidInput, Policy, SessionNotFound


async def test_async_lifecycle(make_async_store, clock):
    store = make_async_store(Policy(max_sessions_per_user=2, touch_interval=10))
    s1, t1 = await store.login("alice", app="crm", ip="203.0.113.7")
    clock.advance(1)
    s2, t2 = await store.login("alice", app="crm")
    clock.advance(1)
    s3, t3 = await store.login("alice", app="erp")
    assert await store.validate(t1) is None
    assert (await store.validate(t3)).sid == s3.sid
    clock.advance(20)
    assert (await store.validate(t3)).last_seen == pytest.approx(clock.now)
    await store.update_profile(s3.sid, email="a@example.org")
    assert (await store.get(s3.sid)).email == "a@example.org"
    assert await store.logout(s2.sid, actor="admin") is True
    assert await store.logout_user("alice") == [s3.sid]
    with pytest.raises(SessionNotFound):
        await store.update_profile(s3.sid, department="x")
    page = await store.ended_page()
    assert {x.sid for x in page.sessions} == {s1.sid, s2.sid, s3.sid}
    kinds = [e.kind for e in reversed(await store.events())]
    assert kinds == ["login", "login", "login", "evicted", "profile", "admin_logout", "logout"]


async def test_async_bad_input_raises_at_call_time(make_async_store):
    store = make_async_store()
    with pytest.raises(InvalidInput):
        store.login("", app="crm")  # raised before anything is awaited
    assert await store.validate("garbage") is None


async def test_async_concurrent_logins_respect_cap(make_async_store):
    store = make_async_store(Policy(max_sessions_per_user=3))
    await asyncio.gather(*(store.login("bob", app="crm") for _ in range(30)))
    assert (await store.stats()).active == 3
