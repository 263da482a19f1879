"""The virtual window's rules without Textual: follow, hold, arrivals, ended rows."""

from __future__ import annotations

from core import Session
from core.plans import Window
from tui.window import BOTTOM, HOLD, TOP, SessionWindow

NOW = 1000.0


def sess(sid: str, status: str = "active") -> Session:
    return Session(sid=sid, username=f"u{sid}", status=status, expires_at=NOW + 60)


def answer(order: list[str], start: int, count: int, *, anchor: str | None = None,
           extra: tuple[str, ...] = (), ended: tuple[str, ...] = ()) -> Window:
    """What core.plans.window returns over ``order`` (the whole set, rank order)."""
    rank = order.index(anchor) if anchor in order else None
    if anchor is not None and rank is not None:
        start = rank + start
    if start < 0:
        start = max(0, len(order) + start)
    sids = order[start:start + count]
    sessions = {s: sess(s) for s in [*sids, *extra] if s in order}
    sessions.update({s: sess(s, "inactive") for s in ended})
    return Window(len(order), start, sids, sids, sessions, rank)


def refresh(w: SessionWindow, order: list[str], ended: tuple[str, ...] = ()) -> None:
    req = w.request()
    assert w.apply(req, answer(order, req.start, req.count, anchor=req.anchor, extra=req.extra,
                               ended=ended), NOW)


def shown(w: SessionWindow) -> list[str]:
    return [w.rows[p].sid for p in w.visible() if p in w.rows]


def test_following_reads_the_head_and_holds_only_screen_plus_margin() -> None:
    order = [f"s{i}" for i in range(1_000)]
    w = SessionWindow(height=10)
    refresh(w, order)
    assert w.mode == TOP and shown(w) == order[:10] and w.size == 1000
    assert len(w.rows) <= 3 * 10
    order.insert(0, "new")
    refresh(w, order)
    assert shown(w)[0] == "new"  # following: arrivals appear at the top


def test_holding_keeps_rows_in_place_and_counts_arrivals() -> None:
    order = [f"s{i}" for i in range(100)]
    w = SessionWindow(height=10)
    refresh(w, order)
    w.move(3)
    assert w.mode == HOLD
    before, cursor_sid = shown(w), w.selected.sid
    order[:0] = ["n1", "n2", "n3"]
    refresh(w, order)
    assert shown(w) == before and w.selected.sid == cursor_sid and w.new == 3
    assert "3 new ↑" in w.marker()
    w.move(20)  # rows beyond the held ones are read by rank through the same offset
    refresh(w, order)
    assert w.selected.sid == "s23"
    w.follow()
    refresh(w, order)
    assert w.mode == TOP and shown(w)[0] == "n1" and w.new == 0


def test_end_reaches_the_last_row_of_a_large_set() -> None:
    order = [f"s{i}" for i in range(1_000_000)]
    w = SessionWindow(height=20, total=len(order))
    w.follow_end()
    req = w.request()
    assert req.start < 0 and req.count <= 60  # from the end, one screen and a margin
    refresh(w, order)
    assert w.mode == BOTTOM and w.selected.sid == "s999999" and w.cursor == 999_999
    assert w.range_text() == "rows 999 981–1 000 000 of 1 000 000"
    w.move(-1)
    assert w.mode == HOLD and w.selected.sid == "s999998"


def test_selected_session_that_ends_stays_until_the_cursor_leaves() -> None:
    order = ["a", "b", "c", "d"]
    w = SessionWindow(height=10)
    refresh(w, order)
    assert w.selected.sid == "a"
    order.remove("a")
    refresh(w, order, ended=("a",))
    assert w.selected.sid == "a" and w.selected.ended and shown(w) == ["a", "b", "c", "d"]
    order.insert(0, "z")
    refresh(w, order, ended=("a",))
    assert w.selected.sid == "a"  # still under the cursor while following
    w.move(1)
    assert w.selected.sid == "z" and w.cursor == 0 and "a" not in shown(w)


def test_held_rows_that_end_are_marked_not_removed() -> None:
    order = [f"s{i}" for i in range(30)]
    w = SessionWindow(height=10)
    refresh(w, order)
    w.move(5)
    order.remove("s2")
    refresh(w, order, ended=("s2",))
    assert shown(w)[2] == "s2" and w.rows[2].ended and w.selected.sid == "s5"


def test_outdated_answers_are_dropped() -> None:
    order = [f"s{i}" for i in range(30)]
    w = SessionWindow(height=10)
    req = w.request()
    w.follow_end()
    assert not w.apply(req, answer(order, req.start, req.count), NOW)
