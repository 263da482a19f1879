"""The public methods of both stores, written once.

Each method validates its arguments and builds a plan (:mod:`core.plans`); the concrete
store's ``_run`` drives it. :class:`SessionStore` returns results, :class:`AsyncSessionStore`
returns awaitables, from the same method bodies.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from . import backup, fanout, feed_merge, functions, merged, plans
from .buckets import DEFAULT_BUCKETS, Buckets
from .connection import ConnectOptions, describe_target, is_cluster_client
from .errors import NotReplicated
from .plans import Context
from .policy import Policy
from .schema import Schema
from .scripts import REPLICATED_SCRIPTS, all_scripts
from .tokens import anon_id_from_token, new_anon_token, sid_from_token


class StoreAPI:
    """Operations on sessions. Every write is one Lua script call: one round trip."""

    ctx: Context
    options: ConnectOptions | None = None
    """Timeouts and retries of a store made by :meth:`from_url`; ``None`` for a client
    passed in (its own timeouts apply, and nothing is retried)."""

    def __init__(self, client: Any, *, prefix: str = "", policy: Policy | None = None,
                 clock: Callable[[], float] | None = None, server_clock: bool | None = None,
                 buckets: int | None = None) -> None:
        """Wrap a redis-py client (``redis.Redis`` for the sync store, ``redis.asyncio.Redis``
        for the async one; fakeredis works too). ``clock`` returns epoch seconds.

        ``server_clock`` (the default unless a ``clock`` is given): expiry follows the Redis
        server's clock; ``clock`` is then only this machine's clock, corrected by a measured
        offset. With a ``clock`` and no ``server_clock``, that clock is used as it is (tests).

        ``buckets``: use the bucketed layout (:mod:`core.buckets`) with that many buckets,
        as Redis Cluster needs (a cluster client gets 64 unless told); ``None`` keeps the
        single-node classic layout."""
        if server_clock is None:
            server_clock = clock is None
        if buckets is None and is_cluster_client(client):
            buckets = DEFAULT_BUCKETS  # the classic layout's scripts would cross slots
        policy = policy or Policy()
        self.buckets = Buckets(prefix, buckets) if buckets is not None else None
        schemas = self.buckets.schemas if self.buckets is not None else (Schema(prefix),)
        publish = "SPUBLISH" if self.buckets is not None else "PUBLISH"
        self.ctxs: list[Context] = [Context(schema, policy, clock or time.time, server_clock, publish)
                                    for schema in schemas]
        """One context per bucket (one in the single-node layout)."""
        self.ctx = self.ctxs[0]
        self.client = client
        self._scripts = {name: client.register_script(src) for name, src in all_scripts().items()}
        self._script_mode = "function"
        self._cluster_ready = False
        """Whether the asyncio cluster client has mapped the slots (core.aio)."""
        """``function``: FCALL of the library (core/functions.py); ``eval``: EVALSHA, once
        the server turned out to have no functions (Redis 6.2)."""

    @staticmethod
    def _connect(url: str, options: ConnectOptions | None, *,
                 cluster: bool | None = None) -> Any:  # pragma: no cover - per subclass
        raise NotImplementedError

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", policy: Policy | None = None,
                 clock: Callable[[], float] | None = None, options: ConnectOptions | None = None,
                 server_clock: bool | None = None, cluster: bool | None = None,
                 buckets: int | None = None) -> Self:
        """Connect to ``url`` (redis://, rediss://, unix://, redis+sentinel://) with explicit
        timeouts and retries (:class:`~core.connection.ConnectOptions`).

        A Redis Cluster is detected (``cluster_enabled:1``, asked once here; a server that
        cannot be asked, down or INFO denied, is taken for a single node) or forced with
        ``cluster=True`` (what production should pass); it
        gets redis-py's cluster client and the bucketed layout, ``buckets`` of them
        (default 64, fixed for the deployment's life). ``buckets`` on a single node uses
        the bucketed layout there too (tests, benchmarks)."""
        client = cls._connect(url, options, cluster=cluster)
        store = cls(client, prefix=prefix, policy=policy, clock=clock, server_clock=server_clock,
                    buckets=buckets)
        store.options = options or ConnectOptions()
        return store

    @property
    def is_cluster(self) -> bool:
        """Whether this store talks to a Redis Cluster (redis-py's cluster client)."""
        return is_cluster_client(self.client)

    def _run(self, plan: plans.Plan) -> Any:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def _script_call(self, request: plans.Script, client: Any) -> Any:
        """Send one script call on ``client`` (the client or a pipeline): FCALL / FCALL_RO
        of this version's function, or EVALSHA on a server without functions."""
        if self._script_mode == "eval":
            return self._scripts[request.name](keys=request.keys, args=request.args, client=client)
        send = client.fcall_ro if functions.read_only(request.name) else client.fcall
        name = functions.function_name(request.name)
        if is_cluster_client(client) and request.keys:
            # redis-py asks a node (COMMAND GETKEYS) where each FCALL's keys are: a round
            # trip per call, and a dead end while that node is down. The keys are known.
            node = client.get_node_from_key(request.keys[0])
            command = "FCALL_RO" if functions.read_only(request.name) else "FCALL"
            return client.execute_command(command, name, len(request.keys), *request.keys,
                                          *request.args, target_nodes=node)
        return send(name, len(request.keys), *request.keys, *request.args)

    def _script_recovery(self, exc: BaseException) -> str | None:
        """After a failed script call: ``"retry"`` (switched to EVALSHA: no functions on
        this server), ``"install"`` (the library is not loaded), or ``None`` (a real error)."""
        if functions.is_unsupported(exc):  # also for calls sent before another one found out
            self._script_mode = "eval"
            return "retry"
        return "install" if functions.is_missing(exc) else None

    def _installed(self, status: str) -> None:
        if status == "unsupported":
            self._script_mode = "eval"

    def install_functions(self) -> Any:
        """Load this version's function library into Redis (needs FUNCTION LOAD: the admin
        role). Returns ``"loaded"``, ``"present"`` or ``"unsupported"`` (Redis 6.2)."""
        return self._run(functions.install(self.ctx))

    def _replica_acks(self, request: plans.Script) -> int:
        """Replicas to ``WAIT`` for after ``request``: user-session writes only (a throttled
        touch in ``validate`` and anonymous data are not worth a replication round), and
        only when the policy asks."""
        return self.ctx.policy.replica_acks if request.name in REPLICATED_SCRIPTS else 0

    def target(self) -> dict[str, Any]:
        """Where this store points (host, port or path, db, user); never the password."""
        return describe_target(self.client)

    @property
    def schema(self) -> Schema:
        return self.ctx.schema

    # --- routing: which bucket's context an operation runs in ------------------------------
    def _for_user(self, username: object) -> Context:
        if self.buckets is None or not isinstance(username, str):
            return self.ctx
        return self.ctxs[self.buckets.of_user(username)]

    def _for_sid(self, sid: object) -> Context:
        if self.buckets is None or not isinstance(sid, str):
            return self.ctx
        return self.ctxs[self.buckets.of_sid(sid)]

    def _for_anonymous(self, token: object) -> Context:
        aid = anon_id_from_token(token) if self.buckets is not None else None
        return self.ctxs[self.buckets.of_anonymous(aid)] if self.buckets is not None and aid else self.ctx

    def _for_aid(self, aid: str) -> Context:
        """The context of an anonymous session id (its bucket's)."""
        return self.ctxs[self.buckets.of_anonymous(aid)] if self.buckets is not None else self.ctx

    def _anon_mint(self, ctx: Context) -> Callable[[], tuple[str, str]]:
        """New anonymous tokens whose ids fall in ``ctx``'s bucket (drawn until one does:
        about as many draws as there are buckets, each one SHA-256)."""
        if self.buckets is None:
            return new_anon_token
        buckets, bucket = self.buckets, self.ctxs.index(ctx)

        def mint() -> tuple[str, str]:
            while True:
                token, aid = new_anon_token()
                if buckets.of_anonymous(aid) == bucket:
                    return token, aid

        return mint

    def _for_token(self, token: object) -> Context:
        if self.buckets is None:
            return self.ctx
        sid = sid_from_token(token)
        return self.ctxs[self.buckets.of_sid(sid)] if sid is not None else self.ctx

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    # --- writes ---------------------------------------------------------------------------
    def login(self, username: str, *, app: str, type: str = "web", ip: str | None = None,
              user_agent: str | None = None, email: str | None = None, department: str | None = None,
              metadata: Mapping[str, object] | None = None, actor: str | None = None,
              data: Mapping[str, str] | None = None, anonymous: str | None = None) -> Any:
        """Create a session; returns ``(Session, token)``. Only the session id is stored.
        ``data`` (encoded web-framework session data) is stored with it; ``anonymous`` names
        an anonymous session (by its token) that this login replaces in the same script."""
        return self._run(plans.login(self._for_user(username), username, app=app, type=type, ip=ip,
                                     user_agent=user_agent, email=email, department=department,
                                     metadata=metadata, actor=actor, data=data, anonymous=anonymous,
                                     anonymous_ctx=self._for_anonymous(anonymous)))

    def validate(self, token: object) -> Any:
        """The active session for a token, or ``None``; slides idle expiry (throttled),
        never past the absolute lifetime."""
        return self._run(plans.validate(self._for_token(token), token))

    def logout(self, sid: str, *, actor: str | None = None) -> Any:
        """End one session; idempotent. Returns whether this call ended it. An ``actor``
        other than the session's user makes it an admin logout."""
        return self._run(plans.logout(self._for_sid(sid), sid, actor=actor))

    def logout_user(self, username: str, *, actor: str | None = None) -> Any:
        """End every active session of ``username``; returns the ids ended."""
        return self._run(plans.logout_user(self._for_user(username), username, actor=actor))

    def update_profile(self, sid: str, *, email: str | None = None, department: str | None = None,
                       metadata: Mapping[str, object] | None = None, actor: str | None = None) -> Any:
        """Set profile fields of an active session; raises SessionNotFound if it is not."""
        return self._run(plans.update_profile(self._for_sid(sid), sid, email=email, department=department,
                                              metadata=metadata, actor=actor))

    def sweep(self, *, batch: int = plans.SWEEP_BATCH, max_calls: int | None = 10_000, actor: str = "sweep",
              on_batch: Callable[[plans.SweepResult], None] | None = None) -> Any:
        """End sessions whose expiry passed and purge old history, in bounded batches
        (``max_calls=None``: until none is left); ``on_batch`` sees the totals after each.
        In the bucketed layout: every bucket with work (``max_calls`` in all)."""
        if self.buckets is not None:
            return self._run(fanout.sweep(self.ctxs, batch=batch, max_calls=max_calls, actor=actor,
                                          on_batch=on_batch))
        return self._run(plans.sweep(self.ctx, batch=batch, max_calls=max_calls, actor=actor,
                                     on_batch=on_batch))

    def sweep_due(self) -> Any:
        """(sessions past expiry, ended sessions past retention) right now."""
        if self.buckets is not None:
            return self._run(fanout.sweep_due(self.ctxs))
        return self._run(plans.sweep_due(self.ctx))

    def adopt(self, sid: str, fields: Mapping[str, str] | None = None, *, actor: str = "import") -> Any:
        """Index a session written by another app, or restore one from a backup."""
        return self._run(plans.adopt(self._for_sid(sid), sid, fields, actor=actor))

    # --- web-framework session data and anonymous sessions --------------------------------
    def save_data(self, sid: str, sets: Mapping[str, str], deletes: tuple[str, ...] = ()) -> Any:
        """Change a user session's web-framework data; ``False`` if it is no longer active."""
        return self._run(plans.save_data(self._for_sid(sid), sid, sets, deletes))

    def read_anonymous(self, token: object) -> Any:
        """The :class:`~core.plans.Anonymous` session a token names, or ``None``."""
        return self._run(plans.read_anonymous(self._for_anonymous(token), token))

    def save_anonymous(self, token: str | None, sets: Mapping[str, str], deletes: tuple[str, ...] = (),
                       *, app: str = "", replaces: str | None = None) -> Any:
        """Write an anonymous session's data, creating it (new token) when needed; returns
        an :class:`~core.plans.AnonymousSaved`.

        In the bucketed layout a new session is made in the bucket of the one it
        ``replaces`` (one script); a ``token`` in another bucket than ``replaces`` is saved
        in its own, and the replaced one ended by a second call."""
        if self.buckets is None:
            return self._run(plans.save_anonymous(self.ctx, token, sets, deletes, app=app, replaces=replaces))
        if token is not None and anon_id_from_token(token) is not None:
            ctx = self._for_anonymous(token)
        elif replaces is not None and anon_id_from_token(replaces) is not None:
            ctx = self._for_anonymous(replaces)
        else:
            ctx = self.ctxs[secrets.randbelow(len(self.ctxs))]
        apart = replaces is not None and self._for_anonymous(replaces) is not ctx
        return self._run(_then_end(plans.save_anonymous(ctx, token, sets, deletes, app=app,
                                                        replaces=None if apart else replaces,
                                                        mint=self._anon_mint(ctx)),
                                   self._for_anonymous(replaces) if apart else None, replaces))

    def end_anonymous(self, token: object) -> Any:
        """End an anonymous session; returns whether it existed."""
        return self._run(plans.end_anonymous(self._for_anonymous(token), token))

    def audit(self, kind: str, *, actor: str, ip: str | None = None) -> Any:
        """Append an event about no session (``ssh_connect`` / ``ssh_disconnect``: who is
        watching, from where); returns its seq. (Bucketed layout: in the actor's bucket.)"""
        return self._run(plans.audit(self._for_user(actor), kind, actor=actor, ip=ip))

    def set_event_log_max(self, value: int) -> Any:
        """Set the event-log cap that every writer honours (stored in Redis). Until it is
        set, the first writer to trim stores its own policy's ``event_log_max``. (Bucketed
        layout: in every bucket, each of which has its own log.)"""
        if self.buckets is not None:
            return self._run(fanout.set_event_log_max(self.ctxs, value))
        return self._run(plans.set_event_log_max(self.ctx, value))

    def settings(self) -> Any:
        """The settings shared through Redis (``event_log_max``)."""
        return self._run(plans.settings(self.ctx))

    # --- reads ----------------------------------------------------------------------------
    def anonymous_page(self, *, offset: int = 0, limit: int = 50) -> Any:
        """Anonymous sessions, most recently active first (an :class:`~core.plans.AnonymousPage`)."""
        if self.buckets is not None:
            return self._run(merged.anonymous_page(self.buckets, self.ctxs, offset=offset, limit=limit))
        return self._run(plans.anonymous_page(self.ctx, offset=offset, limit=limit))

    def get(self, sid: str) -> Any:
        return self._run(plans.get(self._for_sid(sid), sid))

    def active_page(self, *, sort: str = "last_seen", descending: bool = True, offset: int = 0,
                    limit: int = 50) -> Any:
        if self.buckets is not None:
            return self._run(merged.active_page(self.buckets, self.ctxs, sort=sort, descending=descending,
                                                offset=offset, limit=limit))
        return self._run(plans.active_page(self.ctx, sort=sort, descending=descending, offset=offset,
                                           limit=limit))

    def window(self, order: str, *, descending: bool = True, start: int = 0, count: int = 50,
               anchor: str | None = None, extra: tuple[str, ...] = ()) -> Any:
        """Rows of a whole-set order by rank (a :class:`~core.plans.Window`), at constant cost."""
        if self.buckets is not None:
            return self._run(merged.window(self.buckets, self.ctxs, order, descending=descending, start=start,
                                           count=count, anchor=anchor, extra=extra))
        return self._run(plans.window(self.ctx, order, descending=descending, start=start, count=count,
                                      anchor=anchor, extra=extra))

    def scan_step(self, which: str, cursor: int | str, *, count: int = 200,
                  fields: tuple[str, ...] = ("username",), terms: Any = None,
                  budget_us: int = plans.SCAN_BUDGET_US) -> Any:
        """One bounded step of a scan over the active or ended set (a :class:`~core.plans.ScanStep`);
        with filter ``terms``, matched on the server (see :func:`core.plans.scan_step`). A
        bucketed store takes plain steps (every session met comes back, for the caller to match)."""
        if self.buckets is not None:
            return self._run(merged.scan_step(self.ctxs, which, cursor, count=count, fields=fields))
        return self._run(plans.scan_step(self.ctx, which, cursor, count=count, fields=fields, terms=terms,
                                         budget_us=budget_us))

    def sessions_by_id(self, sids: list[str]) -> Any:
        if self.buckets is not None:
            return self._run(merged.sessions_by_id(self.buckets, self.ctxs, sids))
        return self._run(plans.sessions_by_id(self.ctx, sids))

    def ended_page(self, *, offset: int = 0, limit: int = 50) -> Any:
        if self.buckets is not None:
            return self._run(merged.ended_page(self.buckets, self.ctxs, offset=offset, limit=limit))
        return self._run(plans.ended_page(self.ctx, offset=offset, limit=limit))

    def user_history(self, username: str, *, limit: int = 50) -> Any:
        return self._run(plans.user_history(self._for_user(username), username, limit=limit))

    def search(self, kind: str, query: str, *, limit: int = 50) -> Any:
        if self.buckets is not None:
            return self._run(merged.search(self.buckets, self.ctxs, kind, query, limit=limit))
        return self._run(plans.search(self.ctx, kind, query, limit=limit))

    def stats(self, *, minutes: int = 30) -> Any:
        if self.buckets is not None:
            return self._run(merged.stats(self.ctxs, minutes=minutes))
        return self._run(plans.stats(self.ctx, minutes=minutes))

    def overview(self, *, minutes: int = plans.OVERVIEW_MINUTES) -> Any:
        """The overview's figures (:class:`~core.overview.Overview`) at a fixed Redis cost."""
        if self.buckets is not None:
            return self._run(merged.overview(self.ctxs, minutes=minutes))
        return self._run(plans.overview(self.ctx, minutes=minutes))

    def flags(self) -> Any:
        """The current anomaly flags, newest first."""
        if self.buckets is not None:
            return self._run(merged.flags(self.ctxs))
        return self._run(plans.flags(self.ctx))

    def flag(self, mode: str, item: Any, *, actor: str) -> Any:
        """Raise (``"raise"``) or clear (``"clear"``) one anomaly flag; returns whether this
        call changed it (and so wrote its event). Bucketed layout: a flag always lives in
        the bucket its id names, so evaluators agree on who wrote it."""
        ctx = self._for_user(getattr(item, "id", None))
        return self._run(plans.flag(ctx, mode, item, actor=actor))

    def rule_inputs(self, *, min_addresses: int, baseline_minutes: int) -> Any:
        """What the Redis-side anomaly rules read on one tick (:class:`~core.plans.RuleInputs`)."""
        if self.buckets is not None:
            return self._run(merged.rule_inputs(self.ctxs, min_addresses=min_addresses,
                                                baseline_minutes=baseline_minutes))
        return self._run(plans.rule_inputs(self.ctx, min_addresses=min_addresses,
                                           baseline_minutes=baseline_minutes))

    def server_info(self) -> Any:
        return self._run(plans.server_info(self.ctx))

    def events(self, *, limit: int = 100) -> Any:
        """The newest ``limit`` events, newest first (merged in time order over buckets)."""
        if self.buckets is not None:
            return self._run(feed_merge.events(self.ctxs, limit=limit))
        return self._run(plans.events(self.ctx, limit=limit))

    def events_since(self, last_seq: int | None, *, last_raw: str | None = None, top_raw: str | None = None,
                     top: tuple[str, ...] = (), limit: int = 10_000) -> Any:
        """Events after a reader's position (an :class:`~core.plans.EventsSince`). A
        bucketed store's readers hold one position per bucket: :meth:`bucket_events_since`."""
        if self.buckets is not None:
            raise TypeError("a bucketed store's event log has a position per bucket: use bucket_events_since")
        return self._run(plans.events_since(self.ctx, last_seq, last_raw=last_raw, top_raw=top_raw,
                                            top=top, limit=limit))

    def bucket_events_since(self, positions: Mapping[int, tuple[int | None, tuple[str, ...]]], *,
                            limit: int = 10_000) -> Any:
        """Events after each listed bucket's position ``(last_seq, top)``, read together:
        ``{bucket: EventsSince}`` (the whole store is bucket 0 on the single-node layout)."""
        return self._run(feed_merge.since(self.ctxs, positions, limit=limit))

    def events_start(self, *, backlog: int = 200) -> Any:
        """A new reader's start over every bucket: ``(per-bucket EventsSince, the newest
        ``backlog`` lines merged oldest first)``."""
        return self._run(feed_merge.initial(self.ctxs, backlog=backlog))

    def event_head(self) -> Any:
        """The newest raw event line (over all buckets), or ``None``."""
        if self.buckets is not None:
            return self._run(feed_merge.head(self.ctxs))
        return self._run(plans.event_head(self.ctx))

    def event_heads(self) -> Any:
        """Each bucket's newest raw event line (one entry on the single-node layout)."""
        return self._run(feed_merge.heads(self.ctxs))

    def cache_page(self, *, offset: int = 0, limit: int = 50) -> Any:
        if self.buckets is not None:
            return self._run(merged.cache_page(self.buckets, self.ctxs, offset=offset, limit=limit))
        return self._run(plans.cache_page(self.ctx, offset=offset, limit=limit))

    def ping(self) -> Any:
        return self._run(plans.ping(self.ctx))

    # --- bulk (core.bulk drives these page by page) -----------------------------------------
    def export_totals(self) -> Any:
        if self.buckets is not None:
            return self._run(merged.export_totals(self.ctxs))
        return self._run(plans.export_totals(self.ctx))

    def export_index_page(self, after: str | None, *, count: int = plans.EXPORT_PAGE) -> Any:
        if self.buckets is not None:
            return self._run(merged.export_index_page(self.buckets, self.ctxs, after, count=count))
        return self._run(plans.export_index_page(self.ctx, after, count=count))

    def export_scan_page(self, cursor: str, *, skip_indexed: bool, count: int = plans.EXPORT_PAGE) -> Any:
        if self.buckets is not None:
            return self._run(merged.export_scan_page(cursor))
        return self._run(plans.export_scan_page(self.ctx, cursor, skip_indexed=skip_indexed, count=count))

    def scan_session_ids(self, cursor: str, *, count: int = plans.EXPORT_PAGE) -> Any:
        if self.buckets is not None:
            return self._run(merged.scan_session_ids(cursor))
        return self._run(plans.scan_session_ids(self.ctx, cursor, count=count))

    def restore_batch(self, records: Sequence[tuple[str, Mapping[str, str]] | backup.Record], *,
                      trust: bool = False, actor: str = "import") -> Any:
        """Restore absent sessions from a backup in one call (a :class:`~core.plans.BatchResult`);
        in the bucketed layout one call per bucket the records fall in."""
        if self.buckets is not None:
            return self._run(fanout.restore_batch(self.ctxs, self.buckets.of_sid, records, trust=trust,
                                                  actor=actor))
        return self._run(plans.restore_batch(self.ctx, records, trust=trust, actor=actor))

    def index_batch(self, sids: list[str], *, actor: str = "reindex") -> Any:
        """Index other apps' session hashes in one call, never changing them (bucketed
        layout: one call per bucket the ids fall in)."""
        if self.buckets is not None:
            return self._run(fanout.index_batch(self.ctxs, self.buckets.of_sid, sids, actor=actor))
        return self._run(plans.index_batch(self.ctx, sids, actor=actor))

    def bulk_preflight(self) -> Any:
        """Raise :class:`PermissionDenied` if this ACL user may not restore or index sessions.
        (On a cluster client there is no preflight: it queues commands after MULTI, which
        the cluster client's pipeline cannot route; the first batch's script is the check.)"""
        if self.is_cluster:
            return _done_sync_or_async(self, True)
        return self._run(plans.bulk_preflight(self.ctx))


def replicated(reply: Any, confirmed: Any, wanted: int) -> Any:
    """The script's reply once ``WAIT`` confirmed ``wanted`` replicas; else NotReplicated."""
    if int(confirmed) < wanted:
        raise NotReplicated(f"only {int(confirmed)} of {wanted} replicas confirmed the write in time; "
                            "it reached the master and may be lost if it fails over now")
    return reply


def _then_end(plan: plans.Plan, ctx: Context | None, token: str | None) -> plans.Plan:
    """``plan``, then (``ctx`` given) end the anonymous session ``token`` in that bucket."""
    result = yield from plan
    if ctx is not None:
        yield from plans.end_anonymous(ctx, token)
    return result


def _done_sync_or_async(store: StoreAPI, value: Any) -> Any:
    """``value`` as this store returns results: as it is, or awaitable (asyncio store)."""
    def plan() -> plans.Plan:
        return value
        yield  # a generator that returns at once
    return store._run(plan())
