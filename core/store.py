"""The synchronous session store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from .api import StoreAPI
from .connection import REDIS_ERRORS, ConnectOptions, describe_target, map_error, sync_client
from .plans import Commands, Plan, Script
from .policy import Policy
from .scripts import all_scripts


class SessionStore(StoreAPI):
    """Sessions in Redis, for web apps (sync) and for the dashboard's worker threads."""

    def __init__(self, client: redis.Redis, *, prefix: str = "", policy: Policy | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self._setup(prefix, policy, clock)
        self.client = client
        self._scripts = {name: client.register_script(src) for name, src in all_scripts().items()}

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", policy: Policy | None = None,
                 clock: Callable[[], float] | None = None, options: ConnectOptions | None = None
                 ) -> SessionStore:
        """Connect lazily to ``url`` (redis://, rediss://, unix://) with explicit timeouts."""
        return cls(sync_client(url, options), prefix=prefix, policy=policy, clock=clock)

    def _execute(self, request: Script | Commands) -> Any:
        if isinstance(request, Script):
            return self._scripts[request.name](keys=request.keys, args=request.args)
        if len(request.commands) == 1:
            try:
                return [self.client.execute_command(*request.commands[0])]
            except redis.exceptions.ResponseError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for cmd in request.commands:
            pipe.execute_command(*cmd)
        return pipe.execute(raise_on_error=False)

    def _run(self, plan: Plan) -> Any:
        try:
            request = next(plan)
            while True:
                try:
                    reply = self._execute(request)
                except redis.exceptions.ResponseError as exc:
                    request = plan.throw(exc)
                else:
                    request = plan.send(reply)
        except StopIteration as stop:
            return stop.value
        except REDIS_ERRORS as exc:
            raise map_error(exc) from exc

    def target(self) -> dict[str, Any]:
        return describe_target(self.client)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
