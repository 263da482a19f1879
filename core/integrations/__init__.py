"""Web integrations: keep a web app's sessions in Redis through :mod:`core`.

- :mod:`core.integrations.flask` (``pip install sessionwatch[flask]``): a Flask
  ``SessionInterface`` plus ``login_user`` / ``logout_user`` / ``current_session`` /
  ``update_profile`` helpers.
- :mod:`core.integrations.asgi` (``pip install sessionwatch[asgi]``): a Starlette middleware
  and FastAPI dependencies on :class:`core.AsyncSessionStore`.

Both import their framework only when imported themselves, so ``import core`` works
without Flask or Starlette installed. What they share lives here and needs neither.
"""

from __future__ import annotations

import ipaddress

COOKIE_NAME = "sessionwatch"
"""Default cookie name. The cookie holds only the bearer token, never session data."""

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
