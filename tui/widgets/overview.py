"""The Overview panel: the shape of the live set on one screen, and the current flags.

Bars of active sessions by app and by type, per-minute charts (logins, logouts by users
and by admins, expiries) over the last 60 minutes, the top addresses and users, and the
anomaly flags. Every table row leads somewhere: Enter posts :class:`OverviewView.Selected`
(the app opens the sessions behind it). Tables keep fixed rank rows that are updated in
place, so the cursor stays on the same line while the figures move under it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from core.anomalies import RULE_TITLES
from core.display import display
from core.overview import Flag, Overview

from ..charts import bar, minute_chart

TOP = 8
CHARTS = (("logins", "Logins", "success"), ("logouts", "Logouts by users", "primary"),
          ("admin_logouts", "Logouts by admins", "secondary"), ("expiries", "Expiries", "warning"))
"""Each chart's colour is a theme variable, never a named ANSI colour: Textual maps those
through its own terminal palette (yellow becomes orange, then bright red on a 16-colour
terminal), while theme colours keep their meaning in every colour system."""


def theme_colours(app: object) -> dict[str, str]:
    """The theme's colours as Rich colour names: ``#rrggbb``, or the terminal's own colour
    name under an ANSI theme (``ansi_red`` is ``red`` to Rich)."""
    out = {}
    for name, value in app.get_css_variables().items():  # type: ignore[attr-defined]
        if value.startswith("ansi_"):
            out[name] = value.removeprefix("ansi_")
        elif value.startswith("#"):
            out[name] = value[:7]
    return out


@dataclass(frozen=True, slots=True)
class Pick:
    """What a row stands for: ``kind`` is ``app``, ``type``, ``ip``, ``user`` or ``flag``."""

    kind: str
    value: str


class RankTable(DataTable):
    """A small ranked table (label, count, bar) whose rows are rank slots updated in place."""

    def __init__(self, title: str, kind: str, *, bars: bool = True, **kw: object) -> None:
        super().__init__(cursor_type="row", show_cursor=True, **kw)  # type: ignore[arg-type]
        self.border_title = title
        self.kind = kind
        self.bars = bars
        self.picks: list[Pick] = []
        self._cells: list[tuple[str, ...]] = []

    def on_mount(self) -> None:
        self.add_column("name", key="name")
        self.add_column("n", key="n")
        if self.bars:
            self.add_column("", key="bar")
        self.show_header = False

    def sync(self, items: Sequence[tuple[str, int]], bar_width: int = 10) -> None:
        items = list(items)
        peak = max((n for _, n in items), default=0)
        rows = []
        for label, n in items:
            cells = [str(display(label, 28)), str(n)]
            if self.bars:
                cells.append(bar(n, peak, bar_width))
            rows.append(tuple(cells))
        self.picks = [Pick(self.kind, label) for label, _ in items]
        cols = ["name", "n", "bar"] if self.bars else ["name", "n"]
        with self.app.batch_update():
            while self.row_count > len(rows):
                self.remove_row(f"r{self.row_count - 1}")
                self._cells.pop()
            for i, cells in enumerate(rows):
                if i >= self.row_count:
                    self.add_row(*(Text(c) for c in cells), key=f"r{i}")
                    self._cells.append(cells)
                elif self._cells[i] != cells:
                    for col, old, new in zip(cols, self._cells[i], cells, strict=True):
                        if old != new:
                            self.update_cell(f"r{i}", col, Text(new), update_width=True)
                    self._cells[i] = cells

    @property
    def picked(self) -> Pick | None:
        row = self.cursor_row
        return self.picks[row] if 0 <= row < len(self.picks) else None


class FlagTable(DataTable):
    """The current anomaly flags, newest first, keyed by flag id."""

    def __init__(self, **kw: object) -> None:
        super().__init__(cursor_type="row", **kw)  # type: ignore[arg-type]
        self.border_title = "Flags (a)"
        self.flags: list[Flag] = []
        self._cells: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label in (("since", "since"), ("rule", "rule"), ("subject", "subject"),
                           ("numbers", "numbers"), ("detail", "what it means")):
            self.add_column(label, key=key)

    def sync(self, flags: Sequence[Flag], now: float) -> None:
        self.flags = list(flags)
        wanted = {}
        for f in flags:
            ago = max(0, int(now - f.since)) if f.since else 0
            since = (f"{ago // 60}m{ago % 60:02d}s ago" if ago < 3600
                     else time.strftime("%H:%M", time.localtime(f.since)))
            wanted[f.id] = (since, f.rule, str(display(f.subject, 40)), str(display(f.numbers_text(), 80)),
                            str(display(f.detail or RULE_TITLES.get(f.rule, ""), 160)))
        selected = self.picked.value if self.picked else None
        with self.app.batch_update():
            for key in [k for k in self._cells if k not in wanted]:
                self.remove_row(key)
                del self._cells[key]
            for key, cells in wanted.items():
                old = self._cells.get(key)
                if old is None:
                    self.add_row(*(Text(c) for c in cells), key=key)
                elif old != cells:
                    cols = ("since", "rule", "subject", "numbers", "detail")
                    for col, a, b in zip(cols, old, cells, strict=True):
                        if a != b:
                            self.update_cell(key, col, Text(b), update_width=True)
                self._cells[key] = cells
            if selected in self._cells:
                self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)

    @property
    def picked(self) -> Pick | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
        return Pick("flag", key) if key else None

    def flag(self, flag_id: str) -> Flag | None:
        return next((f for f in self.flags if f.id == flag_id), None)


class OverviewView(VerticalScroll):
    """Shows one :class:`~core.overview.Overview`; Enter on a row posts :class:`Selected`."""

    DEFAULT_CSS: ClassVar[str] = """
    OverviewView { height: 1fr; padding: 0 1; }
    OverviewView #ov-head { height: 1; }
    OverviewView #ov-bars { height: auto; }
    OverviewView #ov-bars RankTable {
        width: 1fr; height: auto; max-height: 8; border: round $primary-darken-2;
    }
    OverviewView #ov-charts { height: auto; }
    OverviewView #ov-tops { grid-size: 2; grid-gutter: 0 1; height: auto; }
    OverviewView #ov-tops RankTable { height: auto; max-height: 10; border: round $primary-darken-2; }
    OverviewView FlagTable { height: auto; max-height: 8; border: round $error; }
    OverviewView RankTable:focus, OverviewView FlagTable:focus { border: round $accent; }
    """

    class Selected(Message):
        """Enter on a bar, a top-list row or a flag."""

        def __init__(self, pick: Pick) -> None:
            super().__init__()
            self.pick = pick

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.overview: Overview | None = None
        self.flags: list[Flag] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="ov-head")
        yield FlagTable(id="ov-flags")
        with Horizontal(id="ov-bars"):
            yield RankTable("Active by app", "app", id="ov-app")
            yield RankTable("Active by type", "type", id="ov-type")
        yield Static(id="ov-charts")
        with Grid(id="ov-tops"):
            yield RankTable("Addresses by sessions", "ip", bars=False, id="ov-ip-sessions")
            yield RankTable("Addresses by distinct users", "ip", bars=False, id="ov-ip-users")
            yield RankTable("Users by concurrent sessions", "user", bars=False, id="ov-user-sessions")
            yield RankTable("Users by distinct addresses", "user", bars=False, id="ov-user-ips")

    def show(self, ov: Overview, flags: Sequence[Flag] | None = None) -> None:
        """Draw ``ov`` (``flags``: the flags to list, default the stored ones)."""
        self.overview = ov
        self.flags = None if flags is None else list(flags)
        flags = list(ov.flags if flags is None else flags)
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{ov.active:,} active", style="bold")
        if ov.expired_pending:
            head.append(f" (+{ov.expired_pending:,} past expiry)", style="dim")
        if ov.anonymous is not None:
            head.append(f" · {ov.anonymous:,} anonymous")
        head.append(f" · {ov.ended:,} ended · ")
        colours = theme_colours(self.app)
        head.append(f"{len(flags)} flag{'s' if len(flags) != 1 else ''}",
                    style=f"bold {colours['error']}" if flags else colours["success"])
        head.append("  a: flags · enter: the sessions behind a row", style="dim")
        self.query_one("#ov-head", Static).update(head)
        self.query_one(FlagTable).sync(flags, ov.now)
        self.query_one(FlagTable).display = bool(flags)
        width = max(40, self.size.width - 2)
        half = max(10, (width - 2) // 2 - 24)
        self.query_one("#ov-app", RankTable).sync(list(ov.by_app.items()), half)
        self.query_one("#ov-type", RankTable).sync(list(ov.by_type.items()), half)
        height = 2 if self.app.size.height >= 36 else 1
        charts = Text()
        for i, (key, title, style) in enumerate(CHARTS):
            series = ov.series.get(key)
            if series is None:
                continue
            if i:
                charts.append("\n")
            charts.append_text(minute_chart(f"{title} per minute", series.values, width=width, height=height,
                                            first_minute=ov.first_minute, style=colours[style]))
        self.query_one("#ov-charts", Static).update(charts)
        tops = (("#ov-ip-sessions", ov.top_ip_sessions), ("#ov-ip-users", ov.top_ip_users),
                ("#ov-user-sessions", ov.top_user_sessions), ("#ov-user-ips", ov.top_user_ips))
        for table_id, items in tops:
            self.query_one(table_id, RankTable).sync(items[:TOP])

    def on_resize(self) -> None:
        if self.overview is not None:
            self.show(self.overview, self.flags)  # charts and bars fit the new width

    def focus_flags(self) -> bool:
        table = self.query_one(FlagTable)
        if not table.display:
            return False
        table.focus()
        return True

    def selected_flag(self) -> Flag | None:
        table = self.query_one(FlagTable)
        pick = table.picked
        return table.flag(pick.value) if pick and table.has_focus else None

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        pick = table.picked if isinstance(table, RankTable | FlagTable) else None
        if pick is not None:
            event.stop()
            self.post_message(self.Selected(pick))
