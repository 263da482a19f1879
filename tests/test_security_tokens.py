"""Bearer tokens: strong, unique, never stored; the dashboard sees short ids; admin
actions are audited with their actor."""

from __future__ import annotations

import base64
import threading

import pytest
import redis

import core.plans
import core.tokens
from core import Policy, SessionStore
from core.tokens import new_token, short_id, sid_from_token


def test_tokens_carry_256_bits_from_secrets(monkeypatch) -> None:
    calls = []
    real = core.tokens.secrets.token_urlsafe

    def spy(n: int) -> str:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(core.tokens.secrets, "token_urlsafe", spy)
    token, sid = new_token("alice")
    assert calls == [32]
    secret = token.split(".", 1)[1]
    assert len(base64.urlsafe_b64decode(secret + "=")) * 8 >= 256
    assert sid_from_token(token) == sid and token not in sid and secret not in sid


def test_100k_tokens_and_ids_unique() -> None:
    pairs = [new_token("alice") for _ in range(100_000)]
    assert len({t for t, _ in pairs}) == 100_000
    assert len({s for _, s in pairs}) == 100_000


def test_a_login_never_reuses_an_existing_id(store: SessionStore, monkeypatch) -> None:
    first, _ = store.login("alice", app="crm")
    fresh = iter([("0000." + "A" * 43, first.sid)])  # a forced collision, then real tokens

    def rigged(username: str) -> tuple[str, str]:
        return next(fresh, None) or new_token(username)

    monkeypatch.setattr(core.plans, "new_token", rigged)
    second, token = store.login("alice", app="crm")
    assert second.sid != first.sid
    assert store.validate(token).sid == second.sid


def test_short_ids_only(store: SessionStore) -> None:
    session, token = store.login("alice", app="crm")
    assert session.short_id == short_id(session.sid) == session.sid[:8]
    assert len(session.short_id) == 8 and session.short_id not in token
    assert store.events(limit=1)[0].short_id == session.short_id


@pytest.mark.real
def test_no_token_reaches_redis_or_the_channel(real_url: str) -> None:
    """After logins, validations, profile edits and logouts, no key name, value, event
    or published message contains a token or its secret part."""
    raw = redis.Redis.from_url(real_url, decode_responses=True)
    pubsub = raw.pubsub()
    pubsub.subscribe("event:live")
    pubsub.get_message(timeout=1)
    published: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            msg = pubsub.get_message(timeout=0.05)
            if msg and msg["type"] == "message":
                published.append(msg["data"])

    listener = threading.Thread(target=listen)
    listener.start()
    tokens = []
    with SessionStore.from_url(real_url, policy=Policy(max_sessions_per_user=3, touch_interval=1)) as store:
        for i in range(40):
            session, token = store.login(f"user{i % 7}", app="crm", ip="10.0.0.1",
                                         metadata={"note": f"n{i}"})
            tokens.append(token)
            store.validate(token)
            if i % 3 == 0:
                store.update_profile(session.sid, email=f"u{i}@example.org")
            if i % 4 == 0:
                store.logout(session.sid, actor="admin")
        store.sweep()
        expected_events = len(store.events(limit=1000))
    deadline = threading.Event()
    for _ in range(40):
        if len(published) >= expected_events:
            break
        deadline.wait(0.05)
    stop.set()
    listener.join()
    pubsub.close()
    secrets = [t.split(".", 1)[1] for t in tokens]
    dump: list[str] = []
    for key in raw.scan_iter(count=1000):
        dump.append(key)
        kind = raw.type(key)
        if kind == "string":
            dump.append(raw.get(key) or "")
        elif kind == "hash":
            dump += [x for kv in raw.hgetall(key).items() for x in kv]
        elif kind == "list":
            dump += raw.lrange(key, 0, -1)
        elif kind == "set":
            dump += list(raw.smembers(key))
        elif kind == "zset":
            dump += raw.zrange(key, 0, -1)
    raw.close()
    assert len(published) >= expected_events > 40
    haystack = "\n".join(dump + published)
    assert len(dump) > 200
    leaked = [s for s in secrets if s in haystack or s[:16] in haystack]
    assert leaked == []


def test_admin_actions_are_audited_with_their_actor(store: SessionStore, clock) -> None:
    s1, _ = store.login("alice", app="crm")
    s2, _ = store.login("bob", app="crm")
    store.login("bob", app="crm")
    store.logout(s1.sid, actor="root@203.0.113.9")
    store.update_profile(s2.sid, department="sales", actor="root@203.0.113.9")
    store.logout_user("bob", actor="root@203.0.113.9")
    store.logout(s2.sid)  # already ended: no event
    ev = store.events(limit=10)
    admin = [e for e in ev if e.actor == "root@203.0.113.9"]
    assert [e.kind for e in admin] == ["admin_logout", "admin_logout", "profile", "admin_logout"]
    assert admin[-1].sid == s1.sid and {e.username for e in admin} == {"alice", "bob"}
    clock.advance(1)  # across buckets (cluster) events are merged by time
    own = store.login("carol", app="crm")[0]
    store.logout(own.sid)
    assert (store.events(limit=1)[0].kind, store.events(limit=1)[0].actor) == ("logout", "carol")
