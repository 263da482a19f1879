"""Plain data returned by the store, and the pure functions that parse Redis replies.

No I/O here: the sync and async stores share these parsers. Parsers never raise on
malformed data written by other apps; they keep what they can and list the rest in
``problems``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from .tokens import short_id
from .validation import RESERVED_FIELDS

ACTIVE = "active"
INACTIVE = "inactive"
EVENT_KINDS = ("login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile",
               "flag_raised", "flag_cleared")


MAX_EPOCH = 253402214400.0
"""9999-12-31 UTC: any later instant cannot be shown as a date (Python stops at year 9999)."""
_MS, _US, _NS = 1e11, 1e14, 1e17
"""Seconds epochs stay below 1e11 (year 5138); above, the value is read as milliseconds
(what JavaScript writes, 1764500000000), then microseconds, then nanoseconds."""


def read_epoch(value: Any) -> tuple[float | None, str]:
    """Epoch seconds from a stored value, and why it is invalid (``""`` when it is fine).

    Total: numbers (seconds, or millisecond, microsecond, nanosecond epochs, recognised by
    size), ISO 8601 text, and anything else, which gives ``(None, why)``. NaN, infinities,
    negative or out-of-range instants are invalid. Absent (``None``, ``""``) is
    ``(None, "")``."""
    if value is None or value == "" or value == b"":
        return None, ""
    if isinstance(value, bool):
        return None, "not a time"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    number: float | None = None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None, "out of range"
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
        except OverflowError:  # pragma: no cover - float() of text gives inf instead
            return None, "out of range"
    else:
        return None, f"not a time ({type(value).__name__})"
    if number is None:
        try:
            text = value.strip().replace("Z", "+00:00")
            number = datetime.fromisoformat(text).timestamp()
        except (ValueError, OverflowError, OSError):
            return None, "not a time"
    if not math.isfinite(number):
        return None, "not a finite number"
    if number < 0:
        return None, "before 1970"
    if number >= _NS:
        number /= 1e9
    elif number >= _US:
        number /= 1e6
    elif number >= _MS:
        number /= 1e3
    if number >= MAX_EPOCH:
        return None, "out of range"
    return number, ""


def parse_time(value: Any) -> float | None:
    """Epoch seconds from what we write (``"1764070000.123"``), millisecond epochs and
    ISO 8601; ``None`` if absent or invalid (see :func:`read_epoch` for why)."""
    return read_epoch(value)[0]


def fmt_time(ts: float) -> str:
    """How timestamps are stored: epoch seconds with millisecond precision."""
    return f"{ts:.3f}"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    username: str
    app: str = ""
    type: str = ""
    ip: str = ""
    user_agent: str = ""
    login_time: float | None = None
    last_seen: float | None = None
    expires_at: float | None = None
    max_expires_at: float | None = None
    logout_time: float | None = None
    status: str = ACTIVE
    end_reason: str = ""
    ended_by: str = ""
    email: str = ""
    department: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """What could not be read from the stored hash (compat with other writers)."""

    @property
    def short_id(self) -> str:
        return short_id(self.sid)

    def is_active(self, now: float) -> bool:
        """Active means status active and not past expiry, whether or not a sweep ran."""
        if self.status != ACTIVE:
            return False
        return self.expires_at is None or self.expires_at > now

    def to_dict(self) -> dict[str, Any]:
        return {
            "sid": self.sid, "username": self.username, "app": self.app, "type": self.type,
            "ip": self.ip, "user_agent": self.user_agent, "login_time": self.login_time,
            "last_seen": self.last_seen, "expires_at": self.expires_at,
            "max_expires_at": self.max_expires_at, "logout_time": self.logout_time,
            "status": self.status, "end_reason": self.end_reason, "ended_by": self.ended_by,
            "email": self.email, "department": self.department, "metadata": dict(self.metadata),
        }


_TIME_FIELDS = ("login_time", "last_seen", "expires_at", "max_expires_at", "logout_time")


def pairs_to_dict(reply: Any) -> dict[str, str]:
    """HGETALL replies come as a dict (RESP3/redis-py) or a flat list (from Lua)."""
    if isinstance(reply, dict):
        data = reply
    elif isinstance(reply, list | tuple):
        it = iter(reply)
        data = dict(zip(it, it, strict=False))
    else:
        return {}
    # Clients decode replies (decode_responses=True), so this is nearly always a no-op
    # check; bytes only come from clients configured otherwise.
    if all(type(k) is str and type(v) is str for k, v in data.items()):
        return data if data is not reply else dict(data)
    return {_s(k): _s(v) for k, v in data.items()}


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        try:
            return str(value)
        except ValueError:  # an int too long to print
            return "<number>"
    return f"<{type(value).__name__}>"  # never str() a foreign structure (it may nest 1000 deep)


def _session_builder() -> Callable[..., Session]:
    """A constructor for :class:`Session` that sets its slots directly: the frozen
    dataclass ``__init__`` goes through ``object.__setattr__`` once per field, which is
    most of what parsing a session costs on validate's read path."""
    setters = [getattr(Session, f.name).__set__ for f in fields(Session)]
    names = [f.name for f in fields(Session)]
    env: dict[str, Any] = {f"_set{i}": fn for i, fn in enumerate(setters)}
    env["_new"], env["_cls"] = object.__new__, Session
    body = "".join(f"    _set{i}(s, {name})\n" for i, name in enumerate(names))
    exec(f"def build({', '.join(names)}):\n    s = _new(_cls)\n{body}    return s\n", env)
    return env["build"]  # type: ignore[no-any-return]


