"""Pilot tests of the dashboard against a real store on fakeredis."""

from __future__ import annotations

from typing import Any

import pytest
from tui_helpers import screen_text, seed, wait_for

from core import SessionStore
from tui.app import SessionWatchApp, build_app
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.widgets.events import EventLog
from tui.widgets.virtual_table import VirtualTable

SIZE = (120, 40)


def make_app(store: SessionStore, **kw: object) -> SessionWatchApp:
    kw.setdefault("refresh_interval", 0.2)
    kw.setdefault("target_label", "127.0.0.1:21084/0")
    kw.setdefault("actor", "admin@ssh:203.0.113.9")
    kw.setdefault("rules", False)  # the anomaly rules have their own tests (test_overview.py)
    return build_app(store, **kw)  # type: ignore[arg-type]


def table(app: SessionWatchApp, panel: str) -> Any:
    return app.query_one(f"#{panel}-table")


async def event_log(pilot, app: SessionWatchApp) -> EventLog:
    """The Events panel's log, once it is mounted (on a busy machine, a moment after "3")."""
    await wait_for(pilot, lambda: app.query(EventLog))
    return app.query_one(EventLog)


def users_in(app: SessionWatchApp, panel: str) -> list[str]:
    t = table(app, panel)
    if isinstance(t, VirtualTable):
        return [r.session.username if r.session else "?" for _, r in sorted(t.window.rows.items())]
    return [str(t.get_row_at(i)[0]) for i in range(t.row_count)]


def row_count(app: SessionWatchApp, panel: str) -> int:
    return len(users_in(app, panel))


def selected_sid(app: SessionWatchApp, panel: str) -> str | None:
    t = table(app, panel)
    if isinstance(t, VirtualTable):
        row = t.window.selected
        return row.sid if row else None
    return t.selected_key


async def test_opens_on_active_with_first_row_selected_and_all_titles(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        assert app.panel == "active"
        t = table(app, "active")
        assert t.has_focus and t.window.cursor == 0
        # newest activity first: dave logged in last
        assert users_in(app, "active")[0] == "dave"
        assert selected_sid(app, "active") == sids[-1]
        text = screen_text(app)
        for title in ("Active", "Inactive", "Events", "Cache", "Search"):
            assert title in text
        assert "127.0.0.1:21084/0" in text and "active 5" in text and "connected" in text


async def test_each_panel_shows_rows(seeded) -> None:
    store, sids = seeded
    store.logout(sids[0])
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 4)
        await pilot.press("2")
        await wait_for(pilot, lambda: row_count(app, "inactive") == 1)
        assert "logout" in screen_text(app)
        await pilot.press("3")
        log = await event_log(pilot, app)
        await wait_for(pilot, lambda: len(log.lines) >= 6)
        assert app.panel == "events"
        await pilot.press("4")
        await wait_for(pilot, lambda: row_count(app, "cache") == 4)
        await pilot.press("5")
        assert app.panel == "search" and app.query_one("#search-filter").has_focus is False
        await pilot.press("slash", *"alice", "enter")
        await wait_for(pilot, lambda: row_count(app, "search") == 2)
        assert table(app, "search").has_focus


async def test_logout_confirm_moves_session_to_inactive_with_actor(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("l")
        assert isinstance(app.screen, ConfirmScreen)
        details = screen_text(app)
        assert "dave" in details and "shop" in details and "10.1.2.3" in details
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("y")
        # the session under the cursor stays, marked ended, until the cursor leaves it
        t = table(app, "active")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.ended)
        assert users_in(app, "active")[0] == "dave" and "ended" in screen_text(app)
        await pilot.press("l")
        await wait_for(pilot, lambda: any("already ended" in n.message for n in app._notifications))
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("down")
        await wait_for(pilot, lambda: row_count(app, "active") == 4)
        assert "dave" not in users_in(app, "active") and t.window.cursor == 0
        ended = store.get(sids[-1])
        assert ended.status == "inactive" and ended.ended_by == "admin@ssh:203.0.113.9"
        await pilot.press("2")
        await wait_for(pilot, lambda: "dave" in users_in(app, "inactive"))
        event = next(e for e in store.events(limit=10) if e.sid == sids[-1] and e.kind == "admin_logout")
        assert event.actor == "admin@ssh:203.0.113.9"


