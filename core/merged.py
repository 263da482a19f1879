"""Global reads over every bucket of the bucketed layout (:mod:`core.buckets`), merged here.

Each bucket holds the whole single-node layout, so a global read asks every bucket the
same question and merges the answers. Like :mod:`core.plans`, everything is a sans-I/O
plan: each step yields one :class:`~core.plans.Commands` spanning all buckets (redis-py's
cluster pipeline splits it per node: one round trip per node per step), and the per-bucket
parsing of :mod:`core.plans` is reused (:func:`lockstep` runs its plans side by side).

Orders over the whole set (virtual scrolling) cannot be read by rank with one ZRANGE, so
a window is read around a *pivot* ``(score, member)``: each bucket returns the few members
just after (or before) it, the reader merges and cuts, and the pivot's rank is the sum of
each bucket's count of members before it. Merged order is Redis's own order: score, then
member bytes (descending: the exact reverse), so a window holds the same rows in the same
order as the single-node layout fed the same logins. The cost of a screenful depends on
the number of buckets and the screen, never on the number of sessions.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import plans
from .buckets import Buckets
from .errors import InvalidInput
from .model import (
    ACTIVE,
    CacheEntry,
    Page,
    Session,
    Stats,
    pairs_to_dict,
    parse_cache,
    parse_session,
    parse_time,
)
from .overview import MAX_FLAGS, TOP_N, Flag, Overview, Series, parse_flags, parse_top
from .plans import (
    LEX_ORDERS,
    MAX_PAGE,
    SEARCH_KINDS,
    SORTS,
    WINDOW_ORDERS,
    Anonymous,
    AnonymousPage,
    Commands,
    Context,
    ExportPage,
    Plan,
    RuleInputs,
    ScanStep,
    Window,
    _int,
    _ok,
    _page_bounds,
    data_of,
    member_sid,
)
from .schema import SEARCH_SID

TIE_CAP = 200
"""Members sharing the pivot's exact score read per bucket (scores are milliseconds, so
ties are few; past this many in one bucket the order among them may be cut short)."""
NEAR = 512
"""A window this close to its pivot (or to the head or tail) is read directly, each
bucket sending at most this many members plus the window; farther, a pivot near the
wanted rank is first found by :func:`_seek`."""
SEEK_SLACK = NEAR // 2
"""A seek stops once its pivot's rank is this close to the target."""
SEEK_ROUNDS = 8
"""Most refinement rounds of a seek (two round trips each)."""
TOP_DEPTH = 3
"""Each bucket's top lists are read this many times deeper than the merged list."""
SCAN_BUCKET_BITS = 11
"""A merged scan cursor is ``bucket cursor << 11 | bucket`` (at most 1,024 buckets)."""


# --- driving plans side by side ---------------------------------------------------------

def lockstep(steps: Sequence[Plan]) -> Plan:
    """Run plans that yield only :class:`Commands` side by side: each round sends every
    plan's commands in one request and hands each plan its own replies. Returns the
    plans' results in order."""
    results: list[Any] = [None] * len(steps)
    pending: dict[int, Commands] = {}
    for i, step in enumerate(steps):
        try:
            pending[i] = next(step)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        batch: list[tuple[Any, ...]] = []
        spans: list[tuple[int, int, int]] = []
        for i, request in pending.items():
            if not isinstance(request, Commands):
                raise TypeError("lockstep runs read plans only")
            spans.append((i, len(batch), len(request.commands)))
            batch.extend(request.commands)
        replies = yield Commands(batch)
        nxt: dict[int, Commands] = {}
        for i, first, n in spans:
            try:
                nxt[i] = steps[i].send(list(replies[first:first + n]))
            except StopIteration as stop:
                results[i] = stop.value
        pending = nxt
    return results


def _now(ctxs: Sequence[Context]) -> Plan:
    """Now on the server's clock, measured once for every bucket (one Redis clock)."""
    first = ctxs[0]
    now = yield from plans._now(first)
    for ctx in ctxs[1:]:
        ctx.offset, ctx.synced_at = first.offset, first.synced_at
    return now


def _indexed(ctxs: Sequence[Context]) -> None:
    """A bucketed store has no classic layout to fall back to: always read the indexes."""
    for ctx in ctxs:
        ctx.indexed = True


def _sessions(buckets: Buckets, ctxs: Sequence[Context], sids: Iterable[str]) -> Plan:
    """HGETALL of each session in its bucket, one round trip; missing ones are dropped."""
    wanted = list(dict.fromkeys(sids))
    if not wanted:
        return {}
    replies = yield Commands([("HGETALL", ctxs[buckets.of_sid(sid)].schema.session(sid)) for sid in wanted])
    out: dict[str, Session] = {}
    for sid, reply in zip(wanted, replies, strict=True):
        session = parse_session(sid, reply)
        if session is not None:
            out[sid] = session
    return out


