"""The stores on a real loopback Redis Cluster: detection, the library on every primary,
sharded publishing, and the writes that the bucketed layout splits by bucket (anonymous
sessions, login from one, sweep, settings, audit, flags, restore and index batches)."""

from __future__ import annotations

import itertools
import time

import pytest
import redis
import redis.cluster

from core import AsyncSessionStore, NotReplicated, Policy, SessionStore, StoreUnavailable
from core.functions import library_name
from core.overview import Flag
from core.plans import Script
from core.tokens import new_token
from tests.faults.cluster import ClusterGroup


@pytest.fixture
def cstore(cluster_url: str, clock) -> SessionStore:
    store = SessionStore.from_url(cluster_url, clock=clock)
    yield store
    store.close()


def calls(store: SessionStore) -> list[object]:
    """Record the requests ``store`` sends from now on."""
    seen: list[object] = []
    original = store._execute
    store._execute = lambda req: seen.append(req) or original(req)  # type: ignore[method-assign]
    return seen


def user_in(store: SessionStore, bucket: int, *, other: bool = False) -> str:
    """A user name in ``bucket`` (or, with ``other``, in any other bucket)."""
    for i in itertools.count():
        name = f"user{i}"
        if (store.buckets.of_user(name) == bucket) != other:
            return name
    raise AssertionError("unreachable")


def test_from_url_detects_the_cluster_and_takes_the_bucketed_layout(cluster_url: str,
                                                                     debian_server) -> None:
    store = SessionStore.from_url(cluster_url)
    assert store.is_cluster and store.buckets is not None and store.buckets.count == 64
    where = store.target()
    assert where["cluster"] is True and len(where["primaries"]) == 3 and "replicas" in where
    session, token = store.login("alice", app="crm")
    assert store.validate(token).sid == session.sid
    store.close()
    chosen = SessionStore.from_url(cluster_url, buckets=16)
    assert chosen.is_cluster and chosen.buckets.count == 16
    chosen.close()
    single = SessionStore.from_url(debian_server.url)
    assert not single.is_cluster and single.buckets is None and "cluster" not in single.target()
    single.close()
    # forced: a single node told it is a cluster fails loudly, never as a wrong layout
    with pytest.raises(StoreUnavailable, match="no Redis Cluster answered"):
        SessionStore.from_url(debian_server.url, cluster=True)


async def test_the_asyncio_store_detects_the_cluster(cluster_url: str) -> None:
    store = AsyncSessionStore.from_url(cluster_url)
    assert store.is_cluster and store.buckets.count == 64
    session, token = await store.login("bob", app="crm")
    assert (await store.validate(token)).sid == session.sid
    assert await store.logout(session.sid)
    await store.close()


def test_events_go_to_the_buckets_shard_channel(cstore: SessionStore, flushed_cluster: ClusterGroup) -> None:
    name = "carol"
    channel = cstore._for_user(name).schema.channel
    listener = flushed_cluster.client()
    pubsub = listener.pubsub()
    pubsub.ssubscribe(channel)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the subscribe confirmation
        message = pubsub.get_sharded_message(timeout=0.2)
        if message and message["type"] == "ssubscribe":
            break
    session, _ = cstore.login(name, app="crm")
    got = None
    while got is None and time.monotonic() < deadline:
        message = pubsub.get_sharded_message(timeout=0.2)
        if message and message["type"] == "smessage":
            got = message
    assert got is not None and got["channel"] == channel and session.sid in got["data"]
    pubsub.close()
    listener.close()


def test_the_library_is_loaded_on_every_primary_and_reloaded_where_missing(
        cstore: SessionStore, flushed_cluster: ClusterGroup) -> None:
    primaries = flushed_cluster.masters()
    for node in primaries:
        redis.Redis(port=node.port).function_flush()
    assert cstore.install_functions() == "loaded"
    assert cstore.install_functions() == "present"
    for node in primaries:
        libs = redis.Redis(port=node.port, decode_responses=True).function_list(library_name())
        assert library_name() in str(libs)
    # one primary loses it (a new master, a restore): the next call there loads it again
    lost = primaries[0]
    redis.Redis(port=lost.port).function_flush()
    name = next(f"u{i}" for i in itertools.count()
                if flushed_cluster.master_for_key(cstore._for_user(f"u{i}").schema.events).port == lost.port)
    session, token = cstore.login(name, app="crm")
    assert cstore.validate(token).sid == session.sid


def test_login_from_an_anonymous_session_in_another_bucket_is_two_steps(cstore: SessionStore) -> None:
    visitor = cstore.save_anonymous(None, {"cart": "[1]"}, app="shop")
    home = cstore.buckets.of_anonymous(visitor.aid)
    name = user_in(cstore, home, other=True)
    sent = calls(cstore)
    session, token = cstore.login(name, app="shop", data={"cart": "[1]"}, anonymous=visitor.token)
    assert [r.name for r in sent if isinstance(r, Script)] == ["login", "anon_end"]
    assert cstore.read_anonymous(visitor.token) is None
    assert cstore.validate(token).metadata["d:cart"] == "[1]"
    assert cstore.events(limit=1)[0].data.get("from_anonymous") is True
    # a visitor in the user's own bucket still converts in one script
    again = cstore.save_anonymous(None, {"cart": "[2]"}, app="shop")
    name = user_in(cstore, cstore.buckets.of_anonymous(again.aid))
    sent.clear()
    cstore.login(name, app="shop", data={"cart": "[2]"}, anonymous=again.token)
    assert [r.name for r in sent if isinstance(r, Script)] == ["login"]
    assert cstore.read_anonymous(again.token) is None


