"""The filter scan (core.plans.scan_step with terms): matched on the server in bounded
steps, never missing a session the exact (Unicode casefold) match finds."""

from __future__ import annotations

import sys

import pytest

from core import SessionStore
from core.plans import FOLD_LEADS, SCAN_BATCH
from tui.query import parse

pytestmark = pytest.mark.usefixtures("classic_layout_only")
"""The server-side filter scan is single-node: a bucketed store takes plain merged steps
(core.api.StoreAPI.scan_step), so this module skips on the cluster backend."""

PEOPLE = [
    ("alice", "crm", "10.2.0.1"), ("Bob", "Shop", "10.2.0.2"), ("martin", "crm", "192.168.1.9"),
    ("Émile", "billing", "10.9.0.1"), ("STRASSE", "portal", "10.9.0.2"), ("Straße", "portal", "10.9.0.3"),
    ("\u212aelvin", "wiki", "10.9.0.4"), ("ﬁona", "crm", "10.9.0.5"), ("carol", "CRM", "10.2.9.9"),
]
QUERIES = ["martin", "shop", "ALICE", "crm", "émile", "ÉMILE", "strasse", "kelvin", "fi", "app:crm ip:10.2.",
           "10.9", "status:active", "type:web", "user:o", "sid:", "nobody", "e ip:10.9.", "ss"]


def scan_all(store: SessionStore, text: str, budget_us: int = 2000) -> tuple[set[str], int, int]:
    """Every exact match of ``text`` over the whole active set, and the steps and sessions met."""
    query = parse(text)
    fields, terms = query.scan_plan()
    found: set[str] = set()
    cursor: int | str = 0
    steps = met = 0
    while steps == 0 or cursor:
        step = store.scan_step("active", cursor, fields=fields, terms=terms, budget_us=budget_us)
        cursor, steps, met = step.cursor, steps + 1, met + step.met
        found |= {sid for sid, got in step.rows if query.matches(sid, got)} | set(step.matched)
    return found, steps, met


def brute(store: SessionStore, sids: dict[str, str], text: str) -> set[str]:
    query = parse(text)
    fields = ("username", "app", "ip", "email", "type", "status", "end_reason")
    out = set()
    for sid in sids.values():
        got = dict(zip(fields, store.client.hmget(store._for_sid(sid).schema.session(sid), *fields), strict=True))
        if query.matches(sid, got):
            out.add(sid)
    return out


def test_server_side_filter_finds_exactly_what_the_exact_match_finds(store: SessionStore) -> None:
    sids = {u: store.login(u, app=a, ip=ip, email=f"{u.lower()}@example.com")[0].sid for u, a, ip in PEOPLE}
    for text in QUERIES:
        found, _, met = scan_all(store, text)
        assert found == brute(store, sids, text), text
        assert met >= len(PEOPLE)
    assert scan_all(store, "émile")[0] == {sids["Émile"]}
    assert scan_all(store, "strasse")[0] == {sids["STRASSE"], sids["Straße"]}
    assert scan_all(store, "kelvin")[0] == {sids["\u212aelvin"]}  # the Kelvin sign folds to k
    fields, terms = parse("martin").scan_plan()
    step = store.scan_step("active", 0, fields=fields, terms=terms, budget_us=10**6)
    assert step.matched == (sids["martin"],)  # plain ASCII: decided on the server, no fields sent
    assert sids["martin"] not in {s for s, _ in step.rows}


def test_steps_are_bounded_and_the_walk_meets_every_session_once(store: SessionStore) -> None:
    for i in range(300):
        store.login(f"u{i:04d}", app="crm", ip="10.0.0.1")
    found, steps, met = scan_all(store, "u02", budget_us=1)  # a spent budget: one batch per step
    assert len(found) == 100 and met == 300 and steps >= 300 // 64
    step = store.scan_step("active", 0, fields=("username",), terms=[("s", "u02", (1,))])
    assert step.scanned >= 64 and len(step.rows) < step.scanned  # the server matched: only candidates came


