"""sessionwatch core: user sessions in Redis, atomic and observable.

>>> store = SessionStore.from_url("redis://127.0.0.1:21084/0", policy=Policy(max_sessions_per_user=5))
>>> session, token = store.login("alice", app="crm", type="web", ip="203.0.113.7")
>>> store.validate(token).username
'alice'
"""

from .aio import AsyncSessionStore
from .connection import DEFAULT_URL, ConnectOptions, redact_url
from .errors import (
    DataConflict,
    DataTooLarge,
    InvalidInput,
    NotReplicated,
    PermissionDenied,
    SessionNotFound,
    StoreError,
    StoreUnavailable,
)
from .model import CacheEntry, Event, Page, ServerInfo, Session, Stats
from .plans import Anonymous, SweepResult
from .policy import Policy
from .schema import Schema
from .store import SessionStore

__all__ = [
    "DEFAULT_URL",
    "Anonymous",
    "AsyncSessionStore",
    "CacheEntry",
    "ConnectOptions",
    "DataConflict",
    "DataTooLarge",
    "Event",
    "InvalidInput",
    "NotReplicated",
    "Page",
    "PermissionDenied",
    "Policy",
    "Schema",
    "ServerInfo",
    "Session",
    "SessionNotFound",
    "SessionStore",
    "Stats",
    "StoreError",
    "StoreUnavailable",
    "SweepResult",
    "redact_url",
]
