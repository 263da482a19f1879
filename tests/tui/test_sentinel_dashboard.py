"""The dashboard behind Sentinel (Pilot): the header names the master Sentinel gives now,
and follows a failover without restarting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tui_helpers import screen_text, wait_for

from core import SessionStore
from core.embedded import system_binary
from tests.faults.sentinel import SERVICE, SentinelGroup
from tui.app import build_app

pytestmark = [pytest.mark.real]


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    if system_binary() is None:
        pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
    g = SentinelGroup().start()
    try:
        yield g
    finally:
        g.stop()


async def test_header_names_the_current_master_and_follows_a_failover(group: SentinelGroup) -> None:
    store = SessionStore.from_url(group.url)
    store.login("alice", app="crm")
    app = build_app(store, refresh_interval=0.2, target_label="sentinel", actor="admin@ssh:203.0.113.9",
                    rules=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            first = f"sentinel {SERVICE} master 127.0.0.1:{group.master.port}"
            await wait_for(pilot, lambda: first in screen_text(app).splitlines()[0])
            _old, new = await asyncio.to_thread(group.kill_master)
            await asyncio.to_thread(group.wait_sentinels_agree, new.port, replicas=0)
            now = f"sentinel {SERVICE} master 127.0.0.1:{new.port}"
            await wait_for(pilot, lambda: now in screen_text(app).splitlines()[0], timeout=60)
            store.login("bob", app="crm")  # writes go to the promoted master
            await wait_for(pilot, lambda: app.model.state == "connected", timeout=60)
            await wait_for(pilot, lambda: any(ev.username == "bob" for ev in app.model.events), timeout=60)
    finally:
        store.close()
