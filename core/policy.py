"""Session lifetime and concurrency policy (OWASP ASVS 5 V7.1/V7.3 knobs)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput

DAY = 86400


@dataclass(frozen=True, slots=True)
class Policy:
    """What a session may do and how long it lives.

    Expiry is enforced from the timestamps stored in the session, not by Redis TTLs;
    the TTLs set on keys are garbage collection only. Each session stores the idle,
    absolute and retention times it was created under; validators and sweepers with
    another policy honour the stored ones.
    """

    idle_ttl: int = 1800
    """Seconds of inactivity after which a session expires."""
    absolute_ttl: int = 43200
    """Seconds after login after which a session expires, however active."""
    max_sessions_per_user: int | None = None
    """At most this many active sessions per user; the oldest is ended as ``evicted``.
    ``1`` is single-session mode: a new login ends the previous one as ``replaced``."""
    touch_interval: int = 60
    """``validate`` writes ``last_seen`` at most this often per session (throttled touch)."""
    ended_retention: int = 7 * DAY
    """How long an ended session is kept as history before ``sweep`` purges it."""
    history_retention: int = 30 * DAY
    """TTL of a user's history list, refreshed on each login."""
    history_max: int = 100
    """Length cap of a user's history list."""
    event_log_max: int = 10_000
    """Length cap of the event log, used only until the shared setting stored in Redis
    exists (:meth:`SessionStore.set_event_log_max`): the first writer to trim stores it."""
    cache_ttl: int = 3600
    """TTL of the ``cache:session:<sid>`` summary."""
    user_key_ttl_factor: float = 1.5
    """TTL of the per-user active set, as a multiple of ``idle_ttl``, refreshed on use."""
    replica_acks: int = 0
    """After each write to a user session (login, logout, profile, web-framework data saved
    in a logged-in session, ...), ``WAIT`` for this many replicas (in the same round trip)
    and raise :class:`~core.errors.NotReplicated` if fewer confirm: acknowledged writes
    then survive a failover. 0 keeps Redis's asynchronous replication. Anonymous sessions
    (data kept before login) stay asynchronous: a failover may lose their latest change."""
    replica_timeout_ms: int = 1000
    """How long ``WAIT`` may block for ``replica_acks``."""
    anonymous_idle_ttl: int = 1800
    """Seconds of inactivity after which an anonymous session (data kept before login)
    expires: the Redis TTL of its key, by the server's clock."""
    data_max_bytes: int = 16_384
    """Cap on a session's web-framework data (field names plus encoded values, in bytes),
    anonymous or logged in; checked inside the scripts that write it."""

    def __post_init__(self) -> None:
        for name in ("idle_ttl", "absolute_ttl", "touch_interval", "ended_retention",
                     "history_retention", "history_max", "event_log_max", "cache_ttl",
                     "anonymous_idle_ttl", "data_max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise InvalidInput(name, f"must be a positive whole number, got {value!r}")
        if self.max_sessions_per_user is not None and (
            not isinstance(self.max_sessions_per_user, int) or self.max_sessions_per_user < 1
        ):
            raise InvalidInput("max_sessions_per_user", "must be None or a whole number >= 1")
        if not isinstance(self.replica_acks, int) or self.replica_acks < 0:
            raise InvalidInput("replica_acks", f"must be a whole number >= 0, got {self.replica_acks!r}")
        if not isinstance(self.replica_timeout_ms, int) or self.replica_timeout_ms <= 0:
            raise InvalidInput("replica_timeout_ms", "must be a positive whole number")
        if self.user_key_ttl_factor < 1:
            raise InvalidInput("user_key_ttl_factor", "must be at least 1")

    @property
    def single_session(self) -> bool:
        return self.max_sessions_per_user == 1

    @property
    def user_key_ttl(self) -> int:
        return int(self.idle_ttl * self.user_key_ttl_factor)
