"""Building redis-py clients with explicit timeouts, and mapping their errors.

redis-py 8.1 defaults to 5 s socket timeouts and, on a client, 10 retries (over a minute
before a frozen server raises); a ``retry`` given to a client whose pool is passed in
is not applied to the pool's connections. So sessionwatch sets the timeouts on the pool
and retries reads itself (core.store, core.aio), and a call fails within
:attr:`ConnectOptions.worst_case_seconds`, pool wait included.
"""

from __future__ import annotations

import random
import urllib.parse
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import sentinel
from .errors import DataConflict, InvalidInput, PermissionDenied, StoreError, StoreUnavailable

DEFAULT_URL = "redis://127.0.0.1:21084/0"


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    socket_timeout: float = 1.0
    """Seconds one command may wait for its reply."""
    connect_timeout: float = 1.0
    retries: int = 1
    """Retries of a read (and of validate) after a connection error or timeout, with
    jittered exponential backoff. Writes are never retried: a write that timed out may
    or may not have happened (README, Reliability)."""
    backoff_base: float = 0.05
    backoff_cap: float = 0.5
    max_connections: int = 20
    pool_timeout: float = 1.0
    """Seconds a caller waits for a free pooled connection (blocking pool); counted in
    :attr:`worst_case_seconds`, so more callers than connections still fail in time."""

    @property
    def per_try_seconds(self) -> float:
        """One attempt: the wait for a pooled connection, connecting, a new connection's
        handshake and the command itself (each reply waits up to ``socket_timeout``)."""
        return self.pool_timeout + self.connect_timeout + 2 * self.socket_timeout

    @property
    def worst_case_seconds(self) -> float:
        """Upper bound on how long one call can take before it raises StoreUnavailable,
        however many callers share the pool (the asyncio store enforces it as a deadline)."""
        return (self.retries + 1) * self.per_try_seconds + self.retries * self.backoff_cap

    def backoff(self, failures: int) -> float:
        """Seconds to wait before retry number ``failures`` (full jitter, capped)."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** failures))


def _client_kwargs(opts: ConnectOptions) -> dict[str, Any]:
    return {
        "socket_timeout": opts.socket_timeout,
        "socket_connect_timeout": opts.connect_timeout,
        "decode_responses": True,
        "encoding_errors": "replace",
        "max_connections": opts.max_connections,
        "timeout": opts.pool_timeout,
    }


def _ambiguous_credentials(url: str) -> bool:
    """Whether an ``@`` follows the end of the URL's authority: a password holding a raw
    ``/``, ``?`` or ``#`` (which end the authority), so no parser can tell where the
    password stops and the host begins."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return False
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return "@" in rest[end:] and scheme in ("redis", "rediss", *sentinel.SCHEMES)


def _check_url(url: str) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidInput("url", "is empty")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix", *sentinel.SCHEMES):
        raise InvalidInput("url", "scheme must be redis://, rediss://, unix:// or redis+sentinel://, "
                                  f"got {redact_url(url)!r}")
    if _ambiguous_credentials(url):
        raise InvalidInput("url", f"cannot tell the password from the host in {redact_url(url)}: "
                                  "percent-encode '/', '?', '#' and '@' in it (%2F %3F %23 %40) "
                                  "or use a password file")


def _from_url(pool_class: Any, url: str, opts: ConnectOptions) -> Any:
    _check_url(url)
    try:
        return pool_class.from_url(url, **_client_kwargs(opts))
    except (ValueError, TypeError) as exc:
        # redis-py's message may quote parts of the URL (a port that is really part of a
        # password): say only which URL, redacted.
        raise InvalidInput("url", f"cannot parse {redact_url(url)} ({type(exc).__name__})") from None


def cluster_enabled(url: str, opts: ConnectOptions | None = None) -> bool | None:
    """Whether ``url`` names a Redis Cluster node (``cluster_enabled:1`` in INFO cluster):
    one short-lived connection with the store's timeouts. ``None`` if the server cannot be
    asked (unreachable, or INFO denied): the caller decides."""
    opts = opts or ConnectOptions()
    if sentinel.is_sentinel_url(url):
        return False
    _check_url(url)
    kwargs = {k: v for k, v in _client_kwargs(opts).items() if k not in ("max_connections", "timeout")}
    try:
        probe = redis.Redis.from_url(url, **kwargs, retry=Retry(NoBackoff(), 0))
    except (ValueError, TypeError):
        return None
    try:
        info = probe.info("cluster")
    except REDIS_ERRORS:
        return None
    finally:
        probe.close()
    return str(info.get("cluster_enabled", 0)) == "1" if isinstance(info, dict) else None


