"""``sessionwatch anomalies`` and the overview's figures in ``sessionwatch stats --json``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import redis

from core import SessionStore
from core.anomalies import Thresholds
from tests.test_cli import Run
from tui.cli import main

pytestmark = pytest.mark.real


@pytest.fixture
def sw(capsys: pytest.CaptureFixture[str], real_url: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("REDIS_URL", raising=False)
    return Run(capsys, real_url)


@pytest.fixture
def app_store(real_url: str) -> Iterator[SessionStore]:
    with SessionStore.from_url(real_url) as store:
        yield store


@pytest.fixture
def raw(real_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(real_url, decode_responses=True)
    yield client
    client.close()


def spray(store: SessionStore, ip: str = "203.0.113.50", users: int = 10) -> None:
    for i in range(users):
        store.login(f"victim{i}", app="shop", type="web", ip=ip, user_agent="pytest")


def test_stats_json_carries_the_overview(sw: Run, app_store: SessionStore) -> None:
    for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
        app_store.login("alice", app="crm", type="web", ip=ip)
    app_store.login("bob", app="crm", type="mobile", ip="192.0.2.1")
    sid = app_store.login("carol", app="hr", type="web", ip="198.51.100.3")[0].sid
    app_store.logout(sid, actor="admin:x")
    assert sw("stats", "--json") == 0
    ov = json.loads(sw.out)["overview"]
    assert ov["top_addresses_by_sessions"][0] == ["192.0.2.1", 3]
    assert ov["top_addresses_by_users"][0] == ["192.0.2.1", 2]
    assert ov["top_users_by_sessions"][0] == ["alice", 3]
    assert ov["top_users_by_addresses"][0] == ["alice", 2]
    assert ov["per_minute"]["logins"][-1] == 5 and ov["per_minute"]["admin_logouts"][-1] == 1
    assert len(ov["per_minute"]["expiries"]) == 60 and ov["anonymous"] == 0
    assert sw("stats") == 0
    assert "by users: 192.0.2.1 2" in sw.out


def test_anomalies_lists_current_flags_text_and_json(sw: Run, app_store: SessionStore) -> None:
    assert sw("anomalies") == 0 and "no current flags" in sw.out
    assert sw("anomalies", "--json") == 0 and sw.out == ""
    spray(app_store)
    from core.flagger import Flagger

    flagger = Flagger(app_store)
    for ev in reversed(app_store.events(limit=50)):
        flagger.observe(ev)
    assert flagger.tick().raised
    assert sw("anomalies") == 0
    assert "spray" in sw.out and "203.0.113.50" in sw.out and "users 10" in sw.out
    assert sw("anomalies", "--json") == 0
    (flag,) = sw.json_lines()
    assert flag["rule"] == "spray" and flag["numbers"]["users"] == 10 and len(flag["sids"]) == 10


def test_anomalies_follow_evaluates_and_prints_the_raised_flag(real_url: str, app_store: SessionStore,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(
        main(["anomalies", "--follow", "--json", "--count", "1", "--url", real_url])), daemon=True)
    runner.start()
    # wait until the follower is subscribed: its connection shows up as a pub/sub client
    import time

    deadline = time.monotonic() + 10
    while app_store.client.pubsub_numsub(app_store.schema.channel)[0][1] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    spray(app_store)
    runner.join(timeout=15)
    assert codes == [0]
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert lines[-1]["kind"] == "flag_raised" and lines[-1]["rule"] == "spray"


def test_anomalies_read_only_follow_writes_nothing(real_url: str, app_store: SessionStore,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(
        main(["anomalies", "--follow", "--count", "1", "--read-only", "--url", real_url])), daemon=True)
    runner.start()
    import time

    deadline = time.monotonic() + 10
    while app_store.client.pubsub_numsub(app_store.schema.channel)[0][1] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    spray(app_store)
    runner.join(timeout=15)
    assert codes == [0]
    assert "local_raised" in capsys.readouterr().out
    assert app_store.flags() == []


def test_bad_threshold_in_environment_is_a_usage_error(sw: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONWATCH_ANOMALY_SPRAY_USERS", "lots")
    assert sw("anomalies") == 2
    assert "SESSIONWATCH_ANOMALY_SPRAY_USERS" in sw.one_error_line()
    assert Thresholds().spray_users == 10


def test_flag_text_from_redis_is_shown_literally(sw: Run, raw: redis.Redis) -> None:
    raw.hset("ov:flags", "spray:x", json.dumps({"rule": "spray", "subject": "\x1b[31mred", "numbers": {"users": 3},
                                               "since": 1.8e9, "detail": "line\nbreak"}))
    assert sw("anomalies") == 0
    assert "\x1b" not in sw.out and "\\x1b[31mred" in sw.out and "line\\x0abreak" in sw.out


def test_simulate_runs_a_scenario_on_top_of_normal_traffic(sw: Run, raw: redis.Redis) -> None:
    assert sw("simulate", "--rate", "20", "--duration", "3", "--scenario", "spray", "--scenario-after", "0",
              "--progress", "0", "--seed", "1") == 0
    assert "scenario spray starts in 0 s" in sw.err
    assert float(raw.zscore("ov:ip:users", "203.0.113.250") or 0) >= 4  # two spray logins a second
    assert raw.zcard("ov:user:sessions") > 4  # and the normal traffic around it
