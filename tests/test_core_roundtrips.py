"""Each operation is one round trip, on a real server (socket writes are counted)."""

from __future__ import annotations

import pytest
import redis

from core import Policy, SessionStore


@pytest.fixture
def counted(real_url, monkeypatch, clock):
    store = SessionStore.from_url(real_url, policy=Policy(touch_interval=1), clock=clock)
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    # warm up: connection handshake and SCRIPT LOAD happen once, before counting
    s, t = store.login("warm", app="crm")
    store.validate(t)
    clock.advance(5)
    store.validate(t)  # a touch: loads the validate script, which a read-only validate does not
    store.update_profile(s.sid, email="w@example.org")
    store.logout(s.sid)
    store.active_page()
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    yield store, sent
    store.close()


def test_login_validate_logout_each_one_round_trip(counted, clock):
    store, sent = counted
    session, token = store.login("alice", app="crm", ip="203.0.113.7")
    assert len(sent) == 1
    store.validate(token)
    assert len(sent) == 2
    clock.advance(5)
    store.validate(token)  # with a touch write: still one script call
    assert len(sent) == 3
    store.update_profile(session.sid, email="a@example.org")
    assert len(sent) == 4
    store.logout(session.sid, actor="admin")
    assert len(sent) == 5


def test_page_round_trips_do_not_grow_with_session_count(counted):
    store, sent = counted
    for i in range(10):
        store.login(f"u{i}", app="crm")
    sent.clear()
    store.active_page(limit=5)
    small = len(sent)
    for i in range(200):
        store.login(f"v{i}", app="crm")
    sent.clear()
    store.active_page(limit=5)
    assert len(sent) == small == 2
    sent.clear()
    store.stats()
    assert len(sent) == 1
