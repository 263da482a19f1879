"""The bench's bulk loader writes what a real login writes (bench/fill.py says so, and the
scale figures in bench/RESULTS.md rest on it): the same hash fields and cache summary
fields, the same keys and key types."""

from __future__ import annotations

import json

import pytest
import redis

from bench.fill import fill, sid_of
from core import SessionStore

pytestmark = pytest.mark.usefixtures("classic_layout_only")


def _keys(client: redis.Redis, sid: str, user: str) -> dict[str, str]:
    """Every key, with the session's id and user replaced by placeholders, and its type."""
    return {k.replace(sid, "<sid>").replace(user, "<user>"): client.type(k) for k in client.scan_iter()}


def test_fill_writes_the_keys_and_fields_a_login_writes(make_store, backend: str) -> None:
    if backend == "sentinel":
        pytest.skip("one layout check is enough: the same server behind Sentinel")
    store: SessionStore = make_store()
    client = store.client
    client.flushdb()
    session, _ = store.login("someone", app="crm", type="web", ip="10.0.0.1", user_agent="Mozilla/5.0",
                             email="someone@example.com")
    real_keys = _keys(client, session.sid, "someone")
    real_hash = set(client.hkeys(f"session:{session.sid}"))
    real_cache = set(json.loads(client.get(f"cache:session:{session.sid}")))
    client.flushdb()
    fill(client, 0, 1, now=store.ctx.clock(), per_user=1)
    sid, user = sid_of(0), "user00000000"
    filled_keys = _keys(client, sid, user)
    assert set(client.hkeys(f"session:{sid}")) == real_hash
    assert set(json.loads(client.get(f"cache:session:{sid}"))) == real_cache
    # not per session: the capped event log (filled once to its cap instead) and the
    # per-minute login counters (a few keys whatever the number of sessions)
    events = {k for k in real_keys if "event" in k or k.startswith("stats:")}
    assert {k: t for k, t in filled_keys.items() if k not in events} == \
        {k: t for k, t in real_keys.items() if k not in events}