# --- orders: merging sorted sets by (score, member) ---------------------------------------

Entry = tuple[float, str]


def _pairs(reply: Any) -> list[Entry]:
    """A WITHSCORES reply (flat list or pairs) as (score, member); unreadable parts dropped."""
    reply = _ok(reply, [])
    if not isinstance(reply, list | tuple):
        return []
    if reply and isinstance(reply[0], list | tuple):
        raw = [tuple(x) for x in reply if isinstance(x, list | tuple) and len(x) == 2]
    else:
        it = iter(reply)
        raw = list(zip(it, it, strict=False))
    out = []
    for member, score in raw:
        try:
            value = float(score)
        except (TypeError, ValueError):
            continue
        if isinstance(member, str) and value == value:
            out.append((value, member))
    return out


def _members(reply: Any) -> list[str]:
    reply = _ok(reply, [])
    return [m for m in reply if isinstance(m, str)] if isinstance(reply, list | tuple | set) else []


def _sort_key(entry: Entry) -> tuple[float, bytes]:
    return entry[0], entry[1].encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class _Order:
    """One whole-set order: its key per bucket and how to read around a pivot in it."""

    name: str
    descending: bool

    @property
    def lex(self) -> bool:
        return self.name in LEX_ORDERS

    @property
    def prefix(self) -> int:
        """Commands :meth:`around` sends before the ranges (the count, and ties)."""
        return 1 if self.lex else 2

    def key(self, ctx: Context) -> str:
        return plans._order_key(ctx.schema, self.name)

    def merge(self, lists: Iterable[list[Entry]], *, backward: bool = False) -> list[Entry]:
        """Entries of several buckets in this order (``backward``: the reverse)."""
        reverse = self.descending != backward
        return list(heapq.merge(*lists, key=_sort_key, reverse=reverse))

    def head(self, key: str, n: int) -> tuple[Any, ...]:
        """The first ``n`` members of a bucket in this order."""
        return ("ZREVRANGE" if self.descending else "ZRANGE", key, 0, n - 1, "WITHSCORES")

    def tail(self, key: str, n: int) -> tuple[Any, ...]:
        """The last ``n`` members of a bucket, in this order."""
        return ("ZREVRANGE" if self.descending else "ZRANGE", key, -n, -1, "WITHSCORES")

    def at(self, key: str, rank: int) -> tuple[Any, ...]:
        return ("ZREVRANGE" if self.descending else "ZRANGE", key, rank, rank, "WITHSCORES")

    def around(self, key: str, pivot: Entry, after: int, before: int) -> list[tuple[Any, ...]]:
        """Commands for one bucket: the count of members before ``pivot``, the members
        tied with its score (score orders), then up to ``after`` members after it and up
        to ``before`` members before it (nearest first)."""
        score, member = pivot
        if self.lex:
            m = "(" + member
            if self.descending:
                cmds: list[tuple[Any, ...]] = [("ZLEXCOUNT", key, m, "+")]
                fwd, back = ("ZRANGE", key, m, "-", "BYLEX", "REV"), ("ZRANGE", key, m, "+", "BYLEX")
            else:
                cmds = [("ZLEXCOUNT", key, "-", m)]
                fwd, back = ("ZRANGE", key, m, "+", "BYLEX"), ("ZRANGE", key, m, "-", "BYLEX", "REV")
        else:
            s = repr(score)
            cmds = [("ZCOUNT", key, f"({s}", "+inf") if self.descending else ("ZCOUNT", key, "-inf", f"({s}"),
                    ("ZRANGE", key, s, s, "BYSCORE", "LIMIT", 0, TIE_CAP)]
            up = ("ZRANGE", key, f"({s}", "+inf", "BYSCORE")
            down = ("ZRANGE", key, f"({s}", "-inf", "BYSCORE", "REV")
            fwd, back = (down, up) if self.descending else (up, down)
        if after:
            cmds.append((*fwd, "LIMIT", 0, after, *(() if self.lex else ("WITHSCORES",))))
        if before:
            cmds.append((*back, "LIMIT", 0, before, *(() if self.lex else ("WITHSCORES",))))
        return cmds

    def read_around(self, pivot: Entry, replies: list[Any], after: int,
                    before: int) -> tuple[int, list[Entry], list[Entry]]:
        """One bucket's (members before the pivot, members after it, members before it
        nearest first) from the replies to :meth:`around`."""
        score, member = pivot
        count = _int(_ok(replies[0], 0))
        i = self.prefix
        fwd: list[Entry] = []
        back: list[Entry] = []
        if after:
            fwd = [(0.0, m) for m in _members(replies[i])] if self.lex else _pairs(replies[i])
            i += 1
        if before:
            back = [(0.0, m) for m in _members(replies[i])] if self.lex else _pairs(replies[i])
        if not self.lex:
            mine = member.encode("utf-8", "surrogatepass")
            tied = sorted(m.encode("utf-8", "surrogatepass") for m in _members(replies[1]))
            lower = [m for m in tied if m < mine]
            upper = [m for m in tied if m > mine]
            # ascending: lower ties come before the pivot; descending: upper ones do
            ahead, behind = (upper, lower) if self.descending else (lower, upper)
            count += len(ahead)
            nxt = sorted(behind, reverse=self.descending)
            near = sorted(ahead, reverse=not self.descending)
            fwd = [(score, m.decode("utf-8", "surrogatepass")) for m in nxt] + fwd
            back = [(score, m.decode("utf-8", "surrogatepass")) for m in near] + back
        return count, fwd[:after], back[:before]


