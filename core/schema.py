"""The one place that names Redis keys and channels.

The layout is the classic one (``session:<sid>``, ``user:sessions:<user>``,
``user:active_sessions:<user>``, ``event:logs``, ``cache:session:<sid>``) plus additive
index keys under ``idx:`` and ``stats:``. An app that never wrote the index keys is still
readable (the read side falls back to SCAN).

Cluster note: a session id ends with a 4-hex routing tag derived from the username
(see :mod:`core.tokens`), so a cluster version can wrap that tag and the username in
``{...}`` here, putting one user's keys in one slot without changing ids or the API.
The global indexes would then be sharded; nothing outside this module would change.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = "1"

# Members of the lexicographic search index: "<kind>:<value>" or "<kind>:<value>|<sid>".
SEARCH_USER = "u:"
SEARCH_SID = "s:"
SEARCH_IP = "i:"
SEARCH_APP = "a:"


@dataclass(frozen=True, slots=True)
class Schema:
    """Builds every key name from an optional prefix (for example ``myapp:``)."""

    prefix: str = ""

    # --- classic layout -------------------------------------------------------------
    def session(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def cache(self, sid: str) -> str:
        return f"{self.prefix}cache:session:{sid}"

    def user_sessions(self, username: str) -> str:
        return f"{self.prefix}user:sessions:{username}"

    def user_active(self, username: str) -> str:
        return f"{self.prefix}user:active_sessions:{username}"

    @property
    def events(self) -> str:
        return f"{self.prefix}event:logs"

    # --- additions ------------------------------------------------------------------
    @property
    def event_seq(self) -> str:
        return f"{self.prefix}event:seq"

    @property
    def channel(self) -> str:
        """Pub/sub channel on which every change is published."""
        return f"{self.prefix}event:live"

    @property
    def idx_expiry(self) -> str:
        return f"{self.prefix}idx:active:expiry"

    @property
    def idx_seen(self) -> str:
        return f"{self.prefix}idx:active:seen"

    @property
    def idx_login(self) -> str:
        return f"{self.prefix}idx:active:login"

    @property
    def idx_user(self) -> str:
        """Active sessions in username order: score 0, members ``<username>\\0<sid>``."""
        return f"{self.prefix}idx:active:user"

    @property
    def idx_app(self) -> str:
        """Active sessions in app order: score 0, members ``<app>\\0<sid>``."""
        return f"{self.prefix}idx:active:app"

    @property
    def idx_ended(self) -> str:
        return f"{self.prefix}idx:ended"

    @property
    def idx_search(self) -> str:
        return f"{self.prefix}idx:search"

    @property
    def stats_app(self) -> str:
        return f"{self.prefix}stats:active:app"

    @property
    def stats_type(self) -> str:
        return f"{self.prefix}stats:active:type"

    def minute_counter(self, kind: str, minute: int) -> str:
        """Per-minute counter of ``kind`` (``logins`` or ``ends``), self-expiring."""
        return f"{self.prefix}stats:{kind}:{minute}"

    # --- anonymous sessions (data before login, never listed as user sessions) ----------
    def anonymous(self, aid: str) -> str:
        """Hash of one anonymous session: its data fields (``d:<key>``) and timestamps."""
        return f"{self.prefix}anon:{aid}"

    @property
    def idx_anonymous(self) -> str:
        """Anonymous session ids by idle deadline (server clock): counted, trimmed on write."""
        return f"{self.prefix}idx:anonymous"

    def minute_kinds(self, minute: int) -> str:
        """Per-minute hash of counts by event kind (``login``, ``logout``, ``admin_logout``,
        ``expired``, ``evicted``, ``replaced``, ``new_user``), self-expiring."""
        return f"{self.prefix}stats:minute:{minute}"

    # --- overview: kept up by the write scripts at login and end, read at fixed cost -----
    @property
    def ov_ip_sessions(self) -> str:
        """Sorted set: address -> its active sessions."""
        return f"{self.prefix}ov:ip:sessions"

    @property
    def ov_ip_users(self) -> str:
        """Sorted set: address -> distinct users with an active session from it."""
        return f"{self.prefix}ov:ip:users"

    @property
    def ov_user_sessions(self) -> str:
        """Sorted set: username -> its active sessions."""
        return f"{self.prefix}ov:user:sessions"

    @property
    def ov_user_ips(self) -> str:
        """Sorted set: username -> distinct addresses of its active sessions."""
        return f"{self.prefix}ov:user:ips"

    @property
    def ov_pairs(self) -> str:
        """Hash: ``<ip>|<username>`` -> active sessions of that user from that address
        (what makes the two distinct counts exact)."""
        return f"{self.prefix}ov:pairs"

    @property
    def ov_users_seen(self) -> str:
        """Set of every username that ever logged in (for the new-usernames rule)."""
        return f"{self.prefix}ov:users:seen"

    @property
    def flags(self) -> str:
        """Hash: anomaly flag id -> the flag as JSON (current flags only)."""
        return f"{self.prefix}ov:flags"

    def overview_keys(self) -> list[str]:
        """The overview keys every write script declares after the per-minute keys."""
        return [self.ov_ip_sessions, self.ov_ip_users, self.ov_user_sessions, self.ov_user_ips,
                self.ov_pairs, self.ov_users_seen, self.flags]

    @property
    def settings(self) -> str:
        """Settings every writer shares (the event-log cap), so no writer's own default
        overrides another's."""
        return f"{self.prefix}sessionwatch:settings"

    @property
    def marker(self) -> str:
        """Present once sessionwatch has written its indexes into this Redis."""
        return f"{self.prefix}sessionwatch:schema"

    # --- patterns and channels for reading other apps' data ---------------------------
    @property
    def session_pattern(self) -> str:
        return f"{self.prefix}session:*"

    @property
    def cache_pattern(self) -> str:
        return f"{self.prefix}cache:session:*"

    def sid_from_session_key(self, key: str) -> str:
        return key[len(self.prefix) + len("session:"):]

    def sid_from_cache_key(self, key: str) -> str:
        return key[len(self.prefix) + len("cache:session:"):]

    def is_session_key(self, key: str) -> bool:
        return key.startswith(f"{self.prefix}session:")

    @staticmethod
    def expired_channel(db: int) -> str:
        """Keyspace-notification channel for expired keys in ``db``."""
        return f"__keyevent@{db}__:expired"

    # --- what the Lua scripts need to build per-session keys ---------------------------
    def lua_layout(self) -> list[str]:
        """Key prefixes passed to every script, so Lua never spells a key name itself."""
        return [
            self.session(""),
            self.cache(""),
            self.user_sessions(""),
            self.user_active(""),
        ]

    def global_keys(self) -> list[str]:
        """The fixed keys every write script declares, in the order the scripts expect."""
        return [
            self.events,
            self.event_seq,
            self.idx_expiry,
            self.idx_seen,
            self.idx_login,
            self.idx_ended,
            self.idx_search,
            self.stats_app,
            self.stats_type,
            self.marker,
            self.idx_user,
            self.idx_app,
        ]