def _want_cluster(url: str, opts: ConnectOptions, cluster: bool | None) -> bool:
    if cluster is not None:
        if cluster and sentinel.is_sentinel_url(url):
            raise InvalidInput("url", "a redis+sentinel:// URL names a Sentinel service, not a cluster")
        return cluster
    return bool(cluster_enabled(url, opts))


def _cluster_kwargs(opts: ConnectOptions) -> dict[str, Any]:
    """The single-node options, plus no retries of redis-py's own (after a broken
    connection it refreshes the slot map and raises; the stores retry reads, never
    writes, as on one node). MOVED and ASK are still followed at once."""
    return {**_client_kwargs(opts), "retry": Retry(NoBackoff(), 0)}


def _from_url_cluster(cluster_class: Any, url: str, kwargs: dict[str, Any]) -> Any:
    _check_url(url)
    if url.startswith("unix://"):
        raise InvalidInput("url", "a Redis Cluster is reached over TCP: use redis:// or rediss://")
    try:
        return cluster_class.from_url(url, **kwargs)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("url", f"cannot parse {redact_url(url)} ({type(exc).__name__})") from None


def sync_client(url: str, opts: ConnectOptions | None = None, *, cluster: bool | None = None) -> Any:
    """A client for ``url``: behind Sentinel, a Redis Cluster (detected, or forced with
    ``cluster=True``) or one server."""
    opts = opts or ConnectOptions()
    if sentinel.is_sentinel_url(url) and not cluster:
        _check_url(url)
        # no redis-py retry: the stores retry reads themselves (see the module docstring)
        return sentinel.sync_client(sentinel.parse_url(url), _client_kwargs(opts), None)
    if _want_cluster(url, opts, cluster):
        kwargs = {**_cluster_kwargs(opts), "connection_pool_class": redis.BlockingConnectionPool}
        try:
            return _from_url_cluster(redis.cluster.RedisCluster, url, kwargs)
        except (redis.exceptions.RedisClusterException, *REDIS_ERRORS) as exc:
            # the sync client maps the slots at once: no node answered as a cluster node
            raise StoreUnavailable(f"no Redis Cluster answered at {redact_url(url)} "
                                   f"({type(exc).__name__}; a single server? then not --cluster)") from None
    return redis.Redis(connection_pool=_from_url(redis.BlockingConnectionPool, url, opts))


def async_client(url: str, opts: ConnectOptions | None = None, *, cluster: bool | None = None) -> Any:
    """The asyncio client for ``url`` (see :func:`sync_client`). Detecting a cluster asks
    the server once, synchronously, with the store's timeouts."""
    opts = opts or ConnectOptions()
    if sentinel.is_sentinel_url(url) and not cluster:
        _check_url(url)
        return sentinel.async_client(sentinel.parse_url(url), _client_kwargs(opts), None)
    if _want_cluster(url, opts, cluster):
        # the asyncio cluster client keeps its own connections per node (no blocking
        # pool); the store's deadline bounds every call instead
        kwargs = {k: v for k, v in _cluster_kwargs(opts).items() if k != "timeout"}
        return _from_url_cluster(redis.asyncio.cluster.RedisCluster, url, kwargs)
    return redis.asyncio.Redis(connection_pool=_from_url(redis.asyncio.BlockingConnectionPool, url, opts))