def _order(order: str, descending: bool) -> _Order:
    if order not in WINDOW_ORDERS:
        raise InvalidInput("order", f"must be one of {', '.join(WINDOW_ORDERS)}")
    return _Order(order, bool(descending))


@dataclass(frozen=True, slots=True)
class _Ranked:
    total: int
    start: int
    """Rank of ``entries[0]``."""
    entries: list[Entry]
    pivot_rank: int | None = None


def _cards(ctxs: Sequence[Context], replies: list[Any]) -> list[int]:
    return [_int(_ok(r, 0)) for r in replies[:len(ctxs)]]


def _around(order: _Order, ctxs: Sequence[Context], pivot: Entry, member: bool, offset: int,
            count: int) -> Plan:
    """Rows ``rank(pivot) + offset`` onward (``count`` of them) and the pivot's rank:
    one round trip of a fixed number of commands per bucket. ``member``: the pivot is
    itself in the order (an anchor), so it is the row at offset 0."""
    # with a negative offset the pivot may be nearer the head than that: rows start at
    # the head then, and up to ``count`` of them may lie after the pivot
    after = max(0, max(offset, 0) + count - (1 if member else 0))
    before = max(0, -offset)
    cmds: list[tuple[Any, ...]] = []
    sizes = []
    for ctx in ctxs:
        part = order.around(order.key(ctx), pivot, after, before)
        sizes.append(len(part))
        cmds += part
    replies = yield Commands(cmds)
    rank = 0
    fwds, backs = [], []
    at = 0
    for n in sizes:
        c, fwd, back = order.read_around(pivot, replies[at:at + n], after, before)
        at += n
        rank += c
        fwds.append(fwd)
        backs.append(back)
    behind = list(reversed(order.merge(backs, backward=True)[:before]))
    ahead = ([pivot] if member else []) + order.merge(fwds)[:after]
    rows = behind + ahead
    first = rank - len(behind)
    skip = max(0, (rank + offset) - first)
    return rank, first + skip, rows[skip:skip + count]


