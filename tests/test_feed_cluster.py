"""The live feed on a real loopback Redis Cluster (3 masters, 3 replicas): every bucket's
events once and in order per bucket, across dropped subscriptions; ``expired`` hints from
every master; and a master's failover survived without restarting the reader."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from feed_collector import Collector

from core import AsyncSessionStore, Event, SessionStore
from core.feed import ExpiryHint, FeedStatus, Resync, afeed
from core.topology import cluster_label, count_nodes
from tests.faults.cluster import ClusterGroup

pytestmark = [pytest.mark.real]

BUCKETS = 16


@pytest.fixture
def store(flushed_cluster: ClusterGroup) -> Iterator[SessionStore]:
    s = SessionStore(flushed_cluster.client(socket_timeout=2, socket_connect_timeout=2), buckets=BUCKETS)
    yield s
    s.close()


def users_in_every_bucket(store: SessionStore, per_bucket: int, stem: str) -> list[str]:
    assert store.buckets is not None
    names: list[str] = []
    counts = [0] * BUCKETS
    i = 0
    while min(counts) < per_bucket:
        name = f"{stem}{i}"
        b = store.buckets.of_user(name)
        if counts[b] < per_bucket:
            counts[b] += 1
            names.append(name)
        i += 1
    return names


def assert_once_in_order(events: list[Event], store: SessionStore) -> None:
    assert store.buckets is not None
    seqs: dict[int, list[int]] = {}
    for ev in events:
        assert ev.bucket is not None and ev.seq is not None
        seqs.setdefault(ev.bucket, []).append(ev.seq)
    for b in range(BUCKETS):
        counter = int(store.client.get(store.buckets.schema(b).event_seq) or 0)
        assert seqs.get(b, []) == list(range(1, counter + 1)), b


def kill_subscribers(group: ClusterGroup) -> None:
    for m in group.masters():
        with redis.Redis(port=m.port) as c:
            c.client_kill_filter(_type="pubsub")


def test_events_of_every_bucket_arrive_once_in_order_across_dropped_subscriptions(
        store: SessionStore, flushed_cluster: ClusterGroup) -> None:
    early = users_in_every_bucket(store, 1, "early")
    for name in early:
        store.login(name, app="crm")
    col = Collector(store, timeout=60.0, max_backoff=0.5)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    assert len(col.events()) == len(early)
    names = users_in_every_bucket(store, 5, "u")
    for i, name in enumerate(names):
        store.login(name, app="crm")
        if i in (20, 55):
            kill_subscribers(flushed_cluster)
    col.wait_for(lambda: len(col.events()) == len(early) + len(names))
    store.login("marker", app="crm")  # once it arrives, any duplicate sent before it has too
    col.wait_for(lambda: any(ev.username == "marker" for ev in col.events()))
    assert_once_in_order(col.events(), store)
    col.close()


def test_expired_hints_come_from_every_master(store: SessionStore, flushed_cluster: ClusterGroup) -> None:
    assert store.buckets is not None
    col = Collector(store, timeout=60.0, max_backoff=0.5)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    keys = [store.buckets.schema(b).session(f"gone{b}") for b in range(BUCKETS)]
    holders = {flushed_cluster.master_for_key(k).port for k in keys}
    assert len(holders) == 3  # the buckets span every master
    for key in keys:
        store.client.set(key, "x", px=50)
    col.wait_for(lambda: {x.key for x in col.items if isinstance(x, ExpiryHint)} >= set(keys))
    col.close()


def test_topology_label_counts_masters_and_replicas_up(store: SessionStore,
                                                       flushed_cluster: ClusterGroup) -> None:
    assert cluster_label(store.client.cluster_nodes()) == "cluster 3 masters · 3 replicas"
    assert count_nodes({"a": {"flags": "master,fail", "slots": [[0, 5]]}, "b": {"flags": "myself,master",
                        "slots": [[6, 9]]}, "c": {"flags": "slave"}, "d": "junk"}) == (1, 1, 1)
    assert count_nodes(None) == (0, 0, 0)


def test_feed_follows_a_master_failover_without_restarting(store: SessionStore,
                                                           flushed_cluster: ClusterGroup) -> None:
    assert store.buckets is not None
    col = Collector(store, timeout=60.0, max_backoff=0.5)
    col.wait_for(lambda: any(isinstance(x, Resync) for x in col.items))
    for name in users_in_every_bucket(store, 1, "before"):
        store.login(name, app="crm")
    col.wait_for(lambda: len(col.events()) == BUCKETS)
    victim = flushed_cluster.master_for_key(store.buckets.schema(0).events)
    standby = flushed_cluster.kill(victim)
    assert standby is not None
    flushed_cluster.wait_promoted(standby)
    # logins in every bucket, those of the promoted master's buckets included, once the
    # client has found the new master (a write may fail while it looks)
    after = users_in_every_bucket(store, 2, "after")
    deadline = time.monotonic() + 60
    done: list[str] = []
    for name in after:
        while True:
            try:
                store.login(name, app="crm")
                done.append(name)
                break
            except Exception:
                assert time.monotonic() < deadline, "logins did not resume after the failover"
                time.sleep(0.2)
    col.wait_for(lambda: {ev.username for ev in col.events()} >= set(done))
    # the reader also listens for expiries on the promoted master now
    moved = [store.buckets.schema(b).session(f"gone{b}") for b in range(BUCKETS)
             if flushed_cluster.master_for_key(store.buckets.schema(b).events).port == standby.port]
    assert moved

    def listening_on_the_promoted_master() -> bool:  # hints are fire-and-forget: wait for it
        with redis.Redis(port=standby.port) as c:
            return bool(c.pubsub_numsub("__keyevent@0__:expired")[0][1])

    col.wait_for(listening_on_the_promoted_master)
    for key in moved:
        store.client.set(key, "x", px=50)
    col.wait_for(lambda: {x.key for x in col.items if isinstance(x, ExpiryHint)} >= set(moved))
    # one reader all along: it said when it lost the master and when it was back
    statuses = [x for x in col.items if isinstance(x, FeedStatus)]
    assert statuses[0].connected and statuses[-1].connected
    col.close()


def test_cli_events_follow_on_the_cluster(flushed_cluster: ClusterGroup, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.cli import main

    monkeypatch.delenv("REDIS_URL", raising=False)
    store = SessionStore.from_url(flushed_cluster.url)  # the layout the CLI finds: 64 buckets
    store.login("before", app="crm")
    stop = threading.Event()

    def traffic() -> None:  # logins all along: the follower prints one backlog line, then new ones
        for i in range(400):
            if stop.wait(0.05):
                return
            store.login(f"live{i}", app="crm")

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        code = main(["events", "--follow", "--count", "3", "--limit", "1", "--json", "--url", flushed_cluster.url])
    finally:
        stop.set()
        worker.join(10)
    store.close()
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.err
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert len(rows) == 4 and all(r["kind"] == "login" and isinstance(r["bucket"], int) for r in rows)
    assert all(r["username"].startswith("live") for r in rows[1:])
    assert len({(r["bucket"], r["seq"]) for r in rows}) == 4


def test_async_feed_on_the_cluster(flushed_cluster: ClusterGroup) -> None:
    async def main() -> list[object]:
        store = AsyncSessionStore.from_url(flushed_cluster.url)
        assert store.buckets is not None
        names = [f"a{i}" for i in range(30)]
        got: list[object] = []
        key = store.buckets.schema(5).session("gone")

        async def consume() -> None:
            async for item in afeed(store, heartbeat=0.3, backoff=(0.05, 0.3)):
                got.append(item)
                if isinstance(item, Resync) and not any(isinstance(x, Event) for x in got):
                    for name in names:  # the reader is in: log in across the buckets
                        await store.login(name, app="crm")
                    await store.client.set(key, "x", px=50)
                seen = {x.username for x in got if isinstance(x, Event)}
                if seen >= set(names) and any(isinstance(x, ExpiryHint) and x.key == key for x in got):
                    return

        await asyncio.wait_for(consume(), 60)
        await store.close()
        return got

    got = asyncio.run(main())
    events = [x for x in got if isinstance(x, Event)]
    assert len(events) == 30 and len({(ev.bucket, ev.seq) for ev in events}) == 30
