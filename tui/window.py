"""A screenful of a whole-set order, with no Textual in it: which rows are held, where the
cursor is, and whether the view follows the live head or holds still.

Positions are screen rows counted from the top of the list (0 = first row). While
following, position = rank in the server-side order and every refresh replaces the rows.
While holding, the rows held keep their positions (nothing moves under the cursor); the
rank of the row nearest the cursor is read on each refresh, and how far it moved is the
number of rows that arrived above ("12 new ↑"). Rows not held yet are read by rank through
that same offset (``rank = position + shift``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core import Session
from core.plans import Window

TOP, HOLD, BOTTOM = "top", "hold", "bottom"


@dataclass(slots=True)
class Row:
    sid: str
    member: str
    """The index member (``sid``, or ``<value>\\0<sid>`` in a lex order): the anchor key."""
    session: Session | None
    ended: bool = False
    """Left the set while on screen: kept in place and marked, so nothing moves under the cursor."""


@dataclass(frozen=True, slots=True)
class Request:
    """What one refresh reads: ``count`` rows from ``start`` (relative to ``anchor``'s rank
    when an anchor is given, else absolute; negative counts from the end) plus ``extra``
    sessions held on screen. ``generation`` drops answers to an outdated request."""

    start: int
    count: int
    anchor: str | None
    anchor_pos: int
    extra: tuple[str, ...]
    generation: int
    mode: str


@dataclass
class SessionWindow:
    """The held rows of one virtual table (a few screenfuls, never the whole set)."""

    height: int = 20
    """Rows on screen (set by the widget from its size)."""
    margin: int | None = None
    """Rows read beyond the screen on each side (default: one screenful)."""
    total: int = 0
    rows: dict[int, Row] = field(default_factory=dict)
    cursor: int = 0
    top: int = 0
    mode: str = TOP
    shift: int = 0
    new: int = 0
    """Net rows arrived above the held view since it started holding."""
    generation: int = 0
    loaded: bool = False
    sticky: Row | None = None
    """The selected session ended while following: kept under the cursor until it leaves."""
    in_set: Callable[[Session, float], bool] = Session.is_active
    """Whether a session still belongs to this set (a row that no longer does is marked ended)."""

    # --- geometry ---------------------------------------------------------------------------
    @property
    def pad(self) -> int:
        return self.height if self.margin is None else self.margin

    @property
    def size(self) -> int:
        """Rows the scrollbar stands for: the whole set, as positioned now."""
        held = max(self.rows) + 1 if self.rows else 0
        return max(0, self.total - self.shift, held)

    @property
    def following(self) -> bool:
        return self.mode != HOLD

    def row(self, pos: int) -> Row | None:
        return self.rows.get(pos)

    @property
    def selected(self) -> Row | None:
        return self.rows.get(self.cursor)

    def visible(self) -> range:
        return range(self.top, min(self.size, self.top + self.height))

    # --- moving -----------------------------------------------------------------------------
    def _clamp(self) -> None:
        last = max(0, self.size - 1)
        self.cursor = min(max(0, self.cursor), last)
        self.top = min(max(0, self.top), max(0, self.size - self.height))
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + self.height:
            self.top = self.cursor - self.height + 1

    def move_to(self, pos: int) -> None:
        """Put the cursor on ``pos``; leaving the head (or the tail) starts holding."""
        if self.sticky is not None and pos != self.cursor:
            pos = self._drop_sticky(pos)
        self.cursor = pos
        self._clamp()
        left_top = self.mode == TOP and (self.cursor != 0 or self.top != 0)
        if left_top or (self.mode == BOTTOM and self.cursor != self.size - 1):
            self._hold()

    def move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def scroll_to(self, top: int) -> None:
        """The viewport moved (mouse wheel, scrollbar): the cursor stays on screen."""
        self.top = top
        self.top = min(max(0, self.top), max(0, self.size - self.height))
        self.cursor = min(max(self.cursor, self.top), self.top + self.height - 1)
        self._clamp()
        if self.mode != HOLD and (self.top != 0 or self.cursor != 0) and not (
                self.mode == BOTTOM and self.cursor == self.size - 1):
            self._hold()

    def _drop_sticky(self, pos: int) -> int:
        """The cursor leaves the ended row: it goes, and ``pos`` stays on the row it meant."""
        at = next((p for p, r in self.rows.items() if r is self.sticky), None)
        self.sticky = None
        if at is None:
            return pos
        self.rows = {(p - 1 if p > at else p): r for p, r in self.rows.items() if p != at}
        self.shift += 1
        return pos - 1 if pos > at else pos

    def _hold(self) -> None:
        self.mode = HOLD
        self.new = 0

    def follow(self) -> None:
        """Back to the live head: the cursor on the first row, every row re-read."""
        self.mode, self.cursor, self.top, self.shift, self.new = TOP, 0, 0, 0, 0
        self.rows, self.sticky = {}, None
        self.generation += 1

    def follow_end(self) -> None:
        """To the last row, and follow the tail of the order."""
        self.mode, self.shift, self.new = BOTTOM, 0, 0
        self.rows, self.sticky = {}, None
        self.cursor = max(0, self.total - 1)
        self.top = max(0, self.total - self.height)
        self.generation += 1

    def reset(self) -> None:
        """A new order (sort, filter): start over at the head."""
        self.follow()
        self.total, self.loaded = 0, False

    def set_list(self, items: list[tuple[str, str, Session]]) -> None:
        """A bounded list (a filter's matches), held whole; the cursor stays on its session."""
        before = self.selected
        self.rows = {i: Row(sid, member, session) for i, (sid, member, session) in enumerate(items)}
        self.total, self.shift, self.loaded = len(items), 0, True
        if before is not None:
            self.cursor = next((p for p, r in self.rows.items() if r.sid == before.sid), self.cursor)
        self._clamp()

    # --- reading ----------------------------------------------------------------------------
    def request(self) -> Request:
        span = self.height + 2 * self.pad
        if self.mode == TOP:
            return Request(0, self.top + self.height + self.pad, None, 0, self._extra(), self.generation, TOP)
        if self.mode == BOTTOM:
            return Request(-span, span, None, 0, self._extra(), self.generation, BOTTOM)
        lo = max(0, self.top - self.pad)
        hi = self.top + self.height + self.pad
        missing = [p for p in range(lo, hi) if p not in self.rows]
        on_screen = tuple(r.sid for p, r in self.rows.items() if self.top <= p < self.top + self.height)
        anchor = self._anchor()
        if not missing:
            start = count = 0
        else:
            start, count = missing[0], missing[-1] - missing[0] + 1
        if anchor is None:
            return Request(start + self.shift, count, None, 0, on_screen, self.generation, HOLD)
        pos, member = anchor
        return Request(start - pos, count, member, pos, on_screen, self.generation, HOLD)

    def _extra(self) -> tuple[str, ...]:
        sel = self.selected
        return (sel.sid,) if sel is not None and sel.session is not None else ()

    def _anchor(self) -> tuple[int, str] | None:
        """The held, still-listed row nearest the cursor."""
        best: tuple[int, str] | None = None
        for pos, row in self.rows.items():
            if row.ended:
                continue
            if best is None or abs(pos - self.cursor) < abs(best[0] - self.cursor):
                best = (pos, row.member)
        return best

    def apply(self, req: Request, win: Window, now: float) -> bool:
        """Take a refresh's answer; ``False`` if it answered an outdated request."""
        if req.generation != self.generation or req.mode != self.mode:
            return False
        self.loaded = True
        self.total = win.total
        fetched = {
            win.start + i: Row(sid, member, win.sessions.get(sid))
            for i, (sid, member) in enumerate(zip(win.sids, win.members, strict=True))
        }
        selected = self.selected
        if self.mode == BOTTOM:
            self.cursor = max(0, self.total - 1)
            self.top = max(0, self.total - self.height)
        if self.mode != HOLD:
            self.rows = fetched
            self.shift = 0
            if self.sticky is not None:
                self._insert_at_cursor(self.sticky)
        else:
            if req.anchor is not None and win.anchor_rank is not None:
                shift = win.anchor_rank - req.anchor_pos
                self.new += shift - self.shift
                self.shift = shift
            for rank, row in fetched.items():
                self.rows.setdefault(rank - self.shift, row)
            for row in self.rows.values():
                if row.sid in win.sessions:
                    row.session = win.sessions[row.sid]
                    if not self.in_set(row.session, now):
                        row.ended = True
                elif row.sid in req.extra:
                    row.ended = True  # purged meanwhile
            self._evict()
        if selected is not None and self.mode != HOLD and self.sticky is None:
            self._keep_ended(selected, win, now)
        self._clamp()
        return True

    def _keep_ended(self, before: Row, win: Window, now: float) -> None:
        """The selected session ended while following: hold, with it in place, marked."""
        if any(r.sid == before.sid for r in self.rows.values()):
            return
        session = win.sessions.get(before.sid)
        if session is not None and self.in_set(session, now):
            return  # it moved (another order position), it did not end
        before.ended = True
        if session is not None:
            before.session = session
        self.sticky = before
        self._insert_at_cursor(before)

    def _insert_at_cursor(self, row: Row) -> None:
        pos = self.cursor
        shifted = {(p + 1 if p >= pos else p): r for p, r in self.rows.items() if r.sid != row.sid}
        shifted[pos] = row
        self.rows = shifted
        self.shift -= 1

    def _evict(self) -> None:
        keep = range(self.top - 3 * self.pad, self.top + self.height + 3 * self.pad)
        for pos in [p for p in self.rows if p not in keep]:
            del self.rows[pos]

    # --- words ------------------------------------------------------------------------------
    def marker(self) -> str:
        if self.mode != HOLD:
            return "following"
        arrow = f" · {self.new} new ↑" if self.new > 0 else ""
        return f"holding{arrow} · f follows"

    def range_text(self) -> str:
        rows = self.visible()
        if not rows:
            return "no rows"
        return f"rows {rows.start + 1:,}–{rows.stop:,} of {self.size:,}".replace(",", " ") \
            if self.size >= 10_000 else f"rows {rows.start + 1}–{rows.stop} of {self.size}"
