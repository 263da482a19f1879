"""The reference "classic" implementation: the layout sessionwatch is compatible with,
written the way the original admin app does it, one command (one round trip) per step.

Login is HSET of the session hash, EXPIRE of it (its idle timeout), LPUSH onto the
user's history list, SADD into the user's active set, LPUSH of an event line and SETEX
of the cache summary: six round trips, no indexes, no counters, no publish. Logout
reads the username, then HSET, SREM, LPUSH and SETEX: five round trips. Key names come
from :class:`core.Schema`, like everything else.
"""

from __future__ import annotations

import json
import secrets
import time

import redis

from core import Schema


class ClassicStore:
    """Sessions the classic way. ``prefix`` keeps its keys apart from core's in a shared Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = "classic:", idle_ttl: int = 1800,
                 cache_ttl: int = 3600) -> None:
        self.client = client
        self.schema = Schema(prefix)
        self.idle_ttl = idle_ttl
        self.cache_ttl = cache_ttl

    def _summary(self, sid: str, fields: dict[str, str]) -> str:
        return json.dumps({"sid": sid, **{k: fields.get(k, "") for k in (
            "username", "app", "type", "ip", "status", "login_time", "last_seen", "expires_at")}})

    def _event(self, kind: str, sid: str, username: str, app: str) -> str:
        return json.dumps({"ts": time.time(), "kind": kind, "sid": sid, "username": username, "app": app})

    def login(self, username: str, *, app: str, type: str = "web", ip: str = "", user_agent: str = "") -> str:
        """Create a session; returns its id. Six round trips."""
        sid = secrets.token_hex(18)
        now = time.time()
        fields = {
            "username": username, "app": app, "type": type, "ip": ip, "user_agent": user_agent,
            "login_time": f"{now:.3f}", "last_seen": f"{now:.3f}", "expires_at": f"{now + self.idle_ttl:.3f}",
            "status": "active",
        }
        s, c = self.schema, self.client
        c.hset(s.session(sid), mapping=fields)
        c.expire(s.session(sid), self.idle_ttl)
        c.lpush(s.user_sessions(username), sid)
        c.sadd(s.user_active(username), sid)
        c.lpush(s.events, self._event("login", sid, username, app))
        c.execute_command("SETEX", s.cache(sid), self.cache_ttl, self._summary(sid, fields))
        return sid

    def logout(self, sid: str) -> bool:
        """End a session. Five round trips (one to learn whose it is)."""
        s, c = self.schema, self.client
        fields = c.hgetall(s.session(sid))
        if not fields or fields.get("status") != "active":
            return False
        now = f"{time.time():.3f}"
        username = fields["username"]
        c.hset(s.session(sid), mapping={"status": "inactive", "logout_time": now, "end_reason": "logout"})
        c.srem(s.user_active(username), sid)
        c.lpush(s.events, self._event("logout", sid, username, fields.get("app", "")))
        fields.update(status="inactive")
        c.execute_command("SETEX", s.cache(sid), self.cache_ttl, self._summary(sid, fields))
        return True
