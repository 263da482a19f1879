"""Sans-I/O operation plans shared by :class:`SessionStore` and :class:`AsyncSessionStore`.

A plan is a generator: it yields requests (:class:`Script` or :class:`Commands`), receives
the replies, and returns the result. The stores only drive plans, so every command that
is built and every reply that is parsed is written once, here, with no I/O.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import redis.exceptions

from . import backup
from . import validation as check
from .errors import DataTooLarge, InvalidInput, SessionNotFound, StoreError
from .model import (
    ACTIVE,
    INACTIVE,
    CacheEntry,
    Event,
    Page,
    ServerInfo,
    Session,
    Stats,
    fmt_time,
    pairs_to_dict,
    parse_cache,
    parse_event,
    parse_info,
    parse_session,
    parse_time,
)
from .overview import TOP_N, Flag, Overview, parse_flags, parse_minutes, parse_top
from .policy import Policy
from .schema import SEARCH_APP, SEARCH_IP, SEARCH_SID, SEARCH_USER, Schema
from .tokens import anon_id_from_token, new_anon_token, new_token, sid_from_token


@dataclass(frozen=True, slots=True)
class Script:
    """Run one Lua script (EVALSHA; loaded once)."""

    name: str
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True, slots=True)
class Commands:
    """Send read commands in one round trip (a non-transactional pipeline). The reply is
    a list with one entry per command; a failed command's entry is its exception. Being
    reads, they are sent again after a broken connection (:func:`retryable`); writes go
    through scripts."""

    commands: list[tuple[Any, ...]]


Request = Script | Commands

RETRYABLE_SCRIPTS = frozenset({"validate", "scan_match"})
"""Scripts safe to run twice (validate only slides the idle expiry; scan_match only
reads). Other writes are never retried: one that timed out may have happened, and a
second login would leave an orphan session."""


def retryable(request: Request) -> bool:
    """Whether a request may be sent again after a broken connection: reads, and validate."""
    if isinstance(request, Script):
        return request.name in RETRYABLE_SCRIPTS
    return True
Plan = Generator[Request, Any, Any]

SORTS = {"last_seen": "seen", "login_time": "login", "expires_at": "expiry"}
SEARCH_KINDS = {"user": SEARCH_USER, "sid": SEARCH_SID, "ip": SEARCH_IP, "app": SEARCH_APP}
MAX_PAGE = 1000
SWEEP_BATCH = 25
"""Expired sessions ended per sweep script call: about 110 µs of Redis time each, so one
call stays under 5 ms and never stalls other clients (bench/RESULTS.md, sweep)."""
SEEN_MAX = 50_000


@dataclass(slots=True)
class ScanState:
    """Progress of the incremental SCAN used on a Redis without sessionwatch indexes."""

    cursor: int = 0
    sids: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    complete: bool = False
    limit: int = 200_000
    known: dict[str, tuple[str, float | None, str, str]] = field(default_factory=dict)
    """Last read ``(status, expires_at, app, type)`` of each session found, for counts."""
    recheck: int = 0
    """Where the next bounded re-read of ``known`` starts (it goes round)."""


CLOCK_RESYNC = 30.0
"""Seconds (monotonic) after which the server-clock offset is measured again, if no
script reply has refreshed it meanwhile."""


@dataclass(slots=True)
class Context:
    """What every plan needs: the key schema, the policy and the clock. Argument lists
    that never change are built once here instead of on every call.

    One clock: with ``server_clock`` the store's time is the Redis server's. Scripts read
    ``TIME`` themselves; client-side decisions (validate's read-only path, listing views,
    the timestamps login stores) use ``local_clock() + offset``, the offset measured
    against ``TIME`` and refreshed by every validate script reply."""

    schema: Schema
    policy: Policy
    local_clock: Callable[[], float]
    server_clock: bool = False
    publish: str = "PUBLISH"
    """How the write scripts publish events: ``SPUBLISH`` in the bucketed layout (the
    bucket's channel lives on its shard), ``PUBLISH`` in the single-node layout."""
    offset: float = 0.0
    """Redis server's clock minus ``local_clock`` (seconds), when ``server_clock``."""
    synced_at: float = -math.inf
    """``time.monotonic()`` of the last offset measurement."""
    write_keys: list[str] = field(init=False)
    write_head: list[str] = field(init=False)
    overview_keys: list[str] = field(init=False)
    policy_args: list[str] = field(init=False)
    validate_keys: list[str] = field(init=False)
    validate_head: list[str] = field(init=False)
    scan: ScanState = field(default_factory=ScanState)
    indexed: bool | None = None
    """Whether this Redis has sessionwatch indexes; ``None`` until first checked."""
    seen: dict[str, float] = field(default_factory=dict)
    """``last_seen`` of sessions this process validated lately: while no touch is due,
    validate needs only a read (bounded to :data:`SEEN_MAX` entries, oldest dropped)."""

    def __post_init__(self) -> None:
        s, p = self.schema, self.policy
        self.write_keys = s.global_keys()
        self.write_head = [s.channel, *s.lua_layout()]
        self.overview_keys = s.overview_keys()
        self.policy_args = [str(v) for v in (
            p.event_log_max, p.ended_retention, p.cache_ttl, p.user_key_ttl,
            p.history_retention, p.history_max, p.idle_ttl, p.absolute_ttl,
            p.max_sessions_per_user or 0,
        )]
        self.validate_keys = [s.idx_expiry, s.idx_seen]
        self.validate_head = [s.session(""), s.cache(""), s.user_active("")]

    def clock(self) -> float:
        """Now, on the Redis server's clock (or the injected clock as it is)."""
        return self.local_clock() + self.offset

    def server_time(self, server_now: float) -> None:
        """Record a time the server reported just now (a script's or TIME's reply)."""
        if self.server_clock:
            self.offset = server_now - self.local_clock()
            self.synced_at = time.monotonic()

    def script_now(self, now: float) -> str:
        """The ``now`` argument of a script: empty tells it to read the server's TIME."""
        return "" if self.server_clock else fmt_time(now)

    def remember_seen(self, sid: str, last_seen: float) -> None:
        seen = self.seen
        seen[sid] = last_seen
        if len(seen) > SEEN_MAX:
            try:
                for key in list(itertools.islice(seen, SEEN_MAX // 10)):
                    seen.pop(key, None)
            except RuntimeError:  # another thread changed it meanwhile; trim next time
                pass

    def write(self, name: str, now: float, actor: str, *op_args: Any, now_arg: str | None = None) -> Script:
        """A write script call. ``now_arg`` overrides the script's clock argument (login
        passes the time it stamped into the session)."""
        minute = int(now // 60)
        keys = [*self.write_keys, self.schema.minute_counter("logins", minute),
                self.schema.minute_counter("ends", minute), self.schema.minute_kinds(minute),
                *self.overview_keys, self.schema.settings]
        clock = self.script_now(now) if now_arg is None else now_arg
        return Script(name, keys, [*self.write_head, clock, *self.policy_args, actor, self.publish, *op_args])


def _now(ctx: Context) -> Plan:
    """Now on the server's clock, measuring the offset first if it is stale (one TIME
    round trip at most every :data:`CLOCK_RESYNC` seconds; script replies refresh it)."""
    if ctx.server_clock and time.monotonic() - ctx.synced_at > CLOCK_RESYNC:
        before = ctx.local_clock()
        replies = yield Commands([("TIME",)])
        reply = replies[0]
        if isinstance(reply, redis.exceptions.NoPermissionError) or not isinstance(reply, list | tuple):
            ctx.synced_at = time.monotonic()  # TIME denied or odd: keep the last offset
        else:
            after = ctx.local_clock()
            ctx.offset = int(reply[0]) + int(reply[1]) / 1e6 - (before + after) / 2
            ctx.synced_at = time.monotonic()
    return ctx.clock()


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def cache_summary(s: Session) -> dict[str, Any]:
    """What ``cache:session:<sid>`` holds (the Lua scripts write the same keys on change).
    The id is the key's own suffix, and empty profile fields and end reason are left out:
    a shorter string takes a smaller allocation in Redis; readers take a missing field as
    empty."""
    out: dict[str, Any] = {"username": s.username, "app": s.app, "type": s.type, "ip": s.ip,
                           "status": s.status, "login_time": s.login_time, "last_seen": s.last_seen,
                           "expires_at": s.expires_at}
    if s.email:
        out["email"] = s.email
    if s.department:
        out["department"] = s.department
    if s.end_reason:
        out["end_reason"] = s.end_reason
    return out


def policy_field(policy: Policy) -> str:
    """The policy a session is created under, kept in its hash (field ``pol``) so every
    sweeper and validator honours it: 'idle/absolute/retention' in seconds."""
    return f"{policy.idle_ttl}/{policy.absolute_ttl}/{policy.ended_retention}"


def session_fields(s: Session, policy: Policy) -> list[str]:
    """The session hash of a new login, as field/value pairs (empty profile fields left out).
    No ``max_expires_at``: it is ``login_time`` plus the absolute lifetime in ``pol``, and
    readers derive it (one field less keeps the hash a listpack allocation smaller)."""
    assert s.login_time is not None and s.expires_at is not None and s.max_expires_at is not None
    out = ["username", s.username, "app", s.app, "type", s.type, "ip", s.ip, "user_agent", s.user_agent,
           "login_time", fmt_time(s.login_time), "last_seen", fmt_time(s.login_time),
           "expires_at", fmt_time(s.expires_at), "pol", policy_field(policy), "status", ACTIVE]
    if s.email:
        out += ["email", s.email]
    if s.department:
        out += ["department", s.department]
    for kv in s.metadata.items():
        out += kv
    return out


def _is_collision(exc: BaseException) -> bool:
    return isinstance(exc, redis.exceptions.ResponseError) and "SIDCOLLISION" in str(exc)


# --- writes -----------------------------------------------------------------------------

def login(ctx: Context, username: str, *, app: str, type: str = "web", ip: str | None = None,
          user_agent: str | None = None, email: str | None = None, department: str | None = None,
          metadata: Mapping[str, object] | None = None, actor: str | None = None,
          data: Mapping[str, str] | None = None, anonymous: str | None = None,
          anonymous_ctx: Context | None = None) -> Plan:
    """Create a session. ``data``: web-framework session data (``d:<key>`` fields, already
    encoded) stored with it; ``anonymous``: the token of an anonymous session this login
    replaces, deleted in the same script (its data is what ``data`` carries over).

    ``anonymous_ctx``: the bucket context of that anonymous session when it is not the
    user's (bucketed layout). No script may cross slots, so the login is then two steps:
    the login script, then ending the anonymous session in its own bucket (if that second
    step fails, the anonymous session lives on until its idle expiry)."""
    username = check.text("username", username)
    app = check.text("app", app)
    if "|" in app:
        raise InvalidInput("app", "must not contain '|'")
    stype = check.session_type(type)
    ip = check.ip(ip)
    user_agent = check.text("user_agent", user_agent, required=False)
    email = check.text("email", email, required=False)
    department = check.text("department", department, required=False)
    meta = check.metadata(metadata)
    actor = check.text("actor", actor, required=False) or username
    policy = ctx.policy
    data_fields = _data_fields(ctx, data)
    anon_keys: list[str] = []
    aid = anon_id_from_token(anonymous) if anonymous is not None else None
    apart = aid is not None and anonymous_ctx is not None and anonymous_ctx is not ctx
    if aid is not None and not apart:
        anon_keys = [ctx.schema.anonymous(aid), ctx.schema.idx_anonymous]
    clock = yield from _now(ctx)
    for _attempt in range(3):
        token, sid = new_token(username)
        now = float(fmt_time(clock if _attempt == 0 else ctx.clock()))
        max_expires_at = float(fmt_time(now + policy.absolute_ttl))
        expires_at = min(float(fmt_time(now + policy.idle_ttl)), max_expires_at)
        session = Session(
            sid=sid, username=username, app=app, type=stype, ip=ip, user_agent=user_agent,
            login_time=now, last_seen=now, expires_at=expires_at, max_expires_at=max_expires_at,
            status=ACTIVE, email=email, department=department, metadata=meta,
        )
        event = {"ts": now, "kind": "login", "sid": sid, "username": username, "app": app,
                 "actor": actor, "ip": ip, "type": stype}
        if aid is not None:
            event["from_anonymous"] = True
        request = ctx.write("login", now, actor, sid, username, app, stype, ip, fmt_time(expires_at),
                            _json(event), _json(cache_summary(session)),
                            *session_fields(session, policy), *data_fields, now_arg=fmt_time(now))
        request.keys.extend(anon_keys)
        try:
            yield request
        except redis.exceptions.ResponseError as exc:
            if _is_collision(exc):
                continue
            raise
        ctx.remember_seen(sid, now)
        if apart:
            assert anonymous_ctx is not None
            yield from end_anonymous(anonymous_ctx, anonymous)
        return session, token
    raise StoreError("could not allocate a unique session id")


def validate(ctx: Context, token: object) -> Plan:
    sid = sid_from_token(token)
    if sid is None:
        return None
    p = ctx.policy
    if ctx.server_clock and time.monotonic() - ctx.synced_at > CLOCK_RESYNC:
        now = yield from _now(ctx)
    else:  # the common case, without a generator for the clock
        now = ctx.local_clock() + ctx.offset
    known = ctx.seen.get(sid)
    if known is not None and now - known < p.touch_interval:
        # This process saw the session touched less than a touch interval ago, so no write
        # is due: one plain HGETALL, checked exactly as validate.lua checks it.
        reply = (yield Commands([("HGETALL", ctx.schema.session(sid))]))[0]
        if isinstance(reply, Exception):
            raise reply
        session = parse_session(sid, reply)
        if session is None or session.status != ACTIVE or (
                session.expires_at is not None and session.expires_at <= now):
            ctx.seen.pop(sid, None)
            return None
        if session.last_seen is not None:
            ctx.seen[sid] = session.last_seen
        return session
    reply = yield Script("validate", ctx.validate_keys, [
        *ctx.validate_head, ctx.script_now(now), p.touch_interval, p.ended_retention, p.cache_ttl,
        p.user_key_ttl, sid,
    ])
    ctx.server_time(float(reply[1] if reply[0] == 0 else reply[2]))
    if not reply[0]:
        ctx.seen.pop(sid, None)
        return None
    pairs = reply[1]
    if reply[0] == 2:  # touched: later pairs win, so the new values override the read ones
        pairs = [*pairs, "last_seen", reply[2], "expires_at", reply[3]]
    session = parse_session(sid, pairs)
    if session is not None and session.last_seen is not None:
        ctx.remember_seen(sid, session.last_seen)
    return session


def logout(ctx: Context, sid: str, *, actor: str | None = None) -> Plan:
    sid = check.sid(sid)
    actor = check.text("actor", actor, required=False)
    now = yield from _now(ctx)
    reply = yield ctx.write("logout", now, actor, sid)
    return bool(reply)


def logout_user(ctx: Context, username: str, *, actor: str | None = None) -> Plan:
    # Other apps' user names may be longer than the ones login accepts: they can still be ended.
    username = check.text("username", username, limit=check.FOREIGN_LIMIT)
    actor = check.text("actor", actor, required=False)
    now = yield from _now(ctx)
    reply = yield ctx.write("logout_user", now, actor, username)
    return list(reply)


def update_profile(ctx: Context, sid: str, *, email: str | None = None, department: str | None = None,
                   metadata: Mapping[str, object] | None = None, actor: str | None = None) -> Plan:
    sid = check.sid(sid)
    fields: list[str] = []
    if email is not None:
        fields += ["email", check.text("email", email, required=False)]
    if department is not None:
        fields += ["department", check.text("department", department, required=False)]
    for kv in check.metadata(metadata).items():
        fields += kv
    actor = check.text("actor", actor, required=False)
    now = yield from _now(ctx)
    reply = yield ctx.write("update_profile", now, actor, sid, *fields)
    if not reply:
        raise SessionNotFound(sid, "no active session")
    return None


AUDIT_KINDS = ("ssh_connect", "ssh_disconnect")
"""Events about no session: an SSH dashboard opened or closed (``tui.sshd``)."""


def audit(ctx: Context, kind: str, *, actor: str, ip: str | None = None) -> Plan:
    """Append one audit event (``kind`` from :data:`AUDIT_KINDS`); returns its seq."""
    if kind not in AUDIT_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(AUDIT_KINDS)}, got {str(kind)[:40]!r}")
    actor = check.text("actor", actor)
    reply = yield ctx.write("audit", ctx.clock(), actor, kind, check.ip(ip))
    return int(reply)


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    purged: int
    calls: int
    skipped: int = 0
    """Due sessions left alone because a key of theirs holds another type (retried later)."""


def sweep(ctx: Context, *, batch: int = SWEEP_BATCH, max_calls: int | None = 10_000, actor: str = "sweep",
          on_batch: Callable[[SweepResult], None] | None = None) -> Plan:
    """Ends expired sessions and purges old history in bounded batches, one script call each
    (``max_calls=None``: until nothing is left). ``on_batch`` gets the running totals after
    each call: progress, and what was done if the caller is interrupted.

    Each session's own stored expiry and retention decide (the policy it was created
    under), on the Redis server's clock; this sweeper's policy applies only to sessions
    that carry none."""
    if batch < 1 or batch > 1000:
        raise InvalidInput("batch", "must be between 1 and 1000")
    expired = purged = calls = skipped = 0
    while max_calls is None or calls < max_calls:
        now = yield from _now(ctx)
        reply = yield ctx.write("sweep", now, actor, batch)
        calls += 1
        expired += int(reply[0])
        purged += int(reply[1])
        skipped += int(reply[3]) if len(reply) > 3 else 0
        if on_batch is not None:
            on_batch(SweepResult(expired, purged, calls, skipped))
        if not int(reply[2]):
            break
    return SweepResult(expired, purged, calls, skipped)


def set_event_log_max(ctx: Context, value: int) -> Plan:
    """Store the event-log cap every writer trims to (one setting in Redis)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000_000:
        raise InvalidInput("event_log_max", "must be a whole number between 1 and 10,000,000")
    replies = yield Commands([("HSET", ctx.schema.settings, "event_log_max", value)])
    if isinstance(replies[0], Exception):
        raise replies[0]
    return None


def settings(ctx: Context) -> Plan:
    """The shared settings stored in Redis (absent ones are not set yet)."""
    replies = yield Commands([("HGETALL", ctx.schema.settings)])
    return pairs_to_dict(_ok(replies[0], {}))


def sweep_due(ctx: Context) -> Plan:
    """(sessions past expiry, ended sessions past retention): what a sweep has to do now."""
    now = yield from _now(ctx)
    replies = yield Commands([("ZCOUNT", ctx.schema.idx_expiry, "-inf", now),
                              ("ZCOUNT", ctx.schema.idx_ended, "-inf", now - ctx.policy.ended_retention)])
    return int(_ok(replies[0], 0)), int(_ok(replies[1], 0))


# --- reads ------------------------------------------------------------------------------

def _fetch_sessions(ctx: Context, sids: list[str]) -> Plan:
    """HGETALL of many sessions in one round trip; missing ones are dropped."""
    if not sids:
        return []
    replies = yield Commands([("HGETALL", ctx.schema.session(sid)) for sid in sids])
    out = []
    for sid, reply in zip(sids, replies, strict=True):
        session = parse_session(sid, reply)
        if session is not None:
            out.append(session)
    return out


def get(ctx: Context, sid: str) -> Plan:
    sid = check.sid(sid)
    sessions = yield from _fetch_sessions(ctx, [sid])
    return sessions[0] if sessions else None


def _page_bounds(offset: int, limit: int) -> tuple[int, int]:
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset", "must be a whole number >= 0")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")
    return offset, offset + limit - 1


def _indexed_probe(s: Schema) -> tuple[str, ...]:
    """Non-zero when this Redis has sessionwatch indexes: the marker (login and adopt set
    it), or the expiry index (a loader or a restore may have written it without the
    marker). Not the ended index: ending a classic-layout session adds it there, and one
    admin logout must not switch a classic Redis to (nearly empty) index pages."""
    return ("EXISTS", s.marker, s.idx_expiry)


def _check_indexed(ctx: Context) -> Plan:
    # Re-checked until found: a store whose first read met an empty Redis must switch
    # to the indexes once an app has logged someone in (found by tests/test_stateful.py).
    if not ctx.indexed:
        replies = yield Commands([_indexed_probe(ctx.schema)])
        ctx.indexed = bool(replies[0]) and not isinstance(replies[0], Exception)
    return ctx.indexed


def active_page(ctx: Context, *, sort: str = "last_seen", descending: bool = True, offset: int = 0,
                limit: int = 50) -> Plan:
    """One page of active sessions. Sessions past their expiry are left out even before a
    sweep has ended them. The number of commands does not depend on how many exist."""
    if sort not in SORTS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORTS)}")
    start, stop = _page_bounds(offset, limit)
    indexed = yield from _check_indexed(ctx)
    if not indexed:
        page = yield from _scan_page(ctx, ACTIVE, offset, limit)
        return page
    s = ctx.schema
    key = {"seen": s.idx_seen, "login": s.idx_login, "expiry": s.idx_expiry}[SORTS[sort]]
    now = yield from _now(ctx)
    rng = ("ZREVRANGE", key, start, stop) if descending else ("ZRANGE", key, start, stop)
    replies = yield Commands([rng, ("ZCARD", s.idx_expiry), ("ZCOUNT", s.idx_expiry, "-inf", now)])
    sids, total, due = _ok(replies[0], []), _ok(replies[1], 0), _ok(replies[2], 0)
    sessions = yield from _fetch_sessions(ctx, list(sids))
    return Page([x for x in sessions if x.is_active(now)], total=max(0, int(total) - int(due)), offset=offset)


WINDOW_ORDERS = ("seen", "login", "expiry", "user", "app", "ended")
"""Orders :func:`window` serves, each from one sorted set (scores, or ``<value>\\0<sid>`` lex)."""
LEX_ORDERS = ("user", "app")


@dataclass(frozen=True, slots=True)
class Window:
    """Rows ``start .. start+len(sids)-1`` of an order over the whole set."""

    total: int
    start: int
    sids: list[str]
    members: list[str]
    """The index members (what :func:`window` takes as ``anchor``)."""
    sessions: dict[str, Session]
    """The sessions read (a sid missing here has ended and been purged meanwhile)."""
    anchor_rank: int | None = None
    mode: str = "index"


def _order_key(s: Schema, order: str) -> str:
    return {"seen": s.idx_seen, "login": s.idx_login, "expiry": s.idx_expiry, "user": s.idx_user,
            "app": s.idx_app, "ended": s.idx_ended}[order]


def member_sid(order: str, member: str) -> str:
    return member.rsplit("\0", 1)[-1] if order in LEX_ORDERS else member


def window(ctx: Context, order: str, *, descending: bool, start: int, count: int,
           anchor: str | None = None, extra: tuple[str, ...] = ()) -> Plan:
    """``count`` rows of ``order`` from rank ``start`` (negative: from the end, as ZRANGE
    counts), or from ``start`` rows after ``anchor`` (an index member) when it is still
    in the index. Three round trips and ``count + len(extra) + 3`` commands whatever the
    size of the set: rank and size, the range, the hashes (``extra`` sids are read too,
    for rows the caller holds on screen)."""
    if order not in WINDOW_ORDERS:
        raise InvalidInput("order", f"must be one of {', '.join(WINDOW_ORDERS)}")
    if not isinstance(count, int) or not 0 <= count <= MAX_PAGE:
        raise InvalidInput("count", f"must be between 0 and {MAX_PAGE}")
    indexed = yield from _check_indexed(ctx)
    if not indexed:
        if order == "ended" or start < 0:
            return Window(0, 0, [], [], {}, mode="scan")
        page = yield from _scan_page(ctx, ACTIVE, start, max(1, count))
        sids = [x.sid for x in page.sessions]
        return Window(page.total, start, sids, sids, {x.sid: x for x in page.sessions}, mode="scan")
    key = _order_key(ctx.schema, order)
    first: list[tuple[Any, ...]] = [("ZCARD", key)]
    if anchor is not None:
        first.append(("ZREVRANK" if descending else "ZRANK", key, anchor))
    replies = yield Commands(first)
    total = _int(_ok(replies[0], 0))
    anchor_rank = None
    if anchor is not None and isinstance(replies[1], int):
        anchor_rank = replies[1]
        start = max(0, anchor_rank + start)  # rows before the first are none, not the tail's
    if start < 0:
        start = max(0, total + start)
    members: list[str] = []
    if count and start < total:
        rng = ("ZREVRANGE" if descending else "ZRANGE", key, start, start + count - 1)
        members = list(_ok((yield Commands([rng]))[0], []))
    sids = [member_sid(order, m) for m in members]
    wanted = sids + [x for x in extra if x not in set(sids)]
    sessions = yield from _fetch_sessions(ctx, wanted)
    return Window(total, start, sids, members, {x.sid: x for x in sessions}, anchor_rank)


SCAN_SETS = ("active", "ended")
SCAN_BUDGET_US = 1500
"""Server time one filter step may spend (``scan_match`` reads the server clock after each
batch): far under the 5 ms no Redis call may take (a step ends within about 1.7 ms of CPU,
so a call only takes 5 ms when the kernel pauses Redis mid-call), and long enough that the
round trip is a small part of a step (1,000,000 sessions in about 8.8 s, as with 2 ms)."""
SCAN_BATCH = 32
"""Index entries per batch of a filter step (ZRANGEBYLEX or ZSCAN): the most a step can run
past its budget."""
SCAN_MOST = 20_000
"""Sessions one filter step meets at most, whatever the server's clock says."""
TERM_MODES = ("s", "e")
"""How a filter term compares (``scan_match``): substring, or the whole value."""


@dataclass(frozen=True, slots=True)
class ScanStep:
    """One bounded step of a scan over a whole set: ``cursor`` 0 means done."""

    cursor: int | str
    """Where the next step starts (a ZSCAN cursor, or the last index member met); falsy: done."""
    total: int
    rows: list[tuple[str, dict[str, str | None]]]
    """(sid, fields) of each session the step met (fields as asked, ``None`` if unset); with
    ``terms``, only those that may match."""
    scanned: int = -1
    """Sessions the step met (``-1``: as many as ``rows``)."""
    matched: tuple[str, ...] = ()
    """Sessions the server found matching outright (no text a Unicode casefold could read
    differently): no fields sent, nothing left to test."""

    @property
    def met(self) -> int:
        return len(self.rows) if self.scanned < 0 else self.scanned


ScanTerm = tuple[str, str, tuple[int, ...]]
"""(mode, casefolded value, positions): positions index ``fields`` from 1; 0 is the sid."""

FOLD_LEADS = b"\xc3\xc4\xc5\xc7\xe1\xe2\xef"
"""First UTF-8 bytes of every character whose casefold holds an ASCII character (ß, K,
ﬁ…): text without them lowers, in ASCII, to what its casefold is, as far as an ASCII term
can tell (tests/test_core_window.py checks this against Python's Unicode tables)."""
SCAN_WALKS = {"active": ("lex", "username"), "ended": ("scan", None)}
"""How ``scan_match`` walks each set: the active set by its user index (members
``<user>\0<sid>``, in lex order: a session met once, and its user read for free), the
ended set by ZSCAN."""


def scan_step(ctx: Context, which: str, cursor: int | str, *, count: int = 200,
              fields: tuple[str, ...] = ("username",), terms: Sequence[ScanTerm] | None = None,
              budget_us: int = SCAN_BUDGET_US) -> Plan:
    """One bounded step of a scan over the active or ended set; ``cursor`` is 0 (or ``""``)
    at the start, and the step's ``cursor`` is falsy when the scan is done.

    With ``terms`` (a filter), the ``scan_match`` script walks an index on the server for
    about ``budget_us`` of its time and returns the sessions that match (``matched``: ids
    only) and those that may (``rows``, with their fields, for the caller's exact test:
    text a Unicode casefold could read differently from ASCII lowering): one small reply
    per step, however many sessions it met, and no match is ever missed. Without
    ``terms``, or where the script cannot run (a server or user that refuses it: the
    scan starts over in this form): one ZSCAN step
    (``COUNT count``) over the expiry (or ended) index, then one HMGET of ``fields`` per
    session met, in one round trip. Either way no single Redis call is long however large
    the set."""
    if which not in SCAN_SETS:
        raise InvalidInput("which", f"must be one of {', '.join(SCAN_SETS)}")
    if not isinstance(count, int) or not 1 <= count <= MAX_PAGE:
        raise InvalidInput("count", f"must be between 1 and {MAX_PAGE}")
    s = ctx.schema
    key = s.idx_expiry if which == "active" else s.idx_ended
    if terms is not None:
        walk, free = SCAN_WALKS[which]
        index = s.idx_user if walk == "lex" else key
        asked = tuple(f for f in fields if f != free)
        spot = {f: i + 1 for i, f in enumerate(asked)}
        where = [(-1 if f == free else spot[f]) for f in fields]
        start = (cursor or "") if walk == "lex" else (cursor or 0)
        args: list[Any] = [walk, start, s.session(""), SCAN_BATCH, max(1, int(budget_us)), SCAN_MOST,
                           len(asked), *asked, len(terms)]
        ascii_only = True
        for mode, value, positions in terms:
            if mode not in TERM_MODES or not value or any(not 0 <= p <= len(fields) for p in positions):
                raise InvalidInput("terms", f"bad filter term {mode!r} {value!r} {positions!r}")
            ascii_only = ascii_only and value.isascii()
            args += [mode, value, len(positions), *[0 if p == 0 else where[p - 1] for p in positions]]
        # Sessions holding these bytes come back whatever the ASCII test says (matched here).
        args.append(b"[" + FOLD_LEADS + b"]" if ascii_only else b"[\x80-\xff]")
        try:
            reply = yield Script("scan_match", [index], args)
        except redis.exceptions.ResponseError as exc:
            if isinstance(exc, redis.exceptions.NoPermissionError) and not functions_refused(exc):
                raise
            cursor = 0
        else:
            return _scan_reply(reply, fields, free, asked, lex=walk == "lex")
    if isinstance(cursor, str):
        cursor = 0
    replies = yield Commands([("ZSCAN", key, cursor, "COUNT", count), ("ZCARD", key)])
    if isinstance(replies[0], Exception):
        raise replies[0]
    nxt, flat = replies[0]
    sids = list(flat[0::2]) if flat and not isinstance(flat[0], tuple) else [m for m, _ in flat]
    rows: list[tuple[str, dict[str, str | None]]] = []
    if sids:
        got = yield Commands([("HMGET", s.session(sid), *fields) for sid in sids])
        for sid, values in zip(sids, got, strict=True):
            if isinstance(values, list):
                rows.append((sid, dict(zip(fields, values, strict=False))))
    return ScanStep(int(nxt), _int(_ok(replies[1], 0)), rows)


def functions_refused(exc: BaseException) -> bool:
    """A permission error that refuses the script itself (FCALL_RO, EVALSHA), not a key."""
    text = str(exc).lower()
    return any(f"'{c}'" in text or f" {c} " in text for c in ("fcall_ro", "fcall", "evalsha", "eval"))


def _scan_reply(reply: Any, fields: tuple[str, ...], free: str | None, asked: tuple[str, ...], *,
                lex: bool) -> ScanStep:
    """``scan_match``'s reply as a :class:`ScanStep` (a malformed reply ends the scan). A lex
    walk's cursor is the last member met, whatever it looks like (``""``: done)."""
    if not isinstance(reply, list) or len(reply) < 4 or not isinstance(reply[3], list):
        return ScanStep(0, 0, [], 0)
    flat, width = reply[3], len(asked) + 2
    rows = []
    for i in range(0, len(flat) - width + 1, width):
        got: dict[str, str | None] = dict(zip(asked, flat[i + 2:i + width], strict=False))
        if free is not None:
            got[free] = flat[i + 1]
        rows.append((str(flat[i]), {f: got.get(f) for f in fields}))
    nxt = reply[0]
    cursor: int | str = (nxt if isinstance(nxt, str) else "") if lex else _int(nxt)
    exact = reply[4] if len(reply) > 4 and isinstance(reply[4], list) else []
    return ScanStep(cursor, _int(reply[1]), rows, max(0, _int(reply[2])), tuple(str(x) for x in exact))


def sessions_by_id(ctx: Context, sids: list[str]) -> Plan:
    """The sessions still stored among ``sids`` (one round trip)."""
    found = yield from _fetch_sessions(ctx, list(sids))
    return {x.sid: x for x in found}


def ended_page(ctx: Context, *, offset: int = 0, limit: int = 50) -> Plan:
    """Ended sessions, most recently ended first."""
    start, stop = _page_bounds(offset, limit)
    indexed = yield from _check_indexed(ctx)
    if not indexed:
        page = yield from _scan_page(ctx, INACTIVE, offset, limit)
        return page
    s = ctx.schema
    replies = yield Commands([("ZREVRANGE", s.idx_ended, start, stop), ("ZCARD", s.idx_ended)])
    sessions = yield from _fetch_sessions(ctx, list(_ok(replies[0], [])))
    return Page(sessions, total=int(_ok(replies[1], 0)), offset=offset)


def _ok(reply: Any, default: Any) -> Any:
    """A pipeline reply, or ``default`` for unreadable data (WRONGTYPE from another
    writer's key). Permission errors are not data problems: they are raised."""
    if isinstance(reply, redis.exceptions.NoPermissionError):
        raise reply
    return default if isinstance(reply, Exception) or reply is None else reply


SCAN_COUNT = 1000
SCAN_CALLS_PER_PAGE = 5


def _scan_more(ctx: Context) -> Plan:
    """Advance the incremental SCAN over ``session:*`` by a bounded number of calls."""
    state = ctx.scan
    for _ in range(SCAN_CALLS_PER_PAGE):
        if state.complete or len(state.sids) >= state.limit:
            return
        replies = yield Commands([("SCAN", state.cursor, "MATCH", ctx.schema.session_pattern,
                                   "COUNT", SCAN_COUNT, "TYPE", "hash")])
        reply = replies[0]
        if isinstance(reply, Exception):
            raise reply
        cursor, keys = reply
        for key in keys:
            sid = ctx.schema.sid_from_session_key(key)
            if sid not in state.seen:
                state.seen.add(sid)
                state.sids.append(sid)
        state.cursor = int(cursor)
        if state.cursor == 0:
            state.complete = True
            state.sids.sort()


SCAN_STATS_REREAD = 1000
"""Sessions whose status the classic-layout counts re-read per call (round robin): counts
are exact while a Redis holds at most this many sessions, and converge beyond."""


def _remember(state: ScanState, sids: list[str], sessions: list[Session]) -> None:
    fresh = {x.sid: x for x in sessions}
    for sid in sids:
        x = fresh.get(sid)
        if x is None:
            state.known.pop(sid, None)  # gone (deleted or expired by its TTL)
        else:
            state.known[sid] = (x.status, x.expires_at, x.app, x.type)


def _scan_stats(ctx: Context, minutes: int) -> Plan:
    """Counts for the classic layout: the sessions the SCAN found, split by their status
    as last read (a bounded re-read per call), expiry judged now."""
    yield from _scan_more(ctx)
    state = ctx.scan
    if state.recheck >= len(state.sids):
        state.recheck = 0
    window = state.sids[state.recheck: state.recheck + SCAN_STATS_REREAD]
    state.recheck += len(window)
    sessions = yield from _fetch_sessions(ctx, window)
    _remember(state, window, sessions)
    now = yield from _now(ctx)
    active = ended = due = 0
    by_app: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for status, expires_at, app, stype in state.known.values():
        if status != ACTIVE:
            ended += 1
        elif expires_at is not None and expires_at <= now:
            due += 1
        else:
            active += 1
            by_app[app] = by_app.get(app, 0) + 1
            by_type[stype] = by_type.get(stype, 0) + 1
    return Stats(active=active, ended=ended, expired_pending=due, by_app=by_app, by_type=by_type,
                 logins_per_minute=[0] * minutes, ends_per_minute=[0] * minutes, mode="scan")


def _scan_page(ctx: Context, status: str, offset: int, limit: int) -> Plan:
    """Classic layout: page over what the incremental SCAN has found so far. Sessions are
    read a page at a time and split by status; totals are what has been found so far."""
    yield from _scan_more(ctx)
    now = yield from _now(ctx)
    state = ctx.scan
    window = state.sids[offset: offset + limit]
    sessions = yield from _fetch_sessions(ctx, window)
    _remember(state, window, sessions)
    if status == ACTIVE:
        picked = [x for x in sessions if x.is_active(now)]
    else:
        picked = [x for x in sessions if not x.is_active(now)]
    note = () if state.complete else (f"scan in progress: {len(state.sids)} session keys found so far",)
    return Page(picked, total=len(state.sids), offset=offset, mode="scan", problems=note)


def user_history(ctx: Context, username: str, *, limit: int = 50) -> Plan:
    """A user's sessions, newest first, from ``user:sessions:<user>``."""
    username = check.text("username", username)
    _page_bounds(0, limit)
    replies = yield Commands([("LRANGE", ctx.schema.user_sessions(username), 0, limit - 1),
                              ("SMEMBERS", ctx.schema.user_active(username))])
    sids = list(_ok(replies[0], []))
    known = set(sids)
    sids += sorted(x for x in _ok(replies[1], []) if x not in known)
    sessions = yield from _fetch_sessions(ctx, sids[:limit])
    return sessions


def prefix_successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``: the
    exclusive upper bound of a ZRANGEBYLEX prefix search, right for any script (members
    compare as UTF-8 bytes, so a '\xff' character bound stops at U+00FF)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\xff" * (len(prefix) + 1)  # unreachable for UTF-8 text, which has no 0xff
    return stripped[:-1] + bytes([stripped[-1] + 1])


LEX_SEARCH = ("user", "app")
"""Search kinds whose active sessions are found in a lex sort index (``idx:active:user``,
``idx:active:app``): the search index holds their ``u:``/``a:`` entries only once a
session has ended, so an active session is not indexed twice for the same lookup."""


def search_commands(ctx: Context, kind: str, query: str, limit: int) -> list[tuple[Any, ...]]:
    """The reads of one prefix search: the search index, and for user and app the lex
    sort index of active sessions too. :func:`search_members` reads their replies."""
    s = ctx.schema
    prefix = f"{SEARCH_KINDS[kind]}{query}".encode()
    cmds: list[tuple[Any, ...]] = [("ZRANGEBYLEX", s.idx_search, b"[" + prefix,
                                    b"(" + prefix_successor(prefix), "LIMIT", 0, limit)]
    if kind in LEX_SEARCH:
        q = query.encode()
        cmds.append(("ZRANGEBYLEX", s.idx_user if kind == "user" else s.idx_app, b"[" + q,
                     b"(" + prefix_successor(q), "LIMIT", 0, limit))
    return cmds


def search_members(kind: str, replies: Sequence[Any], limit: int) -> list[str]:
    """The matches of :func:`search_commands` as search-index members (``u:<user>``,
    ``s:<sid>``, ``i:<ip>|<sid>``, ``a:<app>|<sid>``), each once, in the search index's
    order (bytes), at most ``limit``."""
    members = [m for m in _ok(replies[0], []) if isinstance(m, str)]
    if kind in LEX_SEARCH and len(replies) > 1:
        tag = SEARCH_KINDS[kind]
        for m in _ok(replies[1], []):
            if not isinstance(m, str) or "\0" not in m:
                continue
            value, sid = m.rsplit("\0", 1)
            members.append(f"{tag}{value}" if kind == "user" else f"{tag}{value}|{sid}")
        members = sorted(set(members), key=lambda m: m.encode("utf-8", "surrogatepass"))
    return members[:limit]


def search(ctx: Context, kind: str, query: str, *, limit: int = 50) -> Plan:
    """Sessions whose username, session id, IP or app starts with ``query``."""
    if kind not in SEARCH_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(SEARCH_KINDS)}")
    query = check.text("query", query, limit=check.FOREIGN_LIMIT)
    _page_bounds(0, limit)
    indexed = yield from _check_indexed(ctx)
    if not indexed:
        found = yield from _scan_search(ctx, kind, query, limit)
        return found
    tag = SEARCH_KINDS[kind]
    replies = yield Commands(search_commands(ctx, kind, query, limit))
    members = search_members(kind, replies, limit)
    if kind == "user":
        users = [m[len(tag):] for m in members]
        lists = yield Commands([("LRANGE", ctx.schema.user_sessions(u), 0, limit - 1) for u in users])
        sids = [sid for reply in lists for sid in _ok(reply, [])][:limit]
    elif kind == "sid":
        sids = [m[len(tag):] for m in members]
    else:
        sids = [m.rsplit("|", 1)[1] for m in members if "|" in m]
    found = yield from _fetch_sessions(ctx, sids)
    return found


def _scan_search(ctx: Context, kind: str, query: str, limit: int) -> Plan:
    yield from _scan_more(ctx)
    state = ctx.scan
    if kind == "sid":
        sids = [x for x in state.sids if x.startswith(query)][:limit]
        found = yield from _fetch_sessions(ctx, sids)
        return found
    found = []
    for start in range(0, min(len(state.sids), 5000), 500):
        batch = yield from _fetch_sessions(ctx, state.sids[start:start + 500])
        attr = {"user": "username", "ip": "ip", "app": "app"}[kind]
        found += [x for x in batch if getattr(x, attr).startswith(query)]
        if len(found) >= limit:
            break
    return found[:limit]


def stats(ctx: Context, *, minutes: int = 30) -> Plan:
    """Counts in O(1): one round trip whatever the number of sessions."""
    s = ctx.schema
    now = yield from _now(ctx)
    current = int(now // 60)
    mins = list(range(current - minutes + 1, current + 1))
    replies = yield Commands([
        _indexed_probe(s),
        ("ZCARD", s.idx_expiry),
        ("ZCOUNT", s.idx_expiry, "-inf", now),
        ("ZCARD", s.idx_ended),
        ("HGETALL", s.stats_app),
        ("HGETALL", s.stats_type),
        ("MGET", *[s.minute_counter("logins", m) for m in mins]),
        ("MGET", *[s.minute_counter("ends", m) for m in mins]),
        # Trimmed (by the server's clock) on every anonymous write, so no client clock here.
        ("ZCARD", s.idx_anonymous),
    ])
    ctx.indexed = bool(_ok(replies[0], 0))

    def counts(reply: Any) -> dict[str, int]:
        return {k: _int(v) for k, v in pairs_to_dict(_ok(reply, {})).items() if _int(v) > 0}

    active, due, ended = (_int(_ok(r, 0)) for r in replies[1:4])
    if not ctx.indexed:
        found = yield from _scan_stats(ctx, minutes)
        return replace(found, anonymous=_int(_ok(replies[8], 0)))
    return Stats(
        active=max(0, active - due), ended=ended, expired_pending=due,
        by_app=counts(replies[4]), by_type=counts(replies[5]),
        logins_per_minute=[_int(v) for v in _ok(replies[6], [])],
        ends_per_minute=[_int(v) for v in _ok(replies[7], [])],
        anonymous=_int(_ok(replies[8], 0)),
    )


OVERVIEW_MINUTES = 60


def overview(ctx: Context, *, minutes: int = OVERVIEW_MINUTES, top: int = TOP_N) -> Plan:
    """The overview's figures in one round trip of ``minutes + 12`` commands, whatever the
    number of sessions: counts by app and type, per-minute counts by kind, the top
    addresses and users (sorted sets the write scripts keep), and the current flags."""
    if not 1 <= minutes <= 24 * 60 or not 1 <= top <= 100:
        raise InvalidInput("minutes", "must be 1..1440 (top 1..100)")
    s = ctx.schema
    now = yield from _now(ctx)
    current = int(now // 60)
    first = current - minutes + 1
    tops = [("ZREVRANGE", key, 0, top - 1, "WITHSCORES")
            for key in (s.ov_ip_sessions, s.ov_ip_users, s.ov_user_sessions, s.ov_user_ips)]
    replies = yield Commands([
        _indexed_probe(s),
        ("ZCARD", s.idx_expiry),
        ("ZCOUNT", s.idx_expiry, "-inf", now),
        ("ZCARD", s.idx_ended),
        ("HGETALL", s.stats_app),
        ("HGETALL", s.stats_type),
        *tops,
        ("HGETALL", s.flags),
        ("ZCOUNT", s.idx_anonymous, f"({now}", "+inf"),
        *[("HGETALL", s.minute_kinds(m)) for m in range(first, current + 1)],
    ])
    for reply in replies:
        _ok(reply, None)  # permission errors are raised, data problems become defaults
    ctx.indexed = bool(_ok(replies[0], 0))
    active, due, ended = (_int(_ok(r, 0)) for r in replies[1:4])

    def counts(reply: Any) -> dict[str, int]:
        return {k: _int(v) for k, v in pairs_to_dict(_ok(reply, {})).items() if _int(v) > 0}

    return Overview(
        now=now, active=max(0, active - due), ended=ended, expired_pending=due,
        by_app=counts(replies[4]), by_type=counts(replies[5]), first_minute=first,
        series=parse_minutes(replies[12:]), anonymous=_int(_ok(replies[11], 0)),
        top_ip_sessions=parse_top(replies[6]), top_ip_users=parse_top(replies[7]),
        top_user_sessions=parse_top(replies[8]), top_user_ips=parse_top(replies[9]),
        flags=parse_flags(replies[10]), mode="index" if ctx.indexed else "scan",
    )


def flag(ctx: Context, mode: str, item: Flag, *, actor: str) -> Plan:
    """Raise (or refresh) or clear one anomaly flag; the event is written only by the call
    that changed it, so evaluators running side by side never double an event."""
    if mode not in ("raise", "clear"):
        raise InvalidInput("mode", "must be raise or clear")
    now = yield from _now(ctx)
    body = {"ts": now, "kind": f"flag_{'raised' if mode == 'raise' else 'cleared'}",
            "sid": item.sids[0] if len(item.sids) == 1 else "",
            "username": item.users[0] if len(item.users) == 1 else "", "app": "", "actor": actor,
            "flag": item.id, "rule": item.rule, "subject": item.subject, "numbers": item.numbers,
            "since": item.since, "detail": item.detail, "sessions": len(item.sids)}
    reply = yield ctx.write("flag", now, actor, mode, item.id, item.to_json(), _json(body))
    return bool(reply)


def flags(ctx: Context) -> Plan:
    """The current flags, newest first."""
    replies = yield Commands([("HGETALL", ctx.schema.flags)])
    return parse_flags(_ok(replies[0], {}))


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """What the Redis-side rules read on one evaluation tick (a fixed number of commands
    plus a bounded look at the few users above the sharing threshold)."""

    logins_per_minute: list[int]
    """Oldest first; the last entry is the current (incomplete) minute."""
    user_addresses: dict[str, list[tuple[str, str]]]
    """Users with at least the threshold of distinct addresses: their (sid, ip) pairs."""
    flags: list[Flag]
    new_users_per_minute: list[int] = field(default_factory=list)


def rule_inputs(ctx: Context, *, min_addresses: int, baseline_minutes: int, candidates: int = 20,
                per_user: int = 200) -> Plan:
    s = ctx.schema
    now = yield from _now(ctx)
    current = int(now // 60)
    replies = yield Commands([
        ("ZREVRANGEBYSCORE", s.ov_user_ips, "+inf", max(1, min_addresses), "WITHSCORES",
         "LIMIT", 0, candidates),
        ("MGET", *[s.minute_counter("logins", m) for m in range(current - baseline_minutes, current + 1)]),
        ("HGETALL", s.flags),
        *[("HGET", s.minute_kinds(m), "new_user") for m in range(current - baseline_minutes, current + 1)],
    ])
    users = [u for u, _n in parse_top(_ok(replies[0], []))]
    addresses: dict[str, list[tuple[str, str]]] = {}
    if users:
        members = yield Commands([("SMEMBERS", s.user_active(u)) for u in users])
        sids_by_user = {u: sorted(_ok(m, []))[:per_user] for u, m in zip(users, members, strict=True)}
        wanted = [(u, sid) for u, sids in sids_by_user.items() for sid in sids]
        if wanted:
            rows = yield Commands([("HMGET", s.session(sid), "ip", "status", "expires_at")
                                   for _u, sid in wanted])
            for (u, sid), row in zip(wanted, rows, strict=True):
                row = _ok(row, [None, None, None])
                exp = parse_time(row[2]) if len(row) > 2 else None
                if row and row[0] and row[1] == ACTIVE and (exp is None or exp > now):
                    addresses.setdefault(u, []).append((sid, row[0]))
    return RuleInputs([_int(v) for v in _ok(replies[1], [])], addresses, parse_flags(_ok(replies[2], {})),
                      [_int(_ok(r, 0)) for r in replies[3:]])


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def server_info(ctx: Context) -> Plan:
    replies = yield Commands([("INFO",), ("CONFIG", "GET", "notify-keyspace-events")])
    if isinstance(replies[0], Exception):
        info = ServerInfo(error=f"INFO unavailable: {str(replies[0]).splitlines()[0][:80]}")
    else:
        info = parse_info(replies[0])
    cfg = replies[1]
    if not isinstance(cfg, Exception):
        flags = pairs_to_dict(cfg).get("notify-keyspace-events")
        info = ServerInfo(**{**_asdict(info), "notify_keyspace_events": flags})
    return info


def _asdict(info: ServerInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__slots__}


def events(ctx: Context, *, limit: int = 100) -> Plan:
    """The newest ``limit`` events, newest first."""
    _page_bounds(0, limit)
    replies = yield Commands([("LRANGE", ctx.schema.events, 0, limit - 1)])
    reply = replies[0]
    if isinstance(reply, Exception):
        return [Event(raw=f"event log unreadable: {str(reply)[:80]}", kind="error")]
    return [parse_event(line) for line in reply]


FINGERPRINT = 4
"""Newest log lines a reader remembers as its position in the log (see :func:`events_since`)."""


@dataclass(frozen=True, slots=True)
class EventsSince:
    events: list[Event]
    """Lines newer than the reader's position, oldest first."""
    gap: bool
    """The reader's position was not found (the log was trimmed past it, or replaced):
    ``events`` is the newest ``limit`` lines and some lines may be gone."""
    rewound: bool = False
    """The event counter went back (Redis lost data, or FLUSHALL): the reader's position
    means nothing any more."""
    counter: int | None = None
    """The ``event:seq`` counter read with the lines: a ``seq`` above it is not ours."""
    top: tuple[str, ...] = ()
    """The newest lines of the log now: the reader's next position."""
    found: bool = False
    """The reader's position was found: every line above it is in ``events``."""


def _counter(reply: Any) -> int | None:
    if isinstance(reply, Exception) or reply is None:
        return None
    try:
        return int(reply)
    except (TypeError, ValueError):
        return None


def events_since(ctx: Context, last_seq: int | None, *, last_raw: str | None = None,
                 top_raw: str | None = None, top: tuple[str, ...] = (), limit: int = 10_000,
                 chunk: int = 100) -> Plan:
    """Lines newer than a reader's position, read back from the newest in growing chunks.

    The position is ``top``, the newest lines of the log when the reader last read it
    (``top_raw`` alone is the one-line form). Lines are matched by content, not by
    ``seq``: plain-text lines from other apps have none, foreign JSON lines may carry
    any, and after FLUSHALL ours start again at 1. ``last_seq`` only tells a rewind: the
    counter is now below it (or gone). ``chunk``: lines in the first read (then x4 each)."""
    fingerprint = tuple(top) or ((top_raw,) if top_raw is not None else ())
    k = len(fingerprint)
    lines: list[str] = []
    exhausted = False
    counter: int | None = None
    first = True
    i = 0
    while True:
        while not exhausted and (i + max(k, 1) > len(lines)):
            cmds: list[tuple[Any, ...]] = [("LRANGE", ctx.schema.events, len(lines), len(lines) + chunk - 1)]
            if first:
                cmds.append(("GET", ctx.schema.event_seq))
            replies = yield Commands(cmds)
            got = replies[0]
            if isinstance(got, Exception):
                raise got
            if first:
                counter = _counter(replies[1])
                first = False
                if last_seq is not None and (counter is None or counter < last_seq):
                    return EventsSince([], True, True, counter, tuple(got[:FINGERPRINT]))
            lines.extend(got)
            exhausted = len(got) < chunk
            chunk = min(chunk * 4, 5000)
        now_top = tuple(lines[:FINGERPRINT])
        if i >= len(lines):
            return EventsSince([parse_event(x) for x in reversed(lines[:i])], bool(k), False, counter,
                               now_top, not k)
        if k and tuple(lines[i:i + k]) == fingerprint:
            return EventsSince([parse_event(x) for x in reversed(lines[:i])], False, False, counter,
                               now_top, True)
        i += 1
        if i >= limit:
            return EventsSince([parse_event(x) for x in reversed(lines[:i])], bool(k), False, counter,
                               now_top, False)


def event_head(ctx: Context) -> Plan:
    """The newest raw event line (or ``None``): the feed's cheap heartbeat and change probe."""
    replies = yield Commands([("LINDEX", ctx.schema.events, 0)])
    if isinstance(replies[0], Exception):
        raise replies[0]
    return replies[0]


def cache_page(ctx: Context, *, offset: int = 0, limit: int = 50) -> Plan:
    """Cache entries of the most recently active sessions, with TTL left."""
    start, stop = _page_bounds(offset, limit)
    indexed = yield from _check_indexed(ctx)
    if indexed:
        replies = yield Commands([("ZREVRANGE", ctx.schema.idx_seen, start, stop)])
        sids = list(_ok(replies[0], []))
    else:
        yield from _scan_more(ctx)
        sids = ctx.scan.sids[start: stop + 1]
    if not sids:
        return []
    cmds: list[tuple[Any, ...]] = []
    for sid in sids:
        cmds += [("GET", ctx.schema.cache(sid)), ("PTTL", ctx.schema.cache(sid))]
    replies = yield Commands(cmds)
    out: list[CacheEntry] = []
    for i, sid in enumerate(sids):
        raw, pttl = replies[2 * i], replies[2 * i + 1]
        if raw is None:
            continue
        out.append(parse_cache(sid, raw, pttl))
    return out


def ping(ctx: Context) -> Plan:
    replies = yield Commands([("PING",)])
    if isinstance(replies[0], Exception):
        raise replies[0]
    return True


# --- bulk: export, import, reindex in bounded pages and batches --------------------------

EXPORT_PAGE = 500
"""Sessions read per export round trip (one ZRANGEBYLEX or SCAN, then HGETALL each)."""
BULK_BATCH = 32
"""Sessions written per ``adopt_batch`` call: about 50 µs of Redis time each, so one call
stays near 1.3 ms, well under the 5 ms no call may exceed (bench/RESULTS.md, bulk)."""
INDEX_BATCH = 16
"""Sessions indexed per ``adopt_batch`` call by ``reindex``: its calls read each hash and
its per-user keys, and at 1,000,000 sessions cost up to ~4 ms of server CPU at 32 (mean,
bench/RESULTS.md), so reindex sends half as many per call to stay clear of 5 ms."""
BULK_MAX = 200
"""The most records one call takes (Lua's unpack() limit, and the 5 ms bound)."""
BULK_BYTES = 128 * 1024
"""A restore batch is also cut at this many bytes of fields, so large sessions make
smaller batches rather than longer calls."""
_SID_FIRST, _SID_END = f"[{SEARCH_SID}", "(" + SEARCH_SID[:-1] + chr(ord(SEARCH_SID[-1]) + 1)


@dataclass(frozen=True, slots=True)
class ExportPage:
    records: list[tuple[str, dict[str, str]]]
    """(sid, session hash) pairs; sessions that vanished meanwhile are left out."""
    position: str
    """Where the next page starts: the last sid read (index order) or the SCAN cursor."""
    done: bool
    seen: int
    """Ids this page looked at (for progress)."""


def export_totals(ctx: Context) -> Plan:
    """(indexed sessions, whether this Redis has indexes): the progress bar's total."""
    replies = yield Commands([("ZCARD", ctx.schema.idx_expiry), ("ZCARD", ctx.schema.idx_ended),
                              _indexed_probe(ctx.schema)])
    return int(_ok(replies[0], 0)) + int(_ok(replies[1], 0)), bool(_ok(replies[2], 0))


def _hashes(ctx: Context, sids: list[str]) -> Plan:
    if not sids:
        return []
    replies = yield Commands([("HGETALL", ctx.schema.session(sid)) for sid in sids])
    out = []
    for sid, reply in zip(sids, replies, strict=True):
        data = pairs_to_dict(_ok(reply, {}))
        if data:
            out.append((sid, data))
    return out


def export_index_page(ctx: Context, after: str | None, *, count: int = EXPORT_PAGE) -> Plan:
    """The next ``count`` indexed sessions in session-id order, after ``after``.

    Paging by the id (the ``s:<sid>`` members of the search index, all scored 0, so ordered
    by id) rather than by rank or SCAN cursor: every id comes once, in increasing order,
    however sessions are added, ended or purged meanwhile, and only one page is held."""
    lo = _SID_FIRST if after is None else f"({SEARCH_SID}{after}"
    replies = yield Commands([("ZRANGEBYLEX", ctx.schema.idx_search, lo, _SID_END, "LIMIT", 0, count)])
    members = _ok(replies[0], [])
    sids = [m[len(SEARCH_SID):] for m in members]
    records = yield from _hashes(ctx, sids)
    return ExportPage(records, sids[-1] if sids else (after or ""), len(sids) < count, len(sids))


def export_scan_page(ctx: Context, cursor: str, *, skip_indexed: bool, count: int = EXPORT_PAGE) -> Plan:
    """One SCAN step over session hashes; with ``skip_indexed``, only those the search
    index does not hold (the index pass wrote those). Duplicates are the caller's to drop."""
    replies = yield Commands([("SCAN", cursor, "MATCH", ctx.schema.session_pattern, "COUNT", count,
                               "TYPE", "hash")])
    if isinstance(replies[0], Exception):
        raise replies[0]
    cursor, keys = replies[0]
    sids = [ctx.schema.sid_from_session_key(k) for k in keys]
    if skip_indexed and sids:
        scores = yield Commands([("ZSCORE", ctx.schema.idx_search, SEARCH_SID + sid) for sid in sids])
        sids = [sid for sid, score in zip(sids, scores, strict=True) if _ok(score, None) is None]
    records = yield from _hashes(ctx, sids)
    return ExportPage(records, str(cursor), str(cursor) == "0", len(keys))


def scan_session_ids(ctx: Context, cursor: str, *, count: int = EXPORT_PAGE) -> Plan:
    """One SCAN step over session hashes: (next cursor, sids)."""
    replies = yield Commands([("SCAN", cursor, "MATCH", ctx.schema.session_pattern, "COUNT", count,
                               "TYPE", "hash")])
    if isinstance(replies[0], Exception):
        raise replies[0]
    cursor, keys = replies[0]
    return str(cursor), [ctx.schema.sid_from_session_key(k) for k in keys]


@dataclass(frozen=True, slots=True)
class BatchResult:
    written: int
    """Sessions restored (import) or newly indexed (reindex)."""
    skipped: int
    """Already present (import), already indexed or not a session (reindex)."""
    problems: list[tuple[str, str]]
    """(sid, why) of sessions left alone because their per-user keys have the wrong type."""


def _batch_result(reply: Any) -> BatchResult:
    flat = list(reply[2]) if len(reply) > 2 else []
    return BatchResult(int(reply[0]), int(reply[1]), list(zip(flat[::2], flat[1::2], strict=False)))


def restore_batch(ctx: Context, records: Sequence[tuple[str, Mapping[str, str]] | backup.Record], *,
                  trust: bool = False,
                  actor: str = "import") -> Plan:
    """Restore sessions absent from Redis, with their indexes, in one script call.

    Checked before anything is written, in the script: key types, and the policy (expiry
    capped to idle and absolute lifetime on the server's clock; a live session only with
    ``trust``). Sessions already present are skipped, never overwritten."""
    if len(records) > BULK_MAX:
        raise InvalidInput("records", f"at most {BULK_MAX} per call")
    args: list[Any] = ["restore", "1" if trust else "0", len(records)]
    for record in records:
        if isinstance(record, backup.Record):  # checked by backup.decode already
            args += [record.sid, len(record.fields), *itertools.chain.from_iterable(record.fields.items())]
            continue
        sid, fields = record
        args += [check.sid(sid), len(fields)]
        for k, v in fields.items():
            args += [check.text("field", k, limit=64),
                     check.text(f"fields.{k}", v, required=False, limit=4096)]
    reply = yield ctx.write("adopt_batch", ctx.clock(), actor, *args)
    ctx.indexed = True
    return _batch_result(reply)


def index_batch(ctx: Context, sids: list[str], *, actor: str = "reindex") -> Plan:
    """Index session hashes another app wrote, in one script call. The hashes are only
    read: no field, TTL or expiry of theirs changes. Already indexed ones are skipped."""
    if len(sids) > BULK_MAX:
        raise InvalidInput("sids", f"at most {BULK_MAX} per call")
    args: list[Any] = ["index", "0", len(sids)]
    for sid in sids:
        args += [check.sid(sid)]
    reply = yield ctx.write("adopt_batch", ctx.clock(), actor, *args)
    ctx.indexed = True
    return _batch_result(reply)


def bulk_preflight(ctx: Context) -> Plan:
    """Find out, without writing, whether this ACL user may run ``adopt_batch``: queue
    each command it sends (on keys of each kind it touches) after MULTI, then DISCARD.
    (Not the FCALL/EVALSHA itself: a user without it is refused at once anyway.)
    Redis checks the ACL as each command is queued and never runs them. A refusal
    raises; a user who may not even send MULTI gets no preflight (the script's own
    first write is then the check)."""
    s = ctx.schema
    sid, user = "0" * 36, "preflight"
    skey, akey, hkey = s.session(sid), s.user_active(user), s.user_sessions(user)
    zsets = (s.idx_expiry, s.idx_seen, s.idx_login, s.idx_ended, s.idx_search, s.idx_user, s.idx_app)
    overview = (s.ov_ip_sessions, s.ov_ip_users, s.ov_user_sessions, s.ov_user_ips)
    # lower case: these are never run, only queued (and the ACL test's scan of the reads
    # core sends, which matches upper-case names, rightly leaves them out)
    queued: list[tuple[Any, ...]] = [
        *[("type", k) for k in (*zsets, s.stats_app, s.marker, skey, akey, hkey)],
        ("exists", skey), ("hmget", skey, "username"), ("pttl", skey), ("hset", skey, "f", "v"),
        ("pexpire", skey, 1000), *[("zscore", k, sid) for k in zsets], *[("zadd", k, 0, sid) for k in zsets],
        ("sadd", akey, sid), ("ttl", akey), ("expire", akey, 1), ("lpos", hkey, sid), ("rpush", hkey, sid),
        ("ltrim", hkey, 0, 1), ("ttl", hkey), ("expire", hkey, 1), ("hincrby", s.stats_app, "x", 1),
        ("hincrby", s.stats_type, "x", 1), ("set", s.marker, "1"), ("hget", s.stats_app, "x"),
        *[("type", k) for k in (*overview, s.ov_pairs, s.ov_users_seen)],
        *[("zincrby", k, 1, "x") for k in overview], ("hincrby", s.ov_pairs, "x", 1),
        ("sadd", s.ov_users_seen, user),
    ]
    replies = yield Commands([("multi",), *queued, ("discard",)])
    if isinstance(replies[0], Exception):
        return False
    for reply in replies[1:-1]:
        if isinstance(reply, redis.exceptions.NoPermissionError) or (
                isinstance(reply, Exception) and str(reply)[:6] == "NOPERM"):
            raise reply
    return True


PREFLIGHT_COMMANDS = frozenset({"type", "exists", "hmget", "pttl", "hset", "pexpire", "zscore", "zadd",
                                "sadd", "ttl", "expire", "lpos", "rpush", "ltrim", "hincrby", "set", "hget",
                                "zincrby"})
"""What :func:`bulk_preflight` queues; a test holds it to what ``adopt_batch.lua`` calls."""


def dumps_session(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def adopt(ctx: Context, sid: str, fields: Mapping[str, str] | None = None, *, actor: str = "import") -> Plan:
    """Index one session: with ``fields``, restore it (only if absent); without, index the
    hash already stored (a session another app wrote in the classic layout)."""
    sid = check.sid(sid)
    args: list[str] = []
    for k, v in (fields or {}).items():
        args += [check.text("field", k, limit=64), check.text(f"fields.{k}", v, required=False, limit=4096)]
    now = yield from _now(ctx)
    reply = yield ctx.write("adopt", now, actor, sid, *args)
    ctx.indexed = True
    return bool(reply)


# --- web-framework session data and anonymous sessions --------------------------------------

DATA_PREFIX = "d:"
"""A web framework's session key ``k`` is stored as field ``d:k`` of the session hash (or of
the anonymous session hash): apart from the profile fields and metadata, whose names
cannot contain ``:``."""


@dataclass(frozen=True, slots=True)
class Anonymous:
    """An anonymous session: data kept for a visitor who has not logged in."""

    aid: str
    data: dict[str, str]
    """Stored values by session key (still encoded, as the framework wrote them)."""
    app: str = ""
    created_at: float | None = None
    last_seen: float | None = None


@dataclass(frozen=True, slots=True)
class AnonymousSaved:
    token: str | None
    """The token of the anonymous session now holding the data; ``None`` if it ended."""
    aid: str | None
    created: bool
    """A new anonymous session (and token) was made: the client needs the new cookie."""


def data_of(fields: Mapping[str, str]) -> dict[str, str]:
    """Session data (by framework key) from a session or anonymous hash's fields."""
    n = len(DATA_PREFIX)
    return {k[n:]: v for k, v in fields.items() if k.startswith(DATA_PREFIX)}


def _data_fields(ctx: Context, data: Mapping[str, str] | None) -> list[str]:
    out: list[str] = []
    total = 0
    for key, value in (data or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("data", "keys and encoded values must be text")
        name = DATA_PREFIX + key
        total += _nbytes(name) + _nbytes(value)
        out += [name, value]
    limit = ctx.policy.data_max_bytes
    if total > limit:
        raise DataTooLarge(total, limit)
    return out


def _nbytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _changes(sets: Mapping[str, str], deletes: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    out: list[str] = [str(len(sets))]
    for key, value in sets.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("data", "keys and encoded values must be text")
        out += [DATA_PREFIX + key, value]
    out += [DATA_PREFIX + key for key in deletes if key not in sets]
    return out


WRONG_TYPE = "WRONGTYPE"


def _wrong_type(exc: BaseException) -> bool:
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(WRONG_TYPE)


TOO_BIG = "TOOBIG"
"""Error the data scripts return when the data would pass the size cap (nothing written)."""


def _too_large(ctx: Context, exc: BaseException) -> DataTooLarge | None:
    if isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(TOO_BIG):
        try:
            size = int(str(exc).split()[1])
        except (IndexError, ValueError):
            size = -1
        return DataTooLarge(size, ctx.policy.data_max_bytes)
    return None


def read_anonymous(ctx: Context, token: object) -> Plan:
    """The anonymous session a token names, or ``None``; slides its idle expiry (server
    clock) at most once per touch interval. One round trip; none for a malformed token."""
    aid = anon_id_from_token(token)
    if aid is None:
        return None
    s, p = ctx.schema, ctx.policy
    try:
        reply = yield Script("anon_read", [s.anonymous(aid), s.idx_anonymous],
                             [aid, p.touch_interval, p.anonymous_idle_ttl])
    except redis.exceptions.ResponseError as exc:
        if _wrong_type(exc):
            return None  # another writer's data under that key: not a session of ours
        raise
    if not reply:
        return None
    fields = pairs_to_dict(reply)
    return Anonymous(aid, data_of(fields), fields.get("app", ""), _float(fields.get("created_at")),
                     _float(fields.get("last_seen")))


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None


def save_anonymous(ctx: Context, token: str | None, sets: Mapping[str, str], deletes: tuple[str, ...] = (),
                   *, app: str = "", replaces: str | None = None,
                   mint: Callable[[], tuple[str, str]] = new_anon_token) -> Plan:
    """Write data to the anonymous session ``token`` names, or (no token, or that session
    is gone) to a new one, created in the same call. ``replaces``: the token of an
    anonymous session to delete in the same call (``session.clear()`` then new data).
    ``mint`` makes new tokens (in the bucketed layout: ones whose ids fall in ``ctx``'s
    bucket, so ``token``, ``replaces`` and the new session share one slot)."""
    s, p = ctx.schema, ctx.policy
    app = check.text("app", app, required=False)
    changes = _changes(sets, deletes)
    aid = anon_id_from_token(token) if token is not None else None
    old = anon_id_from_token(replaces) if replaces is not None else None
    extra_keys = [s.anonymous(old)] if old is not None and old != aid else []
    old_arg = old if extra_keys else ""
    if aid is not None:
        try:
            reply = yield Script("anon_save", [s.anonymous(aid), s.idx_anonymous, *extra_keys],
                                 [aid, "update", p.anonymous_idle_ttl, p.data_max_bytes, app, old_arg,
                                  *changes])
        except redis.exceptions.ResponseError as exc:
            if not _wrong_type(exc) or "index" in str(exc):
                raise (_too_large(ctx, exc) or exc) from None
            reply = 0  # another writer's data under that key: start a session of our own
        if reply == 1:
            return AnonymousSaved(token, aid, False)
        if reply == 2:
            return AnonymousSaved(None, None, False)
        # Gone (idle expiry, or ended elsewhere): a new session for what this request wrote.
        changes = _changes(sets, ())
    if not sets:
        return AnonymousSaved(None, None, False)
    for _attempt in range(3):
        new, new_aid = mint()
        try:
            yield Script("anon_save", [s.anonymous(new_aid), s.idx_anonymous, *extra_keys],
                         [new_aid, "new", p.anonymous_idle_ttl, p.data_max_bytes, app, old_arg, *changes])
        except redis.exceptions.ResponseError as exc:
            if _is_collision(exc):
                continue
            raise (_too_large(ctx, exc) or exc) from None
        return AnonymousSaved(new, new_aid, True)
    raise StoreError("could not allocate a unique anonymous session id")


def end_anonymous(ctx: Context, token: object) -> Plan:
    """End an anonymous session; idempotent. Returns whether it existed."""
    aid = anon_id_from_token(token)
    if aid is None:
        return False
    s = ctx.schema
    reply = yield Script("anon_end", [s.anonymous(aid), s.idx_anonymous], [aid])
    return bool(reply)


def save_data(ctx: Context, sid: str, sets: Mapping[str, str], deletes: tuple[str, ...] = ()) -> Plan:
    """Change the web-framework data of an active user session (one script, no event).
    Returns ``False`` if the session is no longer active (nothing is written then)."""
    sid = check.sid(sid)
    changes = _changes(sets, deletes)
    if changes == ["0"]:
        return True
    try:
        reply = yield Script("session_data", [ctx.schema.session(sid)], [ctx.policy.data_max_bytes, *changes])
    except redis.exceptions.ResponseError as exc:
        raise (_too_large(ctx, exc) or exc) from None
    return bool(reply)


@dataclass(frozen=True, slots=True)
class AnonymousPage:
    sessions: list[Anonymous]
    total: int
    offset: int


def anonymous_page(ctx: Context, *, offset: int = 0, limit: int = 50) -> Plan:
    """Anonymous sessions, most recently active first (the index's idle deadlines); those
    already gone (idle expiry) are left out. Two round trips whatever the total."""
    start, stop = _page_bounds(offset, limit)
    s = ctx.schema
    replies = yield Commands([("ZREVRANGE", s.idx_anonymous, start, stop), ("ZCARD", s.idx_anonymous)])
    aids = [a for a in _ok(replies[0], []) if isinstance(a, str)]
    total = _int(_ok(replies[1], 0))
    if not aids:
        return AnonymousPage([], total, offset)
    hashes = yield Commands([("HGETALL", s.anonymous(aid)) for aid in aids])
    out = []
    for aid, reply in zip(aids, hashes, strict=True):
        fields = pairs_to_dict(_ok(reply, {}))
        if fields:
            out.append(Anonymous(aid, data_of(fields), fields.get("app", ""),
                                 _float(fields.get("created_at")), _float(fields.get("last_seen"))))
    return AnonymousPage(out, total, offset)