@pytest.mark.parametrize("keys", [["n"], ["escape"], ["enter"]], ids=["n", "escape", "enter-on-cancel"])
async def test_logout_cancel_leaves_session_active(seeded, keys: list[str]) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("l")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*keys)
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause(0.3)
        assert store.get(sids[-1]).status == "active"
        assert row_count(app, "active") == 5


async def test_logout_all_sessions_of_user(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press(*["down"] * users_in(app, "active").index("alice"))
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "every session of alice" in text and "crm" in text and "wiki" in text
        await pilot.press("y")
        # holding (the cursor left the top): the ended rows stay in place, marked
        t = table(app, "active")
        await wait_for(pilot, lambda: sum(r.ended for r in t.window.rows.values()) == 2)
        assert row_count(app, "active") == 5
        await pilot.press("f")
        await wait_for(pilot, lambda: row_count(app, "active") == 3)
        assert "alice" not in users_in(app, "active")
        assert {store.get(sids[0]).status, store.get(sids[3]).status} == {"inactive"}


async def test_read_only_registers_no_write_keys_and_never_writes(seeded, monkeypatch) -> None:
    store, sids = seeded
    calls: list[str] = []
    monkeypatch.setattr(store, "logout", lambda *a, **k: calls.append("logout"))
    monkeypatch.setattr(store, "logout_user", lambda *a, **k: calls.append("logout_user"))
    monkeypatch.setattr(store, "sweep", lambda *a, **k: calls.append("sweep"))
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        for node, bindings in app.screen._binding_chain:
            assert "l" not in bindings.key_to_bindings and "L" not in bindings.key_to_bindings, node
        ids = {b.id for b in app.registered_bindings()}
        assert "session.logout" not in ids and "session.logout_user" not in ids
        await pilot.press("l", "L")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "READ-ONLY" in text and "Log out" not in text
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Log out" not in screen_text(app)
    assert calls == []


async def test_help_lists_every_key_and_palette_lists_actions(seeded) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = {key for key, _ in app.screen.keys}
        assert {"1", "2", "3", "4", "5", "l", "L", "⏎", "/", "s", "S", "p", "r", "?", "q"} <= shown
        assert "Log out user" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"log out")
        await pilot.pause(0.3)
        assert "Log out user" in screen_text(app)


async def test_filter_as_you_type_is_server_side(seeded) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("slash", "a", "l")
        await wait_for(pilot, lambda: sorted(users_in(app, "active")) == ["alice", "alice"])
        await pilot.press("escape")
        assert table(app, "active").has_focus
        await pilot.press("slash", "backspace", "backspace", *"ip:198.51")
        await wait_for(pilot, lambda: users_in(app, "active") == ["bob"])


async def test_sort_cycles_columns_and_order(seeded) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        assert users_in(app, "active") == ["dave", "alice", "carol", "bob", "alice"]
        await pilot.press("S")  # oldest activity first (server-side)
        await wait_for(pilot, lambda: users_in(app, "active") == ["alice", "bob", "carol", "alice", "dave"])
        for _ in range(3):  # last seen -> login time -> expiry -> user (a to z)
            await pilot.press("s")
        assert app.panel_widget("active").order.key == "user"
        await wait_for(pilot, lambda: users_in(app, "active") == ["alice", "alice", "bob", "carol", "dave"])
        assert "sort user (case-sensitive) ▲" in screen_text(app) and "User ▲" in screen_text(app)
        await pilot.press("S")
        await wait_for(pilot, lambda: users_in(app, "active") == ["dave", "carol", "bob", "alice", "alice"])
        await pilot.press("s")  # app, over the whole set too
        await wait_for(pilot, lambda: users_in(app, "active")[0] == "bob")  # billing < crm < shop < wiki
        assert "App ▲" in screen_text(app)


