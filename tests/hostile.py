"""Corpora shared by the terminal-safety and malformed-data tests.

``HOSTILE`` are strings an attacker with write access to Redis plants in any field, key
name or event attribute; ``FORBIDDEN`` are the byte sequences that must then never reach
the terminal. ``MALFORMED`` are values that once crashed a reader.
"""

from __future__ import annotations

HOSTILE = {
    "osc52": "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
    "clear": "\x1b[2J\x1b[HPWN",
    "title": "\x1b]0;PWNED-TITLE\x07",
    "dcs": "\x1bP+q544e\x1b\\",
    "csi8bit": "\x9b31mC1",
    "click": "[@click=app.quit]CLICKME[/]",
    "close": "[/]",
    "bidi": "adm\u202eni\u2066x\u2069\u061c",
    "zero": "z\u200bw\u2060j\ufeffx\u200d",
    "nul": "nul\x00byte\r\n",
    "long": "L" * 5000,
    "badutf8": "bad\udcff\udcfe",
}

FORBIDDEN = [
    b"\x1b]52", b"\x1b]0;PWNED", b"\x1b[HPWN", b"\x1bP+q", b"\xc2\x9b",
    "\u202e".encode(), "\u2066".encode(), "\u2069".encode(), "\u061c".encode(),
    "\u200b".encode(), "\u2060".encode(), "\ufeff".encode(), b"nul\x00", b"\x00byte",
]
"""Bytes that only the hostile strings could have produced (Textual never writes them)."""


def forbidden_in(data: bytes) -> list[bytes]:
    return [seq for seq in FORBIDDEN if seq in data]


MALFORMED_NUMBERS = ["inf", "-inf", "1e400", "nan", "NaN", "1e308", "-5", "1764500000000",
                     "1764500000000000", "1764500000000000000", "abc", "", " ", "0x10", "1e-400",
                     "99999999999999999999999999999", "2026-13-45T99:00:00"]

DEEP_JSON = "[" * 1000 + "]" * 1000
