"""Anomaly rules: what looks wrong in the live set, as flags with the numbers behind them.

No I/O and no Textual here. :class:`Evaluator` is fed the events of the live feed
(:meth:`Evaluator.observe`) and, on each tick, the few figures that only Redis knows
(:class:`core.plans.RuleInputs`); :meth:`Evaluator.evaluate` returns the flags whose
condition holds now, and :meth:`Evaluator.decide` which flags to raise and clear in Redis.
:mod:`core.flagger` drives it from a real feed.

Who evaluates: every follower that may write (the admin dashboard,
``sessionwatch anomalies --follow``) runs an evaluator. Raising and clearing go through
one Lua script (``flag.lua``) that writes ``ov:flags`` with HSETNX / HDEL and emits the
``flag_raised`` / ``flag_cleared`` event only from the call that changed it, so two
dashboards never double a flag. A follower that has not watched a rule's whole window yet
(it just started) never clears another follower's flag for that rule, and a flag is
cleared only after its condition stayed false for ``clear_after`` seconds, so evaluators
that started at different times do not flap a flag. Read-only followers evaluate too but
keep their flags local (marked as such) and show the stored ones.
"""

from __future__ import annotations

import ipaddress
import os
import statistics
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .model import Event
from .overview import MAX_REFS, Flag