async def test_view_holds_still_then_follows(seeded, clock) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        t = table(app, "active")
        await pilot.press("down", "down")
        chosen = selected_sid(app, "active")
        assert t.window.mode == "hold"
        store.login("erin", app="crm", ip="192.0.2.99")  # would shift the others down
        await wait_for(pilot, lambda: t.window.new == 1)
        assert selected_sid(app, "active") == chosen and t.window.cursor == 2
        assert users_in(app, "active")[0] == "dave"  # nothing moved
        assert "1 new ↑" in screen_text(app)
        await pilot.press("f")  # back to following: the new row at the top
        await wait_for(pilot, lambda: users_in(app, "active")[:1] == ["erin"])
        assert t.window.mode == "top" and t.window.cursor == 0


async def test_detail_screen_shows_fields_cache_and_events(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await wait_for(pilot, lambda: getattr(app.screen, "detail", None) is not None)
        text = screen_text(app)
        for expected in ("dave", "shop", "10.1.2.3", "dave@example.org", "user_agent", "Mozilla/5.0",
                         "cache TTL", "login", sids[-1][:8]):
            assert expected in text, expected
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_detail_screen_is_live_and_l_logs_that_session_out(seeded, clock) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.screen, "detail", None) is not None)
        assert sids[-1] in screen_text(app)  # the full session id
        detail = app.screen
        store.update_profile(sids[-1], department="night shift")  # changed by someone else
        await wait_for(pilot, lambda: "night shift" in screen_text(app))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is detail and detail.detail.session.status == "inactive")
        assert store.get(sids[-1]).ended_by == "admin@ssh:203.0.113.9"
        await pilot.press("l")
        await wait_for(pilot, lambda: any("already ended" in n.message for n in app._notifications))


async def test_search_shares_the_filter_language_and_refreshes_after_logout(seeded) -> None:
    store, sids = seeded
    store.logout(sids[0])
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "slash", *"ALICE", "enter")  # case-insensitive, whole history
        await wait_for(pilot, lambda: row_count(app, "search") == 2)
        text = screen_text(app)
        assert "logout" in text and "active" in text and "filter ALICE" in text
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape")
        await pilot.press("slash", *(["backspace"] * 5), *"app:bil", "enter")
        await wait_for(pilot, lambda: users_in(app, "search") == ["bob"])
        await pilot.press("slash", *(["backspace"] * 7), *"113.7", "space", *"status:logout", "enter")  # IP substring
        await wait_for(pilot, lambda: users_in(app, "search") == ["alice"])
        await pilot.press("slash", *(["backspace"] * 19), *"status:active", "space", "a", "r", "enter")
        await wait_for(pilot, lambda: users_in(app, "search") == ["carol"])
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: row_count(app, "search") == 0)  # searched again after the logout


async def test_event_tail_dedupes_and_pauses(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        log = await event_log(pilot, app)
        await wait_for(pilot, lambda: len(log.lines) == 5)
        # the same events again (a reconnect catch-up overlapping the tail) are dropped
        app.post_message(__import__("tui.messages").messages.FeedItems(store.events(limit=5)[::-1]))
        await pilot.pause(0.2)
        assert len(log.lines) == 5 and len(app.model.events) == 5
        await pilot.press("p")
        await wait_for(pilot, lambda: "PAUSED" in screen_text(app))
        store.logout(sids[1])
        await wait_for(pilot, lambda: len(app.model.events) == 6)
        await pilot.pause(0.3)
        assert len(log.lines) == 5  # nothing repaints while paused
        await pilot.press("p")
        await wait_for(pilot, lambda: len(log.lines) == 6)
        await pilot.press("slash", *"logout")
        await wait_for(pilot, lambda: len(log.lines) == 1)


async def test_hidden_event_tail_is_redrawn_when_shown(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.model.events) == 5)
        log = await event_log(pilot, app)
        store.logout(sids[2], actor="root")  # arrives while Active is shown
        await wait_for(pilot, lambda: len(app.model.events) == 6)
        assert len(log.lines) < 6  # the hidden tail was not drawn line by line
        await pilot.press("3")
        await wait_for(pilot, lambda: len(log.lines) == 6)
        assert "admin_logout" in str(log.lines[-1].text)


