"""The store against a simple in-memory model (hypothesis RuleBasedStateMachine).

Random logins (under a per-user cap), validations (with throttled touches), logouts,
logout-alls, profile updates, clock jumps and sweeps (with purging). After every step
the Redis state, every index and every counter agree with the model. Mostly on
fakeredis for speed, plus a short run on a real server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from core import Policy, SessionNotFound, SessionStore
from core.counters import counter_drift
from core.model import parse_event
from tests.conftest import FakeClock

POLICY = Policy(idle_ttl=60, absolute_ttl=150, touch_interval=10, max_sessions_per_user=3, ended_retention=300)
USERS = st.sampled_from(["ann", "bob", "cy"])
END_KINDS = {"logout", "admin_logout", "expired", "evicted", "replaced"}


@dataclass
class M:
    """What the model knows about one session."""

    sid: str
    username: str
    app: str
    type: str
    login: float
    last_seen: float
    expires_at: float
    max_expires_at: float
    status: str = "active"
    logout_time: float | None = None
    email: str = ""
    department: str = ""
    purged: bool = False
    ends: int = field(default=0)


class StoreMachine(RuleBasedStateMachine):
    make_client: Callable[[], redis.Redis] = staticmethod(
        lambda: fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True))

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1_800_000_000)
        self.store = SessionStore(self.make_client(), policy=POLICY, clock=self.clock)
        # the buckets the model's users write (one schema on a single node)
        self.schemas = list(dict.fromkeys(self.store._for_user(u).schema for u in ("ann", "bob", "cy")))
        self.raw = self.store.client
        self.model: dict[str, M] = {}
        self.by_token: dict[str, str] = {}

    def teardown(self) -> None:
        self.store.close()

    # --- model helpers -----------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock.now

    def _end(self, m: M, reason: str) -> None:
        m.status, m.logout_time, m.ends = "inactive", self.now, m.ends + 1

    def _indexed(self) -> list[M]:
        return [m for m in self.model.values() if m.status == "active"]

    # --- rules -----------------------------------------------------------------------------
    @rule(target=tokens, user=USERS, app=st.sampled_from(["crm", "shop"]), stype=st.sampled_from(["web", "api"]))
    def login(self, user: str, app: str, stype: str) -> str:
        session, token = self.store.login(user, app=app, type=stype)
        now = self.now
        new = M(session.sid, user, app, stype, now, now, min(now + POLICY.idle_ttl, now + POLICY.absolute_ttl),
                now + POLICY.absolute_ttl)
        members = [m for m in self._indexed() if m.username == user]
        self.model[new.sid] = new
        self.by_token[token] = new.sid
        if len(members) + 1 > POLICY.max_sessions_per_user:
            live = []
            for m in members:
                if m.expires_at <= now:
                    self._end(m, "expired")
                else:
                    live.append(m)
            live.sort(key=lambda m: (m.login, m.sid))
            for m in live[: len(live) + 1 - POLICY.max_sessions_per_user]:
                self._end(m, "evicted")
        return token

    @rule(token=tokens)
    def validate(self, token: str) -> None:
        got = self.store.validate(token)
        m = self.model[self.by_token[token]]
        ok = m.status == "active" and not m.purged and m.expires_at > self.now
        assert (got is not None) == ok
        if ok:
            if self.now - m.last_seen >= POLICY.touch_interval:
                m.last_seen = self.now
                m.expires_at = min(self.now + POLICY.idle_ttl, m.max_expires_at)
            assert (got.sid, got.expires_at, got.last_seen) == (m.sid, m.expires_at, m.last_seen)

    @rule(token=tokens, admin=st.booleans())
    def logout(self, token: str, admin: bool) -> None:
        m = self.model[self.by_token[token]]
        ended = self.store.logout(m.sid, actor="root" if admin else None)
        expect = m.status == "active" and not m.purged
        assert ended == expect
        if expect:
            self._end(m, "logout")

    @rule(user=USERS)
    def logout_user(self, user: str) -> None:
        ended = self.store.logout_user(user, actor="root")
        expect = {m.sid for m in self._indexed() if m.username == user}
        assert set(ended) == expect
        for sid in expect:
            self._end(self.model[sid], "admin")

    @rule(token=tokens, email=st.sampled_from(["", "a@example.org", "[b]x[/b]"]),
          department=st.sampled_from(["ops", "sales"]))
    def update_profile(self, token: str, email: str, department: str) -> None:
        m = self.model[self.by_token[token]]
        if m.status == "active" and not m.purged and m.expires_at > self.now:
            self.store.update_profile(m.sid, email=email, department=department)
            m.email, m.department = email, department
        else:
            with pytest.raises(SessionNotFound):
                self.store.update_profile(m.sid, email=email, department=department)

    @rule(seconds=st.integers(min_value=0, max_value=120))
    def jump(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        result = self.store.sweep(batch=4)
        due = [m for m in self._indexed() if m.expires_at <= self.now]
        for m in due:
            self._end(m, "expired")
        cutoff = self.now - POLICY.ended_retention
        old = [m for m in self.model.values() if m.status != "active" and not m.purged
               and m.logout_time is not None and m.logout_time <= cutoff]
        for m in old:
            m.purged = True
        assert (result.expired, result.purged) == (len(due), len(old))

    # --- invariants ---------------------------------------------------------------------------
    @invariant()
    def redis_agrees_with_model(self) -> None:
        raw, now = self.raw, self.now
        schemas = self.schemas

        def members(index: str, scores: bool = False) -> list:
            return [m for sc in schemas for m in raw.zrange(getattr(sc, index), 0, -1, withscores=scores)]

        def counts(key: str) -> Counter:
            total: Counter = Counter()
            for sc in schemas:
                total.update({k: int(v) for k, v in raw.hgetall(getattr(sc, key)).items()})
            return +total

        active = self._indexed()
        assert sorted(members("idx_expiry", True), key=lambda x: (x[1], x[0])) == sorted(
            ((m.sid, m.expires_at) for m in active), key=lambda x: (x[1], x[0]))
        assert dict(members("idx_seen", True)) == {m.sid: m.last_seen for m in active}
        assert dict(members("idx_login", True)) == {m.sid: m.login for m in active}
        ended = {m.sid for m in self.model.values() if m.status != "active" and not m.purged}
        assert set(members("idx_ended")) == ended
        for user in ("ann", "bob", "cy"):
            key = self.store._for_user(user).schema.user_active(user)
            assert raw.smembers(key) == {m.sid for m in active if m.username == user}
        assert counts("stats_app") == Counter(m.app for m in active)
        assert counts("stats_type") == Counter(m.type for m in active)
        assert all(counter_drift(raw, sc) == [] for sc in schemas)
        for m in self.model.values():
            got = self.store.get(m.sid)
            if m.purged:
                assert got is None
                continue
            assert got is not None and got.problems == ()
            assert (got.username, got.status, got.expires_at, got.last_seen, got.email, got.department) == (
                m.username, m.status, m.expires_at, m.last_seen, m.email, m.department)
            assert got.is_active(now) == (m.status == "active" and m.expires_at > now)
        live = {m.sid for m in active if m.expires_at > now}
        page = self.store.active_page(limit=1000)
        assert {x.sid for x in page.sessions} == live and page.total == len(live)
        stats = self.store.stats()
        assert (stats.active, stats.expired_pending, stats.ended) == (len(live), len(active) - len(live), len(ended))
        lines = [line for sc in schemas for line in raw.lrange(sc.events, 0, -1)]
        ends = Counter(e.sid for e in map(parse_event, lines) if e.kind in END_KINDS)
        assert all(n == 1 for n in ends.values())
        assert all(ends.get(m.sid, 0) == m.ends for m in self.model.values())


def test_store_matches_model_on_fakeredis() -> None:
    run_state_machine_as_test(StoreMachine, settings=settings(
        max_examples=40, stateful_step_count=35, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.mark.real
def test_store_matches_model_on_real_redis(real_url: str) -> None:
    def fresh_client() -> redis.Redis:
        client = redis.Redis.from_url(real_url, decode_responses=True)
        client.flushall()
        return client

    class RealMachine(StoreMachine):
        make_client = staticmethod(fresh_client)

    run_state_machine_as_test(RealMachine, settings=settings(
        max_examples=8, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.mark.real
def test_store_matches_model_on_the_cluster(flushed_cluster) -> None:
    """The same machine on the loopback Redis Cluster (bucketed layout), shorter: each
    invariant check reads the buckets of the model's three users."""
    def fresh_client() -> redis.Redis:
        flushed_cluster.flushall()
        return flushed_cluster.client()

    class ClusterMachine(StoreMachine):
        make_client = staticmethod(fresh_client)

    run_state_machine_as_test(ClusterMachine, settings=settings(
        max_examples=4, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
