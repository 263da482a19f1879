"""Overview: the shape of the live set at a glance, and the anomaly flags.

Reads :meth:`core.SessionStore.overview` (a fixed number of commands at any size) while
shown. The anomaly rules run here for the whole dashboard, shown or not: the App hands
every live event to :attr:`SessionWatchApp.rules` (a :class:`core.flagger.Flagger`), and
this panel's worker ticks it every :data:`TICK` seconds; a follower that may write raises
and clears flags in Redis (once across dashboards), a read-only one keeps them local.
The flags mark sessions in Active and Inactive (``⚑``); ``a`` jumps here to the flags,
where ``l`` / ``L`` end the sessions behind the selected flag, after the usual confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from core import Stats, StoreError
from core.flagger import TickResult
from core.overview import Flag, FlagIndex, Overview

from ..overview_actions import filter_for, logout_action
from ..widgets.overview import FlagTable, OverviewView
from .base import Panel

TICK = 0.5
"""Seconds between rule evaluations (a pattern is flagged well within 2 s)."""
FLAGS_EVERY = 5.0
"""Seconds between reads of the stored flags when this dashboard does not evaluate."""


class OverviewPanel(Panel):
    ID = "overview"
    TITLE = "Overview"
    BINDINGS: ClassVar[list[BindingType]] = []
    WRITE_BINDINGS: ClassVar[list[Binding]] = [
        Binding("l", "logout_flag", "Log out flagged", id="session.logout"),
        Binding("L", "logout_flag_users", "Log out flagged users", id="session.logout_user"),
    ]

    @dataclass
    class Read(Message):
        overview: Overview | None
        error: str = ""

    @dataclass
    class Ticked(Message):
        result: TickResult

    def __init__(self, source, *, writable: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, writable=writable)
        self.overview: Overview | None = None
        self.flags: list[Flag] = []
        self.reading = False

    def compose(self) -> ComposeResult:
        yield Static(id="overview-info", classes="info")
        yield OverviewView(id="overview-view")

    def _say(self, text: str) -> None:
        info = self.query_one("#overview-info", Static)
        info.update(text)
        info.display = bool(text)

    @property
    def view(self) -> OverviewView:
        return self.query_one(OverviewView)

    def main_widget(self) -> Widget:
        flags = self.query_one(FlagTable)
        if flags.display:
            return flags
        return self.query_one("#ov-app")

    def on_mount(self) -> None:
        self._say("reading…")
        self.refresh_data()  # the current flags, for the markers, before the tab is ever shown
        self.run_rules()

    # --- reading --------------------------------------------------------------------------
    def refresh_data(self) -> None:
        if self.reading:
            return
        self.reading = True
        self.read()

    @work(thread=True, exclusive=True, group="overview", exit_on_error=False)
    def read(self) -> None:
        try:
            self.post_message(self.Read(self.source.overview()))
        except StoreError as exc:
            self.post_message(self.Read(None, error=str(exc)))
        except Exception as exc:  # a bug must not stop the panel from reading again
            self.post_message(self.Read(None, error=f"{type(exc).__name__}: {exc}"))

    @on(Read)
    def _read(self, msg: Read) -> None:
        msg.stop()
        self.reading = False
        if not self.is_attached or self.dash.closing:
            return
        if msg.error:
            self._say(f"overview unavailable: {msg.error[:100]}")
            return
        if self.frozen or msg.overview is None:
            return
        self.overview = msg.overview
        if not self.dash.rules_write and self.dash.rules_on:  # the stored flags plus this follower's
            self.set_flags(self.merged(msg.overview.flags), redraw=False)
        else:
            self.set_flags(msg.overview.flags, redraw=False)
        self.view.show(msg.overview, self.flags)
        self._say("" if msg.overview.mode == "index" else "no sessionwatch indexes: the figures stay empty "
                  "(sessionwatch reindex)")

    # --- the rules --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="rules", exit_on_error=False)
    def run_rules(self) -> None:
        """Tick the rules; without them (no live feed, or switched off) read the stored
        flags now and then, so the markers still follow other dashboards' flags."""
        worker = get_current_worker()
        stop = self.dash.rules_stop
        rules = self.dash.rules
        every = TICK if self.dash.rules_on else FLAGS_EVERY
        while not stop.wait(every) and not worker.is_cancelled:
            if self.dash.rules_on:
                self.post_message(self.Ticked(rules.tick()))
                continue
            try:
                stored = {f.id: f for f in self.source.store.flags()}
            except StoreError:
                continue
            self.post_message(self.Ticked(TickResult(stored=stored)))

    @on(Ticked)
    def _ticked(self, msg: Ticked) -> None:
        msg.stop()
        if not self.is_attached or self.dash.closing or msg.result.error:
            return
        if self.dash.rules_write or not self.dash.rules_on:
            flags = sorted(msg.result.stored.values(), key=lambda f: (-f.since, f.id))
        else:
            flags = self.merged(self.overview.flags if self.overview else [])
        if [f.to_dict() for f in flags] != [f.to_dict() for f in self.flags]:
            self.set_flags(flags)

    def merged(self, stored: list[Flag]) -> list[Flag]:
        """Read-only: the stored flags, plus this follower's own (marked local)."""
        out = {f.id: f for f in stored}
        for fid, f in self.dash.rules.last.holding.items():
            if fid not in out:
                out[fid] = Flag(f.id, f.rule, f.subject, f.numbers, f.since, f"(local) {f.detail}", f.sids,
                                f.users)
        return sorted(out.values(), key=lambda f: (-f.since, f.id))

    def set_flags(self, flags: list[Flag], *, redraw: bool = True) -> None:
        self.flags = flags
        self.dash.flag_index = FlagIndex.of(flags)
        if redraw and self.overview is not None and not self.frozen and self.is_on_screen:
            self.view.show(self.overview, flags)  # (hidden: drawn when the tab is shown and read)
        for panel in self.dash.panels:
            table = getattr(panel, "table", None)
            if table is not None and panel is not self:
                table.refresh()  # the ⚑ markers follow the flags
        self.dash.refresh_titles()

    def title(self, stats: Stats | None) -> str:
        return f"Overview ⚑{len(self.flags)}" if self.flags else self.TITLE

    def focus_flags(self) -> None:
        if not self.view.focus_flags():
            self.app.notify("No current flags", timeout=2)

    # --- keys ---------------------------------------------------------------------------------
    @on(OverviewView.Selected)
    def _selected(self, msg: OverviewView.Selected) -> None:
        msg.stop()
        flag = self.view.query_one(FlagTable).flag(msg.pick.value) if msg.pick.kind == "flag" else None
        target = filter_for(msg.pick, flag)
        if target is None:
            self.app.notify("No filter shows the sessions behind this row", timeout=2)
            return
        self.dash.show_filtered(*target)

    def _selected_flag(self) -> Flag | None:
        flag = self.view.selected_flag()
        if flag is None:
            self.app.notify("Select a flag first (a jumps to the flags)", severity="warning", timeout=2)
        return flag

    def action_logout_flag(self) -> None:
        flag = self._selected_flag()
        action = logout_action(flag, every_session=False) if flag else None
        if flag is not None and action is None:
            self.app.notify("This flag names no session", severity="warning", timeout=2)
        elif action is not None:
            self.dash.confirm_flag_logout(action)

    def action_logout_flag_users(self) -> None:
        flag = self._selected_flag()
        action = logout_action(flag, every_session=True) if flag else None
        if flag is not None and action is None:
            self.app.notify("This flag names no user", severity="warning", timeout=2)
        elif action is not None:
            self.dash.confirm_flag_logout(action)
