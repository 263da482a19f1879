"""What the ASGI tests share: async clients made inside the TestClient's event loop, and a
sync store on the same data for the checks (the dashboard's view). A module of its own
(not conftest) so test files can import it by a name no other directory shadows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fakeredis

from core import AsyncSessionStore, Policy, SessionStore


@dataclass
class Env:
    """Async clients for the app (made inside the TestClient's event loop) and a sync store
    on the same data for the checks (the dashboard's view)."""

    new_async_client: Callable[[], Any]
    store: SessionStore
    clock: Any
    fake_server: fakeredis.FakeServer | None = None

    def async_store(self, policy: Policy | None = None) -> AsyncSessionStore:
        return AsyncSessionStore(self.new_async_client(), policy=policy, clock=self.clock)