def _seek(order: _Order, ctxs: Sequence[Context], cards: list[int], target: int) -> Plan:
    """A pivot near rank ``target`` and its exact rank, in a bounded number of rounds.

    Each bucket is guessed at its share of the target; one candidate per bucket is read
    and the one nearest in merged order to the target is taken; its exact rank (summed
    counts) corrects the per-bucket guesses for the next round. Buckets hold a random
    share of users, so a few rounds bring it within :data:`NEAR` rows."""
    total = sum(cards)
    share = [c / total if total else 0.0 for c in cards]
    guesses = [min(max(0, round(target * f)), max(0, c - 1)) for f, c in zip(share, cards, strict=True)]
    best: tuple[int, Entry] | None = None
    for _round in range(SEEK_ROUNDS):
        live = [b for b, c in enumerate(cards) if c]
        replies = yield Commands([order.at(order.key(ctxs[b]), guesses[b]) for b in live])
        candidates: list[tuple[int, Entry]] = []
        for b, reply in zip(live, replies, strict=True):
            got = [(0.0, m) for m in _members_of(reply)] if order.lex else _pairs(reply)
            if got:
                candidates.append((b, got[0]))
        if not candidates:
            break
        merged = order.merge([[e] for _b, e in candidates])
        # every candidate was guessed at the target, so their median is the best guess
        pick = merged[len(merged) // 2]
        counts = yield Commands([c for ctx in ctxs for c in order.around(order.key(ctx), pick, 0, 0)])
        n = order.prefix
        per_bucket = [order.read_around(pick, counts[n * b:n * (b + 1)], 0, 0)[0] for b in range(len(ctxs))]
        rank = sum(per_bucket)
        if best is None or abs(rank - target) < abs(best[0] - target):
            best = (rank, pick)
        if abs(rank - target) <= SEEK_SLACK:
            break
        gap = target - rank
        guesses = [min(max(0, per_bucket[b] + round(gap * share[b])), max(0, cards[b] - 1))
                   for b in range(len(ctxs))]
    return best


def _members_of(reply: Any) -> list[str]:
    return [m for _s, m in _pairs(reply)] or _members(reply)


def ranked(ctxs: Sequence[Context], order: _Order, start: int, count: int, anchor: str | None = None,
           anchor_bucket: int = 0) -> Plan:
    """``count`` entries of ``order`` from rank ``start`` (negative: from the end), or
    from ``start`` rows after ``anchor`` (a member of bucket ``anchor_bucket``) while it
    is in the order. Two round trips near the head, the tail or an anchor."""
    first: list[tuple[Any, ...]] = [("ZCARD", order.key(ctx)) for ctx in ctxs]
    near_head = anchor is None and start >= 0 and start + count <= NEAR
    near_tail = anchor is None and start < 0 and -start <= NEAR
    if anchor is not None:
        first.append(("ZSCORE", order.key(ctxs[anchor_bucket]), anchor))
    elif near_head and count:
        first += [order.head(order.key(ctx), start + count) for ctx in ctxs]
    elif near_tail:
        first += [order.tail(order.key(ctx), -start) for ctx in ctxs]
    replies = yield Commands(first)
    cards = _cards(ctxs, replies)
    total = sum(cards)
    rest = replies[len(ctxs):]
    if anchor is not None:
        score = _ok(rest[0], None)
        try:
            pivot_score = float(score) if score is not None else None
        except (TypeError, ValueError):
            pivot_score = None
        if pivot_score is not None:
            pivot = (0.0 if order.lex else pivot_score, anchor)
            if abs(start) <= NEAR:
                rank, first_rank, rows = yield from _around(order, ctxs, pivot, True, start, count)
                return _Ranked(total, first_rank, rows, rank)
            rank, first_rank, rows = yield from _around(order, ctxs, pivot, True, 0, 0)
            target = rank + start
            found = yield from _far(order, ctxs, cards, max(0, target), count)
            return _Ranked(found.total, found.start, found.entries, rank)
        # the anchor left the order: ``start`` is taken as a rank, as the single-node window does
        if start < 0:
            start = max(0, total + start)
        found = yield from _far(order, ctxs, cards, start, count)
        return found
    if near_head:
        lists = [_entries(order, r) for r in rest]
        rows = order.merge(lists)[start:start + count] if count else []
        return _Ranked(total, start, rows)
    if near_tail:
        lists = [_entries(order, r) for r in rest]
        rows = order.merge(lists)[start:]
        first_rank = max(0, total + start)
        return _Ranked(total, first_rank, rows[:count])
    if start < 0:
        start = max(0, total + start)
    found = yield from _far(order, ctxs, cards, start, count)
    return found


def _entries(order: _Order, reply: Any) -> list[Entry]:
    return [(0.0, m) for s, m in _pairs(reply)] if order.lex else _pairs(reply)


def _far(order: _Order, ctxs: Sequence[Context], cards: list[int], start: int, count: int) -> Plan:
    total = sum(cards)
    if not count or start >= total:
        return _Ranked(total, start, [])
    if start + count <= NEAR:
        replies = yield Commands([order.head(order.key(ctx), start + count) for ctx in ctxs])
        return _Ranked(total, start, order.merge(_entries(order, r) for r in replies)[start:start + count])
    found = yield from _seek(order, ctxs, cards, start)
    if found is None:
        return _Ranked(total, start, [])
    rank, pivot = found
    offset = max(-NEAR, min(NEAR, start - rank))
    _rank, first_rank, rows = yield from _around(order, ctxs, pivot, True, offset, count)
    return _Ranked(total, first_rank, rows)


# --- the reads -----------------------------------------------------------------------------

def window(buckets: Buckets, ctxs: Sequence[Context], order: str, *, descending: bool, start: int,
           count: int, anchor: str | None = None, extra: tuple[str, ...] = ()) -> Plan:
    """:func:`core.plans.window` over every bucket: the same rows in the same order.

    Near the head, the tail or the anchor: three round trips (sizes and anchor score;
    the members around it from every bucket with each bucket's count before it; the
    hashes), a fixed number of commands per bucket plus one per row, whatever the size
    of the set. A jump far from any of them first seeks a pivot (:func:`_seek`)."""
    if not isinstance(count, int) or not 0 <= count <= MAX_PAGE:
        raise InvalidInput("count", f"must be between 0 and {MAX_PAGE}")
    if not isinstance(start, int):
        raise InvalidInput("start", "must be a whole number")
    kind = _order(order, descending)
    _indexed(ctxs)
    home = buckets.of_sid(member_sid(order, anchor)) if isinstance(anchor, str) else 0
    found = yield from ranked(ctxs, kind, start, count, anchor if isinstance(anchor, str) else None, home)
    members = [m for _s, m in found.entries]
    sids = [member_sid(order, m) for m in members]
    sessions = yield from _sessions(buckets, ctxs, [*sids, *extra])
    return Window(found.total, found.start, sids, members, sessions, found.pivot_rank)


def _active_total(ctxs: Sequence[Context], now: float) -> list[tuple[Any, ...]]:
    return [c for ctx in ctxs for c in (("ZCARD", ctx.schema.idx_expiry),
                                        ("ZCOUNT", ctx.schema.idx_expiry, "-inf", now))]


def active_page(buckets: Buckets, ctxs: Sequence[Context], *, sort: str = "last_seen",
                descending: bool = True, offset: int = 0, limit: int = 50) -> Plan:
    """:func:`core.plans.active_page` over every bucket (sessions past expiry left out)."""
    if sort not in SORTS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORTS)}")
    _page_bounds(offset, limit)
    _indexed(ctxs)
    now = yield from _now(ctxs)
    found = yield from ranked(ctxs, _Order(SORTS[sort], bool(descending)), offset, limit)
    counts = yield Commands(_active_total(ctxs, now))
    total = sum(_int(_ok(r, 0)) for r in counts[0::2]) - sum(_int(_ok(r, 0)) for r in counts[1::2])
    sessions = yield from _sessions(buckets, ctxs, [m for _s, m in found.entries])
    rows = [sessions[m] for _s, m in found.entries if m in sessions and sessions[m].is_active(now)]
    return Page(rows, total=max(0, total), offset=offset)


