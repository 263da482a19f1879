"""The synchronous session store."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
import redis.cluster

from . import functions
from .api import StoreAPI, replicated
from .connection import REDIS_ERRORS, map_error, outage_reply, raise_outage, retryable_failure, sync_client
from .fastpath import Call, pooled_call
from .plans import Commands, Plan, Script, retryable


class SessionStore(StoreAPI):
    """Sessions in Redis, for web apps (sync) and for the dashboard's worker threads."""

    _connect = staticmethod(sync_client)

    def _execute(self, request: Script | Commands) -> Any:
        if isinstance(request, Script):
            for _ in range(3):
                try:
                    return self._send_script(request)
                except redis.exceptions.ResponseError as exc:
                    step = self._script_recovery(exc)
                    if step is None:
                        raise
                    if step == "install":  # part of this request: no plan step of its own
                        self._installed(functions.outcome(self._load_library()))
            return self._send_script(request)
        if len(request.commands) == 1 and tuple(request.commands[0][:2]) == ("FUNCTION", "LOAD"):
            return [self._load_library()]
        if len(request.commands) == 1:
            try:
                return [self._call(*request.commands[0])]
            except redis.exceptions.ResponseError as exc:
                return raise_outage([exc])
        pipe = self.client.pipeline(transaction=False)
        for cmd in request.commands:
            pipe.execute_command(*cmd)
        return raise_outage(pipe.execute(raise_on_error=False))

    def _load_library(self) -> object:
        """FUNCTION LOAD of this version's library (on a cluster: on every primary, so a
        primary that joined or lost it gets it); the reply, or the error, for
        :func:`functions.outcome`."""
        source = functions.library_source()
        if not self.is_cluster:
            try:
                return self.client.function_load(source)
            except redis.exceptions.ResponseError as failed:
                return failed
        replies: list[object] = []
        for node in self.client.get_primaries():
            try:
                replies.append(self.client.execute_command("FUNCTION", "LOAD", source, target_nodes=node))
            except redis.exceptions.ResponseError as failed:
                replies.append(failed)
        return functions.combine(replies)

    _pooled: tuple[Any, Call | None] | None = None

    def _fast(self) -> Call | None:
        """:func:`core.fastpath.pooled_call` for this client, where it applies (most of a
        request's Redis client CPU is redis-py's per-command layers)."""
        client = self.client
        pooled = self._pooled
        if pooled is None or pooled[0] is not client:
            pooled = self._pooled = (client, pooled_call(client))
        return pooled[1]

    def _call(self, *args: Any) -> Any:
        """One command, through the fast path where it applies, else the client."""
        call = self._fast()
        return call(*args) if call is not None else self.client.execute_command(*args)

    def _send_script(self, request: Script) -> Any:
        acks = self._replica_acks(request)
        if not acks:
            fast = self._fast() if self._script_mode == "function" else None
            if fast is not None:  # a plain client on a pool (never a cluster: see _script_call)
                command = "FCALL_RO" if functions.read_only(request.name) else "FCALL"
                return fast(command, functions.function_name(request.name), len(request.keys),
                            *request.keys, *request.args)
            return self._script_call(request, self.client)
        if self.is_cluster:
            return self._send_script_on_shard(request, acks)
        pipe = self.client.pipeline(transaction=False)
        self._script_call(request, pipe)
        pipe.execute_command("WAIT", acks, self.ctx.policy.replica_timeout_ms)
        reply, confirmed = pipe.execute()
        return replicated(reply, confirmed, acks)

    def _send_script_on_shard(self, request: Script, acks: int) -> Any:
        """The script and its ``WAIT`` on one connection to the master of the script's slot.
        (WAIT counts the replicas that caught up with *this connection's* writes; the
        cluster client sends a bare WAIT to every primary and adds up their answers, and
        its pipeline retries a failed command without the node it was given.) A MOVED
        reply means the script did not run: the slot map is refreshed and it is sent once
        more; a broken connection refreshes the map for the next call and fails this one."""
        cluster = self.client
        for attempt in range(2):
            node = cluster.get_node_from_key(request.keys[0])
            pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
            self._script_call(request, pipe)
            pipe.execute_command("WAIT", acks, self.ctx.policy.replica_timeout_ms)
            try:
                reply, confirmed = pipe.execute()
            except (redis.exceptions.MovedError, redis.exceptions.ConnectionError,
                    redis.exceptions.TimeoutError, redis.exceptions.ClusterDownError) as exc:
                # if the cluster is still settling, the next call tries again
                with contextlib.suppress(redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
                    cluster.nodes_manager.initialize()
                if attempt or not isinstance(exc, redis.exceptions.MovedError):
                    raise
                continue
            return replicated(reply, confirmed, acks)
        raise AssertionError("unreachable")

    def _attempt(self, request: Script | Commands, deadline: float) -> Any:
        """``_execute``, retried after a broken connection if the request is a read and
        a whole further try still fits before ``deadline``."""
        opts = self.options
        failures = 0
        while True:
            try:
                return self._execute(request)
            except REDIS_ERRORS as exc:
                failures += 1
                if (opts is None or failures > opts.retries or not retryable(request)
                        or not retryable_failure(exc)):
                    raise
                pause = opts.backoff(failures)
                if time.monotonic() + pause + opts.per_try_seconds > deadline:
                    raise
                time.sleep(pause)

    def _run(self, plan: Plan) -> Any:
        opts = self.options
        deadline = time.monotonic() + (opts.worst_case_seconds if opts else 0.0)
        try:
            request = next(plan)
            while True:
                try:
                    reply = self._attempt(request, deadline)
                except redis.exceptions.ResponseError as exc:
                    if outage_reply(exc):
                        raise  # BUSY, MISCONF...: the store is unavailable, not the request wrong
                    request = plan.throw(exc)
                else:
                    request = plan.send(reply)
        except StopIteration as stop:
            return stop.value
        except REDIS_ERRORS as exc:
            raise map_error(exc) from exc

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
