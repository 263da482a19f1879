"""Global reads of the bucketed layout against the single-node layout fed the same logins.

Both stores live on one real Redis (Debian's 7.0) under different prefixes; the logins
replay the same session ids and times into each, so every merged read must return
exactly what the single-node read returns: the same sessions, in the same order, with
the same counts. Ties on the millisecond score are made on purpose.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from core import Policy, SessionStore, plans, tokens
from core.embedded import RedisServer

USERS = [f"user{i:03d}" for i in range(60)] + ["zoë", "Ωmega", "a", "a\u00ff"]
APPS = ["crm", "billing", "wiki", "mail"]


class Pair:
    """The same logins in a single-node store and in a bucketed one."""

    def __init__(self, client: Any, buckets: int, clock: Any, bucketed_client: Any = None) -> None:
        policy = Policy(idle_ttl=3600, absolute_ttl=7200)
        self.single = SessionStore(client, prefix="one:", policy=policy, clock=clock)
        self.bucketed = SessionStore(bucketed_client or client, prefix="many:", policy=policy, clock=clock,
                                     buckets=buckets)
        self.clock = clock

    def feed(self, n: int, monkeypatch: pytest.MonkeyPatch, seed: int = 7) -> list[str]:
        rng = random.Random(seed)
        script = [(rng.choice(USERS), rng.choice(APPS), f"10.0.{rng.randrange(4)}.{rng.randrange(9)}",
                   rng.choice([0, 0, 0.001, 0.5, 3.0])) for _ in range(n)]
        start = self.clock.now
        made: list[tuple[str, str]] = []
        monkeypatch.setattr(plans, "new_token", lambda user: made.append(tokens.new_token(user)) or made[-1])
        for user, app, ip, step in script:
            self.single.login(user, app=app, ip=ip)
            self.clock.advance(step)
        replay = iter(made)
        monkeypatch.setattr(plans, "new_token", lambda user: next(replay))
        self.clock.now = start
        for user, app, ip, step in script:
            self.bucketed.login(user, app=app, ip=ip)
            self.clock.advance(step)
        monkeypatch.undo()
        return [sid for _t, sid in made]


@pytest.fixture
def pair(debian_server: RedisServer, clock: Any) -> Iterator[Pair]:
    client = redis.Redis.from_url(debian_server.url, decode_responses=True)
    client.flushall()
    yield Pair(client, 8, clock)
    client.close()


@pytest.fixture
def cluster_pair(debian_server: RedisServer, flushed_cluster: Any, clock: Any) -> Iterator[Pair]:
    """Single node on Debian's Redis, the bucketed layout (64 buckets) on the loopback cluster."""
    client = redis.Redis.from_url(debian_server.url, decode_responses=True)
    client.flushall()
    cluster = flushed_cluster.client()
    yield Pair(client, 64, clock, cluster)
    client.close()
    cluster.close()


def rows(win: plans.Window) -> tuple[int, int, list[str], list[str], list[str]]:
    return win.total, win.start, win.sids, win.members, sorted(win.sessions)


ORDERS = [(o, d) for o in ("seen", "login", "expiry", "user", "app") for d in (True, False)]


@pytest.mark.parametrize(("order", "descending"), ORDERS)
def test_windows_match_the_single_node_layout(pair: Pair, monkeypatch: pytest.MonkeyPatch, order: str,
                                              descending: bool) -> None:
    sids = pair.feed(400, monkeypatch)
    one, many = pair.single, pair.bucketed
    for start, count in [(0, 40), (0, 0), (15, 30), (-60, 60), (-5, 40), (390, 40), (120, 400)]:
        a = one.window(order, descending=descending, start=start, count=count)
        b = many.window(order, descending=descending, start=start, count=count)
        assert rows(a) == rows(b), (start, count)
    head = one.window(order, descending=descending, start=0, count=400)
    assert len(head.members) == 400 and sorted(head.sids) == sorted(sids)
    for i in (0, 1, 57, 200, 399):
        anchor = head.members[i]
        for offset, count in [(0, 30), (-20, 50), (-300, 10), (5, 0), (-400, 20)]:
            a = one.window(order, descending=descending, start=offset, count=count, anchor=anchor)
            b = many.window(order, descending=descending, start=offset, count=count, anchor=anchor)
            assert (rows(a), a.anchor_rank) == (rows(b), b.anchor_rank), (i, offset, count)


