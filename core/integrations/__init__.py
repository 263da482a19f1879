"""Web integrations: keep a web app's sessions in Redis through :mod:`core`.

- :mod:`core.integrations.flask` (``pip install sessionwatch[flask]``): a drop-in for
  Flask's session and Flask-Session (``SessionWatch(app, store)``), following Flask-Login,
  plus ``start_session`` / ``end_session`` / ``current_session`` / ``update_profile``.
- :mod:`core.integrations.asgi` (``pip install sessionwatch[asgi]``): ``SessionMiddleware``,
  a drop-in for Starlette's (``request.session``), ``SessionWatchMiddleware`` for bearer
  tokens, and FastAPI dependencies, on :class:`core.AsyncSessionStore`.
- :mod:`core.integrations.data`: the session-data ``dict`` both share.

Both import their framework only when imported themselves, so ``import core`` works
without Flask or Starlette installed. What they share lives here and needs neither.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

from ..model import Session

COOKIE_NAME = "sessionwatch"
"""Default cookie name of ``SessionWatchMiddleware`` (the drop-ins use Flask's and Starlette's
default, ``session``). The cookie holds only the bearer token, never session data."""

UNAVAILABLE_MESSAGE = "Session store unavailable, please retry shortly."
"""Body of the 503 sent when Redis cannot be reached: short, and never a stack trace."""


def client_ip(host: str | None) -> str | None:
    """The peer address if it is one (test clients and unix sockets give names instead)."""
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


__all__ = ["COOKIE_NAME", "UNAVAILABLE_MESSAGE", "bearer_token", "client_ip"]


def with_profile(session: Session, *, email: str | None, department: str | None,
                 metadata: Mapping[str, object] | None) -> Session:
    """The session as it is after a successful ``update_profile`` with these arguments,
    so a request sees its own change without reading it back."""
    changes: dict[str, Any] = {}
    if email is not None:
        changes["email"] = email
    if department is not None:
        changes["department"] = department
    if metadata:
        changes["metadata"] = {**session.metadata, **{k: str(v) for k, v in metadata.items()}}
    return dataclasses.replace(session, **changes)
