"""Run ``sweep`` on a timer from an app process.

Many processes may sweep at once (each session is ended once, inside the script), but
firing them all on the same tick makes load spikes (Spring Session's minute-boundary
cleanup, spring-session#899), so each wait is jittered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading

from .aio import AsyncSessionStore
from .errors import StoreError
from .store import SessionStore

log = logging.getLogger(__name__)


def _next_wait(interval: float, jitter: float) -> float:
    return interval * (1 + random.uniform(-jitter, jitter))


class Sweeper:
    """A daemon thread that sweeps every ``interval`` seconds (+/- ``jitter``) until stopped.

    >>> sweeper = Sweeper(store, interval=30).start()
    >>> sweeper.stop()
    """

    def __init__(self, store: SessionStore, *, interval: float = 30.0, jitter: float = 0.2) -> None:
        self.store = store
        self.interval = interval
        self.jitter = jitter
        self.runs = 0
        self.last_error: str = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sessionwatch-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(_next_wait(self.interval, self.jitter)):
            try:
                self.store.sweep()
                self.runs += 1
                self.last_error = ""
            except StoreError as exc:  # Redis down: try again next tick
                self.last_error = str(exc)
                log.warning("sweep failed: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


async def sweep_forever(store: AsyncSessionStore, *, interval: float = 30.0, jitter: float = 0.2) -> None:
    """Sweep every ``interval`` seconds until the task is cancelled (for ASGI lifespans)."""
    while True:
        await asyncio.sleep(_next_wait(interval, jitter))
        try:
            await store.sweep()
        except StoreError as exc:
            log.warning("sweep failed: %s", exc)
