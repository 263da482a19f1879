"""The event log of a bucketed store, read as one: newest lines merged in time order.

Each bucket has its own log and ``seq`` (``{tag}event:logs``, ``{tag}event:seq``), so a
reader's position is one per bucket. These plans read many buckets in one pipelined
round per step (one command per bucket; the cluster client sends each node its share),
and merge by the time each line carries. Within a bucket the log's own order always
wins: a line's merge key is the time of the newest timed line at or below it (so a
clock step back, or a plain-text line with no time, never reorders one bucket).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .merged import lockstep
from .model import Event, parse_event
from .plans import FINGERPRINT, Commands, Context, EventsSince, Plan, _counter, _page_bounds, events_since

FIRST_CHUNK = 8
"""Lines read from each bucket in the first round of a merged newest-N read, at least."""
SINCE_CHUNK = 16
"""Lines read from each bucket in a catch-up's first round: most buckets have few new."""


def _tag(events: Iterable[Event], bucket: int) -> list[Event]:
    return [replace(ev, bucket=bucket) for ev in events]


def keys_newest_first(events: Sequence[Event]) -> list[float]:
    """Merge keys of one bucket's lines, newest first: non-increasing down the log."""
    keys: list[float] = []
    # a top line with no time sorts with the newest timed line below it
    first = next((ev.ts for ev in events if ev.ts is not None), 0.0)
    key = first
    for ev in events:
        if ev.ts is not None and ev.ts < key:
            key = ev.ts
        keys.append(key)
    return keys


def merge_oldest_first(per_bucket: Mapping[int, Sequence[Event]]) -> list[Event]:
    """Lines of several buckets (each oldest first) merged oldest first; ties by bucket."""
    streams = []
    for b, events in per_bucket.items():
        keys = keys_newest_first(list(reversed(events)))[::-1]
        # oldest first, the key must not decrease: take the running maximum
        running: list[tuple[float, int, int, Event]] = []
        top = float("-inf")
        for i, (key, ev) in enumerate(zip(keys, events, strict=True)):
            top = max(top, key)
            running.append((top, b, i, ev))
        streams.append(running)
    return [item[3] for item in heapq.merge(*streams)]


def _newest(ctxs: Sequence[Context], limit: int, *, counters: bool) -> Plan:
    """The newest ``limit`` lines over all buckets. Returns ``(lines, parsed, chosen,
    seqs)``: every bucket's raw and parsed lines read (newest first), how many of each
    made the cut, and each bucket's ``event:seq`` (read in the first round, if asked).
    A bucket is read further only while all its lines read so far made the cut."""
    n = len(ctxs)
    lines: list[list[str]] = [[] for _ in range(n)]
    parsed: list[list[Event]] = [[] for _ in range(n)]
    exhausted = [False] * n
    want = [max(FIRST_CHUNK, FINGERPRINT, -(-2 * limit // n))] * n
    seqs: list[int | None] = [None] * n
    first = True
    while True:
        need = [b for b in range(n) if not exhausted[b] and len(lines[b]) < want[b]]
        if need:
            cmds: list[tuple[Any, ...]] = [("LRANGE", ctxs[b].schema.events, len(lines[b]), want[b] - 1)
                                           for b in need]
            if first and counters:
                cmds += [("GET", ctx.schema.event_seq) for ctx in ctxs]
            replies = yield Commands(cmds)
            for b, got in zip(need, replies, strict=False):
                if isinstance(got, Exception):
                    raise got
                asked = want[b] - len(lines[b])
                lines[b].extend(got)
                parsed[b].extend(parse_event(x) for x in got)
                exhausted[b] = len(got) < asked
            if first and counters:
                seqs = [_counter(r) for r in replies[len(need):]]
            first = False
        # merge what is read so far, newest first, and see whose unread lines might count
        streams = []
        for b in range(n):
            keys = keys_newest_first(parsed[b])
            streams.append([(-k, b, i) for i, k in enumerate(keys)])
        chosen = [0] * n
        for _key, b, _i in itertools.islice(heapq.merge(*streams), limit):
            chosen[b] += 1
        more = False
        for b in range(n):
            if not exhausted[b] and chosen[b] == len(lines[b]):
                want[b] = len(lines[b]) + max(FIRST_CHUNK, len(lines[b]))
                more = True
        if not more:
            return lines, parsed, chosen, seqs


def events(ctxs: Sequence[Context], *, limit: int = 100) -> Plan:
    """The newest ``limit`` events over all buckets, newest first (each tagged with its
    bucket)."""
    _page_bounds(0, limit)
    try:
        _lines, parsed, chosen, _ = yield from _newest(ctxs, limit, counters=False)
    except Exception as exc:  # an unreadable log is shown, as on a single node
        return [Event(raw=f"event log unreadable: {str(exc)[:80]}", kind="error")]
    per = {b: _tag(reversed(parsed[b][:chosen[b]]), b) for b in range(len(ctxs)) if chosen[b]}
    return list(reversed(merge_oldest_first(per)))


def initial(ctxs: Sequence[Context], *, backlog: int = 200) -> Plan:
    """A new reader's start: the newest ``backlog`` lines over all buckets and, for each
    bucket, its position (its newest lines and ``event:seq``). Returns ``(since, merged)``:
    one :class:`EventsSince` per bucket and the delivered lines merged oldest first."""
    lines, parsed, chosen, seqs = yield from _newest(ctxs, max(1, backlog), counters=True)
    out: list[EventsSince] = []
    per: dict[int, list[Event]] = {}
    for b in range(len(ctxs)):
        mine = _tag(reversed(parsed[b][:chosen[b]]), b) if backlog > 0 else []
        per[b] = mine
        out.append(EventsSince(mine, False, False, seqs[b], tuple(lines[b][:FINGERPRINT]), True))
    return out, merge_oldest_first({b: ev for b, ev in per.items() if ev})


def since(ctxs: Sequence[Context], positions: Mapping[int, tuple[int | None, tuple[str, ...]]], *,
          limit: int = 10_000) -> Plan:
    """Lines after each listed bucket's position ``(last_seq, top)``, all buckets read in
    the same rounds. Returns ``{bucket: EventsSince}`` with the lines tagged."""
    order = sorted(positions)
    plans = [events_since(ctxs[b], positions[b][0], top=positions[b][1], limit=limit, chunk=SINCE_CHUNK)
             for b in order]
    results = yield from lockstep(plans)
    return {b: replace(r, events=_tag(r.events, b)) for b, r in zip(order, results, strict=True)}


def heads(ctxs: Sequence[Context]) -> Plan:
    """Each bucket's newest raw line (``None`` for an empty log), in bucket order."""
    replies = yield Commands([("LINDEX", ctx.schema.events, 0) for ctx in ctxs])
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return tuple(replies)


def head(ctxs: Sequence[Context]) -> Plan:
    """The newest raw line over all buckets (by the time it carries)."""
    got = yield from heads(ctxs)
    best: tuple[float, str] | None = None
    for raw in got:
        if raw is None:
            continue
        ts = parse_event(raw).ts
        key = ts if ts is not None else float("-inf")
        if best is None or key > best[0]:
            best = (key, raw)
    return None if best is None else best[1]
