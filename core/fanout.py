"""Writes that concern every bucket of the bucketed layout (:mod:`core.buckets`), as plans.

No script may cross slots, so an operation that is global on one node is done bucket by
bucket: each request still touches one slot, and the cluster client sends a batch of
them as one pipeline per node. Reads merged across buckets live in their own module.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import backup, plans
from .errors import InvalidInput
from .plans import BULK_MAX, BatchResult, Commands, Context, Plan, SweepResult


def _count(reply: Any) -> int:
    try:
        return int(reply)
    except (TypeError, ValueError):
        return 0


def _add(a: SweepResult, b: SweepResult) -> SweepResult:
    return SweepResult(a.expired + b.expired, a.purged + b.purged, a.calls + b.calls, a.skipped + b.skipped)


def sweep(ctxs: Sequence[Context], *, batch: int = plans.SWEEP_BATCH, max_calls: int | None = 10_000,
          actor: str = "sweep", on_batch: Callable[[SweepResult], None] | None = None) -> Plan:
    """Sweep every bucket that has work: one pipelined count of due sessions per bucket
    first (so idle buckets cost no script call), then each busy bucket's batches. With a
    ``max_calls`` budget the busy buckets are taken from a random start, so a small budget
    (the dashboard's) reaches every bucket over time."""
    if batch < 1 or batch > 1000:
        raise InvalidInput("batch", "must be between 1 and 1000")
    now = yield from plans._now(ctxs[0])
    replies = yield Commands([cmd for ctx in ctxs for cmd in (
        ("ZCOUNT", ctx.schema.idx_expiry, "-inf", now), ("ZCOUNT", ctx.schema.idx_ended, "-inf", now))])
    # an error (another type at an index key) counts as work: the script reports it
    busy = [ctx for i, ctx in enumerate(ctxs)
            if any(isinstance(r, Exception) or _count(r) > 0 for r in replies[2 * i:2 * i + 2])]
    if max_calls is not None and busy:
        start = random.randrange(len(busy))
        busy = busy[start:] + busy[:start]
    total = SweepResult(0, 0, 0, 0)
    for ctx in busy:
        left = None if max_calls is None else max_calls - total.calls
        if left is not None and left <= 0:
            break
        base = total

        def step(r: SweepResult, base: SweepResult = base) -> None:
            if on_batch is not None:
                on_batch(_add(base, r))

        done = yield from plans.sweep(ctx, batch=batch, max_calls=left, actor=actor, on_batch=step)
        total = _add(total, done)
    return total


def sweep_due(ctxs: Sequence[Context]) -> Plan:
    """(sessions past expiry, ended sessions past retention), summed over the buckets."""
    due = old = 0
    for ctx in ctxs:
        d, o = yield from plans.sweep_due(ctx)
        due, old = due + d, old + o
    return due, old


def set_event_log_max(ctxs: Sequence[Context], value: int) -> Plan:
    """Store the event-log cap in every bucket's settings (each bucket has its own log)."""
    first = plans.set_event_log_max(ctxs[0], value)
    request = next(first)  # validates ``value``
    commands = [*request.commands, *(("HSET", c.schema.settings, "event_log_max", value) for c in ctxs[1:])]
    replies = yield Commands(commands)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return None


def _merge_batches(results: Sequence[BatchResult]) -> BatchResult:
    return BatchResult(sum(r.written for r in results), sum(r.skipped for r in results),
                       [p for r in results for p in r.problems])


def _resume(gen: Plan, request: Any) -> Plan:
    """Drive a started plan to its end (``request``: what it yielded first)."""
    while True:
        try:
            reply = yield request
        except Exception as exc:
            try:
                request = gen.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            request = gen.send(reply)
        except StopIteration as stop:
            return stop.value


def _all_checked(gens: list[Plan]) -> Plan:
    """Run plans one after another, each started (arguments checked) before any runs, so
    a bad record in one bucket's group refuses the whole call before anything is written."""
    started = []
    for gen in gens:
        try:
            started.append((gen, next(gen)))
        except StopIteration:
            continue
    results = []
    for gen, first in started:
        results.append((yield from _resume(gen, first)))
    return results


def by_bucket(items: Sequence[Any], bucket_of: Callable[[Any], int]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = {}
    for item in items:
        groups.setdefault(bucket_of(item), []).append(item)
    return groups


def restore_batch(ctxs: Sequence[Context], of_sid: Callable[[str], int],
                  records: Sequence[tuple[str, Mapping[str, str]] | backup.Record], *,
                  trust: bool = False, actor: str = "import") -> Plan:
    """Restore records in their sessions' buckets: one script call per bucket present."""
    if len(records) > BULK_MAX:
        raise InvalidInput("records", f"at most {BULK_MAX} per call")

    def sid(record: Any) -> str:
        return record.sid if isinstance(record, backup.Record) else record[0]

    groups = by_bucket(records, lambda r: of_sid(sid(r)) if isinstance(sid(r), str) else 0)
    results = yield from _all_checked([plans.restore_batch(ctxs[b], group, trust=trust, actor=actor)
                                       for b, group in groups.items()])
    return _merge_batches(results)


def index_batch(ctxs: Sequence[Context], of_sid: Callable[[str], int], sids: list[str], *,
                actor: str = "reindex") -> Plan:
    """Index other apps' sessions in their buckets: one script call per bucket present."""
    if len(sids) > BULK_MAX:
        raise InvalidInput("sids", f"at most {BULK_MAX} per call")
    groups = by_bucket(sids, lambda s: of_sid(s) if isinstance(s, str) else 0)
    results = yield from _all_checked([plans.index_batch(ctxs[b], group, actor=actor)
                                       for b, group in groups.items()])
    return _merge_batches(results)
