"""Hostile text planted in every field, key name and event attribute never reaches the
terminal raw; malformed values never crash the dashboard.

The assertions are on the bytes Textual's driver writes (a recording driver in place of
the headless one), not on widget text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import ClassVar

import pytest
from hostile import DEEP_JSON, HOSTILE, forbidden_in
from textual.app import App
from textual.drivers import headless_driver
from tui_helpers import screen_text, seed, wait_for

from core import SessionStore
from tui.app import build_app
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.widgets.events import EventLog
from tui.widgets.virtual_table import VirtualTable

SIZE = (160, 50)


class RecordingDriver(headless_driver.HeadlessDriver):
    """The headless driver, except that it renders and keeps every byte it would write."""

    sink: ClassVar[list[str]] = []

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        self.sink.append(data)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    sink: ClassVar[list[str]] = []
    monkeypatch.setattr(RecordingDriver, "sink", sink)
    monkeypatch.setattr(headless_driver, "HeadlessDriver", RecordingDriver)
    yield sink


def written(sink: list[str]) -> bytes:
    return "".join(sink).encode("utf-8", "backslashreplace")


def b(text: object) -> bytes:
    """As stored by another app: surrogates in the corpus stand for invalid UTF-8 bytes."""
    return str(text).encode("utf-8", "surrogateescape")


def plant_hostile(store: SessionStore, now: float) -> dict[str, str]:
    """A session per hostile string: in its key name, every field, its cache entry, its
    indexes and its events; plus an ended one and plain log lines. Returns name -> sid."""
    r, s = store.client, store.schema
    sids = {}
    for i, (name, text) in enumerate(HOSTILE.items()):
        # a key name that is not UTF-8 cannot be read back through a decoding client
        sid = f"{text[:40] if name != 'badutf8' else 'bad'}{name}{i:02d}"
        sids[name] = sid
        fields = {f: text for f in ("username", "app", "type", "ip", "user_agent", "email", "department",
                                    "ended_by", "end_reason")}
        fields.update(status="active", login_time=now - 60, last_seen=now - i, expires_at=now + 3600,
                      max_expires_at=now + 7200)
        fields[f"meta {text[:30]}"] = text
        r.hset(b(s.session(sid)), mapping={b(k): b(v) for k, v in fields.items()})
        for key in (s.idx_seen, s.idx_login, s.idx_expiry):
            r.zadd(key, {b(sid): now - i})
        r.zadd(s.idx_search, {b(f"u:{text}"): 0, b(f"s:{sid}"): 0})
        r.rpush(b(s.user_sessions(text)), b(sid))
        r.set(b(s.cache(sid)), json.dumps({"username": text, "app": text, "status": text, text[:20]: text,
                                        "login_time": now}), ex=600)
        r.lpush(s.events, json.dumps({"seq": 900 + i, "ts": now, "kind": text, "sid": sid, "username": text,
                                      "app": text, "actor": text, "ip": text, "reason": text}))
        r.lpush(s.events, b(f"plain {name}: {text}"))
    ended = f"{HOSTILE['title']}ended"
    r.hset(b(s.session(ended)), mapping={"username": HOSTILE["osc52"], "app": HOSTILE["bidi"], "ip": HOSTILE["zero"],
                                      "status": "inactive", "end_reason": HOSTILE["clear"],
                                      "ended_by": HOSTILE["click"], "login_time": now - 100,
                                      "logout_time": now - 50})
    r.zadd(s.idx_ended, {b(ended): now + 30 * 86400})  # scored by when retention purges it
    # a session whose cache key has the wrong type: its detail says "cannot load session"
    broken = f"{HOSTILE['clear'][:6]}broken"
    r.hset(s.session(broken), mapping={"username": "broken", "status": "active", "expires_at": now + 600})
    for key in (s.idx_seen, s.idx_login, s.idx_expiry):
        r.zadd(key, {broken: now - 100})
    r.hset(s.cache(broken), mapping={"x": "1"})
    sids["broken"] = broken
    sids["ended"] = ended
    return sids


def sids_in(app, panel: str) -> set[str]:
    table = app.query_one(f"#{panel}-table")
    return table.sids if isinstance(table, VirtualTable) else set(table._rows)


def select(app, panel: str, sid: str) -> None:
    table = app.query_one(f"#{panel}-table")
    if isinstance(table, VirtualTable):
        pos = next(p for p, row in table.window.rows.items() if row.sid == sid)
        table.window.move_to(pos)
        table.sync()
    else:
        table.move_cursor(row=table.get_row_index(sid), animate=False)


async def test_hostile_text_everywhere_never_reaches_the_terminal(make_store, clock, terminal,
                                                                 monkeypatch) -> None:
    toasts: list[tuple[str, bool]] = []
    notify = App.notify

    def record(self, message, **kw):
        toasts.append((str(message), kw.get("markup", True)))
        return notify(self, message, **kw)

    monkeypatch.setattr(App, "notify", record)
    store = make_store()
    seed(store, clock, [("alice", "crm", "web", "203.0.113.7")])  # creates the indexes
    sids = plant_hostile(store, clock())
    app = build_app(store, refresh_interval=0.3, target_label="127.0.0.1:6379/0", actor="admin")
    n = len(HOSTILE) + 2
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(sids_in(app, "active")) == n, timeout=10)
        await wait_for(pilot, lambda: "CLICKME" in screen_text(app))
        await pilot.press("2")
        await wait_for(pilot, lambda: sids["ended"] in sids_in(app, "inactive"))
        for key in ("3", "4"):
            await pilot.press(key)
            await pilot.pause(0.2)
        await wait_for(pilot, lambda: len(sids_in(app, "cache")) >= len(HOSTILE))
        await pilot.press("3")
        await wait_for(pilot, lambda: len(app.query_one(EventLog).lines) >= 2 * len(HOSTILE))
        await pilot.press("5")
        app.query_one("#search-filter").value = "["
        await wait_for(pilot, lambda: len(sids_in(app, "search")) >= 2)
        await pilot.press("1")
        # detail of each hostile session, and of the one that cannot be loaded
        for name in ("osc52", "title", "bidi", "click", "broken"):
            select(app, "active", sids[name])
            await pilot.press("enter")
            await wait_for(pilot, lambda: getattr(app.screen, "detail", None) is not None)
            assert isinstance(app.screen, DetailScreen)
            if name == "broken":
                assert "cannot load session" in screen_text(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, DetailScreen))
        # the confirm dialog and the toasts after L, for users named as markup
        for name in ("click", "close", "osc52"):
            select(app, "active", sids[name])
            before = len(toasts)
            await pilot.press("L")  # lists the user's sessions, then asks (or says why not)
            await wait_for(pilot, lambda before=before: isinstance(app.screen, ConfirmScreen) or len(toasts) > before)
            if isinstance(app.screen, ConfirmScreen):
                await pilot.press("y")
                await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
                await wait_for(pilot, lambda before=before: len(toasts) > before)
            await pilot.pause(0.2)
        assert app.is_running and app.return_code is None  # [@click=app.quit] quit nothing
        polls = app.poll_count
        await wait_for(pilot, lambda: app.poll_count > polls + 1)  # a user named [/] stops no refresh
        messages = [m for m, _ in toasts]
        assert any("[@click=app.quit]CLICKME[/]" in m for m in messages), messages
        assert any("of [/]" in m for m in messages), messages
        assert not any(markup for _, markup in toasts)
    data = written(terminal)
    assert len(data) > 10_000  # the recording saw the screens
    assert forbidden_in(data) == []
    for shown in (b"\\x1b]52;c;", b"\\x1b]0;PWNED", b"\\u202e", b"\\u2060", b"\\ufeff", b"\\u061c",
                  b"\\x00byte", b"\\x9b31m"):
        assert shown in data, shown


MALFORMED_SESSIONS = {
    "expires_inf": {"expires_at": "inf"},
    "expires_1e400": {"expires_at": "1e400"},
    "login_1e308": {"login_time": "1e308"},
    "login_nan": {"login_time": "nan"},
    "logout_nan": {"logout_time": "nan", "status": "inactive"},
    "login_ms": {"login_time": "1764500000000"},
    "login_us": {"login_time": "1764500000000000"},
    "seen_negative": {"last_seen": "-5"},
    "seen_text": {"last_seen": "yesterday"},
    "max_1e400": {"max_expires_at": "1e400"},
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SESSIONS))
async def test_malformed_session_values_are_listed_with_a_problem(make_store, clock, case) -> None:
    store = make_store()
    seed(store, clock, [("alice", "crm", "web", "203.0.113.7")])
    now, sid = clock(), f"malformed-{case}"
    fields = {"username": case, "app": "other", "status": "active", "login_time": now, "last_seen": now,
              "expires_at": now + 600, **MALFORMED_SESSIONS[case]}
    store.client.hset(store.schema.session(sid), mapping=fields)
    panel = "inactive" if fields["status"] == "inactive" else "active"
    keys = (store.schema.idx_ended,) if panel == "inactive" else (
        store.schema.idx_seen, store.schema.idx_login, store.schema.idx_expiry)
    for key in keys:  # the ended index is scored by when retention purges the session
        store.client.zadd(key, {sid: now + (30 * 86400 if panel == "inactive" else 0)})
    store.client.set(store.schema.cache(sid), '{"username": "c", "login_time": 1e400, "last_seen": NaN}')
    store.client.lpush(store.schema.events, json.dumps({"seq": 99, "kind": "login", "ts": 1e300,
                                                        "username": case}))
    store.client.lpush(store.schema.events, '{"kind": "login", "seq": 100, "ts": NaN}')
    store.client.lpush(store.schema.events, '{"kind": "login", "seq": 101, "x": ' + DEEP_JSON + "}")
    # no sweep: since sweeps follow the server clock, this fixed-clock ended session would be purged
    app = build_app(store, refresh_interval=0.3, target_label="t", actor="admin", sweep=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2" if panel == "inactive" else "1")
        await wait_for(pilot, lambda: sid in sids_in(app, panel), timeout=10)
        await wait_for(pilot, lambda: case in screen_text(app))
        sessions_screen = screen_text(app)
        select(app, panel, sid)
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.screen, "detail", None) is not None)
        text = screen_text(app)
        if case not in ("login_ms", "login_us"):
            assert f"{case} ⚠" in sessions_screen  # marked in the list
            assert "invalid" in text
        else:
            assert "invalid" not in text.split("cache")[0]  # a millisecond epoch is a time
        await pilot.press("escape")
        for key in ("3", "4"):
            await pilot.press(key)
            await pilot.pause(0.3)
        await wait_for(pilot, lambda: len(app.query_one(EventLog).lines) >= 3)
        assert app.is_running