_build_session = _session_builder()


def parse_session(sid: str, reply: Any) -> Session | None:
    """A :class:`Session` from an HGETALL reply; ``None`` if the hash is empty/missing.

    A reply that is an exception (WRONGTYPE from a pipeline) yields a session that says so.
    This runs on every validate, so it is written for speed: a decoded dict reply (what
    the stores' clients give) is read in place, and the Session is built slot by slot.
    """
    if type(reply) is dict and reply and _all_text(reply):
        data: dict[str, str] = reply
    elif isinstance(reply, Exception):
        return Session(sid=sid, username="?", status="unreadable",
                       problems=(f"session key unreadable: {str(reply)[:80]}",))
    else:
        data = pairs_to_dict(reply)
        if not data:
            return None
    get = data.get
    try:  # the common case, what sessionwatch writes for an active session
        lt, ls, ex = float(data["login_time"]), float(data["last_seen"]), float(data["expires_at"])
        # Chained comparisons, so NaN (which compares false) takes the checked path.
        fast = (0.0 <= lt < _MS and 0.0 <= ls < _MS and 0.0 <= ex < _MS and "max_expires_at" not in data
                and "logout_time" not in data)
    except (KeyError, ValueError):
        fast = False
    problems: list[str] = []
    if fast:
        times: list[float | None] = [lt, ls, ex, _max_expiry(lt, get("pol")), None]
    else:
        times = []
        for name in _TIME_FIELDS:
            raw = get(name)
            if not raw:
                times.append(None)
                continue
            try:
                value = float(raw)
                if 0.0 <= value < _MS:
                    times.append(value)
                    continue
            except ValueError:
                pass
            ts, why = read_epoch(raw)
            if why:
                problems.append(f"{name} invalid ({why}): {raw[:40]!r}")
            times.append(ts)
        if times[3] is None and "max_expires_at" not in data and times[0] is not None:
            times[3] = _max_expiry(times[0], get("pol"))
    username = get("username")
    if not username:
        problems.append("username missing")
        username = "?"
    status = get("status") or ACTIVE
    if status != ACTIVE and status != INACTIVE:
        problems.append(f"status unknown: {status[:20]!r}")
    if RESERVED_FIELDS.issuperset(data):
        metadata: dict[str, str] = {}
    else:
        metadata = {k: v for k, v in data.items() if k not in RESERVED_FIELDS}
    return _build_session(sid, username, get("app", ""), get("type", ""), get("ip", ""),
                          get("user_agent", ""), times[0], times[1], times[2], times[3], times[4], status,
                          get("end_reason", ""), get("ended_by", ""), get("email", ""), get("department", ""),
                          metadata, tuple(problems))


def _max_expiry(login_time: float, pol: str | None) -> float | None:
    """A session's absolute end when its hash does not store one: ``login_time`` plus the
    absolute lifetime of the policy it was created under (``pol``: idle/absolute/retention
    seconds), to the millisecond as it would have been stored."""
    absolute = _absolute_of(pol) if pol else None
    return None if absolute is None else round(login_time + absolute, 3)


@lru_cache(maxsize=256)
def _absolute_of(pol: str) -> int | None:
    """The absolute lifetime in a ``pol`` field (few distinct values: cached)."""
    parts = pol.split("/")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        return None
    return int(parts[1])


