"""Every key the dashboard answers to, generated from its bindings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False, id="help.close2"),
        Binding("q", "close", "Close", show=False, id="help.close3"),
    ]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        table = Table(title="sessionwatch keys", show_header=True, expand=True, box=None)
        table.add_column("Key", no_wrap=True)
        table.add_column("Action")
        for key, what in self.keys:
            table.add_row(Text(key, style="bold"), Text(what))
        with VerticalScroll(id="help-box"):
            yield Static(table)
            yield Static(Text("esc closes · ctrl+p opens the command palette"), id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
