"""Pilot tests of ``A``: the anonymous sessions (visitors before login), listed apart from
the user sessions, their data counted and never shown."""

from __future__ import annotations

from test_app import SIZE, make_app, row_count
from tui_helpers import screen_text, wait_for

from tui.screens.anonymous import AnonymousScreen


async def test_a_lists_anonymous_sessions_apart_and_never_their_data(seeded) -> None:
    store, _ = seeded
    store.save_anonymous(None, {"cart": '["secret-sku-1"]', "csrf_token": '"tok-9f3a"'}, app="shop")
    other = store.save_anonymous(None, {"_flashes": '[["message","hi"]]'}, app="blog")
    # Redis data is untrusted: another writer's control characters reach no terminal
    store.client.hset(store.schema.anonymous(other.aid), "app", "\x1b[31mevil\x07app")
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)  # never listed as active
        await wait_for(pilot, lambda: "anonymous 2" in screen_text(app))  # the status line counts them
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, AnonymousScreen) and app.screen.page is not None)
        await wait_for(pilot, lambda: "shop" in screen_text(app))
        text = screen_text(app)
        assert "Anonymous sessions: 2" in text
        assert "evil" in text and "\x1b" not in text and "\x07" not in text  # through the display path
        for secret in ("secret-sku-1", "tok-9f3a", "hi\"]"):
            assert secret not in text  # keys and bytes only
        for username in ("alice", "bob", "dave"):
            assert username not in text
        # a new visitor shows up on the next reload
        store.save_anonymous(None, {"csrf_token": '"x"'}, app="wiki")
        await pilot.press("r")
        await wait_for(pilot, lambda: "Anonymous sessions: 3" in screen_text(app) and "wiki" in screen_text(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AnonymousScreen))
        assert app.panel == "active" and row_count(app, "active") == 5


async def test_a_with_no_anonymous_sessions_says_so(seeded) -> None:
    store, _ = seeded
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: row_count(app, "active") == 5)
        await pilot.press("A")
        await wait_for(pilot, lambda: "no anonymous sessions" in screen_text(app))
        assert "Anonymous sessions: 0" in screen_text(app)
