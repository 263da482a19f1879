"""The Overview panel and its charts: numbers drawn right, axes labelled, every row leads to
its sessions, the cursor holds still while figures change, and Redis text stays inert."""

from __future__ import annotations

from textual.app import App, ComposeResult
from tui_helpers import screen_text

from core.overview import Flag
from tui.charts import bar, bars, minute_chart
from tui.widgets.overview import OverviewView, Pick, RankTable


def test_minute_chart_labels_axes_current_and_peak() -> None:
    values = [0] * 50 + [3, 7, 12, 40, 5, 0, 1, 2, 9, 30]
    text = minute_chart("Logins per minute", values, first_minute=30_000_000, width=70, height=2).plain
    lines = text.splitlines()
    assert lines[0] == "Logins per minute  now 30/min  peak 40/min"
    assert lines[1].startswith("50 ┤") and lines[2].startswith(" 0 ┤")  # y axis: 0 to a round top
    assert "-59m" in lines[3] and "-30m" in lines[3] and "now" in lines[3]  # x axis: minutes before now
    assert len(lines[1]) - 4 == 60  # one column per minute
    assert "█" in lines[2] and "▅" in lines[1]  # 40 of 50: the lower row full, the upper 5/8


def test_bars_scale_to_the_largest_and_escape_labels() -> None:
    assert bar(10, 10, 8) == "█" * 8 and bar(5, 10, 8) == "█" * 4 and bar(0, 10, 8) == ""
    text = bars("Active by app", [("crm", 10), ("\x1b[2Jwipe", 5)], 40).plain
    assert "\x1b" not in text and "\\x1b[2Jwipe" in text
    assert "crm" in text.splitlines()[1]


class Host(App[None]):
    def __init__(self, overview, flags=None) -> None:
        super().__init__()
        self.ov, self.flags = overview, flags
        self.picked: list[Pick] = []

    def compose(self) -> ComposeResult:
        yield OverviewView()

    def on_mount(self) -> None:
        self.query_one(OverviewView).show(self.ov, self.flags)

    def on_overview_view_selected(self, event: OverviewView.Selected) -> None:
        self.picked.append(event.pick)


def _flag(now: float) -> Flag:
    return Flag("spray:203.0.113.250", "spray", "203.0.113.250", {"users": 12, "per_second": 2.0}, now - 75,
                "12 users from 203.0.113.250 in 6 s (lately 2.00 logins/s); spraying likely",
                ("s1", "s2"), ("u1", "u2"))


async def test_enter_on_a_bar_or_row_picks_what_it_stands_for(seeded) -> None:
    store, _ = seeded
    app = Host(store.overview())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.query_one("#ov-app", RankTable).focus()
        await pilot.press("enter")
        app.query_one("#ov-user-sessions", RankTable).focus()
        await pilot.press("enter")
        app.query_one("#ov-ip-users", RankTable).focus()
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.picked[0] == Pick("app", "crm")  # two crm sessions, the most
    assert app.picked[1] == Pick("user", "alice")
    assert app.picked[2].kind == "ip"


async def test_the_cursor_stays_on_its_line_while_figures_change(seeded, clock) -> None:
    store, _ = seeded
    app = Host(store.overview())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        table = app.query_one("#ov-ip-sessions", RankTable)
        table.focus()
        await pilot.press("down", "down")
        for i in range(3):
            store.login(f"new{i}", app="erp", type="web", ip="192.0.2.200")
        app.query_one(OverviewView).show(store.overview())
        await pilot.pause()
        assert table.cursor_row == 2
        assert table.picks[0] == Pick("ip", "192.0.2.200")


async def test_flags_are_listed_with_rule_numbers_and_age(seeded, clock) -> None:
    store, _ = seeded
    ov = store.overview()
    app = Host(ov, [_flag(ov.now)])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.query_one(OverviewView).focus_flags()
        await pilot.press("enter")
        text = screen_text(app)
    assert app.picked == [Pick("flag", "spray:203.0.113.250")]
    assert "1m15s ago" in text and "users 12, per_second 2" in text and "12 users from 203.0.113.250" in text
    assert "1 flag" in text


def test_every_row_kind_leads_to_a_filter_and_flags_to_their_sessions() -> None:
    from tui.overview_actions import filter_for, logout_action

    assert filter_for(Pick("app", "crm")) == ("active", "app:crm")
    assert filter_for(Pick("ip", "192.0.2.1")) == ("active", "ip:192.0.2.1")
    assert filter_for(Pick("user", "alice")) == ("active", "user:alice")
    assert filter_for(Pick("type", "web")) == ("active", "type:web")
    spray = _flag(1.8e9)
    assert filter_for(Pick("flag", spray.id), spray) == ("active", "ip:203.0.113.250")
    one = logout_action(spray, every_session=False)
    every = logout_action(spray, every_session=True)
    assert one is not None and one.sids == ("s1", "s2") and "2 session(s)" in one.question
    assert every is not None and every.users == ("u1", "u2") and "every session of the 2 user(s)" in every.question
    burst = Flag("burst:logins", "burst", "all logins", {}, 1.0)
    assert logout_action(burst, every_session=False) is None and filter_for(Pick("flag", burst.id), burst) is None


def test_charts_use_only_the_16_ansi_colours() -> None:
    """Readable in 16 colours: every colour the charts name is one of the ANSI sixteen."""
    from rich.color import ColorType
    from rich.style import Style

    text = minute_chart("Logins", [1, 5, 9], first_minute=30_000_000, width=40, height=2)
    text.append_text(bars("Active by app", [("crm", 3), ("erp", 1)], 40))
    styles = [Style.parse(str(span.style)) for span in text.spans if span.style]
    colours = [s.color for s in styles if s.color is not None]
    assert colours and all(c.type in (ColorType.STANDARD, ColorType.DEFAULT) for c in colours)
