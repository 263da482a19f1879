"""In 16 colours only alarms are red: the dashboard drawn as a 16-colour terminal shows
it (Rich maps each colour to the nearest of the 16), with our theme and Textual's ANSI
theme, on every panel and the help screen; a lost connection is still red."""

from __future__ import annotations

import pytest
from rich.color import ColorSystem
from tui_helpers import screen_text, wait_for

from tui.app import SessionWatchApp, build_app

RED = {1, 9}


def red_runs(app: SessionWatchApp) -> list[str]:
    """The text a 16-colour terminal shows red (foreground or background): every colour
    of the screen's segments mapped to the nearest of the 16, as Rich writes them there."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    out: list[str] = []
    for line in update.strips:  # type: ignore[union-attr]
        for strip in line:
            for seg in strip:
                style = seg.style
                if style is None or not seg.text.strip():
                    continue
                colours = [c.downgrade(ColorSystem.STANDARD) for c in (style.color, style.bgcolor) if c]
                if any(c.number in RED for c in colours):
                    out.append(seg.text.strip())
    return out


@pytest.mark.parametrize("theme", [None, "ansi-dark"], ids=["sessionwatch", "ansi-dark"])
async def test_sixteen_colours_draw_only_alarms_red(seeded, theme) -> None:
    store, _ = seeded
    app = build_app(store, refresh_interval=3600, target_label="127.0.0.1:21084/0", feed=False, sweep=False,
                    rules=False, actor="admin")
    async with app.run_test(size=(120, 40)) as pilot:
        if theme:
            app.theme = theme
        await wait_for(pilot, lambda: "active 5" in screen_text(app) and "rows 1–5 of 5" in screen_text(app))
        assert red_runs(app) == [], "plain counts, keys or warnings drawn in alarm red"
        for key, shown in (("2", "Inactive 0"), ("3", "Events"), ("4", "rows 1–5"), ("5", "Search every"),
                           ("6", "0 flags")):
            await pilot.press(key)
            await wait_for(pilot, lambda shown=shown: shown in screen_text(app))
            assert red_runs(app) == [], f"panel {key}"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: "sessionwatch keys" in screen_text(app))
        assert red_runs(app) == [], "help screen"
        await pilot.press("escape")
        app.model.poll_failed("connection refused")  # a real alarm: still red
        app._show_status()
        await wait_for(pilot, lambda: "reconnecting" in screen_text(app))
        runs = red_runs(app)
        assert any("reconnecting" in run for run in runs)
