"""The shared base of the session tables (Active, Inactive): a virtual table over one
server-side order, a filter, and a status line saying what the table holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from core import Session, StoreError
from core.plans import Window

from ..model import clean, parse_query
from ..widgets.virtual_table import Column, VirtualTable
from ..window import Request, Row
from .base import FilterInput, Panel

FILTER_LIMIT = 1000
"""Rows a filtered view holds (a filter's matches, read from the search index)."""


@dataclass(frozen=True, slots=True)
class Order:
    key: str
    """The window order (:data:`core.plans.WINDOW_ORDERS`)."""
    label: str
    column: str
    """The column whose header carries the arrow."""


class SessionsPanel(Panel):
    """Subclasses give ``COLUMNS``, ``ORDERS`` (the first is the default) and ``cells``."""

    COLUMNS: ClassVar[Sequence[Column]] = ()
    ORDERS: ClassVar[Sequence[Order]] = ()
    WANT_ACTIVE: ClassVar[bool] = True
    FILTER_HINT: ClassVar[str] = "/ filter: user prefix, ip:…, app:…, sid:…"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", id="session.detail"),
        Binding("slash", "filter", "Filter", show=False, id="view.filter"),
        Binding("S", "sort_order", "Sort order", show=False, id="view.sort_order"),
    ]

    @dataclass
    class Read(Message):
        request: Request | None
        window: Window | None
        error: str = ""
        filtered: list[Session] | None = None
        query: str = ""

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.order = self.ORDERS[0]
        self.descending = True
        self.filter_text = ""
        self.note = ""
        self.reading = False
        self.again = False

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder=self.FILTER_HINT, id=f"{self.ID}-filter")
        yield Static(id=f"{self.ID}-info", classes="info")
        table = VirtualTable(self.COLUMNS, self.cells, id=f"{self.ID}-table")
        table.sort_key, table.descending = self.order.column, self.descending
        yield table

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def main_widget(self) -> Widget:
        return self.table

    def cells(self, row: Row) -> Sequence[str]:
        raise NotImplementedError

    # --- reading --------------------------------------------------------------------------
    def refresh_data(self) -> None:
        if self.reading:
            self.again = True
            return
        self.reading = True
        if self.filter_text.strip():
            self.read_filtered(self.filter_text)
        else:
            self.read_window(self.table.window.request(), self.order.key, self.descending)

    @work(thread=True, exclusive=True, group="window", exit_on_error=False)
    def read_window(self, req: Request, order: str, descending: bool) -> None:
        try:
            win = self.source.window(order, descending=descending, start=req.start, count=req.count,
                                     anchor=req.anchor, extra=req.extra)
            self.post_message(self.Read(req, win))
        except StoreError as exc:
            self.post_message(self.Read(req, None, error=str(exc)))
        except Exception as exc:  # a bug must not stop the panel from reading again
            self.post_message(self.Read(req, None, error=f"{type(exc).__name__}: {exc}"))

    @work(thread=True, exclusive=True, group="window", exit_on_error=False)
    def read_filtered(self, text: str) -> None:
        kind, query = parse_query(text)
        try:
            found = self.source.search(kind, query, FILTER_LIMIT) if query else []
            now = self.source.clock()
            found = [s for s in found if s.is_active(now) == self.WANT_ACTIVE]
            self.post_message(self.Read(None, None, filtered=found, query=text))
        except StoreError as exc:
            self.post_message(self.Read(None, None, error=str(exc), query=text))

    @on(Read)
    def _read(self, msg: Read) -> None:
        msg.stop()
        self.reading = False
        if self.again:
            self.again = False
            self.call_later(self.refresh_data)
        if not self.is_attached or self.dash.closing:
            return
        if msg.error:
            self.note = msg.error
        elif self.frozen:
            return
        elif msg.filtered is not None:
            if msg.query != self.filter_text:
                return
            self.note = ""
            self.table.window.set_list([(s.sid, s.sid, s) for s in self._ordered(msg.filtered)])
        elif msg.window is not None and msg.request is not None:
            scan = msg.window.mode == "scan"
            self.note = "no sessionwatch indexes: rows as a SCAN finds them" if scan else ""
            window = self.table.window
            if (window.apply(msg.request, msg.window, self.source.clock()) and msg.request.mode == "hold"
                    and window.request().count):
                self.call_later(self.refresh_data)  # rows still missing around the view
        self.table.sync()
        self.show_info()

    def _ordered(self, sessions: list[Session]) -> list[Session]:
        return sessions

    @on(VirtualTable.Wanted)
    def _wanted(self, msg: VirtualTable.Wanted) -> None:
        msg.stop()
        self.refresh_data()

    @on(VirtualTable.Moved)
    def _moved(self, msg: VirtualTable.Moved) -> None:
        msg.stop()
        self.show_info()

    @on(VirtualTable.Chosen)
    def _chosen(self, msg: VirtualTable.Chosen) -> None:
        msg.stop()
        self.action_detail()

    # --- state ----------------------------------------------------------------------------
    def show_info(self) -> None:
        w = self.table.window
        parts = [w.range_text() if w.loaded else "reading…"]
        arrow = "▼" if self.descending else "▲"
        if self.filter_text.strip():
            parts.append(f"filter {clean(self.filter_text, 60)}")
        else:
            parts.append(f"sort {self.order.label} {arrow}")
            parts.append(w.marker())
        if self.note:
            parts.append(clean(self.note, 80))
        self.query_one(f"#{self.ID}-info", Static).update(Text(" · ".join(parts)))

    def set_order(self, order: Order, descending: bool) -> None:
        self.order, self.descending = order, descending
        self.table.sort_key, self.table.descending = order.column, descending
        self.table.window.reset()
        self.table.sync()
        self.show_info()
        self.refresh_data()

    def action_sort_order(self) -> None:
        self.set_order(self.order, not self.descending)

    def action_filter(self) -> None:
        self.query_one(FilterInput).focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self.table.window.reset()
        self.table.sync()
        self.show_info()
        self.refresh_data()

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_main()

    def selected_row(self) -> Row | None:
        return self.table.window.selected

    def selected_session(self) -> Session | None:
        row = self.selected_row()
        if row is None:
            return None
        return row.session or Session(sid=row.sid, username="?")

    def action_detail(self) -> None:
        session = self.selected_session()
        if session is not None:
            self.dash.open_detail(session)
