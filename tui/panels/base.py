"""What every panel is: a tab that owns its widgets, its state and its reads.

The App composes the panels listed in :mod:`tui.panels`, tells the shown one to
refresh, and hands every panel the live feed's events. A panel reads Redis only through
the :class:`~tui.source.DataSource` in thread workers, which post messages back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Input

from core import Event, Session, Stats

if TYPE_CHECKING:
    from ..app import SessionWatchApp
    from ..source import DataSource


class FilterInput(Input):
    """A one-line filter box; ``escape`` and ``enter`` hand the keys back to the panel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "done", "Back to table", show=False, id="filter.done"),
    ]

    def action_done(self) -> None:
        panel = next((a for a in self.ancestors if isinstance(a, Panel)), None)
        if panel is not None:
            panel.stop_work()
            panel.focus_main()


class Panel(Vertical):
    """Base of every tab. Subclasses set ``ID``, ``TITLE``, their ``BINDINGS`` (keys that
    work in this panel, shown in the footer while it has the focus) and, for panels that
    can end sessions, ``WRITE_BINDINGS`` (registered only when the app is not read-only)."""

    ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    WRITE_BINDINGS: ClassVar[list[Binding]] = []
    filter_text = ""
    """What the panel's :class:`FilterInput` holds (panels that compose one)."""

    def __init__(self, source: DataSource, *, writable: bool) -> None:
        super().__init__(id=f"{self.ID}-panel", classes="panel")
        self.source = source
        self.writable = writable and bool(self.WRITE_BINDINGS)
        if self.writable:
            self._bindings = BindingsMap.merge([self._bindings, BindingsMap(self.WRITE_BINDINGS)])

    @property
    def dash(self) -> SessionWatchApp:
        return self.app  # type: ignore[return-value]

    # --- what the App calls ---------------------------------------------------------------
    def main_widget(self) -> Widget:
        raise NotImplementedError

    def focus_main(self) -> None:
        self.main_widget().focus()

    def refresh_data(self) -> None:
        """Read what the panel shows (start a worker); called while the panel is shown."""

    def on_shown(self) -> None:
        """The tab became visible."""

    def feed_events(self, events: list[Event]) -> None:
        """New events from the live feed (each once, in order), whether shown or not."""

    def title(self, stats: Stats | None) -> str:
        """The tab's title (with a live count where the panel has one)."""
        return self.TITLE

    def selected_session(self) -> Session | None:
        return None

    # --- the filter box, for panels that compose a FilterInput ----------------------------
    def filter_changed(self) -> None:
        """``filter_text`` changed as the admin typed: show what matches."""

    def action_filter(self) -> None:
        self.query_one(FilterInput).focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self.filter_changed()

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_main()

    def stop_work(self) -> None:
        """Escape in the filter box: stop what the filter started (a scan), if anything."""

    @property
    def frozen(self) -> bool:
        return self.dash.frozen
