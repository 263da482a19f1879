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
from textual.worker import get_current_worker

from core import Session, StoreError
from core.plans import Window

from ..model import clean
from ..query import HASH_FIELDS, parse
from ..widgets.line import Line
from ..widgets.virtual_table import Column, VirtualTable
from ..window import Request, Row
from .base import FilterInput, Panel

FILTER_LIMIT = 10_000
"""Matches a filtered view holds at most (the scan goes on counting past it)."""
SCAN_COUNT = 200
"""Index entries per scan step: each Redis command of a step stays well under a millisecond."""
PROGRESS_EVERY = 0.1
"""Seconds between progress messages of a scan that finds nothing."""


FLAG_MARK = "⚑ "
"""Before the user of a session an anomaly flag names (see tui/panels/overview.py)."""


def flag_mark(app: object, session: Session) -> str:
    """:data:`FLAG_MARK` when a current flag names ``session`` or its user, else ``""``."""
    index = getattr(app, "flag_index", None)
    return FLAG_MARK if index and index.rules(session.sid, session.username) else ""


def _short(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n // 1000}k"
    return str(n)


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
    WANT_ACTIVE: ClassVar[bool | None] = True
    """Which sessions the panel lists: active, ended, or (``None``) both."""
    SCAN_SETS: ClassVar[tuple[str, ...]] = ("active",)
    FILTER_HINT: ClassVar[str] = "/ filter: any text, or user: app: ip: sid: email: status: type:"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", id="session.detail"),
        Binding("slash", "filter", "Filter", show=False, id="view.filter"),
        Binding("S", "sort_order", "Sort order", show=False, id="view.sort_order"),
        Binding("escape", "stop_scan", "Stop scan", id="view.stop_scan"),
    ]

    @dataclass
    class Found(Message):
        """A scan's progress: new matches, how far it got, whether it is over."""

        generation: int
        sessions: list[Session]
        scanned: int
        total: int
        done: bool = False
        error: str = ""

    @dataclass
    class Read(Message):
        request: Request | None
        window: Window | None
        error: str = ""

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.order = self.ORDERS[0]
        self.descending = True
        self.note = ""
        self.reading = False
        self.reading_generation = -1
        self.again = False
        self.scan_generation = 0
        self.scanning = False
        self.matches: dict[str, Session] = {}
        self.progress = ""

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder=self.FILTER_HINT, id=f"{self.ID}-filter")
        yield Line(id=f"{self.ID}-info", classes="info")
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
        if self.filter_text.strip():
            return  # a filtered view is a scan's result; it is read again when the query changes
        req = self.table.window.request()
        if self.reading and req.generation == self.reading_generation:
            self.again = True  # one read at a time for the same view: the next follows it
            return
        # A jump (End, Home, a new order) does not wait for a read of the view it left:
        # that answer is dropped when it comes (its generation is old).
        self.reading, self.reading_generation = True, req.generation
        self.read_window(req, self.order.key, self.descending)

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

    def start_scan(self) -> None:
        self.scan_generation += 1
        self.matches = {}
        self.table.window.set_list([])
        if not self.filter_text.strip():
            self.scanning = False
            self.workers.cancel_group(self, "scan")
            return
        self.scanning = True
        self.progress = "searching…"
        self.scan(self.filter_text, self.scan_generation)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(self, text: str, generation: int) -> None:
        """Prefix candidates from the search index at once, then an incremental scan of the
        whole set in small steps, posting matches as they are found."""
        query = parse(text)
        worker = get_current_worker()
        source = self.source

        def stopped() -> bool:
            return worker.is_cancelled or generation != self.scan_generation

        def post(found: list[Session], scanned: int, total: int, done: bool = False, error: str = "") -> None:
            self.post_message(self.Found(generation, found, scanned, total, done, error))

        try:
            now = source.clock()
            quick = []
            for kind, prefix in query.index_prefixes():
                for session in source.search(kind, prefix, 100):
                    fields = {name: getattr(session, name, None) for name in HASH_FIELDS}
                    wanted = self.WANT_ACTIVE is None or session.is_active(now) == self.WANT_ACTIVE
                    if wanted and query.matches(session.sid, fields):
                        quick.append(session)
            post(quick, 0, 0)
            held = {s.sid for s in quick}
            fields, terms = query.scan_plan()
            scanned = total = 0
            for which in self.SCAN_SETS:
                cursor, first, last_post = 0, True, 0.0
                while first or cursor:
                    if stopped():
                        return
                    first = False
                    # The server matches (a step is a few ms of its time and one small reply);
                    # what it returns may match, and is matched exactly here.
                    step = source.scan_step(which, cursor, count=SCAN_COUNT, fields=fields, terms=terms)
                    cursor = step.cursor
                    scanned += step.met
                    total = max(total, scanned) if which != self.SCAN_SETS[0] else step.total
                    hits = [sid for sid in step.matched if sid not in held]
                    hits += [sid for sid, f in step.rows if sid not in held and query.matches(sid, f)]
                    hits = hits[:max(0, FILTER_LIMIT - len(held))]  # past the cap, nothing more is read
                    held.update(hits)
                    found = list(source.sessions_by_id(hits).values()) if hits else []
                    now_t = source.perf_counter()
                    if found or now_t - last_post > PROGRESS_EVERY:
                        last_post = now_t
                        post(found, scanned, total)
            post([], scanned, max(total, scanned), done=True)
        except StoreError as exc:
            post([], 0, 0, done=True, error=str(exc))
        except Exception as exc:  # a bug shows as a failed search, never as one that never ends
            post([], 0, 0, done=True, error=f"{type(exc).__name__}: {exc}")

    @on(Found)
    def _found(self, msg: Found) -> None:
        msg.stop()
        if msg.generation != self.scan_generation or not self.is_attached:
            return
        for session in msg.sessions:
            if len(self.matches) < FILTER_LIMIT or session.sid in self.matches:
                self.matches[session.sid] = session
        if msg.sessions:
            self.table.window.set_list([(s.sid, s.sid, s) for s in self.matches.values()])
            self.table.sync()
            self.rows_changed()
        n = self.matches_text()
        if msg.error:
            self.progress = f"search failed: {msg.error}"
        elif msg.done:
            self.progress = f"{n} · scanned {_short(msg.scanned)}"
        elif msg.total:
            self.progress = (f"{n}{'' if self.capped else ' so far'} · scanned {_short(msg.scanned)} of "
                             f"{_short(msg.total)} · esc stops")
        if msg.done:
            self.scanning = False
            self.refresh_bindings()
        self.show_info()

    @property
    def capped(self) -> bool:
        return len(self.matches) >= FILTER_LIMIT

    def matches_text(self) -> str:
        """How many matches the view holds, and when it is full, that it is."""
        if self.capped:
            cap = f"{FILTER_LIMIT:,}".replace(",", " ")
            return f"first {cap} matches only (the most a filter holds: narrow it)"
        return f"{len(self.matches)} matches"

    def stop_work(self) -> None:
        self.action_stop_scan()

    def action_stop_scan(self) -> None:
        if self.scanning:
            self.scan_generation += 1
            self.scanning = False
            self.workers.cancel_group(self, "scan")
            self.progress = f"{self.matches_text()} · stopped (esc)"
            self.refresh_bindings()
            self.show_info()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_scan":
            return self.scanning
        return True

    @on(Read)
    def _read(self, msg: Read) -> None:
        msg.stop()
        if msg.request is None or msg.request.generation == self.reading_generation:
            self.reading = False
        if self.again:
            self.again = False
            self.call_later(self.refresh_data)
        if not self.is_attached or self.dash.closing:
            return
        if msg.error:
            self.note = msg.error
        elif self.frozen or self.filter_text.strip():
            return
        elif msg.window is not None and msg.request is not None:
            scan = msg.window.mode == "scan"
            self.note = "no sessionwatch indexes: rows as a SCAN finds them" if scan else ""
            window = self.table.window
            if (window.apply(msg.request, msg.window, self.source.clock()) and msg.request.mode == "hold"
                    and window.request().count):
                self.call_later(self.refresh_data)  # rows still missing around the view
        self.table.sync()
        self.show_info()
        self.rows_changed()

    def rows_changed(self) -> None:
        """The rows held were read again (a window, or a filter's new matches)."""

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
            if self.progress:
                parts.append(self.progress)
        else:
            parts.append(f"sort {self.order.label} {arrow}")
            parts.append(w.marker())
        if self.note:
            parts.append(clean(self.note, 80))
        self.query_one(f"#{self.ID}-info", Line).say(Text(" · ".join(parts)))

    def set_order(self, order: Order, descending: bool) -> None:
        self.order, self.descending = order, descending
        self.table.sort_key, self.table.descending = order.column, descending
        self.table.window.reset()
        self.table.sync()
        self.show_info()
        self.refresh_data()

    def action_sort_order(self) -> None:
        self.set_order(self.order, not self.descending)

    def filter_changed(self) -> None:
        self.table.window.reset()
        self.start_scan()
        self.table.sync()
        self.show_info()
        self.refresh_data()

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
