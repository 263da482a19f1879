"""Redis down, bad URLs and wrong passwords give clear errors, never "no session"."""

from __future__ import annotations

import time

import fakeredis
import pytest

from core import (
    AsyncSessionStore,
    ConnectOptions,
    InvalidInput,
    SessionStore,
    StoreUnavailable,
    redact_url,
)
from core.embedded import RedisServer, free_port

FAST = ConnectOptions(socket_timeout=0.3, connect_timeout=0.3, retries=1, backoff_cap=0.05)


def test_unreachable_server_raises_store_unavailable_within_bound():
    store = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", options=FAST)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        store.validate("abcd." + "A" * 43)
    assert time.monotonic() - started <= FAST.worst_case_seconds + 0.5
    assert "\n" not in str(err.value) and "cannot reach Redis" in str(err.value)


def test_frozen_server_raises_within_bound():
    with RedisServer(args=["--save", ""]) as server:
        store = SessionStore.from_url(server.url, options=FAST)
        session, token = store.login("alice", app="crm")
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.validate(token)
            elapsed = time.monotonic() - started
        finally:
            server.resume()
        assert elapsed <= FAST.worst_case_seconds + 0.5
        assert store.validate(token).sid == session.sid
        store.close()


def test_wrong_password_is_one_line():
    with RedisServer(args=["--save", "", "--requirepass", "right"]) as server:
        url = f"redis://:s3cr3t-nope@127.0.0.1:{server.port}/0"
        store = SessionStore.from_url(url, options=FAST)
        with pytest.raises(StoreUnavailable) as err:
            store.stats()
        assert "credentials" in str(err.value) or "password" in str(err.value).lower()
        assert "s3cr3t-nope" not in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "", "redis://127.0.0.1:notaport/0"])
def test_bad_url_is_invalid_input(url):
    with pytest.raises((InvalidInput, StoreUnavailable)) as err:
        SessionStore.from_url(url, options=FAST).ping()
    assert "\n" not in str(err.value)


def test_fakeredis_outage_is_unavailable_not_none():
    server = fakeredis.FakeServer()
    store = SessionStore(fakeredis.FakeRedis(server=server, decode_responses=True))
    session, token = store.login("bob", app="crm")
    server.connected = False
    with pytest.raises(StoreUnavailable):
        store.validate(token)
    server.connected = True
    assert store.validate(token).sid == session.sid


async def test_async_unreachable_raises_store_unavailable():
    store = AsyncSessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", options=FAST)
    with pytest.raises(StoreUnavailable):
        await store.stats()
    await store.close()


def test_redact_url_hides_passwords():
    assert redact_url("redis://user:s3cret@127.0.0.1:21084/0") == "redis://user:***@127.0.0.1:21084/0"
    assert "s3cret" not in redact_url("rediss://:s3cret@host/0?password=s3cret")
