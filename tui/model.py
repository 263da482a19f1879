"""What the dashboard knows and shows, with no Textual in it.

The widgets are thin: they render what :class:`DashboardModel` says. Fault tests can
therefore assert "the dashboard shows reconnecting" or "the tail holds each event once"
without a terminal.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from core import Event, ServerInfo, Session, Stats
from core.display import DisplayText, display, join
from core.model import read_epoch

PAGE_SIZE = 100
"""Rows held per table: one page, whatever the number of sessions in Redis."""
EVENT_LINES = 500
"""Lines kept by the event tail."""

INVALID = "invalid"
"""Shown in place of a value that could not be read (the record's problems say why)."""


def clean(value: object, limit: int = 200) -> DisplayText:
    """Text a user controls, safe for the terminal (see :func:`core.display.display`)."""
    return display(value, limit)


def fmt_duration(seconds: float | None) -> str:
    """Compact duration: ``45s``, ``12m05s``, ``3h20m``, ``2d04h``."""
    if seconds is None:
        return "-"
    if not math.isfinite(seconds):
        return INVALID
    s = int(max(0.0, min(seconds, 1e12)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_ago(ts: float | None, now: float) -> str:
    return "-" if ts is None else f"{fmt_duration(now - ts)} ago"


def fmt_clock(ts: float | None, now: float | None = None) -> str:
    """Local wall time of a timestamp; the date too unless it is the same day as ``now``.
    A value no clock can show (NaN, infinite, out of range) is shown as ``invalid``."""
    if ts is None:
        return "-"
    try:
        local = time.localtime(ts)
        if now is not None and time.localtime(now)[:3] == local[:3]:
            return time.strftime("%H:%M:%S", local)
        return time.strftime("%m-%d %H:%M:%S", local)
    except (OverflowError, OSError, ValueError, TypeError):
        return INVALID


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"  # pragma: no cover


# --- sorting and filtering --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SortColumn:
    key: str
    label: str
    server: str | None
    """The index ``active_page(sort=...)`` can sort on, or ``None`` (sorted within the page)."""
    value: Callable[[Session], object]


SORT_COLUMNS: tuple[SortColumn, ...] = (
    SortColumn("seen", "last seen", "last_seen", lambda s: s.last_seen or 0.0),
    SortColumn("login", "login time", "login_time", lambda s: s.login_time or 0.0),
    SortColumn("expires", "expires in", "expires_at", lambda s: s.expires_at or 0.0),
    SortColumn("user", "user", None, lambda s: s.username.casefold()),
    SortColumn("app", "app", None, lambda s: s.app.casefold()),
    SortColumn("type", "type", None, lambda s: s.type),
    SortColumn("ip", "IP", None, lambda s: s.ip),
    SortColumn("sid", "session", None, lambda s: s.sid),
)
SORT_BY_KEY = {c.key: c for c in SORT_COLUMNS}

SEARCH_KINDS = ("user", "sid", "ip", "app")


def parse_query(text: str) -> tuple[str, str]:
    """``"ip:10.0"`` -> ``("ip", "10.0")``; bare text is a username prefix, unless it looks
    like an IP address (digits, dots, colons)."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in SEARCH_KINDS:
        return kind, rest.strip()
    if text and re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*::?[0-9a-fA-F:]*", text) and any(c in text for c in ".:"):
        return "ip", text
    return "user", text


# --- rows -------------------------------------------------------------------------------

Row = tuple[DisplayText, ...]


def _time(ts: float | None, now: float | None = None) -> DisplayText:
    return DisplayText(fmt_clock(ts, now))


def problem_mark(s: Session) -> str:
    """A marker on the user cell of a record with problems (the detail view lists them)."""
    return " ⚠" if s.problems else ""


def active_row(s: Session, now: float) -> Row:
    return (display(display(s.username, 38) + problem_mark(s), 40), clean(s.app, 30), clean(s.ip, 45),
            DisplayText(fmt_ago(s.last_seen, now)),
            DisplayText(fmt_duration(None if s.expires_at is None else s.expires_at - now)),
            clean(s.short_id, 8), clean(s.type, 10), _time(s.login_time, now))


def inactive_row(s: Session, now: float | None = None) -> Row:
    return (display(display(s.username, 38) + problem_mark(s), 40), clean(s.app, 30), clean(s.ip, 45),
            clean(s.end_reason or "-", 20), _time(s.logout_time, now), clean(s.ended_by or "-", 40),
            clean(s.short_id, 8))


def search_row(s: Session, now: float) -> Row:
    status = "active" if s.is_active(now) else (s.end_reason or s.status)
    return (display(display(s.username, 38) + problem_mark(s), 40), clean(s.app, 30), clean(s.ip, 45),
            clean(status, 20), _time(s.login_time, now), _time(s.logout_time, now), clean(s.short_id, 8))


def summary_text(data: dict, skip: Iterable[str] = ()) -> DisplayText:
    """A cache summary as ``key=value`` pairs, times as wall clock, empty values left out.
    Values of any type (NaN, nested structures) are shown, never raised on."""
    out = []
    for key, value in data.items():
        if key in skip or value in ("", None):
            continue
        if isinstance(key, str) and key.endswith(("_time", "_at", "last_seen")) \
                and isinstance(value, int | float) and not isinstance(value, bool):
            ts, why = read_epoch(value)
            value = fmt_clock(ts) if not why else f"{INVALID}({value!r})"
        elif isinstance(value, dict | list):
            value = f"<{type(value).__name__}>"
        out.append(f"{display(key, 40)}={display(value, 80)}")
    return display(DisplayText(" ".join(out)), 2000)


def cache_row(sid: str, summary: dict | None, raw: str, ttl: float | None) -> Row:
    from core.tokens import short_id

    data = summary or {}
    if ttl is None:
        left = "no TTL"
    elif ttl < 0:
        left = "gone"
    else:
        left = fmt_duration(ttl)
    text = summary_text(data, skip=("sid", "username", "app", "status")) if summary is not None else raw
    return (clean(short_id(sid), 8), clean(data.get("username", ""), 40), clean(data.get("app", ""), 30),
            clean(data.get("status", ""), 10), DisplayText(left), clean(text, 120))


def event_text(ev: Event) -> DisplayText:
    """One tail line; plain lines from other apps are shown as they are (made safe)."""
    if ev.kind == "text" or ev.seq is None:
        return clean(ev.raw, 400)
    if ev.ts is not None:
        stamp = fmt_clock(ev.ts, ev.ts)
    elif "ts" in ev.data:
        stamp = INVALID
    else:
        stamp = "--:--:--"
    # on the bucketed layout each bucket counts on its own: bucket.seq
    seq = f"#{ev.seq}" if ev.bucket is None else f"#{ev.bucket}.{ev.seq}"
    parts: list[object] = [stamp, seq, display(ev.kind, 12).ljust(12), clean(ev.username, 40),
                           clean(ev.app, 30)]
    extra = ev.data
    if isinstance(extra.get("ip"), str) and extra["ip"]:
        parts.append(clean(extra["ip"], 45))
    reason = extra.get("reason")
    if isinstance(reason, str) and reason and reason != ev.kind:
        parts.append(f"reason={clean(reason, 20)}")
    if ev.actor and ev.actor != ev.username:
        parts.append(f"by {clean(ev.actor, 60)}")
    if ev.sid:
        parts.append(clean(ev.short_id, 8))
    if ev.problems:
        parts.append(f"⚠ {clean('; '.join(ev.problems), 80)}")
    return join(*parts, limit=400)


def event_matches(ev: Event, needle: str) -> bool:
    return not needle or needle.casefold() in event_text(ev).casefold()


# --- state ------------------------------------------------------------------------------

@dataclass
class DashboardModel:
    """Connection state, counts and the bounded, de-duplicated event tail."""

    target: str = ""
    read_only: bool = False
    max_events: int = EVENT_LINES
    poll_ok: bool | None = None
    feed_ok: bool | None = None
    quiet_polls: int = 0
    """Polls in a row that found the counts unchanged (see :meth:`quiet_delay`)."""
    last_stats: object = None
    detail: str = ""
    latency_ms: float | None = None
    server: ServerInfo = field(default_factory=ServerInfo)
    stats: Stats | None = None
    last_seq: int = 0
    events: deque[Event] = field(init=False)
    paused: bool = False
    sort_key: str = "seen"
    descending: bool = True
    event_filter: str = ""
    failures: int = 0
    feed_stalled: bool = False
    topology: str = ""
    """The deployment as the header names it: a cluster's masters and replicas up, or
    Sentinel's current master (read by every poll); empty for a single server."""
    stall_after: float = 5.0
    """Seconds a log line may stay undelivered by the live feed before it counts as stalled."""

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.max_events)
        self._seen: dict[tuple[int | None, int], str] = {}
        self._delivered: dict[str, None] = {}
        self._lagging: dict[int, tuple[str, float]] = {}
        """Per bucket (one on a single node): a log head the feed has not delivered, and
        since when the dashboard knows it."""

    # connection
    @property
    def connected(self) -> bool:
        """Polls answer, and the live feed is up and not stalled: it delivered the newest
        line of the event log, or that line is not older than ``stall_after`` seconds
        in the dashboard's eyes (checked against the log by every poll)."""
        return self.poll_ok is True and self.feed_ok is not False and not self.feed_stalled

    @property
    def state(self) -> str:
        """``connecting`` before the first answer, then ``connected``, ``stalled`` (the
        log holds a line the live feed has not delivered for ``stall_after`` seconds) or
        ``reconnecting``."""
        if self.poll_ok is None and self.feed_ok is None:
            return "connecting"
        if self.poll_ok is True and self.feed_ok is not False and self.feed_stalled:
            return "stalled"
        return "connected" if self.connected else "reconnecting"

    # liveness of the feed, checked against the log
    def feed_delivered(self, raw: str) -> None:
        """The live feed handed over this log line."""
        self._delivered[raw] = None
        if len(self._delivered) > 4 * self.max_events:
            del self._delivered[next(iter(self._delivered))]

    def check_liveness(self, head: str | Sequence[str | None] | None, now: float) -> bool:
        """Compare the log's newest line (read by a poll) with what the feed delivered;
        on the bucketed layout ``head`` is every bucket's newest line, each watched on its
        own (a quiet bucket whose events stop arriving is caught however busy the others
        are). A line still undelivered ``stall_after`` seconds after a poll first saw it
        means the feed is stalled. Returns whether the stalled state changed."""
        was = self.feed_stalled
        heads = [head] if head is None or isinstance(head, str) else list(head)
        for b, one in enumerate(heads):
            lag = self._lagging.get(b)
            if one is None or one in self._delivered or self.feed_ok is not True:
                self._lagging.pop(b, None)
            elif lag is None or lag[0] in self._delivered:
                self._lagging[b] = (one, now)  # a new line to watch (the previous one arrived)
        late = [b for b, (_, since) in self._lagging.items() if now - since >= self.stall_after]
        self.feed_stalled = bool(late)
        if self.feed_stalled:
            where = f" (bucket {late[0]})" if len(heads) > 1 else ""
            self.detail = (f"the event log{where} has lines the live feed has not delivered "
                           f"for {self.stall_after:g}s")
        elif was and self.feed_ok is not False and self.poll_ok is not False:
            self.detail = ""
        return was != self.feed_stalled

    def poll_succeeded(self, stats: Stats, server: ServerInfo, latency_ms: float | None) -> None:
        self.poll_ok, self.stats, self.server, self.latency_ms = True, stats, server, latency_ms
        self.failures = 0
        if self.feed_ok is not False:
            self.detail = ""

    def poll_failed(self, detail: str) -> None:
        self.poll_ok = False
        self.failures += 1
        self.detail = detail

    def feed_status(self, connected: bool, detail: str = "") -> None:
        self.feed_ok = connected
        if not connected:
            self.detail = detail or self.detail
        elif self.poll_ok is not False:
            self.detail = ""

    def quiet_delay(self, interval: float, stats: object, cap_factor: int = 4) -> float:
        """Seconds to the next reconciliation after a successful poll. While the live feed
        is up it brings every change within a second, so polls that find nothing new back
        off (x2 each, up to ``cap_factor`` x ``interval``): an idle dashboard costs a
        quarter of the CPU. Any change, or any session event, returns to ``interval``."""
        if stats != self.last_stats:
            self.quiet_polls = 0
        else:
            self.quiet_polls += 1
        self.last_stats = stats
        if not self.feed_ok or self._lagging:
            return interval
        return interval * min(cap_factor, 2 ** self.quiet_polls)

    def retry_delay(self, interval: float, cap: float = 10.0) -> float:
        """Backoff for the next poll after ``failures`` failed ones in a row."""
        return min(cap, interval * (2 ** max(0, self.failures - 1))) if self.failures else interval

    # events
    def add_event(self, ev: Event) -> bool:
        """Keep ``ev`` unless this very line (same seq, same text) was already added. Not
        "any seq at or below the last": a foreign line with a huge seq, or a log that
        started again at 1, must not hide what follows."""
        if ev.seq is not None:
            key = (ev.bucket, ev.seq)  # each bucket of the bucketed layout counts on its own
            if self._seen.get(key) == ev.raw:
                return False
            self._seen[key] = ev.raw
            if len(self._seen) > 4 * self.max_events:
                del self._seen[next(iter(self._seen))]
            self.last_seq = max(self.last_seq, ev.seq)
        self.events.append(ev)
        return True

    def log_restarted(self) -> None:
        """The event log was rewound (FLUSHALL, restart without persistence): seqs repeat."""
        self._seen.clear()
        self.last_seq = 0

    def add_events(self, events: Iterable[Event]) -> list[Event]:
        return [ev for ev in events if self.add_event(ev)]

    def visible_events(self) -> list[Event]:
        return [ev for ev in self.events if event_matches(ev, self.event_filter)]

    # sorting
    @property
    def sort(self) -> SortColumn:
        return SORT_BY_KEY[self.sort_key]

    def cycle_sort(self) -> SortColumn:
        keys = [c.key for c in SORT_COLUMNS]
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        return self.sort

    def sort_by(self, key: str) -> None:
        """Sort by ``key``; choosing the current column again flips the order."""
        if key not in SORT_BY_KEY:
            return
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, True

    def order(self, sessions: Sequence[Session], *, server_sorted: bool = True) -> list[Session]:
        """The page in display order (``server_sorted``: Redis already sorted indexed columns)."""
        if server_sorted and self.sort.server is not None:
            return list(sessions)
        return sorted(sessions, key=self.sort.value, reverse=self.descending)

    # header
    def status_parts(self) -> list[tuple[str, str]]:
        """(text, style class) pieces of the first status line: badges, connection, server."""
        parts: list[tuple[str, str]] = []
        if self.read_only:
            parts.append(("READ-ONLY", "readonly"))
        if self.paused:
            parts.append(("PAUSED", "paused"))
        state = self.state
        label = {"connected": "● connected", "reconnecting": "○ reconnecting", "connecting": "… connecting",
                 "stalled": "○ live feed stalled"}
        parts.append((label[state], "reconnecting" if state == "stalled" else state))
        if state == "reconnecting" and self.stats is None:
            # never reached Redis: say how to point the dashboard somewhere (it keeps retrying)
            parts.append(("no Redis answers: give --url or REDIS_URL, or try sessionwatch demo", "detail"))
        if state in ("reconnecting", "stalled") and self.detail:
            parts.append((clean(self.detail, 60), "detail"))
        if self.topology:  # a cluster or Sentinel: who serves now says more than the seed address
            parts.append((clean(self.topology, 80), "target"))
        else:
            parts.append((clean(self.target, 120), "target"))
        if self.server.version:
            parts.append((f"Redis {clean(self.server.version, 20)}", "version"))
        if self.latency_ms is not None and state == "connected":
            parts.append((f"rtt {self.latency_ms:.1f}ms", "latency"))
        if self.server.used_memory is not None:
            parts.append((f"mem {fmt_bytes(self.server.used_memory)}", "memory"))
        return parts

    def count_parts(self) -> list[tuple[str, str]]:
        """The second status line: how many sessions."""
        if self.stats is None:
            return [("counting…", "count")]
        parts = [(f"active {self.stats.active}", "count"), (f"inactive {self.stats.ended}", "count")]
        if self.stats.expired_pending:
            parts.append((f"expiring {self.stats.expired_pending}", "count"))
        if getattr(self.stats, "anonymous", 0):
            parts.append((f"anonymous {self.stats.anonymous}", "count"))
        if self.stats.mode != "index":
            parts.append((f"({self.stats.mode} mode)", "version"))
        return parts

    def status_line(self) -> str:
        return "  ".join(text for text, _ in self.status_parts() + self.count_parts())

    def logins_per_minute(self) -> list[int]:
        return list(self.stats.logins_per_minute) if self.stats else []
