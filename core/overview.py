"""The overview's figures and anomaly flags as plain data, and their total parsers.

Everything here comes from Redis, so it is untrusted: a parser keeps what it can read
and never raises (NaN, infinities, wrong types and deep JSON become a problem or a
default). :func:`core.plans.overview` fills :class:`Overview` at a fixed Redis cost.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .model import pairs_to_dict

MINUTE_KINDS = ("login", "logout", "admin_logout", "expired", "evicted", "replaced", "new_user")
"""Fields of the per-minute hash ``stats:minute:<minute>``."""

TOP_N = 10
MAX_FLAGS = 200
"""Flags read per refresh (HGETALL of ov:flags is bounded by this many in practice:
an evaluator never keeps more than this many raised)."""
MAX_REFS = 100
"""Sessions and users a flag names (what ``l`` and ``L`` act on)."""


def _num(value: Any, default: float = 0.0) -> float:
    """A finite number from anything, else ``default``."""
    if isinstance(value, bool):
        return default
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return out if math.isfinite(out) else default


def _count(value: Any) -> int:
    return max(0, int(_num(value)))


@dataclass(frozen=True, slots=True)
class Flag:
    """One raised anomaly: which rule, about what, the numbers that tripped it, since when,
    and the sessions and users behind it."""

    id: str
    rule: str
    subject: str
    numbers: dict[str, float]
    since: float
    detail: str = ""
    sids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "subject": self.subject, "numbers": dict(self.numbers),
                "since": self.since, "detail": self.detail, "sids": list(self.sids),
                "users": list(self.users)}

    def to_json(self) -> str:
        # not sorted: the numbers keep the order the rule gave them (the tripping one first)
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def numbers_text(self) -> str:
        return ", ".join(f"{k} {_fmt_number(v)}" for k, v in self.numbers.items())


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(x for x in value[:MAX_REFS] if isinstance(x, str))


def parse_flag(flag_id: Any, raw: Any) -> Flag:
    """A :class:`Flag` from its stored JSON; unreadable parts become problems."""
    fid = flag_id if isinstance(flag_id, str) else str(flag_id)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return Flag(fid, "unknown", fid, {}, 0.0, problems=("flag unreadable",))
    numbers_raw = data.get("numbers")
    numbers = {str(k): _num(v) for k, v in numbers_raw.items()} if isinstance(numbers_raw, dict) else {}
    problems = [] if isinstance(numbers_raw, dict) else ["numbers missing"]
    rule = data.get("rule")
    since = _num(data.get("since"))
    if since <= 0:
        problems.append("since unreadable")
    return Flag(fid, rule if isinstance(rule, str) else "unknown", _str(data.get("subject"), fid), numbers,
                since,
                _str(data.get("detail")), _strs(data.get("sids")), _strs(data.get("users")), tuple(problems))


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


@dataclass(frozen=True, slots=True)
class Series:
    """Counts per minute, oldest first; the last entry is the current minute."""

    values: list[int]

    @property
    def current(self) -> int:
        return self.values[-1] if self.values else 0

    @property
    def peak(self) -> int:
        return max(self.values, default=0)

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True, slots=True)
class Overview:
    """The shape of the live set at one moment."""

    now: float
    active: int
    ended: int
    expired_pending: int
    by_app: dict[str, int]
    by_type: dict[str, int]
    first_minute: int
    """Epoch minute of the first entry of every series."""
    series: dict[str, Series]
    """By kind: ``logins``, ``logouts`` (by the user), ``admin_logouts``, ``expiries``,
    ``evictions`` (evicted or replaced by the per-user cap), ``new_users``."""
    top_ip_sessions: list[tuple[str, int]]
    top_ip_users: list[tuple[str, int]]
    top_user_sessions: list[tuple[str, int]]
    top_user_ips: list[tuple[str, int]]
    flags: list[Flag] = field(default_factory=list)
    anonymous: int | None = None
    """Anonymous sessions, once apps keep them (``None``: not tracked)."""
    mode: str = "index"

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now, "active": self.active, "ended": self.ended,
            "expired_pending": self.expired_pending,
            "by_app": self.by_app, "by_type": self.by_type, "first_minute": self.first_minute,
            "per_minute": {k: s.values for k, s in self.series.items()},
            "top_addresses_by_sessions": [list(x) for x in self.top_ip_sessions],
            "top_addresses_by_users": [list(x) for x in self.top_ip_users],
            "top_users_by_sessions": [list(x) for x in self.top_user_sessions],
            "top_users_by_addresses": [list(x) for x in self.top_user_ips],
            "flags": [f.to_dict() for f in self.flags], "anonymous": self.anonymous, "mode": self.mode,
        }


SERIES_FIELDS = {"logins": ("login",), "logouts": ("logout",), "admin_logouts": ("admin_logout",),
                 "expiries": ("expired",), "evictions": ("evicted", "replaced"), "new_users": ("new_user",)}


def parse_minutes(replies: list[Any]) -> dict[str, Series]:
    """Series from one HGETALL reply per minute (oldest first)."""
    per_minute = [pairs_to_dict(r) if not isinstance(r, Exception) else {} for r in replies]
    return {name: Series([sum(_count(m.get(f)) for f in fields) for m in per_minute])
            for name, fields in SERIES_FIELDS.items()}


def parse_top(reply: Any) -> list[tuple[str, int]]:
    """ZREVRANGE ... WITHSCORES, as a flat list or as pairs (RESP3)."""
    if isinstance(reply, Exception) or not isinstance(reply, list | tuple):
        return []
    if reply and isinstance(reply[0], list | tuple):
        pairs = [tuple(x) for x in reply if len(x) == 2]
    else:
        it = iter(reply)
        pairs = list(zip(it, it, strict=False))
    out = []
    for member, score in pairs:
        name = member.decode("utf-8", "replace") if isinstance(member, bytes) else str(member)
        n = _count(score)
        if n > 0:
            out.append((name, n))
    return out


def parse_flags(reply: Any) -> list[Flag]:
    if isinstance(reply, Exception):
        return []
    flags = [parse_flag(k, v) for k, v in pairs_to_dict(reply).items()]
    flags.sort(key=lambda f: (-f.since, f.id))
    return flags[:MAX_FLAGS]


@dataclass(frozen=True, slots=True)
class FlagIndex:
    """Which sessions and users the current flags name: what puts a marker on a row in the
    Active and Inactive tables (a session is marked when a flag names it or its user)."""

    sids: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    rules_by_sid: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules_by_user: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, flags: list[Flag]) -> FlagIndex:
        by_sid: dict[str, list[str]] = {}
        by_user: dict[str, list[str]] = {}
        for f in flags:
            for sid in f.sids:
                by_sid.setdefault(sid, []).append(f.rule)
            if f.rule in ("sharing", "comeback"):  # flags about a user: all of its sessions
                for user in f.users:
                    by_user.setdefault(user, []).append(f.rule)
        return cls(frozenset(by_sid), frozenset(by_user), {k: tuple(v) for k, v in by_sid.items()},
                   {k: tuple(v) for k, v in by_user.items()})

    def rules(self, sid: str, username: str) -> tuple[str, ...]:
        """The rules that flag this session (empty: not flagged)."""
        return tuple(dict.fromkeys((*self.rules_by_sid.get(sid, ()), *self.rules_by_user.get(username, ()))))

    def __bool__(self) -> bool:
        return bool(self.sids or self.users)