RULES = ("spray", "sharing", "burst", "comeback", "newusers")
RULE_TITLES = {
    "spray": "many users from one address",
    "sharing": "one user from many addresses",
    "burst": "login rate far above baseline",
    "comeback": "back after an admin logout",
    "newusers": "many never-seen usernames",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Rule thresholds. Each default is chosen so that ordinary traffic stays quiet and the
    pattern it names trips it within seconds; every one can be set from the environment as
    ``SESSIONWATCH_ANOMALY_<NAME>`` (for example ``SESSIONWATCH_ANOMALY_SPRAY_USERS=20``)."""

    spray_users: int = 10
    """Distinct users logging in from one address within ``spray_window``. An office NAT
    reaches this over a morning, not within minutes; a spraying run reaches it in seconds."""
    spray_window: float = 300.0
    spray_rate: float = 0.2
    """Logins per second from the address above which spraying is likelier than a shared
    NAT (people behind a NAT log in at human pace, a script does not)."""
    sharing_addresses: int = 5
    """Distinct addresses of one user's active sessions at once. Laptop, phone and home
    make three; five at once means the account is shared or stolen."""
    sharing_networks: int = 4
    """Distinct networks (/24 for IPv4, /48 for IPv6) of one user's active sessions."""
    burst_factor: float = 4.0
    """Login rate (over ``burst_window``) this many times the baseline: the median of the
    previous ``baseline_minutes`` complete minutes (a median, so one busy minute does not
    hide the next burst)."""
    burst_floor: float = 120.0
    """Logins per minute below which no burst is flagged (quiet systems double easily)."""
    burst_window: float = 10.0
    baseline_minutes: int = 15
    baseline_min_minutes: int = 3
    """Complete minutes of history a baseline needs; until then burst and new-username
    rules stay quiet (a cold start is not a burst)."""
    comeback_window: float = 600.0
    """Seconds after an admin logged a user out everywhere in which that user's new
    session is flagged (ending one stale session is routine, ending all of them is not)."""
    newusers_count: int = 20
    """Logins of never-seen usernames within ``newusers_window``..."""
    newusers_window: float = 60.0
    newusers_factor: float = 4.0
    """...and this many times their per-minute median over the baseline minutes."""
    clear_after: float = 60.0
    """Seconds a flag's condition must stay false before it is cleared (no flapping)."""
    refresh_every: float = 5.0
    """Seconds between rewrites of a raised flag's numbers."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Thresholds:
        """Defaults overridden by ``SESSIONWATCH_ANOMALY_<NAME>``; a bad value raises
        ``ValueError`` naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"SESSIONWATCH_ANOMALY_{f.name.upper()}"
            if name in env:
                kind = int if f.type in ("int", int) else float
                try:
                    value = kind(env[name])
                except ValueError:
                    raise ValueError(f"{name} must be a number, not {env[name][:40]!r}") from None
                if not value > 0 or value != value or value == float("inf"):
                    raise ValueError(f"{name} must be a positive finite number")
                values[f.name] = value
        return cls(**values)

    def window(self, rule: str) -> float:
        """How long an evaluator must have watched before it may clear ``rule``'s flags."""
        return {"spray": self.spray_window, "burst": self.burst_window, "comeback": self.comeback_window,
                "newusers": self.newusers_window}.get(rule, 0.0)


def network(ip: str) -> str:
    """The network an address belongs to for the sharing rule: /24 (IPv4), /48 (IPv6)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def baseline(per_minute: list[int], minimum: int) -> float | None:
    """Median of the complete minutes since traffic began (the first minute with traffic is
    partial and left out); ``None`` with fewer than ``minimum`` such minutes."""
    complete = per_minute[:-1]
    start = next((i for i, v in enumerate(complete) if v > 0), None)
    if start is None:
        return None
    history = complete[start + 1:]
    if len(history) < minimum:
        return None
    return float(statistics.median(history))


@dataclass(slots=True)
class _Login:
    ts: float
    sid: str
    user: str


@dataclass(slots=True)
class Evaluator:
    """The rules' state: recent logins by address, the login rate window, admin logouts,
    never-seen usernames; bounded by the rules' windows (and :data:`PER_ADDRESS_MAX`)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    started: float = 0.0
    by_ip: dict[str, OrderedDict[str, _Login]] = field(default_factory=dict)
    ip_logins: dict[str, deque[float]] = field(default_factory=dict)
    logins: deque[_Login] = field(default_factory=deque)
    new_users: deque[_Login] = field(default_factory=deque)
    kicked: dict[str, tuple[float, str]] = field(default_factory=dict)
    comebacks: dict[str, tuple[float, float, str, list[str]]] = field(default_factory=dict)
    false_since: dict[str, float] = field(default_factory=dict)
    written: dict[str, float] = field(default_factory=dict)
    """When each flag was last written by this evaluator (to pace refreshes)."""
    last_inputs: Any = None

    PER_ADDRESS_MAX = 5000

    # --- the feed -------------------------------------------------------------------------
    def observe(self, ev: Event) -> None:
        if ev.ts is None:
            return
        kind, data = ev.kind, ev.data
        if kind == "login":
            ip = data.get("ip") if isinstance(data.get("ip"), str) else ""
            login = _Login(ev.ts, ev.sid, ev.username)
            self.logins.append(login)
            if ip:
                users = self.by_ip.setdefault(ip, OrderedDict())
                users.pop(ev.username, None)
                users[ev.username] = login
                if len(users) > self.PER_ADDRESS_MAX:
                    users.popitem(last=False)
                self.ip_logins.setdefault(ip, deque()).append(ev.ts)
            if data.get("new_user") is True:
                self.new_users.append(login)
            kicked = self.kicked.get(ev.username)
            if kicked and 0 <= ev.ts - kicked[0] <= self.thresholds.comeback_window:
                back = self.comebacks.get(ev.username)
                sids = ([*back[3], ev.sid] if back else [ev.sid])[-MAX_REFS:]
                self.comebacks[ev.username] = (back[0] if back else ev.ts, kicked[0], kicked[1], sids)
        elif kind == "admin_logout" and data.get("scope") == "user":
            self.kicked[ev.username] = (ev.ts, ev.actor)
            self.comebacks.pop(ev.username, None)

    def _prune(self, now: float) -> None:
        th = self.thresholds
        horizon = now - max(th.burst_window, 1.0)
        while self.logins and self.logins[0].ts < horizon:
            self.logins.popleft()
        while self.new_users and self.new_users[0].ts < now - th.newusers_window:
            self.new_users.popleft()
        cutoff = now - th.spray_window
        for ip in list(self.by_ip):
            users = self.by_ip[ip]
            while users and next(iter(users.values())).ts < cutoff:
                users.popitem(last=False)
            times = self.ip_logins[ip]
            while times and times[0] < cutoff:
                times.popleft()
            if not users:
                del self.by_ip[ip]
                del self.ip_logins[ip]
        for user, (ts, _actor) in list(self.kicked.items()):
            if now - ts > th.comeback_window:
                del self.kicked[user]
        for user, back in list(self.comebacks.items()):
            if now - back[0] > th.comeback_window:
                del self.comebacks[user]

    # --- the rules ------------------------------------------------------------------------
    def evaluate(self, now: float, inputs: Any = None) -> dict[str, Flag]:
        """Flags whose condition holds at ``now``, by id. ``inputs`` is a
        :class:`core.plans.RuleInputs` (``None``: the Redis-side rules are skipped)."""
        self._prune(now)
        if inputs is not None:
            self.last_inputs = inputs
        out: dict[str, Flag] = {}
        for flag in (*self._spray(now), *self._sharing(self.last_inputs), *self._burst(now, self.last_inputs),
                     *self._comeback(now), *self._newusers(now, self.last_inputs)):
            out[flag.id] = flag
        return out

    def _spray(self, now: float) -> list[Flag]:
        th = self.thresholds
        out = []
        for ip, users in self.by_ip.items():
            if len(users) < th.spray_users:
                continue
            times = self.ip_logins[ip]
            first = times[0] if times else now
            span = max(1.0, (times[-1] if times else now) - first)
            recent = list(times)[-th.spray_users:]  # the pace of the run that crossed the threshold
            rate = (len(recent) - 1) / max(1.0, recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            once = len(users) / max(1, len(times))
            spray = rate >= th.spray_rate
            verdict = ("spraying likely: a fast run of distinct usernames" if spray
                       else "shared NAT likely: distinct users at a human pace")
            logins = list(users.values())
            out.append(Flag(
                f"spray:{ip}", "spray", ip,
                {"users": len(users), "logins": len(times), "seconds": round(span, 1),
                 "per_second": round(rate, 2), "users_per_login": round(once, 2)},
                logins[th.spray_users - 1].ts if len(logins) >= th.spray_users else first,
                f"{len(users)} users from {ip} in {span:.0f} s (lately {rate:.2f} logins/s); {verdict}",
                tuple(x.sid for x in logins[-MAX_REFS:]), tuple(x.user for x in logins[-MAX_REFS:]),
            ))
        return out

    def _sharing(self, inputs: Any) -> list[Flag]:
        th = self.thresholds
        out = []
        if inputs is None:
            return out
        for user, pairs in inputs.user_addresses.items():
            ips = {ip for _sid, ip in pairs}
            nets = {network(ip) for ip in ips}
            if len(ips) < th.sharing_addresses and len(nets) < th.sharing_networks:
                continue
            out.append(Flag(
                f"sharing:{user}", "sharing", user, {"addresses": len(ips), "networks": len(nets),
                                                     "sessions": len(pairs)},
                0.0, f"{user} active from {len(ips)} addresses in {len(nets)} networks at once: "
                     "shared account or stolen session",
                tuple(sid for sid, _ip in pairs[:MAX_REFS]), (user,),
            ))
        return out

    def _burst(self, now: float, inputs: Any) -> list[Flag]:
        th = self.thresholds
        if inputs is None:
            return []
        base = baseline(inputs.logins_per_minute, th.baseline_min_minutes)
        if base is None:
            return []
        window = [x for x in self.logins if x.ts >= now - th.burst_window]
        rate = len(window) * 60.0 / th.burst_window
        limit = max(th.burst_floor, th.burst_factor * base)
        if rate < limit:
            return []
        return [Flag("burst:logins", "burst", "all logins",
                     {"per_minute": round(rate), "baseline": round(base, 1),
                      "factor": round(rate / max(base, 1), 1)},
                     0.0, f"{rate:.0f} logins/min over the last {th.burst_window:.0f} s, "
                          f"{rate / max(base, 1):.1f}x the baseline of {base:.0f}/min",
                     tuple(x.sid for x in window[-MAX_REFS:]),
                     tuple(dict.fromkeys(x.user for x in window[-MAX_REFS:])))]

    def _comeback(self, now: float) -> list[Flag]:
        out = []
        for user, (back_ts, kicked_ts, actor, sids) in self.comebacks.items():
            minutes = (back_ts - kicked_ts) / 60
            out.append(Flag(f"comeback:{user}", "comeback", user,
                            {"minutes_after": round(minutes, 1), "sessions": len(sids)}, back_ts,
                            f"{user} logged in {minutes:.1f} min after {actor or 'an admin'} "
                            "logged them out everywhere", tuple(sids), (user,)))
        return out

    def _newusers(self, now: float, inputs: Any) -> list[Flag]:
        th = self.thresholds
        if inputs is None or len(self.new_users) < th.newusers_count:
            return []
        base = baseline(getattr(inputs, "new_users_per_minute", []), th.baseline_min_minutes)
        if base is None:
            return []
        rate = len(self.new_users) * 60.0 / th.newusers_window
        if rate < th.newusers_factor * base:
            return []
        crossing = self.new_users[min(len(self.new_users), th.newusers_count) - 1]
        recent = list(self.new_users)[-MAX_REFS:]
        return [Flag("newusers:logins", "newusers", "never-seen usernames",
                     {"new_users": len(self.new_users), "seconds": th.newusers_window,
                      "baseline": round(base, 1)},
                     crossing.ts,
                     f"{len(self.new_users)} never-seen usernames logged in within "
                     f"{th.newusers_window:.0f} s (baseline {base:.0f}/min)",
                     tuple(x.sid for x in recent), tuple(x.user for x in recent))]

    # --- what to write ----------------------------------------------------------------------
    def decide(self, now: float, holding: Mapping[str, Flag], stored: Mapping[str, Flag]
               ) -> tuple[list[Flag], list[Flag]]:
        """Flags to raise (new, or due for a refresh of their numbers) and to clear.
        ``since`` is kept from the stored flag, else the moment the rule first held."""
        th = self.thresholds
        raise_: list[Flag] = []
        for fid, flag in holding.items():
            self.false_since.pop(fid, None)
            old = stored.get(fid)
            since = old.since if old is not None and old.since > 0 else (flag.since or now)
            flag = replace(flag, since=since)
            if old is None or now - self.written.get(fid, 0.0) >= th.refresh_every:
                self.written[fid] = now
                raise_.append(flag)
        clear: list[Flag] = []
        for fid, old in stored.items():
            if fid in holding:
                continue
            if now - self.started < th.window(old.rule):
                continue  # not watched long enough to say it is over
            since = self.false_since.setdefault(fid, now)
            if now - since >= th.clear_after:
                clear.append(old)
                self.false_since.pop(fid, None)
                self.written.pop(fid, None)
        return raise_, clear
