"""The one path from Redis-derived values to text a terminal may see.

Any app with write access to Redis shapes what the dashboard and the CLI print, so every
such value goes through :func:`display` (or :func:`rich_text`, or :func:`to_json` for
``--json``). Characters a terminal would act on or that hide or reorder text are shown
as visible escapes (``\\x1b``, ``\\u202e``): C0 and C1 controls (and so every ESC, CSI,
OSC, DCS sequence), DEL, line and paragraph separators, bidi controls, zero-width and
other invisible format characters, surrogates (undecodable bytes) and noncharacters.
Markup is never interpreted: :func:`rich_text` builds a :class:`rich.text.Text`, never a
markup string.

:class:`DisplayText` marks a string that went through :func:`display`; widgets that
show Redis data pass every cell through :func:`display`, which returns a
:class:`DisplayText` unchanged, so forgetting to clean a new field cannot leak it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rich.text import Text

# Unicode 14 categories Cc, Cf, Cs, Zl, Zp (tests/test_display.py checks this against
# unicodedata), plus invisible letters and fillers, and the noncharacters U+FFFE/U+FFFF.
_UNSAFE_RANGES = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x34F, 0x34F), (0x600, 0x605), (0x61C, 0x61C),
    (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F),
    (0x3164, 0x3164), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB),
    (0xFFFE, 0xFFFF), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE007F),
)
UNSAFE = re.compile("[" + "".join(
    re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in _UNSAFE_RANGES
) + "]")
"""One character a terminal must not receive raw."""

ELLIPSIS = "…"


class DisplayText(str):
    """A string made safe for the terminal by :func:`display`."""

    __slots__ = ()


def escape(ch: str) -> str:
    """The visible form of one unsafe character: ``\\x1b``, ``\\u202e``, ``\\U000e0041``."""
    cp = ord(ch)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _to_str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except (RecursionError, ValueError):  # a huge int or a structure nested too deep
        return f"<unprintable {type(value).__name__}>"
    except Exception as exc:  # str() of a foreign object failed: show that, never raise
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def display(value: object, limit: int = 200) -> DisplayText:
    """``value`` as text safe for a terminal, at most ``limit`` characters (``…`` ends a
    cut). Already-safe :class:`DisplayText` is returned as it is (cut to ``limit``)."""
    if isinstance(value, DisplayText):
        text = str(value)
    else:
        text = _to_str(value)
        if len(text) > limit * 16:  # don't escape megabytes to show a few characters
            text = text[: limit * 16]
        text = UNSAFE.sub(lambda m: escape(m.group()), text)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + ELLIPSIS
    return DisplayText(text)


def rich_text(value: object, limit: int = 200, style: str = "", **kw: Any) -> Text:
    """A :class:`rich.text.Text` of :func:`display` (markup in ``value`` stays literal)."""
    return Text(display(value, limit), style=style, **kw)


def join(*parts: object, sep: str = " ", limit: int = 400) -> DisplayText:
    """Parts displayed one by one and joined (empty parts are left out)."""
    shown = [display(p, limit) for p in parts]
    return display(DisplayText(sep.join(p for p in shown if p)), limit)


# --- JSON ------------------------------------------------------------------------------

def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot hold replaced: NaN and infinities become
    ``None``, non-string keys become strings, other objects their text; structures
    nested deeper than 100 become the string ``"<nested too deep>"``."""
    if depth > 100:
        return "<nested too deep>"
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _to_str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    return _to_str(value)


def _json_escape(m: re.Match[str]) -> str:
    cp = ord(m.group())
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def to_json(obj: Any, *, sort_keys: bool = True) -> str:
    """One line of strict JSON (RFC 8259: no NaN or Infinity) in which every character
    :data:`UNSAFE` matches is a ``\\u`` escape, so printing it is as safe as the rest."""
    line = json.dumps(json_safe(obj), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False)
    return UNSAFE.sub(_json_escape, line)