async def test_event_burst_is_summed_up_and_pause_shows_it_all(seeded) -> None:
    store, sids = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        log = await event_log(pilot, app)
        await wait_for(pilot, lambda: len(log.lines) == 5)
        for i in range(100):
            store.login(f"burst{i}", app="crm")
        await wait_for(pilot, lambda: len(app.model.events) == 105)
        await wait_for(pilot, lambda: any("more events" in str(line.text) for line in log.lines))
        assert len(log.lines) < 105
        await pilot.press("p")
        await wait_for(pilot, lambda: len(log.lines) == 105)
        assert not any("more events" in str(line.text) for line in log.lines)


async def test_reconnecting_banner_then_recovery(seeded) -> None:
    store, sids = seeded
    server = store.client.connection_pool.connection_kwargs["server"]
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model.state == "connected")
        server.connected = False
        await wait_for(pilot, lambda: app.model.state == "reconnecting")
        await wait_for(pilot, lambda: "reconnecting" in screen_text(app))
        assert row_count(app, "active") == 5  # the last page stays visible
        server.connected = True
        store.logout(sids[0])
        await wait_for(pilot, lambda: app.model.state == "connected")
        await wait_for(pilot, lambda: row_count(app, "active") == 4)
        assert "reconnecting" not in screen_text(app)


async def test_user_text_is_shown_literally(make_store, clock) -> None:
    """Markup is not interpreted and escape sequences written by other apps never reach the
    terminal (core refuses control characters, so they are written here as another app would)."""
    store = make_store()
    seed(store, clock, [("[bold red]boss[/]", "[link=x]app", "web", "10.0.0.1")])
    sid, now = "e" * 36, clock()
    store.client.hset(store.schema.session(sid), mapping={
        "username": "esc\x1b[2Jape", "app": "crm\x07", "type": "web", "ip": "10.0.0.2", "status": "active",
        "login_time": now, "last_seen": now, "expires_at": now + 600})
    store.adopt(sid)
    store.client.lpush(store.schema.events, "plain line from another app \x1b[31mred[/]")
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 2)
        # rows are in the table before they are painted: wait for the paint, not a time
        await wait_for(pilot, lambda: "esc\\x1b[2Jape" in screen_text(app) and "[link=x]app" in screen_text(app))
        text = screen_text(app)
        assert "[bold red]boss[/]" in text and "[link=x]app" in text
        assert "\x1b" not in text and "esc\\x1b[2Jape" in text and "crm\\x07" in text
        await pilot.press("3")
        await wait_for(pilot, lambda: "plain line from another app" in screen_text(app))
        text = screen_text(app)
        assert "plain line from another app \\x1b[31mred[/]" in text and "\x1b" not in text


async def test_event_tail_stays_put_while_scrolled_up(seeded, clock) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        log = await event_log(pilot, app)
        for i in range(40):
            store.login(f"user{i:02d}", app="crm", ip="10.9.0.1")
        await wait_for(pilot, lambda: len(log.lines) == 45)
        assert log.scroll_y == log.max_scroll_y > 0  # following the tail
        log.scroll_home(animate=False)
        await pilot.pause()
        before = [str(line.text) for line in log.lines]
        store.login("late", app="crm", ip="10.9.0.2")
        await wait_for(pilot, lambda: log.held_count == 1)
        assert log.scroll_y == 0  # the admin reading back is not yanked to the bottom
        assert [str(line.text) for line in log.lines] == before  # and the lines do not change
        assert "1 new ↓" in screen_text(app)
        await pilot.press("end")
        await wait_for(pilot, lambda: len(log.lines) == 46 and log.held_count == 0)
        assert log.scroll_y == log.max_scroll_y


