"""Snapshots of the main screen (pytest-textual-snapshot). Regenerate with --snapshot-update.

Deterministic: fixed clock, fixed session ids, UTC, no live feed, one poll, fake latency timer.
"""

from __future__ import annotations

import itertools

import pytest
from tui_helpers import screen_text, settled, wait_for

from tui.app import SessionWatchApp, build_app
from tui.screens.confirm import ConfirmScreen


def snapshot_app(store, **kw: object) -> SessionWatchApp:
    app = build_app(store, refresh_interval=3600, target_label="127.0.0.1:21084/0", feed=False,
                    actor="admin", sweep=False, **kw)  # type: ignore[arg-type]
    ticks = itertools.count(0, 0.0005)
    app.perf_counter = lambda: next(ticks)  # every round trip "takes" 0.5 ms
    return app


async def loaded(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.poll_count >= 1 and app.main.query_one("#active-table").row_count == 5)
    # what the snapshot shows is painted, not only held: the counts, the tab title, the rows
    await wait_for(pilot, lambda: all(t in screen_text(app) for t in ("active 5", "Active 5", "rows 1–5 of 5")))
    await settled(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen(seeded, snap_compare, size) -> None:
    store, _ = seeded
    assert snap_compare(snapshot_app(store), terminal_size=size, run_before=loaded)


def test_main_screen_read_only_80x24(seeded, snap_compare) -> None:
    store, _ = seeded
    assert snap_compare(snapshot_app(store, read_only=True), terminal_size=(80, 24), run_before=loaded)


def test_confirm_dialog_80x24(seeded, snap_compare) -> None:
    store, _ = seeded

    async def confirm(pilot) -> None:
        await loaded(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen)
                       and pilot.app.screen.query("Button").first().region.height > 0)
        await settled(pilot)

    assert snap_compare(snapshot_app(store), terminal_size=(80, 24), run_before=confirm)