def test_unreadable_entries_are_skipped_not_raised(store: SessionStore) -> None:
    keep = store.login("alice", app="crm")[0].sid
    s = store.schema
    store.client.zadd(s.idx_user, {"mallory\0" + "b" * 36: 0, "no-separator": 0})
    store.client.set(s.session("b" * 36), "not a hash")
    found, _, met = scan_all(store, "ali")
    assert found == {keep} and met == 3


def test_fold_leads_cover_every_character_whose_casefold_holds_ascii() -> None:
    leads = set(FOLD_LEADS)
    for code in range(0x80, sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        c = chr(code)
        if any(ord(x) < 0x80 for x in c.casefold()):
            assert c.encode()[0] in leads, hex(code)


@pytest.mark.parametrize("text", ["x", "status:active"])
def test_without_terms_the_plain_step_still_reads_fields(store: SessionStore, text: str) -> None:
    sid = store.login("xavier", app="crm")[0].sid
    step = store.scan_step("active", 0, fields=("username", "status"))
    assert step.rows == [(sid, {"username": "xavier", "status": "active"})] and not step.cursor
    assert parse(text).matches(sid, dict(step.rows[0][1]))


def test_a_user_refused_the_script_gets_plain_steps(store: SessionStore, monkeypatch) -> None:
    import redis.exceptions

    from core import PermissionDenied
    from tui.source import DataSource

    sid = store.login("xavier", app="crm")[0].sid

    def refuse(request):  # type: ignore[no-untyped-def]
        raise redis.exceptions.NoPermissionError("this user has no permissions to run the 'fcall_ro' command")

    monkeypatch.setattr(store, "_send_script", refuse)
    fields, terms = parse("xav").scan_plan()
    step = store.scan_step("active", 0, fields=fields, terms=terms)
    assert [(s, got["username"], got["app"]) for s, got in step.rows] == [(sid, "xavier", "crm")]
    assert step.scanned == -1 and step.met == 1  # the plain step: every session met came back

    def unloadable(request):  # type: ignore[no-untyped-def]
        raise PermissionDenied("no function library and this user may not load it")

    monkeypatch.setattr(store, "_send_script", unloadable)
    source = DataSource(store, perf_counter=lambda: 0.0)
    assert [s for s, _ in source.scan_step("active", 0, count=200, fields=fields, terms=terms).rows] == [sid]
    assert not source.server_match  # from now on, plain steps without asking again


def test_the_ended_set_is_walked_by_zscan_with_the_same_matching(store: SessionStore) -> None:
    sids = {u: store.login(u, app=a, ip=ip)[0].sid for u, a, ip in PEOPLE}
    for sid in list(sids.values())[::2]:
        store.logout(sid)
    for text in ("status:logout", "status:logout strasse", "crm", "10.9 é"):
        query = parse(text)
        fields, terms = query.scan_plan()
        found: set[str] = set()
        cursor: int | str = 0
        steps = 0
        while steps == 0 or cursor:
            step = store.scan_step("ended", cursor, fields=fields, terms=terms)
            cursor, steps = step.cursor, steps + 1
            found |= {sid for sid, got in step.rows if query.matches(sid, got)} | set(step.matched)
        ended = {u: sid for u, sid in list(sids.items())[::2]}
        assert found == brute(store, ended, text), text


def test_a_member_that_looks_like_a_number_does_not_end_the_walk(store: SessionStore) -> None:
    planted = {f"!{i:02d}": 0 for i in range(SCAN_BATCH - 1)} | {"0": 0}  # a first batch that ends at "0"
    store.client.zadd(store.schema.idx_user, planted)
    keep = store.login("zed", app="crm")[0].sid
    found, steps, met = scan_all(store, "zed", budget_us=1)
    assert found == {keep} and met == SCAN_BATCH + 1 and steps == 2
