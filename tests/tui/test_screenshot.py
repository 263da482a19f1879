"""The README's screenshot is what ``python -m tools.screenshot`` makes from the current
code: the real dashboard, on the demo's (seeded) traffic."""

from __future__ import annotations

import difflib
import re

from tools import screenshot

README_IMAGE = "](examples/screenshot.svg)"


def _text_lines(svg: str) -> list[str]:
    """The SVG's text runs, for a readable difference when it is not the same."""
    return [re.sub(r"&#160;", " ", t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]


def test_committed_screenshot_is_what_the_script_makes() -> None:
    made = screenshot.make()
    committed = screenshot.OUT.read_text(encoding="utf-8")
    if made != committed:
        diff = "\n".join(difflib.unified_diff(_text_lines(committed), _text_lines(made), "committed", "made",
                                              lineterm="", n=0))
        raise AssertionError("examples/screenshot.svg is stale: run `python -m tools.screenshot`\n"
                             + (diff or "(same text, different styles)"))


def test_readme_embeds_the_screenshot_at_its_size() -> None:
    readme = (screenshot.OUT.parents[1] / "README.md").read_text(encoding="utf-8")
    width, height = screenshot.SIZE
    assert f"{width}x{height}{README_IMAGE}" in readme
