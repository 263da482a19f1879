"""The header's "connected" is true: a dead feed reader is shown and restarted, a feed that
silently stops delivering is caught by the poll's check against the log, and a rewound
log is announced."""

from __future__ import annotations

import threading

from tui_helpers import screen_text, seed, wait_for

from core.feed import EventFeed, FeedStatus
from tui.app import build_app

SIZE = (120, 30)


async def test_a_failing_feed_reader_is_shown_and_restarted(make_store, clock) -> None:
    store = make_store()
    seed(store, clock)
    app = build_app(store, refresh_interval=0.2, target_label="t", actor="admin")
    calls = {"n": 0}
    real = app.feed_items

    def flaky(stop: threading.Event):
        calls["n"] += 1
        if calls["n"] == 1:
            yield FeedStatus(True)
            raise RuntimeError("reader exploded")
        yield from real(stop)

    app.feed_items = flaky  # type: ignore[method-assign]
    shown: list[tuple[str, str]] = []
    real_show = app._show_status

    def show_status() -> None:
        shown.append((app.model.state, app.model.detail))
        real_show()

    app._show_status = show_status  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: ("reconnecting", "live feed reader failed (RuntimeError: reader exploded); "
                                       "restarting") in shown, timeout=10)
        await wait_for(pilot, lambda: calls["n"] >= 2 and app.model.state == "connected", timeout=10)
        store.login("zed", app="crm")
        await wait_for(pilot, lambda: any(e.username == "zed" for e in app.model.events), timeout=10)


async def test_a_feed_that_stops_delivering_is_not_called_connected(make_store, clock) -> None:
    store = make_store()
    seed(store, clock)
    app = build_app(store, refresh_interval=0.2, target_label="t", actor="admin")
    app.model.stall_after = 0.5
    wedged = threading.Event()

    def stalls(stop: threading.Event):
        feed = EventFeed(store, heartbeat=0.2, backoff=(0.05, 0.2))
        try:
            for item in feed.run(stop):
                if wedged.is_set():
                    stop.wait()  # says nothing, delivers nothing: a wedged reader
                    return
                yield item
        finally:
            feed.close()

    app.feed_items = stalls  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model.state == "connected" and len(app.model.events) == 5, timeout=10)
        wedged.set()
        store.login("unseen", app="crm")
        await wait_for(pilot, lambda: app.model.state == "stalled", timeout=10)
        await wait_for(pilot, lambda: "live feed stalled" in screen_text(app))
        assert "connected" not in screen_text(app).splitlines()[0]


async def test_a_quiet_log_stays_connected(make_store, clock) -> None:
    store = make_store()
    seed(store, clock)
    app = build_app(store, refresh_interval=0.2, target_label="t", actor="admin")
    app.model.stall_after = 0.3
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model.state == "connected", timeout=10)
        polls = app.poll_count
        await wait_for(pilot, lambda: app.poll_count >= polls + 4, timeout=10)
        assert app.model.state == "connected"  # nothing new in the log: provably nothing missed
        store.client.lpush(store.schema.events, "a plain line nobody publishes")
        await wait_for(pilot, lambda: any(e.raw == "a plain line nobody publishes" for e in app.model.events),
                       timeout=10)
        polls = app.poll_count
        await wait_for(pilot, lambda: app.poll_count >= polls + 2, timeout=10)
        assert app.model.state == "connected"


async def test_a_flushed_log_is_announced_and_followed(make_store, clock) -> None:
    store = make_store()
    seed(store, clock)
    app = build_app(store, refresh_interval=0.2, target_label="t", actor="admin")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.model.events) == 5, timeout=10)
        store.client.flushall()
        for user in ("n1", "n2", "n3"):
            store.login(user, app="crm")
        await wait_for(pilot, lambda: [e.username for e in app.model.events if e.kind == "login"][-3:]
                       == ["n1", "n2", "n3"], timeout=10)
        assert any("started again" in e.raw for e in app.model.events)
