"""The synchronous session store."""

from __future__ import annotations

import time
from typing import Any

import redis

from . import functions
from .api import StoreAPI, replicated
from .connection import REDIS_ERRORS, map_error, outage_reply, raise_outage, retryable_failure, sync_client
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
                return [self.client.execute_command(*request.commands[0])]
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

    def _send_script(self, request: Script) -> Any:
        acks = self._replica_acks(request)
        if not acks:
            return self._script_call(request, self.client)
        pipe = self.client.pipeline(transaction=False)
        self._script_call(request, pipe)
        # WAIT counts the replicas of the connection's own writes: on a cluster, the node
        # that holds the script's keys (the cluster pipeline sends both on its connection)
        target = {"target_nodes": self.client.get_node_from_key(request.keys[0])} if self.is_cluster else {}
        pipe.execute_command("WAIT", acks, self.ctx.policy.replica_timeout_ms, **target)
        reply, confirmed = pipe.execute()
        return replicated(reply, confirmed, acks)

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
