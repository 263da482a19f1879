"""A table over a whole server-side order that holds only a few screenfuls of rows.

Rows are drawn with the Line API from a :class:`~tui.window.SessionWindow`; the
scrollbar stands for the whole set (a million rows is just a virtual height). When the
cursor or the viewport moves to rows not held yet, :class:`VirtualTable.Wanted` asks the
owning panel to read them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.display import display

from ..window import SessionWindow


@dataclass(frozen=True, slots=True)
class Column:
    """A column sized to its contents: as wide as the widest value held (and its label),
    at most ``width`` when deciding which columns fit, and at most ``width + grow`` when
    the table has room to spare."""

    key: str
    label: str
    width: int
    grow: int = 0
    """Extra cells this column may take, for long values, when the table has room."""


Cells = Callable[[object], Sequence[str]]
JUMP_PATIENCE = 0.25
"""Seconds Home or End leave the screen as it was while their rows are read."""


class VirtualTable(ScrollView, can_focus=True):
    """Line 0 is the header (the sort column carries ▲ or ▼); lines below are rows from
    ``window.top``. Columns that do not fit whole are left out, never cut. Column widths
    follow the widest value seen (never narrowing, so columns do not jump as rows scroll
    by), within each column's caps."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header", "virtual-table--cursor", "virtual-table--ended",
        "virtual-table--odd", "virtual-table--pending",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "move(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.pagedown"),
        Binding("home,g", "home", "Top, follow", show=False, id="table.home"),
        Binding("end,G", "end", "Last row", show=False, id="table.end"),
        Binding("f", "home", "Follow", show=False, id="table.follow"),
    ]

    class Wanted(Message):
        """The view needs rows it does not hold (or a refresh of the ones it shows)."""

        def __init__(self, table: VirtualTable) -> None:
            super().__init__()
            self.table = table

    class Moved(Message):
        """The cursor moved (the owning panel updates its status line)."""

        def __init__(self, table: VirtualTable) -> None:
            super().__init__()
            self.table = table

    class Chosen(Message):
        """Enter on a row."""

        def __init__(self, table: VirtualTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, columns: Sequence[Column], cells: Cells, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.columns = list(columns)
        self.cells = cells
        self.window = SessionWindow()
        self.sort_key: str | None = None
        self.descending = True
        self._syncing = False
        self._natural: dict[str, int] = {}
        """Widest value seen per column (display cells)."""
        self._widened = 0
        """How often a column's natural width grew (the layout is made again after that)."""
        self._measured: dict[str, object] = {}
        """The session object each row was last measured with, by sid."""
        self._layout: tuple[tuple[object, ...], list[Column]] | None = None
        self._layouts = 0
        """How many column layouts were made: the current one's number keys its drawn rows."""
        self._styles: dict[str, Style] = {}
        """The widget's and its component classes' styles, read once per style change."""
        self._lines: dict[tuple[object, ...], Strip] = {}
        """Drawn rows by what they show (cells, columns, look): a refresh that moves rows,
        or repaints rows whose cells did not change, draws nothing again."""

    @property
    def row_count(self) -> int:
        """Rows held (on screen plus the margins), not the size of the set."""
        return len(self.window.rows)

    @property
    def sids(self) -> set[str]:
        return {r.sid for r in self.window.rows.values()}

    # --- geometry -------------------------------------------------------------------------
    @property
    def body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def on_resize(self) -> None:
        if self.window.height != self.body_height:
            self.window.height = self.body_height
            self.post_message(self.Wanted(self))
        self.sync()

    def measure(self) -> None:
        """Widen the columns' natural widths to the values of the rows held (each session
        read is measured once: a key press does not format every row held again)."""
        keys = [c.key for c in self.columns]
        rows = self.window.rows.values()
        if len(self._measured) > 4 * len(rows) + 100:
            self._measured = {}
        for row in rows:
            if row.session is not None and self._measured.get(row.sid) is row.session:
                continue
            self._measured[row.sid] = row.session
            for key, value in zip(keys, self.cells(row), strict=False):
                width = cell_len(display(value, 200))
                if width > self._natural.get(key, 0):
                    self._natural[key] = width
                    self._widened += 1

    def remeasure(self) -> None:
        """Measure every row held again at the next sync (its cells changed while its session
        did not, e.g. the Cache panel's entries arrived)."""
        self._measured = {}

    def shown_columns(self) -> list[Column]:
        """The columns that fit whole in the width, in order (the rest are left out), each
        as wide as its contents need within its caps; room left over stays blank."""
        width = self.scrollable_content_region.width or self.size.width
        key = (width, self.sort_key, self._widened)
        if self._layout is not None and self._layout[0] == key:
            return self._layout[1]
        sized: list[tuple[Column, int, int]] = []
        used = 0
        for col in self.columns:
            label = cell_len(col.label) + (2 if col.key == self.sort_key else 0)
            natural = self._natural.get(col.key, 0)
            base = max(label, min(natural, col.width))
            if used + base + (1 if sized else 0) > width:
                break
            used += base + (1 if sized else 0)
            sized.append((col, base, max(base, min(natural, col.width + col.grow))))
        spare = width - used
        out = []
        for col, base, cap in sized:
            extra = min(spare, cap - base)
            spare -= extra
            out.append(Column(col.key, col.label, base + extra))
        self._layout = (key, out)
        self._layouts += 1
        return out

    def sync(self) -> None:
        """Make the virtual size and the scroll position agree with the window."""
        self.measure()
        self._syncing = True
        try:
            self._set_virtual_size(Size(self.scrollable_content_region.width, self.window.size + 1))
            if round(self.scroll_y) != self.window.top:
                self.scroll_to(y=self.window.top, animate=False, immediate=True, force=True)
        finally:
            self._syncing = False
        self.refresh()

    def _set_virtual_size(self, size: Size) -> None:
        """A new height of the set. While the scrollbar neither appears nor goes, only the
        scrollbar is updated: assigning ``virtual_size`` asks for a layout pass of the whole
        screen, which under a live feed (the set grows with every login) cost more than
        drawing the table."""
        old = self.virtual_size
        if size == old:
            return
        height = self.container_size.height
        if old.width == size.width and height and (old.height > height) == (size.height > height):
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)  # Textual's own update of the scrollbars for a new virtual size
        else:
            self.virtual_size = size

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._syncing or round(new) == self.window.top:
            return
        self.window.scroll_to(round(new))
        self.post_message(self.Wanted(self))
        self.post_message(self.Moved(self))

    # --- keys -----------------------------------------------------------------------------
    def _moved(self, before: tuple[int, ...] | None = None) -> None:
        """After the cursor moved: when the view did not scroll and no row moved (``before``:
        top, size, generation, rows held and cursor as they were), only the two lines the
        cursor left and reached are drawn again: a key costs two lines, not a screenful."""
        w = self.window
        if before is not None and before[:-1] == (w.top, w.size, w.generation, len(w.rows)):
            width = self.scrollable_content_region.width
            for pos in {before[-1], w.cursor}:
                self.refresh(Region(0, pos - w.top + 1, width, 1))
        else:
            self.sync()
        self.post_message(self.Wanted(self))
        self.post_message(self.Moved(self))

    def _where(self) -> tuple[int, ...]:
        w = self.window
        return w.top, w.size, w.generation, len(w.rows), w.cursor

    def action_move(self, delta: int) -> None:
        before = self._where()
        self.window.move(delta)
        self._moved(before)

    def action_page(self, direction: int) -> None:
        before = self._where()
        self.window.move(direction * self.body_height)
        self._moved(before)

    def action_home(self) -> None:
        self.window.follow()
        self._jumped()

    def action_end(self) -> None:
        self.window.follow_end()
        self._jumped()

    def _jumped(self) -> None:
        """A jump to either end reads a new window: the screen keeps what it shows until that
        read lands (the owner's :meth:`sync`), or for :data:`JUMP_PATIENCE` seconds, after
        which the rows still being read show as "…". A jump is one full redraw, not two."""
        self.set_timer(JUMP_PATIENCE, self.sync)
        self.post_message(self.Wanted(self))
        self.post_message(self.Moved(self))

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.key == "enter":
            event.stop()
            self.post_message(self.Chosen(self))

    def on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        y = event.get_content_offset(self)
        if y is None or y.y < 1:
            return
        self.window.move_to(self.window.top + y.y - 1)
        self._moved()

    # --- drawing --------------------------------------------------------------------------
    def header_line(self, cols: list[Column]) -> str:
        parts = []
        for col in cols:
            label = col.label
            if col.key == self.sort_key:
                label += " ▼" if self.descending else " ▲"
            parts.append(set_cell_size(label, col.width))
        return " ".join(parts)

    def row_line(self, cols: list[Column], values: Sequence[str]) -> str:
        """A row as one plain line (its look is one style for the whole line): each cell cut
        with "…" to its column's width."""
        by_key = dict(zip((c.key for c in self.columns), values, strict=False))
        parts = []
        for col in cols:
            cell = display(by_key.get(col.key, ""), 200)  # the one display path (a no-op on clean text)
            if cell_len(cell) > col.width:
                cell = set_cell_size(cell, col.width - 1) + "…"
            parts.append(set_cell_size(cell, col.width))
        return " ".join(parts)

    def style(self, name: str) -> Style:
        """``""``: the widget's own style; else a component class's (cursor without focus:
        ``"virtual-table--cursor-blurred"``). Computed once until the styles change."""
        got = self._styles.get(name)
        if got is None:
            if not name:
                got = self.rich_style
            elif name == "virtual-table--cursor-blurred":
                got = self.get_component_rich_style("virtual-table--cursor", partial=True) + Style(dim=True)
            else:
                got = self.get_component_rich_style(name)
            self._styles[name] = got
        return got

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._lines.clear()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        cols = self.shown_columns()
        base = self.style("")
        if y == 0:
            return self._strip(self.header_line(cols), width, base + self.style("virtual-table--header"))
        pos = self.window.top + y - 1
        if pos >= self.window.size:
            return Strip.blank(width, base)
        row = self.window.row(pos)
        values = None if row is None else tuple(self.cells(row))
        cursor = 0 if pos != self.window.cursor else 2 if self.has_focus else 1
        key = (values, row is not None and row.ended, pos % 2, cursor, width, self._layouts)
        strip = self._lines.get(key)
        if strip is not None:
            return strip
        style = base
        if pos % 2:
            style += self.style("virtual-table--odd")
        if values is None:
            text = "…"
            style += self.style("virtual-table--pending")
        else:
            text = self.row_line(cols, values)
            if key[1]:
                style += self.style("virtual-table--ended")
        if cursor == 2:
            style += self.style("virtual-table--cursor")
        elif cursor == 1:
            style += self.style("virtual-table--cursor-blurred")
        strip = self._strip(text, width, style)
        if len(self._lines) > 8 * max(self.body_height, 10):
            self._lines.clear()
        self._lines[key] = strip
        return strip

    @staticmethod
    def _strip(line: str, width: int, style: Style) -> Strip:
        """One segment, exactly ``width`` cells: the cheapest strip Textual draws."""
        return Strip([Segment(set_cell_size(line, width), style)], width)

    def on_focus(self) -> None:
        self._styles.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._styles.clear()
        self.refresh()