def ended_page(buckets: Buckets, ctxs: Sequence[Context], *, offset: int = 0, limit: int = 50) -> Plan:
    """Ended sessions of every bucket, most recently ended first."""
    _page_bounds(offset, limit)
    _indexed(ctxs)
    found = yield from ranked(ctxs, _Order("ended", True), offset, limit)
    sessions = yield from _sessions(buckets, ctxs, [m for _s, m in found.entries])
    return Page([sessions[m] for _s, m in found.entries if m in sessions], total=found.total, offset=offset)


def cache_page(buckets: Buckets, ctxs: Sequence[Context], *, offset: int = 0, limit: int = 50) -> Plan:
    """Cache entries of the most recently active sessions of every bucket, with TTL left."""
    _page_bounds(offset, limit)
    _indexed(ctxs)
    found = yield from ranked(ctxs, _Order("seen", True), offset, limit)
    sids = [m for _s, m in found.entries]
    if not sids:
        return []
    cmds: list[tuple[Any, ...]] = []
    for sid in sids:
        key = ctxs[buckets.of_sid(sid)].schema.cache(sid)
        cmds += [("GET", key), ("PTTL", key)]
    replies = yield Commands(cmds)
    out: list[CacheEntry] = []
    for i, sid in enumerate(sids):
        raw, pttl = replies[2 * i], replies[2 * i + 1]
        if raw is None or isinstance(raw, Exception):
            continue
        out.append(parse_cache(sid, raw, pttl))
    return out


def sessions_by_id(buckets: Buckets, ctxs: Sequence[Context], sids: list[str]) -> Plan:
    found = yield from _sessions(buckets, ctxs, list(sids))
    return found


