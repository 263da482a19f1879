"""One line of text whose size does not depend on what it says."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Line(Static):
    """A status line: one row high, as wide as its container. Saying something new
    repaints the line alone (no layout pass of the whole screen, which a plain ``Static``
    asks for on every update); saying the same again does nothing. Under a live feed these
    lines change several times a second."""

    DEFAULT_CSS = """
    Line {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self._said: Text | str | None = None

    def say(self, text: Text | str) -> None:
        if text == self._said:
            return
        self._said = text
        self.update(text, layout=False)