def is_cluster_client(client: object) -> bool:
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def _redact_query(query: str) -> str:
    params = [(k, "***" if "password" in k.lower() else v)
              for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    return urllib.parse.urlencode(params, safe="*/") if params else ""


def _opaque(scheme: str, rest: str) -> str:
    """A URL that cannot be parsed reliably: everything before its last ``@`` hidden, no
    fragment, password-like query parameters hidden."""
    where = rest.rsplit("@", 1)[-1].split("#", 1)[0]
    where, _, query = where.partition("?")
    query = _redact_query(query)
    return f"{scheme}://{'***@' if '@' in rest else ''}{where}" + (f"?{query}" if query else "")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``: safe to show and to log.

    Built from what redis-py parses (so it names what will really be used); a URL whose
    password holds a raw ``/``, ``?`` or ``#`` cannot be parsed reliably, so everything
    before its last ``@`` is hidden."""
    if not isinstance(url, str):
        return "<not a url>"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparseable url>"
    if _ambiguous_credentials(url) or "#" in rest or scheme not in ("redis", "rediss", "unix"):
        return _opaque(scheme, rest)
    try:
        kw = redis.connection.parse_url(url)
    except (ValueError, TypeError):
        return _opaque(scheme, rest)
    user = urllib.parse.quote(kw.get("username") or "", safe="")
    creds = f"{user}:***@" if kw.get("password") else (f"{user}@" if user else "")
    if "@" not in urllib.parse.urlsplit(url).netloc:
        creds = ""  # credentials given as query parameters (unix://...?password=): shown there
    query = urllib.parse.urlsplit(url).query
    if scheme == "unix":
        where = urllib.parse.quote(str(kw.get("path", "")), safe="/")
        others = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k != "db"]
        query = urllib.parse.urlencode([("db", str(kw.get("db", 0))), *others])
    else:
        host = str(kw.get("host", ""))
        host = f"[{host}]" if ":" in host else urllib.parse.quote(host, safe=".-_~")
        where = f"{host}:{kw['port']}" if "port" in kw else host
        where += f"/{kw['db']}" if "db" in kw else ""
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode([(k, v) for k, v in pairs if k != "db"])
    query = _redact_query(query)
    return f"{scheme}://{creds}{where}" + (f"?{query}" if query else "")


def _describe_cluster(client: Any) -> dict[str, Any]:
    if isinstance(client, redis.cluster.RedisCluster):
        kw = client.nodes_manager.connection_kwargs
    else:
        kw = client.connection_kwargs
    nodes = client.get_nodes()
    primaries = sorted(n.name for n in nodes if n.server_type == redis.cluster.PRIMARY)
    replicas = sorted(n.name for n in nodes if n.server_type == redis.cluster.REPLICA)
    first = client.get_default_node() or (nodes[0] if nodes else None)
    return {
        "host": getattr(first, "host", None),
        "port": getattr(first, "port", None),
        "path": None,
        "db": 0,
        "username": kw.get("username"),
        "tls": "ssl" in str(kw.get("connection_class", "")).lower() or bool(kw.get("ssl")),
        "cluster": True,
        "primaries": primaries,
        "replicas": replicas,
    }


def describe_target(client: Any) -> dict[str, Any]:
    """Where a client points (host, port or path, db, username; behind Sentinel the service
    and its current master; on a cluster the node it was given and the primaries and
    replicas it knows); never the password."""
    if is_cluster_client(client):
        return _describe_cluster(client)
    behind_sentinel = sentinel.describe(client)
    if behind_sentinel is not None:
        return behind_sentinel
    kw = client.connection_pool.connection_kwargs
    return {
        "host": kw.get("host"),
        "port": kw.get("port"),
        "path": kw.get("path"),
        "db": kw.get("db", 0),
        "username": kw.get("username"),
        "tls": "ssl" in type(client.connection_pool.connection_class).__name__.lower()
        or client.connection_pool.connection_class.__name__.startswith("SSL"),
    }


_OUTAGE_REPLIES: dict[str, str] = {
    "BUSY": "Redis is busy running a script (another client's); try again shortly",
    "MISCONF": "Redis refuses writes because it cannot persist to disk "
               "(stop-writes-on-bgsave-error); check its log",
    "LOADING": "Redis is loading its data set; try again shortly",
    "NOREPLICAS": "Redis refuses writes: not enough replicas are connected (min-replicas-to-write)",
    "MASTERDOWN": "Redis is a replica that lost its primary; try again shortly",
    "CLUSTERDOWN": "the Redis Cluster is down (a slot has no reachable primary); try again shortly",
    "TRYAGAIN": "the Redis Cluster is moving the keys' slot; try again shortly",
}
"""Error replies that mean "the server cannot serve now", not "this request is wrong"."""


def outage_reply(reply: object) -> bool:
    """Whether a command's reply is an error that means Redis is unavailable (BUSY,
    MISCONF, ...): plans read failed pipeline entries as missing data, so the stores
    raise these instead of handing them to the plan."""
    if not isinstance(reply, redis.exceptions.RedisError):
        return False
    if isinstance(reply, redis.exceptions.BusyLoadingError | redis.exceptions.ClusterDownError
                  | redis.exceptions.TryAgainError):
        return True
    return str(reply).split(" ", 1)[0] in _OUTAGE_REPLIES


RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError,
    redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError, redis.exceptions.SlotNotCoveredError)
"""Failures worth one more try of a read: the connection broke or timed out, or the
cluster is failing over (its slot map was refreshed meanwhile)."""


def retryable_failure(exc: BaseException) -> bool:
    """A broken or timed-out connection, but not an empty pool (waiting again would only
    spend the budget) nor a refused login (a retry cannot fix credentials)."""
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    return isinstance(exc, RETRYABLE_ERRORS) and "No connection available" not in str(exc)


def raise_outage(replies: list[Any]) -> list[Any]:
    """``replies``, unless one of them says Redis is unavailable: then raise it."""
    for reply in replies:
        if outage_reply(reply):
            raise reply
    return replies


def map_error(exc: BaseException) -> StoreError:
    """One-line store error for a redis-py exception."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # Our scripts refuse with "SWDATA <key> <problem>; nothing was changed" (all or nothing).
    if msg.startswith("SWDATA "):
        return DataConflict(f"Redis data conflict: {msg[len('SWDATA '):]}")
    # Inside a Lua script Redis 7 reports an ACL refusal as "The user executing the
    # script can't run this command / access ... keys / publish to the channel".
    if (isinstance(exc, redis.exceptions.NoPermissionError) or msg.startswith("NOPERM")
            or "user executing the script can't" in msg):
        return PermissionDenied(f"Redis denied the command: {msg}")
    # With RESP3 an unauthenticated HELLO fails as "HELLO must be called with the client
    # already authenticated": say what that means instead of passing it on.
    if "NOAUTH" in msg or "HELLO must be called" in msg:
        return StoreUnavailable("Redis requires authentication: give a user name and password")
    auth_errors = (redis.exceptions.AuthenticationError,
                   redis.exceptions.AuthenticationWrongNumberOfArgsError)
    if isinstance(exc, auth_errors) or "WRONGPASS" in msg:
        return StoreUnavailable("Redis refused the credentials: wrong user name or password, "
                                "or the user is disabled")
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return StoreUnavailable(_OUTAGE_REPLIES["LOADING"])
    if isinstance(exc, redis.exceptions.MasterDownError):
        return StoreUnavailable(_OUTAGE_REPLIES["MASTERDOWN"])
    if isinstance(exc, redis.exceptions.ClusterDownError | redis.exceptions.SlotNotCoveredError):
        return StoreUnavailable(_OUTAGE_REPLIES["CLUSTERDOWN"])
    if isinstance(exc, redis.exceptions.TryAgainError):
        return StoreUnavailable(_OUTAGE_REPLIES["TRYAGAIN"])
    if msg.split(" ", 1)[0] in _OUTAGE_REPLIES:
        return StoreUnavailable(_OUTAGE_REPLIES[msg.split(" ", 1)[0]])
    if isinstance(exc, redis.exceptions.TimeoutError):
        return StoreUnavailable(f"Redis did not answer in time: {msg}")
    if isinstance(exc, redis.exceptions.ConnectionError):
        return StoreUnavailable(f"cannot reach Redis: {msg}")
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return StoreUnavailable("Redis is a read-only replica; writes need the primary")
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or msg.startswith("OOM"):
        return StoreUnavailable("Redis is out of memory and refuses writes (maxmemory, noeviction)")
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return StoreUnavailable(f"cannot reach Redis: {msg}")
    return StoreError(f"Redis error: {msg}")


REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError,
                                                 redis.exceptions.RedisClusterException)
"""What a redis-py call may raise (the cluster client's own checks, such as keys of
different slots in one script, are not RedisErrors)."""
