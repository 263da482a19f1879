"""A traffic simulator: realistic session activity for the demo, tests and load checks.

It drives the public :class:`core.SessionStore` API only, like a real app would: logins
from a few hundred users across apps, session types, IPs and browsers; validations of
the tokens it holds; profile updates; logouts by the user and by an admin; per-user caps
(three sessions for most users, one for a few single-session users), so logins evict and
replace older sessions; short-lived API sessions that expire and a periodic sweep that
ends them. Everything is bounded: by a number of operations, a duration or a stop event,
and paced to a rate. Addresses come from the documentation ranges (RFC 5737, RFC 3849).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from core import SessionNotFound, SessionStore, StoreError, StoreUnavailable

FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula", "victor")
LAST = ("martin", "garcia", "kim", "okafor", "novak")
SERVICES = ("svc-backup", "svc-etl", "svc-billing", "svc-monitor", "svc-reports",
            "svc-search", "svc-sync", "svc-mailer", "svc-audit", "svc-crm-import")
APPS = ("crm", "erp", "shop", "wiki", "mail", "hr", "billing", "support")
DEPARTMENTS = ("sales", "finance", "engineering", "support", "marketing", "legal", "operations", "hr")
USER_AGENTS = {
    "web": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "CompanyApp/4.12.0 (iOS 18.1; iPhone15,2)",
        "CompanyApp/4.11.3 (Android 14; SM-S918B)",
    ),
    "api": ("python-requests/2.32.3", "curl/8.11.0", "Go-http-client/2.0", "okhttp/4.12.0"),
}
ADMINS = ("admin:ops-oncall", "admin:security", "admin:helpdesk")

# Relative weights of the operations one step picks from (sweeps are scheduled by time).
MIX = {"login": 30, "validate": 40, "profile": 7, "logout": 12, "admin_logout": 4,
       "admin_logout_user": 1, "bad_token": 2}

SHORT_IDLE = 30
"""Idle lifetime (s) of API sessions, so some sessions expire while you watch."""

KICK_AWAY = 1800.0
"""Seconds a user an admin logged out everywhere stays away in normal traffic (an admin
who ends all of someone's sessions has usually locked the account meanwhile)."""

SCENARIOS = ("spray", "sharing", "burst", "comeback", "newusers")
"""Patterns the anomaly rules flag (``--scenario``), each on top of the normal traffic."""


@dataclass(frozen=True, slots=True)
class SimUser:
    name: str
    group: str
    """``standard`` (at most 3 sessions), ``single`` (single-session) or ``service`` (API, short-lived)."""
    department: str
    ip: str
    apps: tuple[str, ...]
    weight: float


@dataclass(slots=True)
class Held:
    """A token the simulated client holds, and which store (policy) issued it."""

    token: str
    sid: str
    user: SimUser


@dataclass(slots=True)
class SimStats:
    ops: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    expired: int = 0
    last_error: str = ""
    started: float = 0.0
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    def progress_line(self) -> str:
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{self.total} operations in {self.elapsed:.0f} s ({rate:.1f}/s), "
                f"{self.ops['login']} logins, {self.errors} errors")

    def summary(self) -> str:
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.ops.items(), key=lambda kv: -kv[1]))
        line = f"simulated {self.total} operations in {self.elapsed:.1f} s ({rate:.1f}/s)"
        if parts:
            line += f": {parts}"
        line += f"; sweeps ended {self.expired} expired sessions; {self.errors} errors"
        if self.last_error:
            line += f" (last: {self.last_error})"
        return line


