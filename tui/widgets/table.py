"""A DataTable that is updated by diff, so cursor and scroll survive live updates."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from core.display import DisplayText, display

Cells = Sequence[DisplayText]


class SessionTable(DataTable):
    """Rows keyed by session id. :meth:`sync` adds, removes and updates only what changed
    (never clear-and-refill, which resets the cursor), then puts rows in the given order
    and keeps the cursor on the same session. Every cell goes through
    :func:`core.display.display` and is drawn as a :class:`~rich.text.Text` (never as
    markup), whatever the caller passed."""

    def __init__(self, columns: Sequence[tuple[str, str]], **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)  # type: ignore[arg-type]
        self._columns = tuple(columns)
        self._rows: dict[str, tuple[str, ...]] = {}
        self._order: dict[str, int] = {}

    def on_mount(self) -> None:
        self._add_columns()

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new rows when idle, but caches rendered cells by an update
        # counter, not by column width: a frame drawn before that measuring (a busy
        # machine) kept every column as narrow as its header. Redraw when widths change.
        widths = [c.content_width for c in self.columns.values()]
        await super()._on_idle(event)  # measures (DataTable's own handler then finds nothing to do)
        if [c.content_width for c in self.columns.values()] != widths:
            self._update_count += 1
            self.refresh()

    def _add_columns(self) -> None:
        # Also from sync(): on a loaded machine the first poll can land before on_mount,
        # and rows added to a table without columns left every column as narrow as its
        # header ("esc\", "[bol") for good.
        if not self.columns:
            for key, label in self._columns:
                self.add_column(label, key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # cursor outside the table (it was just emptied)
            return None

    def sync(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Make the table show ``rows`` (``(key, cells)`` in display order) by diff."""
        self._add_columns()
        selected = self.selected_key
        old_index = self.cursor_row
        wanted = {key: tuple(display(c, 1000) for c in cells) for key, cells in rows}
        stale = [k for k in self._rows if k not in wanted]
        with self.app.batch_update():
            # only rows that left are removed (remove_row re-lays out the table, measured
            # ~0.6 ms per row here, 67 ms when all 100 rows of a page change): never a
            # clear-and-refill, which would reset the cursor and the scroll position
            for key in stale:
                self.remove_row(key)
                del self._rows[key]
            col_keys = [k for k, _ in self._columns]
            for key, cells in wanted.items():
                old = self._rows.get(key)
                if old is None:
                    self.add_row(*(Text(c) for c in cells), key=key)
                elif old != cells:
                    for col, before, after in zip(col_keys, old, cells, strict=True):
                        if before != after:
                            self.update_cell(key, col, Text(after))
                self._rows[key] = cells
            self._order = {key: i for i, (key, _) in enumerate(rows)}
            if [row.key.value for row in self.ordered_rows] != list(wanted):
                self._reorder()
            if selected is not None and selected in self._rows:
                index = self.get_row_index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False, scroll=False)
            elif self.row_count:
                self.move_cursor(row=min(old_index, self.row_count - 1), animate=False, scroll=False)

    def _reorder(self) -> None:
        """Put rows in the order of the last :meth:`sync`. ``DataTable.sort`` only sees cell
        values, so rows are ranked by their session-id cell (unique within a page)."""
        index = [k for k, _ in self._columns].index("sid")
        ranks = {self._rows[key][index]: rank for key, rank in self._order.items()}
        self.sort("sid", key=lambda cell: ranks.get(str(cell), len(ranks)))
