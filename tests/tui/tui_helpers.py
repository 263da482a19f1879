"""Helpers for the dashboard tests: seeding, the screen as text, bounded waiting."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from core import SessionStore

USERS = [
    ("alice", "crm", "web", "203.0.113.7"),
    ("bob", "billing", "api", "198.51.100.20"),
    ("carol", "crm", "mobile", "192.0.2.33"),
    ("alice", "wiki", "web", "203.0.113.8"),
    ("dave", "shop", "web", "10.1.2.3"),
]


def seed(store: SessionStore, clock, users=USERS) -> list[str]:
    """Log the users in one minute apart; returns the session ids in login order."""
    sids = []
    for username, app, stype, ip in users:
        session, _ = store.login(username, app=app, type=stype, ip=ip, user_agent="Mozilla/5.0",
                                 email=f"{username}@example.org")
        sids.append(session.sid)
        clock.advance(60)
    return sids


def screen_text(app: App) -> str:
    """The current screen as plain text (what a terminal would show, without colours)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_for(pilot: Pilot, predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app run until ``predicate()`` is true (bounded: fails after ``timeout``,
    which is generous because a loaded 2-core machine can take seconds to paint)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        await pilot.pause(0.05)
    await pilot.pause()  # let the screen catch up with what the predicate saw


async def settled(pilot: Pilot, timeout: float = 30.0) -> None:
    """Let the app run until two renders in a row are the same: nothing is being drawn or
    laid out any more (a snapshot taken earlier can catch a half-drawn row)."""
    deadline = time.monotonic() + timeout
    await pilot.wait_for_scheduled_animations()
    before = screen_text(pilot.app)
    while True:
        await pilot.pause(0.05)
        now = screen_text(pilot.app)
        if now == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the screen kept changing")
        before = now
