"""Whole-set orders by rank (core.plans.window) and the lex indexes behind user/app order."""

from __future__ import annotations

from core import Policy, SessionStore


def lex(store: SessionStore, index: str) -> list[str]:
    """Members of one lex index (``idx_user`` or ``idx_app``), over every bucket."""
    return sorted(m for ctx in store.ctxs for m in store.client.zrange(getattr(ctx.schema, index), 0, -1))


def test_user_and_app_orders_cover_the_whole_set_and_follow_every_end(store: SessionStore, clock) -> None:
    users = [("mallory", "wiki"), ("alice", "crm"), ("bob", "billing"), ("carol", "crm")]
    sids = {u: store.login(u, app=a, ip="10.0.0.1")[0].sid for u, a in users}
    w = store.window("user", descending=False, start=0, count=10)
    assert [w.sessions[s].username for s in w.sids] == ["alice", "bob", "carol", "mallory"]
    assert w.total == 4
    w = store.window("app", descending=True, start=0, count=2)
    assert [w.sessions[s].app for s in w.sids] == ["wiki", "crm"]
    # rank relative to an anchor member, and from the end
    w = store.window("user", descending=False, start=1, count=1, anchor=f"bob\0{sids['bob']}")
    assert w.anchor_rank == 1 and [w.sessions[s].username for s in w.sids] == ["carol"]
    w = store.window("user", descending=False, start=-1, count=1)
    assert w.start == 3 and w.sids == [sids["mallory"]]
    # logout, logout_user and the sweep take sessions out of both lex indexes
    store.logout(sids["alice"])
    store.logout_user("bob", actor="root")
    clock.advance(store.policy.idle_ttl + 1)
    keep = store.login("dave", app="shop")[0].sid
    store.sweep()
    assert lex(store, "idx_user") == [f"dave\0{keep}"]
    assert lex(store, "idx_app") == [f"shop\0{keep}"]


def test_adopt_indexes_user_and_app_order(store: SessionStore, clock) -> None:
    sid = "f" * 36
    now = clock()
    store.client.hset(store._for_sid(sid).schema.session(sid), mapping={
        "username": "erin", "app": "crm", "status": "active", "login_time": now, "last_seen": now,
        "expires_at": now + 600})
    assert store.adopt(sid)
    assert lex(store, "idx_user") == [f"erin\0{sid}"]
    assert lex(store, "idx_app") == [f"crm\0{sid}"]


def test_window_commands_do_not_grow_with_the_set(make_store, clock) -> None:
    counts = []
    for n in (20, 400):
        store = make_store(prefix=f"w{n}:", policy=Policy(idle_ttl=3600))
        for i in range(n):
            store.login(f"u{i:04d}", app="crm")
        sent: list[int] = []
        real = store._execute
        store._execute = lambda request, real=real, sent=sent: (  # type: ignore[method-assign]
            sent.append(len(getattr(request, "commands", [None]))), real(request))[1]
        for order in ("seen", "user", "app"):
            w = store.window(order, start=n // 2, count=10)
            assert len(w.sids) == 10
        counts.append(sum(sent))
    assert counts[0] == counts[1]
