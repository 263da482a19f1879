"""Search the whole history (ended sessions too) by user, session id, IP or app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from core import Session, StoreError

from ..model import PAGE_SIZE, SEARCH_COLUMNS, clean, parse_query, search_row
from ..widgets.table import SessionTable
from .base import FilterInput, Panel


class SearchPanel(Panel):
    ID = "search"
    TITLE = "Search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", id="session.detail"),
        Binding("slash", "filter", "Search", id="view.filter"),
    ]
    WRITE_BINDINGS: ClassVar[list[Binding]] = [
        Binding("l", "logout", "Log out", id="session.logout"),
        Binding("L", "logout_user", "Log out user", id="session.logout_user"),
    ]

    @dataclass
    class Read(Message):
        text: str
        sessions: list[Session]
        error: str = ""

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.filter_text = ""
        self.shown: dict[str, Session] = {}

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="user prefix (whole history), sid:…, ip:…, app:…  then enter",
                          id="search-input")
        yield Static(Text("Type a username prefix (shows the user's whole history), or sid:, ip:, app: "
                          "and enter."), id="search-info", classes="info")
        yield SessionTable(SEARCH_COLUMNS, id="search-table")

    @property
    def table(self) -> SessionTable:
        return self.query_one(SessionTable)

    def main_widget(self) -> Widget:
        return self.table

    def refresh_data(self) -> None:
        if self.filter_text.strip():
            self.run_search(self.filter_text)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def run_search(self, text: str) -> None:
        kind, query = parse_query(text)
        if not query:
            return
        try:
            self.post_message(self.Read(text, self.source.search(kind, query, PAGE_SIZE)))
        except StoreError as exc:
            self.post_message(self.Read(text, [], error=str(exc)))

    @on(Read)
    def _read(self, msg: Read) -> None:
        msg.stop()
        if not self.is_attached or msg.text != self.filter_text:
            return  # an older query's answer
        now = self.source.clock()
        self.shown = {s.sid: s for s in msg.sessions}
        self.table.sync([(s.sid, search_row(s, now)) for s in msg.sessions])
        kind, query = parse_query(msg.text)
        text = msg.error or f"{len(msg.sessions)} sessions where {kind} starts with {query!r}"
        if kind == "user" and not msg.error:
            text += " (the users' whole history)"
        self.query_one("#search-info", Static).update(Text(clean(text, 200)))

    def action_filter(self) -> None:
        self.query_one(FilterInput).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        if event.value.strip():
            self.run_search(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.run_search(event.value)
        self.focus_main()

    def selected_session(self) -> Session | None:
        sid = self.table.selected_key
        if sid is None:
            return None
        return self.shown.get(sid) or Session(sid=sid, username="?")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def action_detail(self) -> None:
        session = self.selected_session()
        if session is not None:
            self.dash.open_detail(session)

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
        """A logout changed the history: show it."""
        self.refresh_data()
