"""Active sessions: every one reachable, in any of five whole-set orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType

from core import Stats

from ..model import clean, fmt_ago, fmt_clock, fmt_duration, problem_mark
from ..widgets.virtual_table import Column
from ..window import Row
from .sessions import Order, SessionsPanel, flag_mark


class ActivePanel(SessionsPanel):
    ID = "active"
    TITLE = "Active"
    # Who, where, how long, which session first: at 80 columns these fit whole.
    COLUMNS: ClassVar[Sequence[Column]] = (
        Column("user", "User", 16, grow=24), Column("app", "App", 10, grow=20),
        Column("ip", "IP", 15, grow=24),
        Column("seen", "Last seen", 10), Column("expires", "Expires", 8), Column("sid", "Session", 8),
        Column("type", "Type", 7), Column("login", "Login", 8),
    )
    ORDERS: ClassVar[Sequence[Order]] = (
        Order("seen", "last seen", "seen"), Order("login", "login time", "login"),
        Order("expiry", "expiry", "expires"), Order("user", "user (case-sensitive)", "user"),
        Order("app", "app (case-sensitive)", "app"),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort", id="view.sort"),
    ]
    WRITE_BINDINGS: ClassVar[list[Binding]] = [
        Binding("l", "logout", "Log out", id="session.logout"),
        Binding("L", "logout_user", "Log out user", id="session.logout_user"),
    ]

    def cells(self, row: Row) -> Sequence[str]:
        s = row.session
        if s is None:
            return ("(gone)", "", "", "", "", row.sid[:8])
        now = self.source.clock()
        expires = "ended" if row.ended else fmt_duration(None if s.expires_at is None else s.expires_at - now)
        return (flag_mark(self.dash, s) + clean(s.username, 38) + problem_mark(s), clean(s.app, 30),
                clean(s.ip, 45),
                fmt_ago(s.last_seen, now), expires, s.short_id, clean(s.type, 10),
                fmt_clock(s.login_time, now))

    def title(self, stats: Stats | None) -> str:
        return f"Active {stats.active}" if stats is not None else self.TITLE

    def action_sort(self) -> None:
        i = list(self.ORDERS).index(self.order)
        order = self.ORDERS[(i + 1) % len(self.ORDERS)]
        self.set_order(order, order.key not in ("user", "app"))
        self.app.notify(f"Sorted by {order.label}", timeout=1.5)

    def action_logout(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.dash.confirm_logout(row.session, ended=row.ended, sid=row.sid)

    def action_logout_user(self) -> None:
        session = self.selected_session()
        if session is not None:
            self.dash.confirm_logout_user(session)
