"""Text charts for the Overview panel: count bars and per-minute charts with labelled axes.

No Textual here: each function returns a :class:`rich.text.Text` that any widget can show.
Labels that come from Redis (app names, addresses, usernames) go through
:func:`core.display.display`. Shapes are drawn with block characters and the styles name
only the 16 ANSI colours, so the charts read the same over SSH in 16 colours.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from core.display import display

BLOCKS = " ▁▂▃▄▅▆▇█"
"""Eighths of a cell, from empty to full."""


def bar(count: int, peak: int, width: int) -> str:
    """A horizontal bar ``count/peak`` of ``width`` cells (eighths at its end)."""
    if peak <= 0 or count <= 0 or width <= 0:
        return ""
    eighths = max(1, round(count / peak * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")


def bars(title: str, items: Sequence[tuple[str, int]], width: int, *, label_width: int = 14,
         style: str = "cyan", limit: int = 6) -> Text:
    """A titled block of labelled bars with their counts, the largest first."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(title, style="bold")
    shown = sorted(items, key=lambda kv: (-kv[1], kv[0]))[:limit]
    if not shown:
        text.append("\n  -", style="dim")
        return text
    peak = shown[0][1]
    count_width = len(str(peak))
    room = max(1, width - label_width - count_width - 3)
    for label, count in shown:
        name = str(display(label, label_width))
        text.append(f"\n{name:<{label_width}} ")
        text.append(f"{count:>{count_width}} ", style="bold")
        text.append(bar(count, peak, room), style=style)
    hidden = len(items) - len(shown)
    if hidden > 0:
        text.append(f"\n  … {hidden} more", style="dim")
    return text


def _nice_max(peak: int) -> int:
    """The y axis top: the peak rounded up to 1, 2 or 5 times a power of ten."""
    if peak <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= peak:
                return step * scale
        scale *= 10


def minute_chart(title: str, values: Sequence[int], *, first_minute: int, width: int, height: int = 2,
                 style: str = "green") -> Text:
    """Counts per minute (oldest first) as a column chart: a title line with the current
    minute's value and the peak, ``height`` rows of columns against a labelled y axis
    (0 to a round top), and an x axis labelled in minutes before now."""
    values = list(values)
    current = values[-1] if values else 0
    peak = max(values, default=0)
    top = _nice_max(peak)
    axis_w = len(str(top)) + 1
    cols = max(1, min(width - axis_w - 1, len(values)))
    shown = values[-cols:]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(title, style="bold")
    text.append(f"  now {current}/min  peak {peak}/min", style="")
    levels = height * 8
    heights = [round(v / top * levels) if v > 0 else 0 for v in shown]
    heights = [max(h, 1) if v > 0 else 0 for h, v in zip(heights, shown, strict=True)]
    for row in range(height, 0, -1):
        label = str(top) if row == height else ("0" if row == 1 else "")
        text.append(f"\n{label:>{axis_w - 1}} ┤", style="dim")
        base = (row - 1) * 8
        line = "".join(BLOCKS[min(8, max(0, h - base))] for h in heights)
        text.append(line.ljust(cols), style=style)
    # x axis: minutes before now, under the columns they label
    n = len(shown)
    start = " " * axis_w + "└"
    marks = [" "] * cols
    ticks = [(0, f"-{n - 1}m" if n > 1 else "now")] if n else []
    for back in (30, 15, 45):
        pos = n - 1 - back
        if 0 < pos < n - 1:
            ticks.append((pos, f"-{back}m"))
    ticks.append((max(0, n - 1), "now"))
    for pos, label in ticks:
        at = min(max(0, pos - len(label) // 2), cols - len(label))
        if at < 0 or any(c != " " for c in marks[max(0, at - 1): at + len(label) + 1]):
            continue
        marks[at: at + len(label)] = list(label)
    axis = start + "".join(marks)
    clock = time.strftime("%H:%M", time.localtime(first_minute * 60 + (len(values) - 1) * 60))
    if len(axis) + 2 + len(clock) <= width:
        axis += f"  {clock}"
    text.append("\n" + axis, style="dim")
    return text
