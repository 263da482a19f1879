"""Confirmation before ending sessions. Cancel has the focus, so a stray Enter is harmless."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ..model import clean


class ConfirmScreen(ModalScreen[bool]):
    """Asks ``question`` about the sessions described by ``rows`` ((user, app, ip) each,
    optionally followed by the short session id and the login time).
    ``y`` confirms; ``n``, ``escape`` and Enter on the focused Cancel button cancel."""

    AUTO_FOCUS = "#cancel"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Yes, log out", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, question: str, rows: Sequence[tuple[str, ...]], *, more: int = 0) -> None:
        super().__init__()
        self.question = question
        self.rows = list(rows)
        self.more = more

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(Text(clean(self.question, 200)), id="confirm-question")
            lines = Text()
            for i, (user, app, ip, *rest) in enumerate(self.rows):
                if i:
                    lines.append("\n")
                if rest:
                    lines.append(clean(rest[0], 12) + "  ", style="bold")
                lines.append("user ", style="dim")
                lines.append(clean(user, 60))
                lines.append("  app ", style="dim")
                lines.append(clean(app, 40))
                lines.append("  IP ", style="dim")
                lines.append(clean(ip, 45) or "-")
                if len(rest) > 1:
                    lines.append("  login ", style="dim")
                    lines.append(clean(rest[1], 20))
            if self.more:
                lines.append(f"\n… and {self.more} more")
            yield Static(lines, id="confirm-details")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary")
                yield Button("Log out (y)", id="confirm", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
