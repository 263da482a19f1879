"""A Redis written by another app in the classic layout only: read and controlled."""

from __future__ import annotations

import pytest

from core import DataConflict

pytestmark = pytest.mark.usefixtures("classic_layout_only")


@pytest.fixture
def classic(raw):
    """Keys as the original admin app wrote them: one command per step, no indexes."""
    raw.hset("session:legacy-1", mapping={"username": "olduser", "app": "crm", "type": "web",
                                          "ip": "192.0.2.10", "login_time": "2026-11-25T10:00:00",
                                          "status": "active"})
    raw.hset("session:legacy-2", mapping={"username": "olduser", "app": "erp", "status": "inactive",
                                          "logout_time": "2026-11-25T09:00:00"})
    raw.hset("session:legacy-3", mapping={"username": "partial"})  # truncated hash
    raw.set("session:not-a-hash", "garbage")
    raw.rpush("user:sessions:olduser", "legacy-1", "legacy-2")
    raw.sadd("user:active_sessions:olduser", "legacy-1")
    raw.lpush("event:logs", "2026-11-25 10:00:00 olduser logged in to crm", "{not json")
    raw.set("cache:session:legacy-1", "olduser|crm|web", ex=3600)
    return raw


def test_classic_sessions_are_listed_by_scan(store, classic):
    page = store.active_page()
    assert page.mode == "scan"
    assert {x.sid for x in page.sessions} == {"legacy-1", "legacy-3"}
    legacy = next(x for x in page.sessions if x.sid == "legacy-1")
    assert legacy.login_time is not None and legacy.ip == "192.0.2.10"
    assert [x.sid for x in store.ended_page().sessions] == ["legacy-2"]


def test_classic_text_events_shown_as_they_are(store, classic):
    events = store.events()
    assert [e.raw for e in events] == ["{not json", "2026-11-25 10:00:00 olduser logged in to crm"]
    assert all(e.kind == "text" for e in events)


def test_classic_cache_entries(store, classic):
    (entry,) = store.cache_page()
    assert entry.raw == "olduser|crm|web" and entry.summary is None and entry.ttl > 0


def test_logout_ends_classic_session_in_classic_keys(store, classic):
    assert store.logout("legacy-1", actor="admin") is True
    h = classic.hgetall("session:legacy-1")
    assert h["status"] == "inactive" and h["end_reason"] == "admin"
    assert classic.smembers("user:active_sessions:olduser") == set()
    lines = classic.lrange("event:logs", 0, -1)
    assert len(lines) == 3 and '"admin_logout"' in lines[0]
    # another type at a session key is not a session to end: refused, left as it is
    with pytest.raises(DataConflict, match="session:not-a-hash is a string"):
        store.logout("not-a-hash", actor="admin")
    assert classic.get("session:not-a-hash") == "garbage"


def test_search_and_history_on_classic(store, classic):
    assert {x.sid for x in store.search("user", "old")} == {"legacy-1", "legacy-2"}
    assert [x.sid for x in store.search("sid", "legacy-1")] == ["legacy-1"]
    assert [x.sid for x in store.user_history("olduser")] == ["legacy-1", "legacy-2"]


def test_adopt_indexes_classic_sessions(store, classic):
    for sid in ("legacy-1", "legacy-2", "legacy-3", "not-a-hash"):
        store.adopt(sid)
    store.ctx.indexed = None
    page = store.active_page()
    assert page.mode == "index" and {x.sid for x in page.sessions} == {"legacy-1", "legacy-3"}
    assert [x.sid for x in store.ended_page().sessions] == ["legacy-2"]
    assert store.stats().by_app == {"crm": 1}
    assert {x.sid for x in store.search("ip", "192.0.2.")} == {"legacy-1"}


def test_malformed_keys_never_crash_reads(store, raw):
    session, _ = store.login("sam", app="crm")
    raw.hset(store._for_sid(session.sid).schema.session(session.sid), "expires_at", "soon")
    raw.set(store._for_user("sam").schema.user_sessions("sam"), "not a list")
    raw.rpush("event:logs", b"\xff raw bytes", '{"kind": 5}')
    raw.zadd(store.schema.idx_seen, {"ghost": 1})
    page = store.active_page()
    got = next(x for x in page.sessions if x.sid == session.sid)
    assert any("expires_at" in p for p in got.problems)
    assert [x.sid for x in store.user_history("sam")] == [session.sid]
    assert all(e.kind in ("login", "text") for e in store.events())
