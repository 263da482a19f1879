"""Eviction: sessionwatch needs ``maxmemory-policy noeviction``; ``health`` says so when a
Redis runs another policy (README, "What is guaranteed, and what is not")."""

from __future__ import annotations

import pytest
import redis

from core import SessionStore
from tui import cli


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru"])
def test_health_warns_about_an_evicting_policy(real_url: str, policy: str, capsys) -> None:
    with redis.Redis.from_url(real_url) as c:
        old = c.config_get("maxmemory-policy")["maxmemory-policy"]
        c.config_set("maxmemory-policy", policy)
        try:
            assert cli.main(["--url", real_url, "health"]) == 0
        finally:
            c.config_set("maxmemory-policy", old)
    out = capsys.readouterr().out
    assert f"maxmemory-policy {policy}" in out and "noeviction" in out


def test_health_is_quiet_under_noeviction(real_url: str, capsys) -> None:
    with redis.Redis.from_url(real_url) as c:
        old = c.config_get("maxmemory-policy")["maxmemory-policy"]
        c.config_set("maxmemory-policy", "noeviction")
        try:
            assert cli.main(["--url", real_url, "health"]) == 0
        finally:
            c.config_set("maxmemory-policy", old)
    assert "maxmemory-policy" not in capsys.readouterr().out
    with SessionStore.from_url(real_url) as store:
        assert store.server_info().maxmemory_policy == "noeviction"
