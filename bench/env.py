"""The machine, the server and the library versions a run used, for RESULTS.md."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import redis

from core.embedded import RedisServer


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return f"{pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError):
        return "unknown"


def parser_in_use(client: redis.Redis) -> str:
    """The reply parser class and RESP version of a fresh connection of ``client``."""
    conn = client.connection_pool.make_connection()
    try:
        return f"{type(conn._parser).__name__} / RESP{conn.protocol or 2}"
    finally:
        conn.disconnect()


def describe(server: RedisServer, client: redis.Redis) -> list[tuple[str, str]]:
    info = client.info("server")
    return [
        ("machine", f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib()} RAM, {platform.platform()}"),
        ("Python", platform.python_version()),
        ("Redis", f"{info.get('redis_version')} ({server.binary}, {info.get('mem_allocator', '?')})"),
        ("redis-py", _version("redis")),
        ("hiredis", _version("hiredis")),
        ("parser in use", parser_in_use(client)),
        ("textual", _version("textual")),
        ("Flask / Flask-Session", f"{_version('flask')} / {_version('flask-session')}"),
    ]
