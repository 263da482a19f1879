"""The export file format, and the checks a restore applies to it before writing.

Each line is one self-describing JSON record::

    {"kind": "session", "v": 1, "sid": "...", "fields": {"username": "...", ...}}

``fields`` is the session hash exactly as Redis held it. Lines without ``kind``/``v``
(exports of earlier versions) are read as sessions too. Parsing is total: any line,
however malformed (NaN, infinities, deep nesting, wrong types), is either a record or an
:class:`InvalidInput` naming what is wrong, never another exception.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import math
import os
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import validation as check
from .display import to_json
from .errors import InvalidInput
from .model import ACTIVE, parse_time
from .policy import Policy
from .validation import _BAD_CHARS

KIND = "session"
VERSION = 1
TIME_FIELDS = ("login_time", "last_seen", "expires_at", "max_expires_at", "logout_time")
MAX_LINE = 1 << 20
"""A record longer than this (1 MiB) is refused: no session is that big."""
CLOCK_SLACK = 120.0
"""Seconds of difference between this machine's clock and Redis's tolerated by the
policy check (the Lua script re-checks against the server's own clock)."""
_EPOCH_MAX = 1e11  # year 5138: larger numbers are millisecond or microsecond epochs


def encode(sid: str, fields: Mapping[str, str]) -> str:
    """One export line (without the newline). Strict JSON whose escapes hide every
    character a terminal would interpret (:func:`core.display.to_json`), so a dump
    printed to a terminal is as safe as the dashboard, and still decodes to the same data."""
    return to_json({"kind": KIND, "v": VERSION, "sid": sid, "fields": fields})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_decoder = json.JSONDecoder(parse_constant=_no_constants)


@dataclass(frozen=True, slots=True)
class Record:
    sid: str
    fields: dict[str, str]
    live: bool
    """Active and not past its expiry: restoring it creates a usable session."""


def _time(name: str, value: str) -> float | None:
    """A stored time field: epoch seconds or ISO 8601 (classic apps); anything else,
    including NaN, infinities and millisecond epochs, is refused with a reason."""
    if value == "":
        return None
    try:
        x = float(value)
    except ValueError:
        ts = parse_time(value)
        if ts is None:
            raise InvalidInput(f"fields.{name}", f"is not a time: {value[:40]!r}") from None
        return ts
    if not math.isfinite(x) or x < 0:
        raise InvalidInput(f"fields.{name}", f"is not a finite time: {value[:40]!r}")
    if x >= _EPOCH_MAX:
        raise InvalidInput(f"fields.{name}", f"{value[:40]} looks like milliseconds; times are epoch seconds")
    return x


def decode(line: str, *, policy: Policy, now: float, trust: bool) -> Record | None:
    """Check one line of an export; ``None`` for a blank line.

    Raises :class:`InvalidInput` for anything that cannot be restored as it stands: not
    JSON, an unknown record kind, a field that is not text or a number, a time that is not
    a finite epoch in seconds, a live session that outlives the policy (idle or absolute
    lifetime), or a live session without ``trust`` (the file chooses the session id, so a
    live session from it is a login the file's author can use)."""
    if not line.strip():
        return None
    if len(line) > MAX_LINE:
        raise InvalidInput("line", f"is {len(line):,} characters long; the limit is {MAX_LINE:,}")
    try:
        data = _decoder.decode(line)
    except (ValueError, RecursionError):
        raise InvalidInput("line", "not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise InvalidInput("line", 'expected {"kind": "session", "sid": ..., "fields": {...}}')
    if data.get("kind", KIND) != KIND or data.get("v", VERSION) != VERSION:
        raise InvalidInput("kind", f"unknown record {str(data.get('kind'))[:40]!r} "
                                   f"version {str(data.get('v'))[:10]}")
    sid = check.sid(data.get("sid"))
    fields: dict[str, str] = data["fields"]
    if not _plain_text(fields):  # the exact checks, naming the first problem
        fields = _checked_fields(fields)
    check.text("fields.username", fields.get("username"))
    times = {name: _time(name, fields[name]) for name in TIME_FIELDS if name in fields}
    status = fields.get("status", ACTIVE)
    expires_at = times.get("expires_at")
    # a session about to expire by this clock may not have by the server's: count it as live
    live = status == ACTIVE and (expires_at is None or expires_at > now - CLOCK_SLACK)
    if live:
        if not trust:
            raise InvalidInput("status", "is a live session: restoring live sessions needs --trust "
                                         "(the file chooses their ids, so whoever wrote it can use them)")
        _check_policy(times, policy, now)
    return Record(sid, fields, live)


def decode_checked(line: str) -> Record | None:
    """A line that :func:`decode` already accepted (the same bytes, re-read): parsed only.
    The restore script still re-checks what matters on the server (times, trust, policy)."""
    if not line.strip():
        return None
    data = _decoder.decode(line)
    fields = data["fields"]
    if not all(type(v) is str for v in fields.values()):
        fields = _checked_fields(fields)
    return Record(data["sid"], fields, False)


def _plain_text(fields: dict[Any, Any]) -> bool:
    """The common case, checked fast: every key and value is text within the limits and
    free of control characters (what :func:`_checked_fields` would accept unchanged)."""
    for k, v in fields.items():
        if type(k) is not str or type(v) is not str or not 0 < len(k) <= 64 or len(v) > 4096 \
                or not k.strip():
            return False
    return not (_BAD_CHARS.search("".join(fields)) or _BAD_CHARS.search("".join(fields.values())))


def _checked_fields(raw: dict[Any, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidInput(f"fields.{str(key)[:64]}", "must be text or a number")
        text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
        fields[check.text("field", key, limit=64)] = check.text(f"fields.{key}", text, required=False,
                                                                limit=4096)
    return fields


def _check_policy(times: Mapping[str, float | None], policy: Policy, now: float) -> None:
    expires_at, login = times.get("expires_at"), times.get("login_time")
    if expires_at is not None and expires_at > now + policy.idle_ttl + CLOCK_SLACK:
        raise InvalidInput("fields.expires_at", f"is {_days(expires_at - now)} away; the policy "
                                                f"allows at most {policy.idle_ttl} s of idle time")
    max_exp = times.get("max_expires_at")
    if login is not None and max_exp is not None and max_exp > login + policy.absolute_ttl + CLOCK_SLACK:
        raise InvalidInput("fields.max_expires_at", f"is {_days(max_exp - login)} after login; the "
                                                    f"policy allows {policy.absolute_ttl} s")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:,.1f} days" if seconds >= 86400 else f"{seconds:,.0f} s"


# --- files ---------------------------------------------------------------------------------

def open_text_in(path: str | os.PathLike[str]) -> IO[str]:
    """A UTF-8 text reader for an export, gzip-compressed or not (told by its first bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="strict", newline="\n")
    return open(path, encoding="utf-8", errors="strict", newline="\n")


def open_text_out(path: Path, *, compress: bool) -> IO[str]:
    """A UTF-8 text writer creating ``path`` with mode 0600 (sessions are personal data)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    if compress:
        return gzip.open(path, "wt", encoding="utf-8", newline="\n", compresslevel=6)
    return open(path, "w", encoding="utf-8", newline="\n")


def fsync(path: Path) -> None:
    """Make a written file durable before it replaces another."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- de-duplication in bounded memory --------------------------------------------------------

class SeenSids:
    """Which session ids were already written, for exports driven by SCAN (which may
    return a key twice when the keyspace shrinks mid-scan).

    Each id is kept as an 8-byte keyed BLAKE2b fingerprint in a sorted ``array`` (plus a
    small set of recent ones, merged in bulk): 8 bytes per session (8 MB per million)
    instead of a Python set's ~100. The key is random per export, so nobody can craft
    colliding ids; an accidental collision among a million ids has odds of about 3e-8."""

    _MERGE = 65536

    def __init__(self) -> None:
        self._key = os.urandom(16)
        self._sorted = array("Q")
        self._recent: set[int] = set()

    def _fp(self, sid: str) -> int:
        digest = hashlib.blake2b(sid.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "little")

    def add(self, sid: str) -> bool:
        """Record ``sid``; ``False`` if it was already there."""
        fp = self._fp(sid)
        if fp in self._recent:
            return False
        pos = bisect_left(self._sorted, fp)
        if pos < len(self._sorted) and self._sorted[pos] == fp:
            return False
        self._recent.add(fp)
        if len(self._recent) >= self._MERGE:
            self._sorted = array("Q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent = set()
        return True

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)
