"""The dashboard's header counts on a Redis in the classic layout (SCAN mode)."""

from __future__ import annotations

from test_app import make_app
from tui_helpers import screen_text, wait_for

from tests.test_classic_counts import write_classic

SIZE = (120, 40)


async def test_header_counts_in_classic_mode(make_store, clock) -> None:
    store = make_store()
    write_classic(store.client, clock(), active=3, inactive=9)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model.stats is not None and app.model.state == "connected")
        assert (app.model.stats.active, app.model.stats.ended) == (3, 9)
        await wait_for(pilot, lambda: "active 3" in screen_text(app) and "inactive 9" in screen_text(app))
        store.logout("live-1", actor="admin")
        await wait_for(pilot, lambda: "active 2" in screen_text(app) and "inactive 10" in screen_text(app))
