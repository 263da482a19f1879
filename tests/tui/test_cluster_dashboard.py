"""The dashboard on a real loopback Redis Cluster (Pilot): the header names the cluster,
the Events tail shows every bucket's events once, and a master's failover is shown and
survived without restarting the dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from tui_helpers import screen_text, wait_for

from core import SessionStore
from tests.faults.cluster import ClusterGroup
from tui.app import SessionWatchApp, build_app
from tui.widgets.events import EventLog

pytestmark = [pytest.mark.real]


@pytest.fixture
def store(flushed_cluster: ClusterGroup) -> Iterator[SessionStore]:
    s = SessionStore.from_url(flushed_cluster.url)  # a cluster is detected: 64 buckets
    assert s.is_cluster and s.buckets is not None
    yield s
    s.close()


def make_app(store: SessionStore) -> SessionWatchApp:
    return build_app(store, refresh_interval=0.2, target_label="cluster seed", actor="admin@ssh:203.0.113.9",
                     rules=False)


def header(app: SessionWatchApp) -> str:
    return screen_text(app).splitlines()[0]


def users_in_buckets(store: SessionStore, buckets: set[int], per: int, stem: str) -> list[str]:
    assert store.buckets is not None
    names, counts, i = [], dict.fromkeys(buckets, 0), 0
    while min(counts.values()) < per:
        name = f"{stem}{i}"
        b = store.buckets.of_user(name)
        if b in counts and counts[b] < per:
            counts[b] += 1
            names.append(name)
        i += 1
    return names


async def test_header_names_the_cluster_and_the_tail_shows_every_bucket(store: SessionStore) -> None:
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.model.state == "connected" and app.model.topology)
        await wait_for(pilot, lambda: "cluster 3 masters · 3 replicas" in header(app))
        assert "connected" in header(app)  # one line at 80 columns, the state first
        await pilot.press("3")
        await wait_for(pilot, lambda: app.query(EventLog))
        log = app.query_one(EventLog)
        names = users_in_buckets(store, set(range(64)), 1, "u")
        for name in names:
            store.login(name, app="crm")
        await wait_for(pilot, lambda: len(app.model.events) == 64)
        await wait_for(pilot, lambda: names[-1] in screen_text(app))  # the tail shows the newest
        assert log.lines
        assert {ev.username for ev in app.model.events} == set(names)
        assert {ev.bucket for ev in app.model.events} == set(range(64))


async def test_dashboard_shows_a_failover_and_recovers_without_restarting(
        store: SessionStore, flushed_cluster: ClusterGroup) -> None:
    assert store.buckets is not None
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "cluster 3 masters · 3 replicas" in header(app))
        await pilot.press("3")
        await wait_for(pilot, lambda: app.query(EventLog))
        victim = flushed_cluster.master_for_key(store.buckets.schema(0).events)
        standby = await asyncio.to_thread(flushed_cluster.kill, victim)
        assert standby is not None
        # the header says a node is down (its state may also pass through reconnecting)
        await wait_for(pilot, lambda: "down" in app.model.topology, timeout=60)
        await asyncio.to_thread(flushed_cluster.wait_promoted, standby)
        await wait_for(pilot, lambda: "3 masters · 2 replicas · 1 down" in header(app), timeout=60)
        moved = {b for b in range(64)
                 if flushed_cluster.master_for_key(store.buckets.schema(b).events).port == standby.port}
        names = users_in_buckets(store, moved, 1, "after")

        def log_in_all() -> None:
            deadline = time.monotonic() + 60
            for name in names:
                while True:
                    try:
                        store.login(name, app="crm")
                        break
                    except Exception:
                        assert time.monotonic() < deadline, "logins did not resume after the failover"
                        time.sleep(0.2)

        await asyncio.to_thread(log_in_all)
        await wait_for(pilot, lambda: {ev.username for ev in app.model.events} >= set(names), timeout=60)
        await wait_for(pilot, lambda: app.model.state == "connected", timeout=60)
        assert "connected" in header(app)
