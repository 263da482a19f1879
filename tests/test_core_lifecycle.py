"""The session lifecycle and policies, on fakeredis and on real servers."""

from __future__ import annotations

import json

import pytest

from core import InvalidInput, Policy, SessionNotFound
from core.tokens import SID_RE


def kinds(store) -> list[str]:
    return [e.kind for e in reversed(store.events(limit=1000))]


def test_login_stores_session_indexes_cache_and_event(store, raw):
    session, token = store.login("alice", app="crm", type="web", ip="203.0.113.7",
                                 user_agent="Mozilla/5.0", email="a@example.org", department="Sales",
                                 metadata={"fingerprint": "fp1"})
    s = store._for_sid(session.sid).schema  # the session's bucket on a cluster
    assert SID_RE.match(session.sid)
    h = raw.hgetall(s.session(session.sid))
    assert h["username"] == "alice" and h["app"] == "crm" and h["type"] == "web"
    assert h["ip"] == "203.0.113.7" and h["status"] == "active" and h["fingerprint"] == "fp1"
    assert float(h["expires_at"]) == pytest.approx(session.login_time + 1800)
    assert raw.lrange(s.user_sessions("alice"), 0, -1) == [session.sid]
    assert raw.smembers(s.user_active("alice")) == {session.sid}
    assert raw.zscore(s.idx_expiry, session.sid) == pytest.approx(session.expires_at)
    assert 0 < raw.ttl(s.cache(session.sid)) <= 3600
    assert json.loads(raw.get(s.cache(session.sid)))["username"] == "alice"
    assert 0 < raw.ttl(s.user_active("alice")) <= 2700  # 1.5 x idle
    (event,) = store.events(limit=10)
    assert (event.kind, event.sid, event.username, event.app, event.actor, event.seq) == (
        "login", session.sid, "alice", "crm", "alice", 1)
    assert token not in json.dumps(raw.hgetall(s.session(session.sid))) + event.raw


def test_validate_returns_session_and_rejects_garbage(store):
    session, token = store.login("bob", app="erp", type="api")
    got = store.validate(token)
    assert got is not None and got.sid == session.sid and got.username == "bob"
    assert store.validate("nope") is None
    assert store.validate(None) is None
    assert store.validate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_validate_slides_idle_expiry_throttled_and_never_past_absolute(make_store, clock):
    store = make_store(Policy(idle_ttl=100, absolute_ttl=250, touch_interval=10))
    session, token = store.login("carol", app="crm")
    t0 = clock.now
    clock.advance(5)
    assert store.validate(token).expires_at == pytest.approx(t0 + 100)  # throttled: no write
    clock.advance(50)
    assert store.validate(token).expires_at == pytest.approx(t0 + 155)
    clock.advance(90)
    assert store.validate(token).expires_at == pytest.approx(t0 + 245)
    clock.advance(90)
    assert store.validate(token).expires_at == pytest.approx(t0 + 250)  # capped at absolute
    clock.advance(16)
    assert store.validate(token) is None


def test_idle_expiry_is_enforced_from_data_before_any_sweep(make_store, clock):
    store = make_store(Policy(idle_ttl=60))
    session, token = store.login("dave", app="crm")
    clock.advance(61)
    assert store.validate(token) is None
    page = store.active_page()
    assert page.sessions == [] and page.total == 0
    assert store.stats().expired_pending == 1
    result = store.sweep()
    assert result.expired == 1
    assert store.get(session.sid).end_reason == "expired"
    assert store.sweep().expired == 0
    assert kinds(store).count("expired") == 1


def test_logout_is_idempotent_and_marks_admin(store, raw):
    session, token = store.login("erin", app="crm")
    assert store.logout(session.sid, actor="root@ssh:198.51.100.1") is True
    assert store.logout(session.sid, actor="root") is False
    assert store.validate(token) is None
    ended = store.get(session.sid)
    assert (ended.status, ended.end_reason, ended.ended_by) == ("inactive", "admin", "root@ssh:198.51.100.1")
    assert raw.smembers(store._for_user("erin").schema.user_active("erin")) == set()
    assert store.ended_page().sessions[0].sid == session.sid
    last = store.events(limit=1)[0]
    assert (last.kind, last.actor) == ("admin_logout", "root@ssh:198.51.100.1")
    assert json.loads(raw.get(store._for_sid(session.sid).schema.cache(session.sid)))["status"] == "inactive"


def test_self_logout_is_plain_logout(store):
    session, _ = store.login("frank", app="crm")
    assert store.logout(session.sid)
    assert store.events(limit=1)[0].kind == "logout"
    assert store.get(session.sid).end_reason == "logout"


