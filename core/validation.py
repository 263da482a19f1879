"""Input checks shared by the sync and async stores.

A value either round-trips exactly or is refused with :class:`InvalidInput` naming the
field. Control characters (C0, DEL, C1, which carry ANSI/OSC escapes, CR/LF and NUL) and
lone surrogates (what undecodable bytes become) are refused; markup such as ``[b]x[/b]``
is ordinary text and is kept as is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from .errors import InvalidInput

SESSION_TYPES = ("web", "mobile", "api")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_META_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

LIMITS = {
    "username": 128,
    "app": 64,
    "user_agent": 1024,
    "email": 254,
    "department": 128,
    "actor": 256,
    "metadata": 1024,
}

# Fields sessionwatch owns in the session hash; metadata keys may not reuse them.
RESERVED_FIELDS = frozenset({
    "username", "app", "type", "ip", "user_agent", "login_time", "last_seen", "expires_at",
    "max_expires_at", "idle_ttl", "logout_time", "status", "end_reason", "ended_by",
    "email", "department", "pol",
})

FOREIGN_LIMIT = 8192
"""Length limit of ids and user names that name *existing* data (other apps' sessions may
use JWT-style ids or long user names): they can be looked up and ended."""


def text(field: str, value: object, *, required: bool = True, limit: int | None = None) -> str:
    """Check one free-text value and return it unchanged."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    max_len = limit if limit is not None else LIMITS.get(field, 1024)
    if len(value) > max_len:
        raise InvalidInput(field, f"is {len(value)} characters long; the limit is {max_len}")
    bad = _BAD_CHARS.search(value)
    if bad:
        raise InvalidInput(field, f"contains a control or invalid character (U+{ord(bad.group()):04X})")
    return value


def session_type(value: object) -> str:
    if value not in SESSION_TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(SESSION_TYPES)}, got {value!r}")
    return value  # type: ignore[return-value]


def ip(value: object) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidInput("ip", f"must be text, not {type(value).__name__}")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidInput("ip", f"is not an IPv4 or IPv6 address: {value[:64]!r}") from None


def metadata(values: Mapping[str, object] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (values or {}).items():
        if not isinstance(key, str) or not _META_KEY.fullmatch(key):
            raise InvalidInput("metadata", f"key {str(key)[:40]!r} must match [a-z][a-z0-9_]{{0,63}}")
        if key in RESERVED_FIELDS:
            raise InvalidInput("metadata", f"key {key!r} is a reserved session field")
        out[key] = text(f"metadata.{key}", value, required=False, limit=LIMITS["metadata"])
    return out


def sid(value: object) -> str:
    """Session ids come from our tokens or from other apps (JWT-style ids run to several
    hundred characters): any printable text up to :data:`FOREIGN_LIMIT`."""
    return text("sid", value, limit=FOREIGN_LIMIT)
