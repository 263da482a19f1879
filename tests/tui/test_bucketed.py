"""Pilot tests of the dashboard on the bucketed layout over the loopback Redis Cluster:
Active (every row reachable, whole-set sorts), Inactive, Cache, Search and Overview read
the merged views of every bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tui_helpers import screen_text, wait_for

from core import Policy, SessionStore
from tui.app import build_app
from tui.widgets.virtual_table import VirtualTable

N = 400


@pytest.fixture
def bucketed(flushed_cluster: Any, clock: Any) -> Iterator[tuple[SessionStore, list[str]]]:
    client = flushed_cluster.client()
    store = SessionStore(client, buckets=16, clock=clock, policy=Policy(idle_ttl=36_000, absolute_ttl=72_000))
    sids = []
    for i in range(N):  # one second apart: a strict order; users spread over every bucket
        session, _ = store.login(f"user{i:04d}", app=("crm", "wiki")[i % 2], ip=f"10.0.{i % 7}.{i % 5}")
        sids.append(session.sid)
        clock.advance(1)
    yield store, sids
    client.close()


def app_for(store: SessionStore):
    return build_app(store, refresh_interval=0.3, target_label="cluster", actor="admin", feed=False,
                     sweep=False, rules=False)


async def test_every_panel_reads_the_merged_buckets(bucketed) -> None:
    store, sids = bucketed
    for sid in sids[:5]:
        store.logout(sid)
    app = app_for(store)
    async with app.run_test(size=(110, 30)) as pilot:
        t = app.query_one("#active-table", VirtualTable)
        await wait_for(pilot, lambda: t.window.total == N - 5 and t.window.selected is not None)
        assert t.window.selected.sid == sids[-1]  # newest activity first, over every bucket
        await pilot.press("end")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.sid == sids[5])
        await pilot.press("pageup")
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.session is not None)
        assert t.window.selected.sid == sids[5 + t.body_height]
        await pilot.press("g", "s", "s", "s")  # by user, a to z, over the whole set
        await wait_for(pilot, lambda: t.window.selected is not None and t.window.selected.session is not None
                       and t.window.selected.session.username == "user0005")
        await pilot.press("2")
        inactive = app.query_one("#inactive-table", VirtualTable)
        await wait_for(pilot, lambda: inactive.window.total == 5)
        await pilot.press("4")
        await wait_for(pilot, lambda: "user0399" in screen_text(app))
        await pilot.press("5", "slash", *"user012", "enter")
        await wait_for(pilot, lambda: "user0129" in screen_text(app))
        await pilot.press("6")
        await wait_for(pilot, lambda: app.panel_widget("overview").overview is not None)
        ov = app.panel_widget("overview").overview
        assert ov.active == N - 5 and ov.by_app == {"crm": 197, "wiki": 198}
