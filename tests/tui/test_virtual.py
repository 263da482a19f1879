"""Pilot tests of the whole-set tables: every row reachable, and search that scans in the
background with progress and stops on Esc."""

from __future__ import annotations

import threading

from tui_helpers import screen_text, wait_for

from bench.fill import fill, sid_of
from core import SessionStore
from tui.app import build_app
from tui.widgets.virtual_table import VirtualTable

N = 3000


def filled(make_store, clock) -> SessionStore:
    store = make_store()
    fill(store.client, 0, N, now=clock(), spread=N)  # logins one second apart: a strict order
    return store


def app_for(store: SessionStore, **kw: object):
    return build_app(store, refresh_interval=0.3, target_label="test", actor="admin", feed=False,
                     sweep=False, **kw)  # type: ignore[arg-type]


async def test_keys_reach_every_row_including_the_last(make_store, clock) -> None:
    store = filled(make_store, clock)
    app = app_for(store)
    async with app.run_test(size=(100, 30)) as pilot:
        t = app.query_one("#active-table", VirtualTable)
        await wait_for(pilot, lambda: t.row_count > 0 and t.window.total == N)
        assert t.window.selected.sid == sid_of(0)  # newest login first
        assert t.row_count < 100  # a screenful and a margin, not the set
        assert t.virtual_size.height == N + 1  # the scrollbar stands for the whole set
        await pilot.press("end")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sid_of(N - 1))
        assert t.window.cursor == N - 1 and "of 3000" in screen_text(app)
        await pilot.press("k", "pageup")  # and back up through rows read on demand
        await wait_for(pilot, lambda: t.window.selected is not None)
        assert t.window.selected.sid == sid_of(N - 2 - t.body_height)
        await pilot.press("g")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sid_of(0))
        assert t.window.mode == "top"
        await pilot.press("G")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sid_of(N - 1))


async def test_sort_by_user_orders_the_whole_set(make_store, clock) -> None:
    store = filled(make_store, clock)
    app = app_for(store)
    async with app.run_test(size=(100, 30)) as pilot:
        t = app.query_one("#active-table", VirtualTable)
        await wait_for(pilot, lambda: t.window.total == N)
        await pilot.press("s", "s", "s")  # user, a to z
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.session is not None
                       and t.window.selected.session.username == "user00000000")
        await pilot.press("end")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.session is not None
                       and t.window.selected.session.username == f"user{(N - 1) // 2:08d}")


async def test_substring_filter_scans_in_the_background_and_esc_stops_it(make_store, clock, monkeypatch) -> None:
    store = filled(make_store, clock)
    app = app_for(store)
    gate = threading.Event()
    steps: list[int] = []
    async with app.run_test(size=(120, 30)) as pilot:
        real = app.source.scan_step

        def slow_step(which, cursor, **k):  # once matches are on screen, the scan waits for the test
            steps.append(cursor)
            if cursor and panel.matches:
                gate.wait(10)
            return real(which, cursor, **k)

        panel = app.panel_widget("active")
        monkeypatch.setattr(app.source, "scan_step", slow_step)
        await wait_for(pilot, lambda: panel.table.window.total == N)
        await pilot.press("slash")
        app.query_one("#active-filter").value = "SER00001"  # case-insensitive substring of the user
        await wait_for(pilot, lambda: "matches so far" in panel.progress and panel.matches)
        found = len(panel.matches)
        assert 0 < found < N and panel.table.row_count == found  # first matches shown while scanning
        assert panel.scanning and "of 3000 · esc stops" in screen_text(app)
        await pilot.press("escape")
        assert "stopped" in panel.progress and not panel.scanning
        gate.set()
        await pilot.pause(0.3)
        assert len(panel.matches) == found  # nothing more arrives after Esc
        await pilot.press("slash", "end", "backspace", "enter")  # "SER0000": runs to the end
        await wait_for(pilot, lambda: not panel.scanning, timeout=20)
        assert len(panel.matches) == N and panel.progress.startswith(f"{N} matches")


