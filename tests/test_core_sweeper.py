"""The app-side sweep timer ends expired sessions and survives Redis errors."""

from __future__ import annotations

import asyncio
import time

import fakeredis
import pytest

from core import AsyncSessionStore, Policy, SessionStore
from core.sweeper import Sweeper, sweep_forever


def test_sweeper_thread_ends_expired_sessions_and_keeps_going_after_errors(clock):
    server = fakeredis.FakeServer()
    store = SessionStore(fakeredis.FakeRedis(server=server, decode_responses=True),
                         policy=Policy(idle_ttl=60), clock=clock)
    store.login("alice", app="crm")
    clock.advance(61)
    server.connected = False
    sweeper = Sweeper(store, interval=0.02).start()
    try:
        deadline = time.monotonic() + 60  # a bound on the wait, generous for a loaded machine
        while not sweeper.last_error and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "Redis" in sweeper.last_error
        server.connected = True
        while not store.stats().ended and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.stats().active == 0 and store.stats().ended == 1
    finally:
        sweeper.stop()
    assert not sweeper._thread.is_alive()


async def test_sweep_forever_task(clock):
    store = AsyncSessionStore(fakeredis.FakeAsyncRedis(decode_responses=True),
                              policy=Policy(idle_ttl=60), clock=clock)
    await store.login("bob", app="crm")
    clock.advance(61)
    task = asyncio.create_task(sweep_forever(store, interval=0.05))
    try:
        # A deadline, not a number of polls: on a loaded machine each sweep (Lua through
        # lupa) can take longer than a poll, and 200 polls once ran past pytest's timeout.
        async with asyncio.timeout(60):
            while not (await store.stats()).ended:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await store.stats()).ended == 1
