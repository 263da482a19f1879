"""Redis behind Sentinel: the ``redis+sentinel://`` URL and clients that follow failovers.

The URL is the form other ecosystems use (Lettuce, ioredis, go-redis)::

    redis+sentinel://[user:pass@]host:port[,host:port...]/service_name[/db][?option=value]

The credentials are the data nodes' (master and replicas); sentinels that need their own
are given with ``sentinel_username`` and ``sentinel_password`` query options.
``rediss+sentinel://`` talks TLS to the data nodes. redis-py does the rest: it asks the
sentinels for the current master before each new connection and drops connections to a
demoted one.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from .errors import InvalidInput

SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme in SCHEMES


def parse_url(url: str) -> SentinelTarget:
    """Parse a sentinel URL; raises :class:`InvalidInput` naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidInput("url", "is not a redis+sentinel:// URL")
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        creds, netloc = netloc.rsplit("@", 1)
        user, _, pw = creds.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(pw) if pw else None
    sentinels: list[tuple[str, int]] = []
    for hostport in netloc.split(","):
        host, port = _host_port(hostport)
        sentinels.append((host, port))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise InvalidInput("url", "names no service: redis+sentinel://host:port/service_name[/db]")
    service = urllib.parse.unquote(path[0])
    db = 0
    if len(path) > 1:
        if not path[1].isdigit():
            raise InvalidInput("url", f"database must be a number, got {path[1][:20]!r}")
        db = int(path[1])
    if len(path) > 2:
        raise InvalidInput("url", "has more than /service_name/db in its path")
    query = dict(urllib.parse.parse_qsl(parts.query))
    return SentinelTarget(sentinels=tuple(sentinels), service=service, db=db, username=username,
                          password=password, tls=parts.scheme.startswith("rediss"),
                          sentinel_username=query.get("sentinel_username"),
                          sentinel_password=query.get("sentinel_password"))


def _host_port(hostport: str) -> tuple[str, int]:
    hostport = hostport.strip()
    if hostport.startswith("["):  # [::1]:26379
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host:
        raise InvalidInput("url", "lists a sentinel with no host")
    if not port_text:
        return host, 26379
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput("url", f"sentinel port must be 1-65535, got {port_text[:20]!r}")
    return host, int(port_text)


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool with the blocking pool's bounded wait for a free connection, as the
    single-node clients have (callers beyond the pool size queue instead of failing)."""


class _AsyncBlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool,
                                 redis.asyncio.BlockingConnectionPool):
    """The asyncio counterpart of :class:`_BlockingSentinelPool`."""


def _sentinel_kwargs(target: SentinelTarget, client_kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = {k: v for k, v in client_kwargs.items() if k.startswith("socket_")}
    if target.sentinel_username:
        kw["username"] = target.sentinel_username
    if target.sentinel_password:
        kw["password"] = target.sentinel_password
    return kw


def _node_kwargs(target: SentinelTarget, client_kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = dict(client_kwargs)
    kw.update(db=target.db, username=target.username, password=target.password)
    if target.tls:
        kw["ssl"] = True
    return kw


def sync_client(target: SentinelTarget, client_kwargs: dict[str, Any], retry: Any) -> redis.Redis:
    manager = redis.sentinel.Sentinel(list(target.sentinels),
                                      sentinel_kwargs=_sentinel_kwargs(target, client_kwargs))
    return manager.master_for(target.service, connection_pool_class=_BlockingSentinelPool,
                              retry=retry, **_node_kwargs(target, client_kwargs))


def async_client(target: SentinelTarget, client_kwargs: dict[str, Any], retry: Any) -> redis.asyncio.Redis:
    manager = redis.asyncio.sentinel.Sentinel(list(target.sentinels),
                                              sentinel_kwargs=_sentinel_kwargs(target, client_kwargs))
    return manager.master_for(target.service, connection_pool_class=_AsyncBlockingSentinelPool,
                              retry=retry, **_node_kwargs(target, client_kwargs))


def describe(client: Any) -> dict[str, Any] | None:
    """The sentinel service and the master it was last seen at, or None for other clients."""
    pool = client.connection_pool
    if not isinstance(pool, redis.sentinel.SentinelConnectionPool
                      | redis.asyncio.sentinel.SentinelConnectionPool):
        return None
    master = pool.master_address
    kw = pool.connection_kwargs
    return {"sentinel": pool.service_name,
            "master": f"{master[0]}:{master[1]}" if master else None,
            "db": kw.get("db", 0), "username": kw.get("username"),
            "tls": "SSL" in pool.connection_class.__name__}