async def test_redis_round_trips_per_refresh_do_not_grow_with_sessions(make_store, clock) -> None:
    """One reconciliation = ping + sweep-free stats + server info + one page, whatever the size."""
    counts = []
    for n in (10, 150):
        store = make_store(prefix=f"n{n}:")
        for i in range(n):
            store.login(f"u{i:04d}", app="crm", ip="10.0.0.1")
        trips: list[int] = []
        real = store._execute
        store._execute = lambda request, real=real, trips=trips: (trips.append(  # type: ignore[method-assign]
            len(getattr(request, "commands", [None]))), real(request))[1]
        app = make_app(store, feed=False, refresh_interval=3600, read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda app=app: app.poll_count >= 1)
            counts.append((len(trips), max(trips)))
    assert counts[0][0] == counts[1][0]  # same number of round trips
    assert counts[1][1] <= 100  # the biggest pipeline is one page of HGETALLs


async def test_bindings_can_be_remapped_by_id(seeded) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        app.set_keymap({"view.sort": "o", "session.logout": "x"})
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("o")
        assert app.panel_widget("active").order.key == "login"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")


async def test_help_screen_footer_shows_its_own_keys(seeded) -> None:
    """Over the help screen the footer names what works there, not the panel's keys."""
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        assert "Log out" in screen_text(app).splitlines()[-1]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and "Close" in screen_text(app))
        footer = screen_text(app).splitlines()[-1]
        assert "esc Close" in footer and "Scroll" in footer
        for panel_key in ("Detail", "Sort", "Log out", "Pause", "Help"):
            assert panel_key not in footer, footer
        box = app.screen.query_one("#help-box")
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: box.scroll_y > 0)  # the keys it names work
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_a_filter_holds_at_most_the_cap_and_says_so(seeded, monkeypatch) -> None:
    import tui.panels.sessions as sessions

    monkeypatch.setattr(sessions, "FILTER_LIMIT", 3)
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        panel = app.panel_widget("active")
        await pilot.press("slash", *"example")  # every session's e-mail: 5 match
        await wait_for(pilot, lambda: not panel.scanning and row_count(app, "active") == 3)
        assert "first 3 matches only (the most a filter holds: narrow it)" in screen_text(app)
        await pilot.press(*".org", *["backspace"] * 11, *"alice")  # two match: under the cap, no note
        await wait_for(pilot, lambda: not panel.scanning and row_count(app, "active") == 2)
        assert "2 matches · scanned" in screen_text(app) and "most a filter" not in screen_text(app)


async def test_a_dashboard_process_freezes_its_startup_heap_once_painted(seeded, monkeypatch) -> None:
    import tui.app

    calls: list[str] = []
    monkeypatch.setattr(tui.app.gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(tui.app.gc, "freeze", lambda: calls.append("freeze"))
    store, _ = seeded
    app = make_app(store, freeze_heap=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: calls, timeout=20)
        assert calls == ["collect", "freeze"] and row_count(app, "active") == 5  # garbage first, then the rest
    plain = make_app(store)  # tests, and anything running several apps in one process: never
    async with plain.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(plain, "active") == 5)
        await pilot.pause(tui.app.HEAP_SETTLES + 0.2)
    assert calls == ["collect", "freeze"]


async def test_status_lines_repaint_without_a_layout_pass(seeded, monkeypatch) -> None:
    from textual.widget import Widget

    from tui.widgets.line import Line

    asked: list[tuple[str, bool]] = []
    real = Widget.refresh

    def spy(self, *regions, **kw):  # type: ignore[no-untyped-def]
        if isinstance(self, Line):
            asked.append((self.id or "", bool(kw.get("layout"))))
        return real(self, *regions, **kw)

    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        monkeypatch.setattr(Widget, "refresh", spy)
        info = app.query_one("#active-info", Line)
        before = len(asked)
        await pilot.press("j", "j")  # the info line says where the cursor is
        await wait_for(pilot, lambda: "holding" in str(info.render()))
        said = asked[before:]
        assert ("active-info", False) in said and ("active-info", True) not in said
        info.say(info._said)  # the same text again: nothing to draw
        assert len(asked) == before + len(said)
