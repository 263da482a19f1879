"""Rows that arrive before the table is mounted still size its columns (under load the
first poll can beat on_mount; the columns then stayed as narrow as their headers)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from core.display import display
from tui.widgets.table import SessionTable

COLUMNS = [("user", "User"), ("app", "App"), ("sid", "Session")]


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("host")


async def test_rows_synced_before_mount_size_the_columns() -> None:
    app = Host()
    async with app.run_test(size=(100, 20)) as pilot:
        table = SessionTable(COLUMNS)
        table.sync([("k1", [display("a-rather-long-user-name"), display("billing-system"),
                            display("0123456789abcdef")])])
        await app.mount(table)
        await pilot.pause()
        widths = {str(col.key.value): col.get_render_width(table) for col in table.columns.values()}
        assert widths["user"] >= len("a-rather-long-user-name"), widths
        assert widths["app"] >= len("billing-system"), widths
        assert table.row_count == 1


async def test_a_frame_drawn_before_the_columns_are_measured_is_redrawn() -> None:
    """Under load the table can be drawn between adding rows and measuring them (when
    idle); DataTable's render caches ignore column widths, so that narrow frame stayed."""
    app = Host()
    async with app.run_test(size=(100, 20)) as pilot:
        table = SessionTable(COLUMNS)
        table.styles.height = 10  # a fixed size, as in the dashboard: no resize redraws it
        table.styles.width = 100
        await app.mount(table)
        await pilot.pause()
        table.sync([("k1", [display("a-rather-long-user-name"), display("billing-system"),
                            display("0123456789abcdef")])])
        early = table.render_line(1).text  # drawn before the idle measuring
        assert "a-rather-long-user-name" not in early  # the race this test is about happened
        await pilot.pause()
        assert "a-rather-long-user-name" in table.render_line(1).text