def test_logout_unknown_session_is_false(store):
    assert store.logout("0" * 36) is False


def test_logout_user_ends_all_and_returns_ids(store):
    ids = {store.login("gina", app=f"app{i}")[0].sid for i in range(4)}
    other, other_token = store.login("hank", app="crm")
    assert set(store.logout_user("gina", actor="admin")) == ids
    assert store.logout_user("gina", actor="admin") == []
    assert store.validate(other_token) is not None
    assert store.stats().active == 1


def test_cap_evicts_oldest(make_store, clock):
    store = make_store(Policy(max_sessions_per_user=2))
    first, t1 = store.login("ivy", app="crm")
    clock.advance(1)
    second, t2 = store.login("ivy", app="crm")
    clock.advance(1)
    third, t3 = store.login("ivy", app="crm")
    assert store.validate(t1) is None
    assert store.validate(t2) is not None and store.validate(t3) is not None
    assert store.get(first.sid).end_reason == "evicted"
    assert kinds(store)[-1] == "evicted"


def test_single_session_mode_replaces(make_store, clock):
    store = make_store(Policy(max_sessions_per_user=1))
    first, t1 = store.login("jack", app="crm")
    clock.advance(1)
    second, t2 = store.login("jack", app="crm", type="mobile")
    assert store.validate(t1) is None and store.validate(t2) is not None
    assert store.get(first.sid).end_reason == "replaced"
    assert "replaced" in kinds(store)


def test_cap_counts_only_live_sessions(make_store, clock):
    store = make_store(Policy(max_sessions_per_user=2, idle_ttl=60))
    _, t1 = store.login("kim", app="crm")
    clock.advance(61)  # first one expired but not swept
    _, t2 = store.login("kim", app="crm")
    _, t3 = store.login("kim", app="crm")
    assert store.validate(t2) is not None and store.validate(t3) is not None
    assert kinds(store).count("evicted") == 0 and kinds(store).count("expired") == 1


def test_update_profile_and_never_revive(store, raw):
    session, token = store.login("lena", app="crm")
    store.update_profile(session.sid, email="l@example.org", department="Ops", metadata={"platform_id": "p-9"})
    got = store.get(session.sid)
    assert (got.email, got.department, got.metadata["platform_id"]) == ("l@example.org", "Ops", "p-9")
    assert json.loads(raw.get(store._for_sid(session.sid).schema.cache(session.sid)))["department"] == "Ops"
    assert store.events(limit=1)[0].kind == "profile"
    store.logout(session.sid)
    with pytest.raises(SessionNotFound):
        store.update_profile(session.sid, email="x@example.org")
    assert store.get(session.sid).status == "inactive"
    with pytest.raises(SessionNotFound):
        store.update_profile("f" * 36, email="x@example.org")
    assert not raw.exists(store._for_sid("f" * 36).schema.session("f" * 36))


def test_touch_after_logout_does_not_revive(make_store, clock):
    store = make_store(Policy(touch_interval=1))
    session, token = store.login("mia", app="crm")
    store.logout(session.sid, actor="admin")
    clock.advance(5)
    assert store.validate(token) is None
    assert store.get(session.sid).status == "inactive"
    assert session.sid not in store.client.zrange(store.schema.idx_expiry, 0, -1)


def test_sweep_purges_history_after_retention(make_store, clock, raw):
    store = make_store(Policy(ended_retention=100))
    session, _ = store.login("ned", app="crm", ip="192.0.2.5")
    store.logout(session.sid)
    clock.advance(101)
    result = store.sweep()
    assert result.purged == 1
    s = store._for_sid(session.sid).schema
    assert not raw.exists(s.session(session.sid), s.cache(session.sid))
    assert raw.zcard(s.idx_search) == 0 and raw.zcard(s.idx_ended) == 0
    assert raw.lrange(s.user_sessions("ned"), 0, -1) == []


