"""The asyncio session store: the same methods as :class:`SessionStore`, awaitable."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import redis.asyncio
import redis.exceptions

from . import functions
from .api import StoreAPI, replicated
from .connection import (
    REDIS_ERRORS,
    async_client,
    map_error,
    outage_reply,
    raise_outage,
    retryable_failure,
)
from .errors import StoreUnavailable
from .plans import Commands, Plan, Script, retryable


class AsyncSessionStore(StoreAPI):
    """Sessions in Redis for asyncio apps (ASGI). Methods return awaitables."""

    _connect = staticmethod(async_client)

    async def _ready(self) -> None:
        """Map a cluster's slots once, before the first command: redis-py's asyncio cluster
        client maps them lazily, and concurrent first commands each doing so lost
        connections under one another."""
        lock = self.__dict__.setdefault("_init_lock", asyncio.Lock())
        async with lock:
            if not self._cluster_ready:
                await self.client.initialize()
                self._cluster_ready = True

    async def _execute(self, request: Script | Commands) -> Any:
        if self.is_cluster and not self._cluster_ready:
            await self._ready()
        if isinstance(request, Script):
            for _ in range(3):
                try:
                    return await self._send_script(request)
                except redis.exceptions.ResponseError as exc:
                    step = self._script_recovery(exc)
                    if step is None:
                        raise
                    if step == "install":  # part of this request: no plan step of its own
                        self._installed(functions.outcome(await self._load_library()))
            return await self._send_script(request)
        if len(request.commands) == 1 and tuple(request.commands[0][:2]) == ("FUNCTION", "LOAD"):
            return [await self._load_library()]
        if len(request.commands) == 1:
            try:
                return [await self.client.execute_command(*request.commands[0])]
            except redis.exceptions.ResponseError as exc:
                return raise_outage([exc])
        pipe = self.client.pipeline(transaction=False)
        for cmd in request.commands:
            pipe.execute_command(*cmd)
        return raise_outage(await pipe.execute(raise_on_error=False))

    async def _load_library(self) -> object:
        """FUNCTION LOAD of this version's library (on a cluster: on every primary, so a
        primary that joined or lost it gets it); the reply, or the error, for
        :func:`functions.outcome`."""
        # One load at a time: callers that found the library missing together would
        # otherwise all send the payload at once (and redis-py's asyncio cluster client
        # lost connections under that); the others find it present and carry on.
        lock = self.__dict__.setdefault("_load_lock", asyncio.Lock())
        async with lock:
            return await self._load_library_now()

    async def _load_library_now(self) -> object:
        source = functions.library_source()
        if not self.is_cluster:
            try:
                return await self.client.function_load(source)
            except redis.exceptions.ResponseError as failed:
                return failed
        replies: list[object] = []
        for node in self.client.get_primaries():
            try:
                replies.append(await self.client.execute_command("FUNCTION", "LOAD", source,
                                                                 target_nodes=node))
            except redis.exceptions.ResponseError as failed:
                replies.append(failed)
        return functions.combine(replies)

    async def _send_script(self, request: Script) -> Any:
        acks = self._replica_acks(request)
        if not acks:
            return await self._script_call(request, self.client)
        pipe = self.client.pipeline(transaction=False)
        queued = self._script_call(request, pipe)
        # EVALSHA's Script object queues asynchronously (a coroutine); FCALL returns the
        # pipeline itself, which must not be awaited (a cluster pipeline would start over)
        if inspect.iscoroutine(queued):
            await queued
        # WAIT counts the replicas of the connection's own writes: on a cluster, the node
        # that holds the script's keys (the cluster pipeline sends both on its connection)
        target = {"target_nodes": self.client.get_node_from_key(request.keys[0])} if self.is_cluster else {}
        pipe.execute_command("WAIT", acks, self.ctx.policy.replica_timeout_ms, **target)
        reply, confirmed = await pipe.execute()
        return replicated(reply, confirmed, acks)

    def _gate(self) -> asyncio.Semaphore | None:
        """On a cluster: at most ``max_connections`` requests in flight. redis-py's asyncio
        cluster client has no blocking pool (one caller too many gets MaxConnectionsError
        at once), so callers queue here instead, within the store's deadline."""
        if not self.is_cluster:
            return None
        gate = self.__dict__.get("_gate_semaphore")
        if gate is None:
            limit = int(self.client.connection_kwargs.get("max_connections") or 100)
            gate = self.__dict__["_gate_semaphore"] = asyncio.Semaphore(limit)
        return gate

    async def _attempt(self, request: Script | Commands, deadline: float) -> Any:
        """``_execute``, retried after a broken connection if the request is a read and
        a whole further try still fits before ``deadline``."""
        opts = self.options
        failures = 0
        while True:
            try:
                gate = self._gate()
                if gate is None:
                    return await self._execute(request)
                async with gate:
                    return await self._execute(request)
            except REDIS_ERRORS as exc:
                failures += 1
                if (opts is None or failures > opts.retries or not retryable(request)
                        or not retryable_failure(exc)):
                    raise
                pause = opts.backoff(failures)
                if time.monotonic() + pause + opts.per_try_seconds > deadline:
                    raise
                await asyncio.sleep(pause)

    async def _drive(self, plan: Plan, request: Script | Commands) -> Any:
        opts = self.options
        if opts is None:
            return await self._steps(plan, request, float("inf"))
        # The bound is a deadline here: the pool wait, handshakes and retries all count.
        try:
            async with asyncio.timeout(opts.worst_case_seconds):
                return await self._steps(plan, request, time.monotonic() + opts.worst_case_seconds)
        except TimeoutError:
            raise StoreUnavailable(f"Redis did not answer within {opts.worst_case_seconds:g} s") from None

    async def _steps(self, plan: Plan, request: Script | Commands, deadline: float) -> Any:
        try:
            while True:
                try:
                    reply = await self._attempt(request, deadline)
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

    def _run(self, plan: Plan) -> Any:
        # Plans validate their arguments before their first yield: run that part now so
        # bad input raises at the call, like the sync store, not only when awaited.
        try:
            first = next(plan)
        except StopIteration as stop:
            return _done(stop.value)
        return self._drive(plan, first)

    async def close(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> AsyncSessionStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _done(value: Any) -> Any:
    return value
