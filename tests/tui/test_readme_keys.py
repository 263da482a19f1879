"""The README's key table says what the bindings are: every key bound in the dashboard
is in the table, and every key in the table is bound somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from tui.app import SessionWatchApp
from tui.panels import PANELS
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.widgets.events import EventLog
from tui.widgets.virtual_table import VirtualTable

README = Path(__file__).resolve().parents[2] / "README.md"
NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "up": "↑", "down": "↓", "pageup": "PgUp",
         "pagedown": "PgDn", "home": "Home", "end": "End"}
PALETTE = {"ctrl+p"}  # Textual's command palette, not one of our bindings


def readme_keys() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The dashboard"):text.index("## Watching an existing Redis")]
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return keys


def bound_keys() -> set[str]:
    out: set[str] = set()
    classes = [SessionWatchApp, *PANELS, VirtualTable, EventLog, DetailScreen, ConfirmScreen]
    for cls in classes:
        bindings = [*cls.BINDINGS, *getattr(cls, "WRITE_BINDINGS", [])]
        for b in bindings:
            for key in b.key.split(","):
                out.add(NAMES.get(key.strip(), key.strip()))
    out.add("l")  # the detail screen registers it only when not read-only
    return out


def test_readme_key_table_matches_the_bindings() -> None:
    documented, bound = readme_keys(), bound_keys()
    assert bound - documented == set(), "bound but not in the README's key table"
    assert documented - bound - PALETTE == set(), "in the README's key table but bound nowhere"
