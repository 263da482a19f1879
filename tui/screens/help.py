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
from textual.widgets import Footer, Static


class HelpScreen(ModalScreen[None]):
    """A dialog over the dashboard with its own footer: the keys shown at the bottom are
    the ones that work here (scroll, close), not those of the panel underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False, id="help.close2"),
        Binding("q", "close", "Close", show=False, id="help.close3"),
        Binding("down,j", "scroll(1)", "Scroll", key_display="↓↑", id="help.down"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="help.up"),
        Binding("pagedown", "page(1)", "Page", key_display="PgDn PgUp", id="help.pagedown"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="help.pageup"),
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
        yield Footer(compact=True, show_command_palette=False)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-box", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        box = self.query_one("#help-box", VerticalScroll)
        box.scroll_relative(y=direction * max(1, box.scrollable_content_region.height - 1), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
