"""The Overview panel in the dashboard: its own key and tab title, figures from Redis, every
row leading to the sessions behind it, the flags (markers in Active, ``a`` to the list,
``l`` / ``L`` on a flag with confirmation), and snapshots at 80x24 and 120x40."""

from __future__ import annotations

import itertools

import pytest
from tui_helpers import screen_text, wait_for

from core import SessionStore
from core.flagger import Flagger
from tui.app import SessionWatchApp, build_app
from tui.panels.overview import OverviewPanel
from tui.screens.confirm import ConfirmScreen

SPRAY_IP = "203.0.113.250"


def spray(store: SessionStore, clock, n: int = 12) -> list[str]:
    """A spraying run, flagged in Redis by an evaluator as a dashboard would."""
    sids = []
    for i in range(n):
        sids.append(store.login(f"victim{i}", app="shop", type="web", ip=SPRAY_IP)[0].sid)
        clock.advance(0.5)
    rules = Flagger(store, actor="rules")
    for ev in reversed(store.events(limit=200)):
        rules.observe(ev)
    assert rules.tick().raised
    return sids


def make_app(store: SessionStore, **kw: object) -> SessionWatchApp:
    kw.setdefault("refresh_interval", 3600)
    kw.setdefault("target_label", "127.0.0.1:21084/0")
    kw.setdefault("actor", "admin")
    kw.setdefault("feed", False)
    kw.setdefault("sweep", False)
    app = build_app(store, **kw)  # type: ignore[arg-type]
    ticks = itertools.count(0, 0.0005)
    app.perf_counter = lambda: next(ticks)
    return app


def panel(app: SessionWatchApp) -> OverviewPanel:
    return app.query_one(OverviewPanel)


async def test_own_key_and_tab_title_with_the_flag_count(seeded, clock) -> None:
    store, _ = seeded
    spray(store, clock)
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: panel(app).flags)
        await pilot.press("6")
        await wait_for(pilot, lambda: panel(app).overview is not None)
        text = screen_text(app)
        assert app.panel == "overview" and "Overview ⚑1" in text
        assert "Logins per minute" in text and "Expiries per minute" in text and "Active by app" in text
        assert SPRAY_IP in text and "12 users from" in text


async def test_flagged_sessions_carry_a_marker_in_active(seeded, clock) -> None:
    store, _ = seeded
    spray(store, clock)
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: "⚑ victim" in screen_text(app))
        text = screen_text(app)
        assert "⚑ alice" not in text and "\nalice " in text


async def test_enter_on_a_row_shows_the_sessions_behind_it(seeded, clock) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await wait_for(pilot, lambda: panel(app).overview is not None)
        app.query_one("#ov-app").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.panel == "active")
        box = app.panel_widget("active").query_one("#active-filter")
        assert box.value == "app:crm"  # crm holds the most sessions
        await wait_for(pilot, lambda: sorted(r.session.username for r in
                                             app.query_one("#active-table").window.rows.values()) == ["alice", "carol"])


async def test_a_jumps_to_the_flags_and_l_logs_out_the_sessions_behind_one(seeded, clock) -> None:
    store, _ = seeded
    sids = spray(store, clock)
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: panel(app).flags)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.panel == "overview" and app.focused is app.query_one("#ov-flags"))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "12 session(s) behind the spray flag" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: store.stats().active == 5)
    assert all(not s.is_active(clock()) for s in (store.get(sid) for sid in sids))
    assert {e.actor for e in store.events(limit=20) if e.kind == "admin_logout"} == {"admin"}


async def test_L_on_a_flag_logs_its_users_out_everywhere_and_n_cancels(seeded, clock) -> None:
    store, _ = seeded
    spray(store, clock, n=10)
    store.login("victim3", app="crm", type="web", ip="192.0.2.9")  # the same user elsewhere
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: panel(app).flags)
        await pilot.press("a", "L")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert store.stats().active == 16
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "every session of the 10 user(s)" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: store.stats().active == 5)


async def test_read_only_has_no_flag_logout(seeded, clock) -> None:
    store, _ = seeded
    spray(store, clock)
    app = make_app(store, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: panel(app).flags)
        await pilot.press("a", "l", "L")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and store.stats().active == 17


async def test_the_dashboard_raises_a_flag_from_its_live_feed(seeded, clock) -> None:
    store, _ = seeded
    app = make_app(store, feed=True, rules=True, refresh_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model.state == "connected")
        for i in range(10):
            store.login(f"victim{i}", app="shop", type="web", ip=SPRAY_IP)
        await wait_for(pilot, lambda: panel(app).flags, timeout=10)
    assert [f.rule for f in store.flags()] == ["spray"]
    assert next(e.kind for e in store.events(limit=5)) == "flag_raised"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_overview_snapshot(seeded, clock, snap_compare, size) -> None:
    store, _ = seeded
    spray(store, clock)
    store.logout(store.login("erin", app="hr", ip="192.0.2.50")[0].sid, actor="admin:x")

    async def shown(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: panel(app).flags and app.poll_count >= 1)
        await pilot.press("6")
        await wait_for(pilot, lambda: panel(app).overview is not None and "Overview ⚑1" in screen_text(app))

    assert snap_compare(make_app(store), terminal_size=size, run_before=shown)
