"""Recount the active-session counters from the truth, to prove they never drift.

The scripts keep ``stats:active:app`` and ``stats:active:type`` as running counts of the
members of the expiry index (due or not: a sweep takes a session out when it ends it).
:func:`counter_drift` recomputes both from the index and the session hashes and lists
every difference; the fault, load and lifecycle tests assert it is empty.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import pairs_to_dict
from .schema import Schema


def recount(client: Any, schema: Schema, *, batch: int = 500) -> tuple[Counter[str], Counter[str]]:
    """Active sessions by app and by type, counted from the expiry index and the hashes
    (a sync redis-py client with ``decode_responses=True``)."""
    by_app: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    sids = client.zrange(schema.idx_expiry, 0, -1)
    for start in range(0, len(sids), batch):
        pipe = client.pipeline(transaction=False)
        for sid in sids[start:start + batch]:
            pipe.hmget(schema.session(sid), "app", "type")
        for app, stype in pipe.execute(raise_on_error=False):
            if app:
                by_app[app] += 1
            if stype:
                by_type[stype] += 1
    return by_app, by_type


def stored_counts(client: Any, schema: Schema) -> tuple[Counter[str], Counter[str]]:
    def read(key: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for field, value in pairs_to_dict(client.hgetall(key)).items():
            try:
                n = int(value)
            except ValueError:
                n = -1  # a non-integer counter is drift too
            if n:
                out[field] = n
        return out

    return read(schema.stats_app), read(schema.stats_type)


def counter_drift(client: Any, schema: Schema | None = None) -> list[str]:
    """Every counter that differs from the recount, as ``"app crm: stored 3, truth 2"``;
    empty when the counters are exact."""
    schema = schema or Schema()
    truth = recount(client, schema)
    stored = stored_counts(client, schema)
    problems = []
    for label, want, have in (("app", truth[0], stored[0]), ("type", truth[1], stored[1])):
        for name in sorted(set(want) | set(have)):
            if want[name] != have[name]:
                problems.append(f"{label} {name}: stored {have[name]}, truth {want[name]}")
    return problems
