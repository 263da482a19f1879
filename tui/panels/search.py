"""Search the whole history (active and ended sessions) with the filter language of the
session tables; the results are read again after a logout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding

from ..model import clean, fmt_clock
from ..widgets.line import Line
from ..widgets.virtual_table import Column
from ..window import Row
from .sessions import Order, SessionsPanel


class SearchPanel(SessionsPanel):
    ID = "search"
    TITLE = "Search"
    WANT_ACTIVE = None
    SCAN_SETS = ("active", "ended")
    FILTER_HINT = "/ search all sessions: any text, or user: app: ip: sid: email: status: type:"
    COLUMNS: ClassVar[Sequence[Column]] = (
        Column("user", "User", 16, grow=24), Column("app", "App", 10, grow=20),
        Column("ip", "IP", 15, grow=24), Column("status", "Status", 8), Column("login", "Login", 8),
        Column("ended", "Ended", 8), Column("sid", "Session", 8),
    )
    ORDERS: ClassVar[Sequence[Order]] = (Order("seen", "as found", ""),)
    WRITE_BINDINGS: ClassVar[list[Binding]] = [
        Binding("l", "logout", "Log out", id="session.logout"),
        Binding("L", "logout_user", "Log out user", id="session.logout_user"),
    ]

    def cells(self, row: Row) -> Sequence[str]:
        s = row.session
        if s is None:
            return ("(purged)", "", "", "", "", "", row.sid[:8])
        now = self.source.clock()
        status = "active" if s.is_active(now) else (s.end_reason or s.status)
        return (clean(s.username, 40), clean(s.app, 30), clean(s.ip, 45), clean(status, 20),
                fmt_clock(s.login_time, now), fmt_clock(s.logout_time, now), s.short_id)

    def show_info(self) -> None:
        if self.filter_text.strip():
            super().show_info()
        else:
            self.query_one(f"#{self.ID}-info", Line).say(
                "Search every session, active or ended: press / and type (user, app, IP, id, e-mail)")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sort_order":
            return False  # results are listed as found
        return super().check_action(action, parameters)

    def action_logout(self) -> None:
        session = self.selected_session()
        if session is not None:
            ended = not session.is_active(self.source.clock())
            self.dash.confirm_logout(session, ended=ended, sid=session.sid)

    def action_logout_user(self) -> None:
        session = self.selected_session()
        if session is not None:
            self.dash.confirm_logout_user(session)

    def after_write(self) -> None:
        """A logout changed the history: search again."""
        if self.filter_text.strip():
            self.start_scan()