def test_a_replacing_anonymous_session_is_made_in_the_replaced_ones_bucket(cstore: SessionStore) -> None:
    old = cstore.save_anonymous(None, {"a": "1"})
    sent = calls(cstore)
    new = cstore.save_anonymous(None, {"b": "2"}, replaces=old.token)
    assert len(sent) == 1 and new.created  # one script: same slot
    assert cstore.buckets.of_anonymous(new.aid) == cstore.buckets.of_anonymous(old.aid)
    assert cstore.read_anonymous(old.token) is None and cstore.read_anonymous(new.token).data == {"b": "2"}
    # a live token in another bucket than the one it replaces: saved there, the other ended after
    other = next(s for s in (cstore.save_anonymous(None, {"c": "3"}) for _ in range(200))
                 if cstore.buckets.of_anonymous(s.aid) != cstore.buckets.of_anonymous(new.aid))
    sent.clear()
    cstore.save_anonymous(other.token, {"d": "4"}, replaces=new.token)
    assert [r.name for r in sent] == ["anon_save", "anon_end"]
    assert cstore.read_anonymous(new.token) is None
    assert cstore.read_anonymous(other.token).data == {"c": "3", "d": "4"}


def test_sweep_ends_expired_sessions_in_every_bucket(cluster_url: str, clock) -> None:
    store = SessionStore.from_url(cluster_url, clock=clock, policy=Policy(idle_ttl=60))
    for i in range(40):
        store.login(f"sweepy{i}", app="crm")
    busy = {store.buckets.of_user(f"sweepy{i}") for i in range(40)}
    assert store.sweep_due() == (0, 0)
    clock.advance(61)
    assert store.sweep_due() == (40, 0)
    progress = []
    result = store.sweep(on_batch=progress.append)
    assert result.expired == 40 and result.calls == len(busy)  # idle buckets cost no script call
    assert progress[-1] == result and store.stats().active == 0
    assert store.sweep().calls == 0
    store.close()


def test_the_event_log_cap_is_set_in_every_bucket(cstore: SessionStore) -> None:
    cstore.set_event_log_max(50)
    raw = cstore.client
    assert {raw.hget(ctx.schema.settings, "event_log_max") for ctx in cstore.ctxs} == {"50"}
    assert cstore.settings() == {"event_log_max": "50"}


def test_audit_and_flags_live_in_one_deterministic_bucket(cstore: SessionStore, cluster_url: str,
                                                          clock) -> None:
    seq = cstore.audit("ssh_connect", actor="ops@ssh-key:SHA256:x", ip="192.0.2.1")
    log = cstore.client.lrange(cstore._for_user("ops@ssh-key:SHA256:x").schema.events, 0, -1)
    assert seq >= 1 and any('"ssh_connect"' in line for line in log)
    other = SessionStore.from_url(cluster_url, clock=clock)
    flag = Flag("spray:198.51.100.7", "spray", "198.51.100.7", {"users": 12}, clock.now)
    assert cstore.flag("raise", flag, actor="rules") is True
    assert other.flag("raise", flag, actor="rules") is False  # same bucket: raised once
    assert [f.id for f in other.flags()] == [flag.id]
    assert other.flag("clear", flag, actor="rules") is True and cstore.flags() == []
    other.close()


def test_restore_and_index_batches_write_each_session_in_its_bucket(cstore: SessionStore, clock) -> None:
    now = clock.now
    records = []
    for i in range(12):
        _token, sid = new_token(f"restored{i}")
        records.append((sid, {"username": f"restored{i}", "app": "crm", "status": "active",
                              "login_time": str(now), "last_seen": str(now), "expires_at": str(now + 600)}))
    result = cstore.restore_batch(records, trust=True)
    assert (result.written, result.skipped, result.problems) == (12, 0, [])
    for sid, fields in records:
        assert cstore.get(sid).username == fields["username"]
    assert cstore.stats().active == 12
    again = cstore.restore_batch(records, trust=True)
    assert (again.written, again.skipped) == (0, 12)
    # another app's hashes, written in their buckets by hand, are indexed in those buckets
    sids = []
    for i in range(6):
        _token, sid = new_token(f"foreign{i}")
        cstore.client.hset(cstore._for_sid(sid).schema.session(sid), mapping={
            "username": f"foreign{i}", "app": "legacy", "status": "active", "login_time": now,
            "last_seen": now, "expires_at": now + 600})
        sids.append(sid)
    indexed = cstore.index_batch(sids)
    assert indexed.written == 6 and cstore.stats().active == 18


def test_the_cli_finds_the_cluster_and_takes_the_bucket_count(cluster_url: str, capsys) -> None:
    from tui.cli import main

    store = SessionStore.from_url(cluster_url, buckets=16)
    session, _ = store.login("dora", app="crm")
    store.close()
    assert main(["--url", cluster_url, "--buckets", "16", "sessions"]) == 0
    assert session.sid[:8] in capsys.readouterr().out
    # the default 64 buckets is another layout: the bucket count is fixed for a deployment
    assert main(["--url", cluster_url, "--cluster", "sessions"]) == 0
    assert session.sid[:8] not in capsys.readouterr().out
    assert main(["--url", cluster_url, "--buckets", "16", "sweep"]) == 0
    assert "ended 0 expired" in capsys.readouterr().out


async def test_the_asyncio_store_waits_for_replicas_on_the_keys_node(cluster_url: str) -> None:
    store = AsyncSessionStore.from_url(cluster_url, policy=Policy(replica_acks=1))
    session, token = await store.login("erin", app="crm")  # one replica per master: confirmed
    assert (await store.validate(token)).sid == session.sid
    greedy = AsyncSessionStore.from_url(cluster_url, policy=Policy(replica_acks=2, replica_timeout_ms=100))
    with pytest.raises(NotReplicated):
        await greedy.login("erin", app="crm")
    await store.close()
    await greedy.close()