def test_a_far_jump_seeks_the_rank_exactly_or_says_where_it_landed(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.merged.NEAR", 16)
    monkeypatch.setattr("core.merged.SEEK_SLACK", 4)
    pair.feed(600, monkeypatch)
    one, many = pair.single, pair.bucketed
    full = one.window("login", descending=True, start=0, count=600).members
    for start in (40, 333, 580):
        b = many.window("login", descending=True, start=start, count=10)
        assert b.total == 600
        assert b.members == full[b.start:b.start + 10]  # whatever rank it landed on, it says so
        assert abs(b.start - start) <= 16
    anchor = full[10]
    b = many.window("login", descending=True, start=300, count=10, anchor=anchor)
    assert b.anchor_rank == 10 and b.members == full[b.start:b.start + 10] and abs(b.start - 310) <= 16


def test_pages_counts_and_search_match(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    sids = pair.feed(300, monkeypatch)
    one, many = pair.single, pair.bucketed
    for sid in sids[::7]:
        one.logout(sid)
        many.logout(sid)
    pair.clock.advance(1800)  # some sessions are now past their idle expiry, unswept
    for sort in ("last_seen", "login_time", "expires_at"):
        for descending in (True, False):
            for offset in (0, 33):
                a = one.active_page(sort=sort, descending=descending, offset=offset, limit=25)
                b = many.active_page(sort=sort, descending=descending, offset=offset, limit=25)
                assert ([x.sid for x in a.sessions], a.total) == ([x.sid for x in b.sessions], b.total)
    a, b = one.ended_page(limit=30), many.ended_page(limit=30)
    assert ([x.sid for x in a.sessions], a.total) == ([x.sid for x in b.sessions], b.total)
    assert one.stats() == many.stats()
    assert [(c.sid, c.raw) for c in one.cache_page(limit=20)] == [(c.sid, c.raw) for c in many.cache_page(limit=20)]
    for kind, query in [("user", "user0"), ("user", "a"), ("sid", sids[5][:3]), ("ip", "10.0.1"), ("app", "b"),
                        ("user", "nobody")]:
        assert [x.sid for x in one.search(kind, query, limit=20)] == \
               [x.sid for x in many.search(kind, query, limit=20)], (kind, query)
    assert one.sessions_by_id(sids[:20]) == many.sessions_by_id(sids[:20])
    ov1, ov2 = one.overview(), many.overview()
    for name in ("active", "ended", "expired_pending", "by_app", "by_type", "series", "top_user_sessions",
                 "top_user_ips", "first_minute"):
        assert getattr(ov1, name) == getattr(ov2, name), name
    # addresses: merged from each bucket's deeper top list, so exact here (few addresses)
    assert (ov1.top_ip_sessions, ov1.top_ip_users) == (ov2.top_ip_sessions, ov2.top_ip_users)
    assert len(ov2.top_ip_sessions) == 10


def test_scan_steps_and_export_pages_visit_every_session_once(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    sids = pair.feed(150, monkeypatch)
    many = pair.bucketed
    seen: list[str] = []
    cursor, steps = 0, 0
    while True:
        step = many.scan_step("active", cursor, count=10)
        assert step.total == 150
        seen += [sid for sid, _f in step.rows]
        cursor, steps = step.cursor, steps + 1
        if cursor == 0:
            break
    assert sorted(set(seen)) == sorted(sids) and steps >= 8
    assert many.export_totals() == (150, True)
    exported: list[str] = []
    after = None
    while True:
        page = many.export_index_page(after, count=40)
        exported += [sid for sid, _f in page.records]
        after = page.position
        if page.done:
            break
    assert exported == sorted(sids)
    assert many.export_scan_page("0", skip_indexed=True).done


def test_on_the_cluster_every_read_matches_the_single_node_layout(
        cluster_pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    sids = cluster_pair.feed(300, monkeypatch)
    one, many = cluster_pair.single, cluster_pair.bucketed
    for order, descending in [("seen", True), ("user", False), ("expiry", False)]:
        head = one.window(order, descending=descending, start=0, count=300)
        for start, count in [(0, 40), (-60, 60), (150, 30)]:
            a = one.window(order, descending=descending, start=start, count=count)
            b = many.window(order, descending=descending, start=start, count=count)
            assert rows(a) == rows(b), (order, start, count)
        for i in (0, 120, 299):
            a = one.window(order, descending=descending, start=-10, count=40, anchor=head.members[i])
            b = many.window(order, descending=descending, start=-10, count=40, anchor=head.members[i])
            assert (rows(a), a.anchor_rank) == (rows(b), b.anchor_rank), (order, i)
    for sid in sids[::9]:
        one.logout(sid)
        many.logout(sid)
    a, b = one.active_page(limit=30, offset=10), many.active_page(limit=30, offset=10)
    assert ([x.sid for x in a.sessions], a.total) == ([x.sid for x in b.sessions], b.total)
    a, b = one.ended_page(limit=30), many.ended_page(limit=30)
    assert ([x.sid for x in a.sessions], a.total) == ([x.sid for x in b.sessions], b.total)
    assert one.stats() == many.stats()
    assert [x.sid for x in one.search("user", "user01", limit=30)] == \
           [x.sid for x in many.search("user", "user01", limit=30)]
    assert [c.sid for c in one.cache_page(limit=20)] == [c.sid for c in many.cache_page(limit=20)]
    ov1, ov2 = one.overview(), many.overview()
    assert (ov1.active, ov1.ended, ov1.by_app, ov1.series, ov1.top_user_sessions) == \
           (ov2.active, ov2.ended, ov2.by_app, ov2.series, ov2.top_user_sessions)


def test_rule_inputs_and_anonymous_sessions_merge(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    pair.feed(200, monkeypatch)
    one, many = pair.single, pair.bucketed
    a = one.rule_inputs(min_addresses=2, baseline_minutes=15)
    b = many.rule_inputs(min_addresses=2, baseline_minutes=15)
    assert (a.logins_per_minute, a.new_users_per_minute) == (b.logins_per_minute, b.new_users_per_minute)
    assert {u: sorted(x) for u, x in a.user_addresses.items()} == {u: sorted(x) for u, x in b.user_addresses.items()}
    made = []
    for i in range(30):
        saved = many.save_anonymous(None, {"cart": str(i)}, app="shop")
        made.append(saved.aid)
        pair.clock.advance(1)
    page = many.anonymous_page(limit=10)
    assert page.total == 30 and [x.aid for x in page.sessions] == made[::-1][:10]
    assert [x.aid for x in many.anonymous_page(offset=25, limit=10).sessions] == made[::-1][25:]


async def test_the_async_store_merges_the_same_way(debian_server: RedisServer, clock: Any) -> None:
    from core import AsyncSessionStore
    sync = SessionStore(redis.Redis.from_url(debian_server.url, decode_responses=True), clock=clock, buckets=8)
    sync.client.flushall()
    for i in range(60):
        sync.login(f"u{i}", app="crm")
        clock.advance(0.5)
    store = AsyncSessionStore(redis.asyncio.Redis.from_url(debian_server.url, decode_responses=True), clock=clock,
                              buckets=8)
    try:
        a = sync.window("login", descending=True, start=0, count=20)
        b = await store.window("login", descending=True, start=0, count=20, anchor=None)
        assert rows(a) == rows(b) and a.total == 60
        assert await store.stats() == sync.stats()
    finally:
        await store.close()
        sync.close()


class Counting:
    """Counts the commands a plan sends, by driving it through a store."""

    def __init__(self, store: SessionStore) -> None:
        self.commands = 0
        self.requests = 0
        real = store._execute

        def execute(request: Any) -> Any:
            self.requests += 1
            self.commands += len(getattr(request, "commands", ())) or 1
            return real(request)

        store._execute = execute  # type: ignore[method-assign]


def test_commands_per_screenful_do_not_grow_with_the_set(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    many = pair.bucketed
    counter = Counting(many)
    costs = []
    for size in (200, 1200):
        pair.feed(size - (200 if size > 200 else 0), monkeypatch, seed=size)
        anchor = many.window("seen", descending=True, start=size // 2, count=1).members[0]
        row = []
        for read in (lambda: many.window("seen", descending=True, start=0, count=60),
                     lambda a=anchor: many.window("seen", descending=True, start=-20, count=60, anchor=a),
                     lambda: many.window("user", descending=False, start=-60, count=60),
                     lambda: many.stats(), lambda: many.cache_page(limit=30)):
            counter.commands = counter.requests = 0
            read()
            row.append((counter.commands, counter.requests))
        costs.append(row)
    assert costs[0] == costs[1]


def test_a_planted_key_of_another_type_in_one_bucket_is_read_around(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    pair.feed(80, monkeypatch)
    many = pair.bucketed
    s = many.ctxs[3].schema
    many.client.delete(s.idx_seen, s.idx_user, s.stats_app, s.flags)
    many.client.set(s.idx_seen, "x")
    many.client.set(s.idx_user, "x")
    many.client.rpush(s.stats_app, "x")
    many.client.set(s.flags, "x")
    win = many.window("seen", descending=True, start=0, count=100)
    anchor = win.members[10]
    assert many.window("seen", descending=True, start=-5, count=20, anchor=anchor).anchor_rank == 10
    assert many.window("user", descending=False, start=-20, count=20).total == len(
        many.window("user", descending=False, start=0, count=100).members)
    assert many.stats().active == 80 and many.flags() == []
    assert many.overview().active == 80
