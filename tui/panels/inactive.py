"""Ended sessions, most recently ended first (or oldest first), every one reachable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from core import Stats

from ..model import clean, fmt_clock, problem_mark
from ..widgets.virtual_table import Column
from ..window import Row
from .sessions import Order, SessionsPanel, flag_mark


class InactivePanel(SessionsPanel):
    ID = "inactive"
    TITLE = "Inactive"
    WANT_ACTIVE = False
    SCAN_SETS = ("ended",)
    COLUMNS: ClassVar[Sequence[Column]] = (
        Column("user", "User", 16, grow=24), Column("app", "App", 10, grow=20),
        Column("ip", "IP", 15, grow=24),
        Column("reason", "End reason", 10), Column("ended", "Ended", 8),
        Column("by", "Ended by", 14, grow=26),
        Column("sid", "Session", 8),
    )
    ORDERS: ClassVar[Sequence[Order]] = (Order("ended", "end time", "ended"),)

    def on_mount(self) -> None:
        self.table.window.in_set = lambda s, now: not s.is_active(now)

    def cells(self, row: Row) -> Sequence[str]:
        s = row.session
        if s is None:
            return ("(purged)", "", "", "", "", "", row.sid[:8])
        now = self.source.clock()
        return (flag_mark(self.dash, s) + clean(s.username, 38) + problem_mark(s), clean(s.app, 30),
                clean(s.ip, 45),
                clean(s.end_reason or "-", 20), fmt_clock(s.logout_time, now), clean(s.ended_by or "-", 40),
                s.short_id)

    def title(self, stats: Stats | None) -> str:
        return f"Inactive {stats.ended}" if stats is not None else self.TITLE