def styled_screen(app) -> str:  # type: ignore[no-untyped-def]
    """The screen with its colours (the cursor's highlight included), as a terminal gets it."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=True)


async def test_a_cursor_move_redraws_two_lines_and_the_screen_matches_a_full_redraw(
        make_store, clock, monkeypatch) -> None:
    store = filled(make_store, clock)
    app = app_for(store)
    app.perf_counter = lambda: 0.0  # a poll between the two looks must not change the header's rtt
    async with app.run_test(size=(100, 30)) as pilot:
        t = app.query_one("#active-table", VirtualTable)
        await wait_for(pilot, lambda: t.row_count > 0 and t.window.total == N)
        monkeypatch.setattr(app.panel_widget("active"), "refresh_data", lambda: None)  # no reads: keys alone
        await pilot.pause()
        drawn: list[int] = []
        real = t.render_line

        def counting(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return real(y)

        t.render_line = counting  # type: ignore[method-assign]
        await pilot.press("j", "j", "j", "k")
        await wait_for(pilot, lambda: t.window.cursor == 2 and t.window.mode == "hold")
        moved = styled_screen(app)
        assert drawn and set(drawn) <= {1, 2, 3, 4}  # only the lines the cursor left and reached
        t.refresh()
        await pilot.pause()
        assert styled_screen(app) == moved  # nothing stale: what a full redraw draws
        await pilot.press("pagedown")  # a scroll redraws the screenful
        await wait_for(pilot, lambda: t.window.top > 0 and t.window.row(t.window.cursor) is not None)
        assert t.window.cursor == 2 + t.body_height


async def test_cache_panel_reaches_every_entry(make_store, clock) -> None:
    """The Cache panel is a virtual table too: the last entry of the whole set is one key
    away, and only the entries of the rows held are read."""
    store = filled(make_store, clock)
    store.client.delete(store.schema.cache(sid_of(N - 2)))  # an active session without an entry
    app = app_for(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        panel = app.panel_widget("cache")
        t = panel.table
        read: list[int] = []
        real = app.source.cache_entries

        def counted(sids):
            read.append(len(sids))
            return real(sids)

        app.source.cache_entries = counted  # type: ignore[method-assign]
        await wait_for(pilot, lambda: t.window.total == N and t.window.selected is not None)
        assert t.window.selected.sid == sid_of(0)
        await pilot.press("end")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sid_of(N - 1)
                       and sid_of(N - 1) in panel.entries)
        text = screen_text(app)
        cells = dict(zip((c.key for c in panel.COLUMNS), panel.cells(t.window.selected), strict=True))
        assert cells["status"] == "active" and cells["ttl"] not in ("…", "-", "gone")  # its entry, TTL left
        assert sid_of(N - 1)[:8] in text and cells["ttl"] in text
        assert "no cache entry" in text  # the one without an entry shows as such, in its place
        assert t.row_count < 100 and read and max(read) < 100  # held rows only, never the set


async def test_filter_folds_case_beyond_ascii_through_the_server_step(make_store, clock) -> None:
    store = make_store()
    names = ["Émile", "STRASSE", "Straße", "emil", "bob"]
    sids = {n: store.login(n, app="crm", ip="10.0.0.1")[0].sid for n in names}
    app = app_for(store)
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.panel_widget("active")
        await wait_for(pilot, lambda: panel.table.window.total == len(names))
        await pilot.press("slash")
        # Unicode case folding (ß is ss), no accent stripping (É is not E)
        for text, want in (("ÉMILE", {"Émile"}), ("strasse", {"STRASSE", "Straße"}), ("EMI", {"emil"})):
            app.query_one("#active-filter").value = text
            await wait_for(pilot, lambda want=want: not panel.scanning
                           and set(panel.matches) == {sids[n] for n in want})
            assert panel.table.window.total == len(want)


async def test_end_keeps_the_screen_until_its_rows_are_read_then_draws_once(make_store, clock, monkeypatch) -> None:
    store = filled(make_store, clock)
    app = app_for(store)
    async with app.run_test(size=(100, 30)) as pilot:
        t = app.query_one("#active-table", VirtualTable)
        await wait_for(pilot, lambda: t.row_count > 0 and t.window.total == N)
        gate = threading.Event()
        real = app.source.window

        def held(*a, **k):  # the read End starts waits for the test
            gate.wait(10)
            return real(*a, **k)

        monkeypatch.setattr(app.source, "window", held)
        monkeypatch.setattr(app, "request_refresh", lambda delay=0.0: None)  # no polls meanwhile
        await pilot.pause()
        first = t.window.rows[0].session.username
        last = store.get(sid_of(N - 1)).username
        assert first in screen_text(app) and last not in screen_text(app)
        await pilot.press("end")
        assert t.window.cursor == N - 1 and not t.window.rows  # the rows of the end are being read
        await pilot.pause()
        shown = screen_text(app)
        assert first in shown and "…" not in shown  # not a screenful of "…" first
        assert "rows 2979–3000 of 3000" in shown  # the status line says where the view is going
        await wait_for(pilot, lambda: "…" in screen_text(app), timeout=10)  # a slow read: then it says so
        gate.set()
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sid_of(N - 1))
        await wait_for(pilot, lambda: last in screen_text(app))
        assert "…" not in screen_text(app) and first not in screen_text(app)
