"""Bearer tokens and the session ids derived from them.

A token is ``<tag>.<secret>``: ``secret`` is 32 bytes (256 bits) from :mod:`secrets`,
``tag`` is a 4-hex routing tag derived from the username. Redis stores only the session
id, ``sha256(secret)[:32] + tag``; the token itself is never written anywhere, so a
Redis dump, MONITOR or SCAN (which ignores ACL key patterns) reveals no bearer secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^([0-9a-f]{4})\.([A-Za-z0-9_-]{43})$")
SID_RE = re.compile(r"^[0-9a-f]{36}$")


def user_tag(username: str) -> str:
    """Opaque 4-hex routing tag for a user (a future cluster hash tag), not PII."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:4]


def _sid_for(tag: str, secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()[:32] + tag


def new_token(username: str) -> tuple[str, str]:
    """Return ``(token, sid)`` for a new session of ``username``."""
    tag = user_tag(username)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{tag}.{secret}", _sid_for(tag, secret)


def sid_from_token(token: object) -> str | None:
    """The session id a token refers to, or ``None`` if it is not a well-formed token."""
    if not isinstance(token, str):
        return None
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    return _sid_for(match.group(1), match.group(2))


def same_sid(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def short_id(sid: str) -> str:
    """What the dashboard shows: enough to tell sessions apart, never enough to use one."""
    return sid[:8]


# Anonymous sessions (data kept before login) get tokens of their own shape, so one
# cookie can carry either kind and the kind is known without a Redis call. Their ids are
# hashed like user session ids; the "anon" tag is not hex, so the two never collide.
ANON_TAG = "anon"
_ANON_RE = re.compile(r"^anon\.([A-Za-z0-9_-]{43})$")


def new_anon_token() -> tuple[str, str]:
    """Return ``(token, aid)`` for a new anonymous session."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{ANON_TAG}.{secret}", hashlib.sha256(secret.encode("ascii")).hexdigest()[:32]


def anon_id_from_token(token: object) -> str | None:
    """The anonymous session id a token refers to, or ``None`` if it is not one."""
    if not isinstance(token, str):
        return None
    match = _ANON_RE.match(token)
    if match is None:
        return None
    return hashlib.sha256(match.group(1).encode("ascii")).hexdigest()[:32]