def _ip(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return f"192.0.2.{rng.randint(1, 254)}"
    if kind < 0.6:
        return f"198.51.100.{rng.randint(1, 254)}"
    if kind < 0.85:
        return f"203.0.113.{rng.randint(1, 254)}"
    return f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"


def make_users(rng: random.Random, count: int = 200) -> list[SimUser]:
    """``count`` people (a tenth single-session) plus a few API service accounts. Activity
    is skewed (a few heavy users), which is what makes caps evict."""
    names = [f"{f}.{last}" for last in LAST for f in FIRST]
    names += [f"{f}.{last}{n}" for n in range(2, 2 + count // len(names) + 1) for last in LAST for f in FIRST]
    users = []
    for rank, name in enumerate(names[:count], start=1):
        group = "single" if rank % 10 == 3 else "standard"
        apps = tuple(rng.sample(APPS, rng.randint(1, 3)))
        users.append(SimUser(name, group, rng.choice(DEPARTMENTS), _ip(rng), apps, 1.0 / rank ** 0.7))
    for rank, name in enumerate(SERVICES[: max(1, count // 20)], start=1):
        users.append(SimUser(name, "service", "operations", _ip(rng), (rng.choice(APPS),), 0.5 / rank ** 0.5))
    return users


class Simulator:
    """Generates session traffic through ``store``'s public API.

    ``seed`` makes the sequence of choices reproducible; ``clock`` (default: the store's)
    schedules the periodic sweep, so tests with a fake clock control expiry.
    """

    def __init__(self, store: SessionStore, *, seed: int | None = None, users: int = 200,
                 short_idle: int = SHORT_IDLE, sweep_interval: float = 5.0, max_held: int = 3000,
                 clock: Callable[[], float] | None = None) -> None:
        self.rng = random.Random(seed)
        self.users = make_users(self.rng, users)
        self.weights = [u.weight for u in self.users]
        self.clock = clock or store.ctx.clock
        base = store.policy
        touch = min(base.touch_interval, 10)
        policies = {
            "standard": dataclasses.replace(base, max_sessions_per_user=3, touch_interval=touch),
            "single": dataclasses.replace(base, max_sessions_per_user=1, touch_interval=touch),
            "service": dataclasses.replace(base, max_sessions_per_user=3, idle_ttl=short_idle,
                                           absolute_ttl=max(base.absolute_ttl, short_idle),
                                           touch_interval=max(1, min(touch, short_idle // 3))),
        }
        self.store = store
        self.stores = {group: SessionStore(store.client, prefix=store.schema.prefix, policy=policy,
                                           clock=store.ctx.clock)
                       for group, policy in policies.items()}
        self.held: dict[str, Held] = {}
        self.max_held = max_held
        self.sweep_interval = sweep_interval
        self.next_sweep = self.clock() + sweep_interval
        self.stats = SimStats()
        self._ops = list(MIX)
        self._op_weights = list(MIX.values())
        self.away: dict[str, float] = {}
        """Users an admin logged out everywhere, and until when they stay away."""

    # --- one operation ---------------------------------------------------------------------
    def step(self) -> str:
        """Do one operation (and a sweep when one is due); returns what it did.
        Store errors are counted, not raised, so a flaky Redis does not stop the traffic."""
        op = self.rng.choices(self._ops, self._op_weights)[0]
        if op != "login" and not self.held:
            op = "login"
        try:
            done = getattr(self, f"_{op}")()
            if self.clock() >= self.next_sweep:
                self.next_sweep = self.clock() + self.sweep_interval
                self.stats.expired += self.store.sweep().expired
                self.stats.ops["sweep"] += 1
        except StoreError as exc:
            self.stats.errors += 1
            self.stats.last_error = str(exc)[:120]
            if isinstance(exc, StoreUnavailable):
                raise
            return "error"
        self.stats.ops[done] += 1
        return done

    def _pick_user(self) -> SimUser:
        return self.rng.choices(self.users, self.weights)[0]

    def _pick_held(self) -> Held:
        return self.rng.choice(list(self.held.values()))

    def login(self, user: SimUser | None = None) -> Held:
        if user is None:
            user = self._pick_user()
            if user.name in self.away:
                if self.clock() < self.away[user.name]:
                    user = next((u for u in self.users if u.name not in self.away), user)
                else:
                    del self.away[user.name]
        if user.group == "service":
            stype = "api"
        else:
            stype = self.rng.choices(("web", "mobile", "api"), (70, 25, 5))[0]
        ip = user.ip if self.rng.random() < 0.8 else _ip(self.rng)
        store = self.stores[user.group]
        session, token = store.login(
            user.name, app=self.rng.choice(user.apps), type=stype, ip=ip,
            user_agent=self.rng.choice(USER_AGENTS[stype]),
            email=f"{user.name}@example.com" if user.group != "service" else None,
            department=user.department,
            metadata={"tenant": self.rng.choice(("acme", "globex", "initech"))},
        )
        held = Held(token, session.sid, user)
        self.held[session.sid] = held
        while len(self.held) > self.max_held:
            self.held.pop(next(iter(self.held)))
        return held

    def _login(self) -> str:
        self.login()
        return "login"

    def _validate(self) -> str:
        held = self._pick_held()
        if self.stores[held.user.group].validate(held.token) is None:
            self.held.pop(held.sid, None)
            return "validate_rejected"
        return "validate"

    def _bad_token(self) -> str:
        forged = f"{self.rng.getrandbits(16):04x}." + "A" * 43
        self.store.validate(forged)
        return "validate_rejected"

    def _profile(self) -> str:
        held = self._pick_held()
        change = {"department": self.rng.choice(DEPARTMENTS)} if self.rng.random() < 0.6 else {
            "email": f"{held.user.name}+{self.rng.randint(1, 99)}@example.com"}
        try:
            self.store.update_profile(held.sid, **change)
        except SessionNotFound:
            self.held.pop(held.sid, None)
            return "profile_missed"
        return "profile"

    def _logout(self) -> str:
        held = self._pick_held()
        self.held.pop(held.sid, None)
        self.store.logout(held.sid)
        return "logout"

    def _admin_logout(self) -> str:
        held = self._pick_held()
        self.held.pop(held.sid, None)
        self.store.logout(held.sid, actor=self.rng.choice(ADMINS))
        return "admin_logout"

    def _admin_logout_user(self) -> str:
        user = self._pick_held().user
        self.away[user.name] = self.clock() + KICK_AWAY
        for sid in self.store.logout_user(user.name, actor=self.rng.choice(ADMINS)):
            self.held.pop(sid, None)
        return "admin_logout_user"

    def seed_sessions(self, count: int) -> int:
        """Log in ``count`` sessions at once (the demo's starting population)."""
        for _ in range(count):
            self.login()
        self.stats.ops["login"] += count
        return count

    # --- pacing ----------------------------------------------------------------------------
    def run(self, rate: float, *, duration: float | None = None, stop_event: threading.Event | None = None,
            max_ops: int | None = None, retry_delay: float = 1.0,
            progress: Callable[[SimStats], None] | None = None, progress_every: float = 5.0,
            scenario: Scenario | None = None) -> SimStats:
        """Step at ``rate`` operations per second (``0``: as fast as possible) until
        ``duration`` seconds passed, ``max_ops`` operations ran or ``stop_event`` is set.
        While Redis is unavailable it waits ``retry_delay`` and tries again. ``progress``
        is called with the stats every ``progress_every`` seconds. ``elapsed`` is the true
        running time however the run ends (Ctrl-C included)."""
        if rate < 0:
            raise ValueError("rate must be >= 0")
        stop_event = stop_event or threading.Event()
        start = time.monotonic()
        self.stats.started = time.time()
        deadline = start + duration if duration is not None else None
        report_at = start + progress_every if progress is not None else None
        done = 0
        next_at = start
        try:
            while not stop_event.is_set() and (max_ops is None or done < max_ops):
                now = time.monotonic()
                if report_at is not None and progress is not None and now >= report_at:
                    self.stats.elapsed = now - start
                    progress(self.stats)
                    report_at = now + progress_every
                if deadline is not None and now >= deadline:
                    break
                if rate > 0 and now < next_at:
                    until = min(x for x in (next_at, deadline, report_at) if x is not None)
                    if stop_event.wait(until - now):
                        break
                    continue
                try:
                    if scenario is not None:
                        scenario.run_due(self)
                    self.step()
                except StoreUnavailable:
                    if stop_event.wait(retry_delay):
                        break
                    next_at = time.monotonic()
                    continue
                done += 1
                if rate > 0:
                    next_at = max(next_at + 1.0 / rate, time.monotonic() - 1.0)
        finally:
            self.stats.elapsed = time.monotonic() - start
        return self.stats


class Scenario:
    """One anomalous pattern, paced by the simulator's clock and run between its normal
    operations. ``start`` is when it begins (simulator clock), ``done`` when it has
    produced all of it; ``marks`` records the clock at each of its operations."""

    name = ""
    interval = 0.5
    total = 0

    def __init__(self, start: float) -> None:
        self.start = start
        self.next_at = start
        self.count = 0
        self.marks: list[float] = []

    @property
    def done(self) -> bool:
        return self.count >= self.total

    def run_due(self, sim: Simulator) -> int:
        """Run the operations that are due at the simulator's clock; returns how many."""
        ran = 0
        while not self.done and sim.clock() >= self.next_at:
            self.act(sim, self.count)
            self.marks.append(sim.clock())
            self.count += 1
            self.next_at += self.interval
            ran += 1
        return ran

    def act(self, sim: Simulator, i: int) -> None:  # pragma: no cover - per scenario
        raise NotImplementedError


class Spray(Scenario):
    """One address logs in 40 different existing accounts, one each, two per second."""

    name, interval, total = "spray", 0.5, 40
    ip = "203.0.113.250"

    def act(self, sim: Simulator, i: int) -> None:
        people = [u for u in sim.users if u.group != "service" and u.name not in sim.away]
        user = people[(i * 7) % len(people)]
        sim.stores["standard"].login(user.name, app="shop", type="web", ip=self.ip,
                                     user_agent="python-requests/2.32.3")


class Sharing(Scenario):
    """One account logs in from eight addresses in eight networks within four seconds."""

    name, interval, total = "sharing", 0.5, 8
    user = "sybil.novak"

    def act(self, sim: Simulator, i: int) -> None:
        if i == 0:
            sim.away[self.user] = float("inf")  # normal traffic must not evict its sessions
            uncapped = dataclasses.replace(sim.store.policy, max_sessions_per_user=None)
            self.store = SessionStore(sim.store.client, prefix=sim.store.schema.prefix,
                                      clock=sim.store.ctx.clock, policy=uncapped)
        a, b, c = ((192, 0, 2), (198, 51, 100), (203, 0, 113), (100, 64, 10))[i % 4]
        ip = f"{a}.{b}.{c + i // 4}.{20 + i}"  # eight addresses, each in its own /24
        self.store.login(self.user, app="crm", type=("web", "mobile")[i % 2], ip=ip,
                        user_agent=USER_AGENTS["web"][i % 4])


class Burst(Scenario):
    """Existing users log in from their usual addresses at 40 logins/s for 15 s."""

    name, interval, total = "burst", 0.025, 600

    def act(self, sim: Simulator, i: int) -> None:
        user = sim.users[i % len(sim.users)]
        if user.name in sim.away:
            user = sim.users[0]
        store = sim.stores[user.group]
        stype = "api" if user.group == "service" else "web"
        session, token = store.login(user.name, app=user.apps[0], type=stype, ip=user.ip,
                                     user_agent=USER_AGENTS["web"][0])
        sim.held[session.sid] = Held(token, session.sid, user)


class Comeback(Scenario):
    """An admin logs one user out everywhere; thirty seconds later the user is back."""

    name, interval, total = "comeback", 30.0, 2
    user = "mallory.kim"

    def act(self, sim: Simulator, i: int) -> None:
        if i == 0:
            sim.away[self.user] = float("inf")  # only this scenario brings the user back
            sim.store.login(self.user, app="erp", type="web", ip="198.51.100.66")
            sim.store.logout_user(self.user, actor="admin:security")
        else:
            sim.store.login(self.user, app="erp", type="web", ip="203.0.113.66")


class NewUsers(Scenario):
    """Usernames never seen before log in at three per second, 60 of them."""

    name, interval, total = "newusers", 1 / 3, 60

    def act(self, sim: Simulator, i: int) -> None:
        sim.store.login(f"new.user{self.start:.0f}.{i:03d}", app="shop", type="web", ip=_ip(sim.rng))


SCENARIO_TYPES: dict[str, type[Scenario]] = {c.name: c for c in (Spray, Sharing, Burst, Comeback, NewUsers)}


def scenario(name: str, start: float) -> Scenario:
    """The scenario called ``name`` (one of :data:`SCENARIOS`), beginning at ``start``."""
    return SCENARIO_TYPES[name](start)


def run(store: SessionStore, rate: float, duration: float | None = None,
        stop_event: threading.Event | None = None, seed: int | None = None,
        max_ops: int | None = None) -> SimStats:
    """Run a :class:`Simulator` over ``store``; see :meth:`Simulator.run`."""
    return Simulator(store, seed=seed).run(rate, duration=duration, stop_event=stop_event, max_ops=max_ops)