def _all_text(data: dict[Any, Any]) -> bool:
    """Whether every key and value is text (a decoding client's reply): ``str.join``
    refuses anything else, and is the cheapest way to look at every item."""
    try:
        "".join(data)
        "".join(data.values())
    except TypeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the event log. ``kind == "text"`` for plain lines from other apps."""

    raw: str
    seq: int | None = None
    ts: float | None = None
    kind: str = "text"
    sid: str = ""
    username: str = ""
    app: str = ""
    actor: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Fields of a JSON line that could not be read (wrong type, invalid time)."""
    bucket: int | None = None
    """The bucket whose log holds the line (bucketed layout); ``seq`` counts per bucket."""

    @property
    def short_id(self) -> str:
        return short_id(self.sid)


def _json(text: str) -> Any:
    """``json.loads`` that is total: ``None`` for invalid or too deeply nested JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_EVENT_TEXT_FIELDS = ("sid", "username", "app", "actor")


def parse_event(line: Any) -> Event:
    """One log line: a sessionwatch event (a JSON object with a text ``kind``) or, for
    anything else, a ``text`` event holding the line. Total: never raises."""
    raw = _s(line)
    if raw.startswith("{"):
        data = _json(raw)
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            problems: list[str] = []
            seq = data.get("seq")
            if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
                problems.append(f"seq invalid: {_s(seq)[:40]!r}")
                seq = None
            ts, why = read_epoch(data.get("ts"))
            if why:
                problems.append(f"ts invalid ({why}): {_s(data.get('ts'))[:40]!r}")
            texts = {}
            for name in _EVENT_TEXT_FIELDS:
                value = data.get(name, "")
                if value is not None and not isinstance(value, str):
                    problems.append(f"{name} is not text")
                texts[name] = _s(value)
            return Event(raw=raw, seq=seq, ts=ts, kind=data["kind"], data=data,
                         problems=tuple(problems), **texts)
    return Event(raw=raw)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of sessions, plus how many there are in all."""

    sessions: list[Session]
    total: int
    offset: int
    mode: str = "index"
    """``index`` (sessionwatch indexes) or ``scan`` (classic layout, incremental SCAN)."""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    sid: str
    summary: dict[str, Any] | None
    raw: str
    ttl: float | None
    """Seconds left, ``None`` if the key has no TTL, ``-1.0`` if it is gone."""

    @property
    def short_id(self) -> str:
        return short_id(self.sid)


@dataclass(frozen=True, slots=True)
class Stats:
    active: int
    ended: int
    expired_pending: int
    """Active in the index but past expiry: a sweep will end them."""
    by_app: dict[str, int]
    by_type: dict[str, int]
    logins_per_minute: list[int]
    """Oldest first; the last element is the current minute."""
    ends_per_minute: list[int]
    mode: str = "index"
    anonymous: int = 0
    """Anonymous sessions (data kept before login). Entries past their idle time leave the
    count at the next anonymous write (the index is trimmed by the server's clock)."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str = ""
    used_memory: int | None = None
    used_memory_human: str = ""
    connected_clients: int | None = None
    ops_per_sec: int | None = None
    keyspace_hits: int | None = None
    keyspace_misses: int | None = None
    uptime: int | None = None
    notify_keyspace_events: str | None = None
    maxmemory_policy: str | None = None
    """Anything but ``noeviction`` lets Redis delete sessions silently when memory is full."""
    error: str = ""
    """Why some of this could not be read (for example INFO denied by ACL)."""


def parse_info(info: Any) -> ServerInfo:
    if not isinstance(info, dict):
        return ServerInfo(error="INFO reply unreadable")

    def num(key: str) -> int | None:
        try:
            return int(info[key])
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    return ServerInfo(
        version=str(info.get("redis_version", "")),
        used_memory=num("used_memory"),
        used_memory_human=str(info.get("used_memory_human", "")),
        connected_clients=num("connected_clients"),
        ops_per_sec=num("instantaneous_ops_per_sec"),
        keyspace_hits=num("keyspace_hits"),
        keyspace_misses=num("keyspace_misses"),
        uptime=num("uptime_in_seconds"),
        maxmemory_policy=str(info["maxmemory_policy"]) if "maxmemory_policy" in info else None,
    )


def parse_cache(sid: str, raw: Any, pttl: Any) -> CacheEntry:
    text = _s(raw) if not isinstance(raw, Exception) else f"<unreadable: {raw}>"
    summary = None
    if text.startswith("{"):
        loaded = _json(text)
        summary = loaded if isinstance(loaded, dict) else None
    ttl: float | None
    if isinstance(pttl, int) and pttl >= 0:
        ttl = pttl / 1000
    elif pttl == -1:
        ttl = None
    else:
        ttl = -1.0
    return CacheEntry(sid=sid, summary=summary, raw=text, ttl=ttl)
