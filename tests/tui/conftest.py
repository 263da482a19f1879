"""Dashboard fixtures: a fakeredis store seeded under a fixed clock with fixed session ids.

No ``__init__.py`` here: a ``tests/tui`` package would shadow the real ``tui`` package."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterator

import pytest
from tui_helpers import seed

import core.plans
from core import SessionStore
from core.tokens import user_tag


@pytest.fixture
def backend() -> str:
    """The dashboard tests run on fakeredis only: fast, deterministic, no servers."""
    return "fake"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times are shown in local time; pin it so screens are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fixed_sids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session ids from a counter instead of secrets, for snapshot tests."""
    counter = itertools.count(1)

    def new_token(username: str) -> tuple[str, str]:
        n = next(counter)
        tag = user_tag(username)
        return f"{tag}.fixed{n}", hashlib.sha256(f"fixed-{n}".encode()).hexdigest()[:32] + tag

    monkeypatch.setattr(core.plans, "new_token", new_token)


@pytest.fixture
def seeded(make_store: Callable[..., SessionStore], clock, fixed_sids) -> tuple[SessionStore, list[str]]:
    store = make_store()
    return store, seed(store, clock)