def test_sweep_runs_in_bounded_batches(make_store, clock):
    store = make_store(Policy(idle_ttl=60))
    per_bucket: dict[int, int] = {}
    for i in range(25):
        store.login(f"user{i}", app="crm")
        bucket = store.buckets.of_user(f"user{i}") if store.buckets else 0
        per_bucket[bucket] = per_bucket.get(bucket, 0) + 1
    clock.advance(61)
    result = store.sweep(batch=10)
    # one call per full batch and one that finds the rest, in each bucket with work
    assert (result.expired, result.calls) == (25, sum(n // 10 + 1 for n in per_bucket.values()))
    assert store.stats().active == 0


def test_counts_and_stats(make_store, clock):
    store = make_store()
    store.login("a", app="crm", type="web")
    store.login("b", app="crm", type="mobile")
    s3, _ = store.login("c", app="erp", type="api")
    store.logout(s3.sid)
    st = store.stats(minutes=5)
    assert (st.active, st.ended, st.by_app, st.by_type) == (2, 1, {"crm": 2}, {"web": 1, "mobile": 1})
    assert st.logins_per_minute[-1] == 3 and st.ends_per_minute[-1] == 1 and len(st.logins_per_minute) == 5


def test_pages_sorted_and_bounded(make_store, clock):
    store = make_store()
    made = []
    for i in range(7):
        made.append(store.login(f"user{i}", app="crm")[0].sid)
        clock.advance(1)
    page = store.active_page(limit=3)
    assert [x.sid for x in page.sessions] == made[::-1][:3] and page.total == 7
    page2 = store.active_page(limit=3, offset=3)
    assert [x.sid for x in page2.sessions] == made[::-1][3:6]
    asc = store.active_page(sort="login_time", descending=False, limit=2)
    assert [x.sid for x in asc.sessions] == made[:2]
    with pytest.raises(InvalidInput):
        store.active_page(sort="nope")
    with pytest.raises(InvalidInput):
        store.active_page(limit=0)


def test_search_by_user_sid_ip_app_and_history(make_store, clock):
    store = make_store()
    a1, _ = store.login("alice", app="crm", ip="203.0.113.7")
    a2, _ = store.login("alina", app="shop", ip="2001:db8::1")
    b1, _ = store.login("bob", app="crm", ip="203.0.113.9")
    assert {x.sid for x in store.search("user", "ali")} == {a1.sid, a2.sid}
    assert [x.sid for x in store.search("sid", a2.sid[:6])] == [a2.sid]
    assert {x.sid for x in store.search("ip", "203.0.113.")} == {a1.sid, b1.sid}
    assert {x.sid for x in store.search("app", "cr")} == {a1.sid, b1.sid}
    store.logout(a1.sid)
    assert [x.sid for x in store.user_history("alice")] == [a1.sid]
    assert store.search("user", "zzz") == []


def test_cache_page_lists_entries_with_ttl(store):
    session, _ = store.login("olga", app="crm")
    (entry,) = store.cache_page()
    assert entry.sid == session.sid and entry.summary["username"] == "olga" and 0 < entry.ttl <= 3600


def test_prefix_isolates_apps(make_store, raw):
    one = make_store(prefix="app1:")
    two = make_store(prefix="app2:")
    s1, _ = one.login("pat", app="crm")
    assert raw.exists(one._for_sid(s1.sid).schema.session(s1.sid))
    assert not raw.exists(f"session:{s1.sid}") and not raw.exists(two._for_sid(s1.sid).schema.session(s1.sid))
    assert two.active_page().sessions == [] and one.active_page().total == 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"username": ""}, "username"),
    ({"username": "x" * 129}, "username"),
    ({"username": "bad\nname"}, "username"),
    ({"username": "esc\x1b[31m"}, "username"),
    ({"type": "desktop"}, "type"),
    ({"ip": "999.1.1.1"}, "ip"),
    ({"app": ""}, "app"),
    ({"user_agent": "u" * 2000}, "user_agent"),
    ({"email": "a\x00b"}, "email"),
    ({"metadata": {"status": "x"}}, "metadata"),
    ({"metadata": {"Bad Key": "x"}}, "metadata"),
])
def test_bad_input_names_the_field(store, kwargs, field):
    args = {"username": "quinn", "app": "crm", "type": "web", **kwargs}
    username = args.pop("username")
    with pytest.raises(InvalidInput) as err:
        store.login(username, **args)
    assert err.value.field.split(".")[0] == field
    assert store.stats().active == 0


def test_markup_round_trips_literally(store):
    session, token = store.login("[b]x[/b]", app="[@click=app.quit]", user_agent="[red]ua[/red] \u2603")
    got = store.validate(token)
    assert (got.username, got.app, got.user_agent) == ("[b]x[/b]", "[@click=app.quit]", "[red]ua[/red] \u2603")


def test_tokens_are_unique_and_not_stored(store, raw):
    tokens = {store.login(f"r{i}", app="crm")[1] for i in range(50)}
    assert len(tokens) == 50
    dump = "".join(str(raw.dump(k)) for k in raw.keys("*"))
    assert not any(t.split(".")[1] in dump for t in tokens)
