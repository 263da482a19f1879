"""Redis behind Sentinel: the URL, the store, the feed and the CLI through a real loopback
group (master, replica, three sentinels), and a failover under a steady login load."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from core import AsyncSessionStore, NotReplicated, Policy, SessionStore
from core.connection import ConnectOptions, redact_url
from core.errors import InvalidInput, StoreError
from core.feed import EventFeed
from core.sentinel import parse_url
from tests.faults.sentinel import SentinelGroup
from tests.faults.server import wait_until

pytestmark = pytest.mark.real


# --- the URL ------------------------------------------------------------------------------
def test_url_lists_sentinels_service_db_and_credentials() -> None:
    t = parse_url("redis+sentinel://app:p%2Fw%3Fd@10.0.0.1:26379,[::1]:26380,host3/mysvc/2"
                  "?sentinel_password=s3")
    assert t.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("host3", 26379))
    assert (t.service, t.db, t.username, t.password, t.tls) == ("mysvc", 2, "app", "p/w?d", False)
    assert t.sentinel_password == "s3"
    assert parse_url("rediss+sentinel://h:1/s").tls is True


@pytest.mark.parametrize("url, why", [
    ("redis+sentinel://h:26379", "names no service"),
    ("redis+sentinel://h:26379/svc/x", "database must be a number"),
    ("redis+sentinel://h:99999/svc", "port must be 1-65535"),
    ("redis+sentinel://h:1/svc/0/extra", "more than"),
])
def test_bad_sentinel_url_is_one_clear_error(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        SessionStore.from_url(url)


def test_sentinel_url_password_is_redacted() -> None:
    shown = redact_url("redis+sentinel://app:s3cr3t@127.0.0.1:26379,127.0.0.1:26380/svc/0")
    assert "s3cr3t" not in shown and "127.0.0.1:26380/svc/0" in shown


# --- a running group ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    g = SentinelGroup().start()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture
def sentinel_url(group: SentinelGroup) -> str:
    port = group.master_port()
    client = redis.Redis(port=port)
    client.flushall()
    client.close()
    return group.url


def test_store_works_through_sentinel(sentinel_url: str, group: SentinelGroup) -> None:
    with SessionStore.from_url(sentinel_url) as store:
        session, token = store.login("alice", app="crm", ip="10.0.0.7")
        assert store.validate(token).sid == session.sid
        assert store.target()["sentinel"] == "sw"
        assert store.target()["master"] == f"127.0.0.1:{group.master_port()}"
        assert store.logout(session.sid, actor="root") is True
        assert store.validate(token) is None
        assert store.stats().active == 0


async def test_async_store_works_through_sentinel(sentinel_url: str) -> None:
    store = AsyncSessionStore.from_url(sentinel_url)
    try:
        session, token = await store.login("bob", app="shop")
        assert (await store.validate(token)).sid == session.sid
        page = await store.active_page()
        assert [s.sid for s in page.sessions] == [session.sid]
    finally:
        await store.close()


def test_feed_delivers_events_through_sentinel(sentinel_url: str) -> None:
    with SessionStore.from_url(sentinel_url) as store:
        feed = EventFeed(store, heartbeat=0.5)
        stop = threading.Event()
        seen: list[str] = []

        def read() -> None:
            for item in feed.run(stop):
                kind = getattr(item, "kind", None)
                if kind:
                    seen.append(kind)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            # The feed subscribes, then catches up from the log: logins before or after
            # the subscription are all delivered.
            for i in range(3):
                store.login(f"u{i}", app="crm")
            wait_until(lambda: seen.count("login") >= 3, timeout=20)
        finally:
            stop.set()
            reader.join(timeout=10)
            feed.close()
        assert seen.count("login") == 3


def test_cli_reads_through_sentinel(sentinel_url: str) -> None:
    with SessionStore.from_url(sentinel_url) as store:
        store.login("carol", app="crm", ip="10.1.1.1")
    out = subprocess.run([sys.executable, "-m", "tui.cli", "--url", sentinel_url, "sessions", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [r["username"] for r in rows] == ["carol"]


# --- failover ---------------------------------------------------------------------------------
class LoginLoad:
    """Logins in a thread until stopped, recording which were acknowledged and which failed."""

    def __init__(self, url: str, policy: Policy | None = None) -> None:
        opts = ConnectOptions(socket_timeout=0.5, connect_timeout=0.5, retries=1)
        self.store = SessionStore.from_url(url, options=opts, policy=policy)
        self.acked: list[str] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                session, _ = self.store.login(f"load{i % 500}", app="crm")
                self.acked.append(session.sid)
            except StoreError:
                self.failures += 1
                self.stop.wait(0.05)
            i += 1

    def __enter__(self) -> LoginLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.store.close()


def test_replica_acks_refuses_to_acknowledge_an_unreplicated_write(real_url: str) -> None:
    """A lone server has no replica: with replica_acks=1 every write raises NotReplicated
    (it happened on the master; the caller is told it is not yet safe)."""
    policy = Policy(replica_acks=1, replica_timeout_ms=50)
    with SessionStore.from_url(real_url, policy=policy) as store:
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            store.login("dave", app="crm")
        assert store.stats().active == 1


def test_replica_acks_covers_session_data_but_not_anonymous_data(real_url: str) -> None:
    """Web-framework data saved in a user session waits for replicas like every other
    user-session write; anonymous data (before login) stays asynchronous, by design."""
    with SessionStore.from_url(real_url) as plain:
        session, token = plain.login("dave", app="crm")
    with SessionStore.from_url(real_url, policy=Policy(replica_acks=1, replica_timeout_ms=50)) as store:
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            store.save_data(session.sid, {"cart": "[1]"})
        assert store.validate(token).metadata["d:cart"] == "[1]"  # reached the master
        saved = store.save_anonymous(None, {"csrf": '"x"'}, app="crm")
        assert store.read_anonymous(saved.token).data == {"csrf": '"x"'}


async def test_replica_acks_covers_session_data_async(real_url: str) -> None:
    plain = AsyncSessionStore.from_url(real_url)
    store = AsyncSessionStore.from_url(real_url, policy=Policy(replica_acks=1, replica_timeout_ms=50))
    try:
        session, _ = await plain.login("erin", app="crm")
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            await store.save_data(session.sid, {"cart": "[2]"})
        saved = await store.save_anonymous(None, {"csrf": '"y"'}, app="crm")
        assert saved.token is not None
    finally:
        await plain.close()
        await store.close()


async def test_replica_acks_async_through_sentinel(sentinel_url: str) -> None:
    store = AsyncSessionStore.from_url(sentinel_url, policy=Policy(replica_acks=1))
    try:
        session, token = await store.login("erin", app="crm")
        assert (await store.validate(token)).sid == session.sid
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.parametrize("acks", [0, 1])
def test_failover_under_login_load(acks: int) -> None:
    """kill -9 of the master: sentinels promote the replica, the same store follows it and
    logins resume. The crashed server is then restarted as a replica of the new master, as
    an operator would once the sentinels agree. Without replica_acks, acknowledged logins lost to
    asynchronous replication are counted (few); with replica_acks=1, none is lost (and
    while no replica is back, logins are refused as NotReplicated rather than acknowledged)."""
    g = SentinelGroup().start()
    try:
        with LoginLoad(g.url, Policy(replica_acks=acks)) as load:
            wait_until(lambda: len(load.acked) >= 200, timeout=60)
            crashed, promoted = g.kill_master()
            killed_at = time.monotonic()
            before = len(load.acked)
            wait_until(lambda: g.master_port() == promoted.port, timeout=60)
            g.rejoin(crashed, promoted)
            wait_until(lambda: len(load.acked) >= before + 200, timeout=60)
            resumed_after = time.monotonic() - killed_at
        assert load.failures > 0, "the failover was not noticed at all"
        client = redis.Redis(port=promoted.port, decode_responses=True)
        try:
            present = {sid for sid in load.acked if client.exists(f"session:{sid}")}
        finally:
            client.close()
        lost = len(load.acked) - len(present)
        if acks:
            assert lost == 0, (lost, len(load.acked))
        else:  # asynchronous replication: a handful may be lost; far fewer than were written
            assert lost < len(load.acked) // 10, (lost, len(load.acked))
        print(f"failover (replica_acks={acks}): resumed after {resumed_after:.1f} s, "
              f"{lost} of {len(load.acked)} acked logins lost")
    finally:
        g.stop()
