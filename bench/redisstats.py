"""What a piece of client work cost the server: commands (``INFO commandstats``) and
bytes (``INFO stats`` net totals), as deltas after ``CONFIG RESETSTAT``.

The measuring calls themselves (RESETSTAT, the two INFO calls) are counted too, so a
baseline with nothing in between is measured the same way and subtracted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import redis


@dataclass(frozen=True)
class Cost:
    commands: Counter[str]
    bytes_in: int
    """Bytes the server read (requests)."""
    bytes_out: int
    """Bytes the server wrote (replies)."""
    usec: Counter[str] = field(default_factory=Counter)
    """Server CPU microseconds per command (for EVALSHA: the whole script, inner calls included)."""
    process_us: float = 0.0
    """The server process's CPU time (``INFO cpu`` user + sys, microseconds): what commandstats
    leaves out too, reading and parsing each request and writing its reply."""

    @property
    def total_commands(self) -> int:
        return sum(self.commands.values())

    def minus(self, other: Cost) -> Cost:
        cmds = Counter(self.commands)
        cmds.subtract(other.commands)
        usec = Counter(self.usec)
        usec.subtract(other.usec)
        return Cost(+cmds, self.bytes_in - other.bytes_in, self.bytes_out - other.bytes_out, +usec,
                    self.process_us - other.process_us)

    def per(self, n: int) -> Cost:
        return Cost(Counter({k: v // n for k, v in self.commands.items()}), self.bytes_in // n,
                    self.bytes_out // n)

    def breakdown(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.commands.items(), key=lambda kv: (-kv[1], kv[0])))


def _snapshot(admin: redis.Redis) -> Cost:
    stats = admin.info("stats")
    cmdstats = admin.info("commandstats")
    cpu = admin.info("cpu")
    commands: Counter[str] = Counter()
    usec: Counter[str] = Counter()
    for name, data in cmdstats.items():
        if isinstance(data, dict):
            cmd = name.removeprefix("cmdstat_")
            commands[cmd] += int(data["calls"])
            usec[cmd] += int(data["usec"])
    process = (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6
    return Cost(commands, int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"]), usec,
                process)


def measure(admin: redis.Redis, work: Callable[[], object]) -> Cost:
    """Server-side cost of ``work()`` (run on any connection), measuring calls excluded."""
    admin.config_resetstat()
    baseline = _snapshot(admin)
    admin.config_resetstat()
    work()
    return _snapshot(admin).minus(baseline)