def stats(ctxs: Sequence[Context], *, minutes: int = 30) -> Plan:
    """:func:`core.plans.stats` summed over every bucket: one round trip."""
    now = yield from _now(ctxs)
    current = int(now // 60)
    mins = list(range(current - minutes + 1, current + 1))
    per = 8
    cmds: list[tuple[Any, ...]] = []
    for ctx in ctxs:
        s = ctx.schema
        cmds += [("ZCARD", s.idx_expiry), ("ZCOUNT", s.idx_expiry, "-inf", now), ("ZCARD", s.idx_ended),
                 ("HGETALL", s.stats_app), ("HGETALL", s.stats_type),
                 ("MGET", *[s.minute_counter("logins", m) for m in mins]),
                 ("MGET", *[s.minute_counter("ends", m) for m in mins]), ("ZCARD", s.idx_anonymous)]
    replies = yield Commands(cmds)
    _indexed(ctxs)
    active = due = ended = anonymous = 0
    by_app: dict[str, int] = {}
    by_type: dict[str, int] = {}
    logins = [0] * minutes
    ends = [0] * minutes
    for b in range(len(ctxs)):
        r = replies[b * per:(b + 1) * per]
        active += _int(_ok(r[0], 0))
        due += _int(_ok(r[1], 0))
        ended += _int(_ok(r[2], 0))
        _add_counts(by_app, r[3])
        _add_counts(by_type, r[4])
        _add_series(logins, r[5])
        _add_series(ends, r[6])
        anonymous += _int(_ok(r[7], 0))
    return Stats(active=max(0, active - due), ended=ended, expired_pending=due,
                 by_app={k: v for k, v in by_app.items() if v > 0},
                 by_type={k: v for k, v in by_type.items() if v > 0},
                 logins_per_minute=logins, ends_per_minute=ends, anonymous=anonymous)


def _add_counts(into: dict[str, int], reply: Any) -> None:
    for k, v in pairs_to_dict(_ok(reply, {})).items():
        if _int(v) > 0:
            into[k] = into.get(k, 0) + _int(v)


def _add_series(into: list[int], reply: Any) -> None:
    values = _ok(reply, [])
    for i, v in enumerate(values[:len(into)] if isinstance(values, list) else []):
        into[i] += _int(v)


def overview(ctxs: Sequence[Context], *, minutes: int = plans.OVERVIEW_MINUTES, top: int = TOP_N) -> Plan:
    """:func:`core.plans.overview` of every bucket in one round trip, merged.

    Counts, per-minute series and flags are exact sums. The top users (by sessions, by
    addresses) are exact too: a user lives in one bucket. The top addresses are merged
    from each bucket's top ``top``: an address's figure is the sum over the buckets that
    list it, so it may be low (a bucket where it is not in its top omits its share), and
    an address spread thinly over many buckets may be missing from the merged list. Each
    bucket sends its top ``3 * top`` (:data:`TOP_DEPTH`) to make that unlikely."""
    yield from _now(ctxs)
    depth = min(100, TOP_DEPTH * top)
    parts: list[Overview] = yield from lockstep([plans.overview(ctx, minutes=minutes, top=depth)
                                                 for ctx in ctxs])
    _indexed(ctxs)
    first = parts[0]
    series = {name: Series([sum(vals) for vals in zip(*(p.series[name].values for p in parts), strict=False)])
              for name in first.series}
    by_app: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for p in parts:
        for k, v in p.by_app.items():
            by_app[k] = by_app.get(k, 0) + v
        for k, v in p.by_type.items():
            by_type[k] = by_type.get(k, 0) + v
    return Overview(
        now=first.now, active=sum(p.active for p in parts), ended=sum(p.ended for p in parts),
        expired_pending=sum(p.expired_pending for p in parts), by_app=by_app, by_type=by_type,
        first_minute=first.first_minute, series=series,
        top_ip_sessions=_top((p.top_ip_sessions for p in parts), top),
        top_ip_users=_top((p.top_ip_users for p in parts), top),
        top_user_sessions=_top((p.top_user_sessions for p in parts), top),
        top_user_ips=_top((p.top_user_ips for p in parts), top),
        flags=_flags(p.flags for p in parts), anonymous=sum(p.anonymous or 0 for p in parts), mode="index")


def _top(lists: Iterable[list[tuple[str, int]]], n: int) -> list[tuple[str, int]]:
    """Summed per member, then Redis's ZREVRANGE order: count, then member, descending."""
    sums: dict[str, int] = {}
    for items in lists:
        for name, count in items:
            sums[name] = sums.get(name, 0) + count
    ordered = sorted(sums.items(), key=lambda x: (x[1], x[0].encode("utf-8", "surrogatepass")), reverse=True)
    return ordered[:n]


def _flags(lists: Iterable[list[Flag]]) -> list[Flag]:
    merged: dict[str, Flag] = {}
    for items in lists:
        for f in items:
            merged.setdefault(f.id, f)
    return sorted(merged.values(), key=lambda f: (-f.since, f.id))[:MAX_FLAGS]


def flags(ctxs: Sequence[Context]) -> Plan:
    """The current flags of every bucket, newest first."""
    replies = yield Commands([("HGETALL", ctx.schema.flags) for ctx in ctxs])
    return _flags(parse_flags(_ok(r, {})) for r in replies)


def rule_inputs(ctxs: Sequence[Context], *, min_addresses: int, baseline_minutes: int, candidates: int = 20,
                per_user: int = 200) -> Plan:
    """:func:`core.plans.rule_inputs` over every bucket: per-minute counts summed, flags
    merged, and the ``candidates`` users with the most addresses taken over all buckets
    (exact: a user lives in one bucket), then their active sessions' addresses."""
    now = yield from _now(ctxs)
    current = int(now // 60)
    mins = range(current - baseline_minutes, current + 1)
    per = 3 + len(mins)
    cmds: list[tuple[Any, ...]] = []
    for ctx in ctxs:
        s = ctx.schema
        cmds += [("ZREVRANGEBYSCORE", s.ov_user_ips, "+inf", max(1, min_addresses), "WITHSCORES",
                  "LIMIT", 0, candidates),
                 ("MGET", *[s.minute_counter("logins", m) for m in mins]), ("HGETALL", s.flags),
                 *[("HGET", s.minute_kinds(m), "new_user") for m in mins]]
    replies = yield Commands(cmds)
    logins = [0] * len(mins)
    new_users = [0] * len(mins)
    ranked_users: list[tuple[int, bytes, str, int]] = []
    flag_lists = []
    for b in range(len(ctxs)):
        r = replies[b * per:(b + 1) * per]
        ranked_users += [(n, u.encode("utf-8", "surrogatepass"), u, b) for u, n in parse_top(_ok(r[0], []))]
        _add_series(logins, r[1])
        flag_lists.append(parse_flags(_ok(r[2], {})))
        for i, v in enumerate(r[3:]):
            new_users[i] += _int(_ok(v, 0))
    users = [(u, b) for _n, _k, u, b in sorted(ranked_users, reverse=True)[:candidates]]
    addresses: dict[str, list[tuple[str, str]]] = {}
    if users:
        members = yield Commands([("SMEMBERS", ctxs[b].schema.user_active(u)) for u, b in users])
        wanted = [(u, b, sid) for (u, b), m in zip(users, members, strict=True)
                  for sid in sorted(_members(m))[:per_user]]
        if wanted:
            rows = yield Commands([("HMGET", ctxs[b].schema.session(sid), "ip", "status", "expires_at")
                                   for _u, b, sid in wanted])
            for (u, _b, sid), row in zip(wanted, rows, strict=True):
                row = _ok(row, [None, None, None])
                exp = parse_time(row[2]) if len(row) > 2 else None
                if row and row[0] and row[1] == ACTIVE and (exp is None or exp > now):
                    addresses.setdefault(u, []).append((sid, row[0]))
    return RuleInputs(logins, addresses, _flags(flag_lists), new_users)


def search(buckets: Buckets, ctxs: Sequence[Context], kind: str, query: str, *, limit: int = 50) -> Plan:
    """:func:`core.plans.search` over every bucket's lex index: each bucket's first
    ``limit`` matches, merged in index order and cut to ``limit`` (the single-node
    result). Two or three round trips."""
    if kind not in SEARCH_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(SEARCH_KINDS)}")
    from . import validation as check
    query = check.text("query", query, limit=check.FOREIGN_LIMIT)
    _page_bounds(0, limit)
    _indexed(ctxs)
    tag = SEARCH_KINDS[kind]
    per = [plans.search_commands(ctx, kind, query, limit) for ctx in ctxs]
    replies = yield Commands([cmd for cmds in per for cmd in cmds])
    width = len(per[0]) if per else 1
    tagged = [[(m.encode("utf-8", "surrogatepass"), b, m)
               for m in plans.search_members(kind, replies[b * width:(b + 1) * width], limit)]
              for b in range(len(ctxs))]
    members = [(b, m) for _k, b, m in heapq.merge(*tagged)][:limit]
    if kind == "user":
        lists = yield Commands([("LRANGE", ctxs[b].schema.user_sessions(m[len(tag):]), 0, limit - 1)
                                for b, m in members])
        sids = [sid for reply in lists for sid in _members(reply)][:limit]
    elif kind == "sid":
        sids = [m[len(tag):] for _b, m in members]
    else:
        sids = [m.rsplit("|", 1)[1] for _b, m in members if "|" in m]
    found = yield from _sessions(buckets, ctxs, sids)
    return [found[sid] for sid in dict.fromkeys(sids) if sid in found]


def anonymous_page(buckets: Buckets, ctxs: Sequence[Context], *, offset: int = 0, limit: int = 50) -> Plan:
    """Anonymous sessions of every bucket, most recently active first (each bucket's
    first ``offset + limit``, merged and cut): two round trips."""
    start, stop = _page_bounds(offset, limit)
    cmds: list[tuple[Any, ...]] = []
    for ctx in ctxs:
        key = ctx.schema.idx_anonymous
        cmds += [("ZREVRANGE", key, 0, stop, "WITHSCORES"), ("ZCARD", key)]
    replies = yield Commands(cmds)
    total = sum(_int(_ok(r, 0)) for r in replies[1::2])
    lists = [[(s, m, b) for s, m in _pairs(r)] for b, r in enumerate(replies[0::2])]
    picked = list(heapq.merge(*lists, key=lambda x: _sort_key((x[0], x[1])), reverse=True))[start:stop + 1]
    if not picked:
        return AnonymousPage([], total, offset)
    hashes = yield Commands([("HGETALL", ctxs[b].schema.anonymous(aid)) for _s, aid, b in picked])
    out = []
    for (_s, aid, _b), reply in zip(picked, hashes, strict=True):
        fields = pairs_to_dict(_ok(reply, {}))
        if fields:
            created, seen = plans._float(fields.get("created_at")), plans._float(fields.get("last_seen"))
            out.append(Anonymous(aid, data_of(fields), fields.get("app", ""), created, seen))
    return AnonymousPage(out, total, offset)


def scan_step(ctxs: Sequence[Context], which: str, cursor: int, *, count: int = 200,
              fields: tuple[str, ...] = ("username",)) -> Plan:
    """One bounded step of a scan over the active or ended set of every bucket, bucket
    after bucket: the cursor carries the bucket (low bits) and its ZSCAN cursor; 0 is
    the start and the end. ``total`` is the sum over buckets."""
    if not isinstance(cursor, int) or cursor < 0:
        raise InvalidInput("cursor", "must be a whole number >= 0")
    mask = (1 << SCAN_BUCKET_BITS) - 1
    bucket, inner = cursor & mask, cursor >> SCAN_BUCKET_BITS
    if bucket >= len(ctxs):
        return ScanStep(0, 0, [])
    key = "idx_expiry" if which == "active" else "idx_ended"
    [step, cards] = yield from lockstep([
        plans.scan_step(ctxs[bucket], which, inner, count=count, fields=fields), _cards_of(ctxs, key)])
    if step.cursor:
        nxt = step.cursor << SCAN_BUCKET_BITS | bucket
    else:
        nxt = bucket + 1 if bucket + 1 < len(ctxs) else 0
    return ScanStep(nxt, sum(cards), step.rows)


def _cards_of(ctxs: Sequence[Context], attr: str) -> Plan:
    replies = yield Commands([("ZCARD", getattr(ctx.schema, attr)) for ctx in ctxs])
    return [_int(_ok(r, 0)) for r in replies]


# --- export pages (core.bulk) --------------------------------------------------------------

def export_totals(ctxs: Sequence[Context]) -> Plan:
    """(indexed sessions of every bucket, True): a bucketed store is always indexed."""
    replies = yield Commands([c for ctx in ctxs for c in (("ZCARD", ctx.schema.idx_expiry),
                                                          ("ZCARD", ctx.schema.idx_ended))])
    return sum(_int(_ok(r, 0)) for r in replies), True


def export_index_page(buckets: Buckets, ctxs: Sequence[Context], after: str | None, *,
                      count: int = plans.EXPORT_PAGE) -> Plan:
    """:func:`core.plans.export_index_page` over every bucket: the next ``count`` sessions
    in id order after ``after`` (each bucket's next ``count``, merged and cut)."""
    lo = plans._SID_FIRST if after is None else f"({SEARCH_SID}{after}"
    replies = yield Commands([("ZRANGEBYLEX", ctx.schema.idx_search, lo, plans._SID_END, "LIMIT", 0, count)
                              for ctx in ctxs])
    tagged = [[(m.encode("utf-8", "surrogatepass"), m) for m in _members(r)] for r in replies]
    sids = [m[len(SEARCH_SID):] for _k, m in heapq.merge(*tagged)][:count]
    if not sids:
        return ExportPage([], after or "", True, 0)
    hashes = yield Commands([("HGETALL", ctxs[buckets.of_sid(sid)].schema.session(sid)) for sid in sids])
    records = [(sid, data) for sid, reply in zip(sids, hashes, strict=True)
               if (data := pairs_to_dict(_ok(reply, {})))]
    return ExportPage(records, sids[-1], len(sids) < count, len(sids))


def export_scan_page(cursor: str) -> Plan:
    """Nothing to scan: in the bucketed layout every session is indexed (no classic keys)."""
    return ExportPage([], "0", True, 0)
    yield  # a plan: never reached


def scan_session_ids(cursor: str) -> Plan:
    """Nothing to scan: no classic-layout hashes live in the bucketed layout."""
    return "0", []
    yield  # a plan: never reached
