"""Exceptions raised by the session store.

Every Redis failure surfaces as one of these, with a one-line message, so callers never
mistake an outage for "no session" (the django-redis-sessions failure mode).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class for everything the store raises on purpose."""


class StoreUnavailable(StoreError):
    """Redis could not be reached, timed out, refused our credentials or is loading."""


class NotReplicated(StoreUnavailable):
    """A write reached the master but fewer replicas than ``Policy.replica_acks`` confirmed it
    in time: it happened, and a failover right now could still lose it."""


class PermissionDenied(StoreError):
    """The Redis ACL user may not run this command (for example a read-only dashboard user)."""


class DataConflict(StoreError):
    """A key the operation must change holds another type or a non-number (another app's
    data, or damage). The script refused before its first write: nothing changed."""


class SessionNotFound(StoreError):
    """The session id names no session, or names one that has already ended."""

    def __init__(self, sid: str, detail: str = "no such session") -> None:
        super().__init__(f"session {sid[:12]}: {detail}")
        self.sid = sid


class InvalidInput(StoreError, ValueError):
    """An argument failed validation; ``field`` names the argument."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class DataTooLarge(StoreError, ValueError):
    """Session data would exceed :attr:`core.Policy.data_max_bytes`; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"session data would be {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit
