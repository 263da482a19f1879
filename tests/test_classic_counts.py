"""Counts on a Redis in the classic layout (no sessionwatch indexes): what the dashboard's
header shows must split the sessions SCAN finds by their status, and follow changes."""

from __future__ import annotations

import pytest
import redis

from core import SessionStore

pytestmark = pytest.mark.usefixtures("classic_layout_only")


def write_classic(raw: redis.Redis, now: float, active: int, inactive: int) -> None:
    for i in range(active):
        raw.hset(f"session:live-{i}", mapping={"username": f"u{i}", "app": "crm" if i % 2 else "shop",
                                               "type": "web", "status": "active", "login_time": now - 60,
                                               "expires_at": now + 600})
    for i in range(inactive):
        raw.hset(f"session:old-{i}", mapping={"username": f"o{i}", "app": "crm", "status": "inactive",
                                              "login_time": now - 7200, "logout_time": now - 3600})


def test_scan_mode_stats_split_active_and_inactive(store: SessionStore, raw: redis.Redis, clock) -> None:
    write_classic(raw, clock(), active=3, inactive=9)
    stats = store.stats()
    assert stats.mode == "scan"
    assert (stats.active, stats.ended, stats.expired_pending) == (3, 9, 0)
    assert stats.by_app == {"crm": 1, "shop": 2} and stats.by_type == {"web": 3}


def test_scan_mode_stats_follow_logouts_expiry_and_deletions(store: SessionStore, raw: redis.Redis,
                                                            clock) -> None:
    write_classic(raw, clock(), active=3, inactive=9)
    store.stats()
    assert store.logout("live-0", actor="admin")
    raw.delete("session:old-0")
    stats = store.stats()
    assert (stats.active, stats.ended) == (2, 9)
    clock.advance(601)
    stats = store.stats()
    assert (stats.active, stats.expired_pending) == (0, 2)
