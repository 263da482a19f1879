"""A live feed run in a thread, for tests that wait on what it delivered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core import Event, SessionStore
from core.feed import EventFeed, Resync


class Collector:
    """Runs an :class:`EventFeed` in a thread and lets a test wait for what it delivered.
    ``timeout`` is the default wait: generous, as a condition is awaited, never a sleep.
    While ``hold`` is set the thread stops reading (Redis's output buffer for it fills up)."""

    def __init__(self, store: SessionStore, *, timeout: float = 30.0, max_backoff: float = 0.3,
                 **kw: object) -> None:
        self.feed = EventFeed(store, heartbeat=0.3, backoff=(0.05, max_backoff), **kw)
        self.timeout = timeout
        self.items: list[object] = []
        self.hold = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for item in self.feed.run(self.stop):
            self.items.append(item)
            while self.hold.is_set() and not self.stop.is_set():
                time.sleep(0.01)

    def events(self) -> list[Event]:
        return [x for x in self.items if isinstance(x, Event)]

    def seqs(self) -> list[int]:
        return [x.seq for x in self.events() if x.seq is not None]

    def resyncs(self) -> int:
        return sum(isinstance(x, Resync) for x in self.items)

    def wait_for(self, cond: Callable[[], bool], timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        others = [x for x in self.items if not isinstance(x, Event)]
        raise AssertionError(f"feed condition not met; got {self.items[-3:]}; not events: {others[-12:]}")

    def close(self) -> None:
        self.stop.set()
        self.hold.clear()
        self.thread.join(2 * self.timeout / 3)
        self.feed.close()
        assert not self.thread.is_alive()
