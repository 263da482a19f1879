"""The one display path (core.display) and the total parsers (core.model)."""

from __future__ import annotations

import json
import math
import sys
import unicodedata

from hostile import DEEP_JSON, HOSTILE, MALFORMED_NUMBERS
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from core.display import UNSAFE, DisplayText, display, rich_text, to_json
from core.model import parse_cache, parse_event, parse_session, read_epoch
from tui.model import cache_row, event_text, fmt_clock, fmt_duration, summary_text

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_every_control_format_and_separator_character_is_escaped():
    """Compare the hard-coded table to this Python's Unicode database."""
    missing = [hex(cp) for cp in range(sys.maxunicode + 1)
               if unicodedata.category(chr(cp)) in UNSAFE_CATEGORIES and not UNSAFE.match(chr(cp))]
    assert missing == []


def test_the_issue_characters_are_shown_as_visible_escapes():
    for ch in "\x1b\x07\x00\x9b\u202e\u2066\u2067\u2068\u2069\u061c\u200b\u200c\u200d\u200e\u200f" \
              "\u2060\u2061\u2062\u2063\u2064\ufeff\u2028\u2029\U000e0041":
        shown = display(f"a{ch}b")
        assert ch not in shown
        assert shown.startswith("a\\") and shown.endswith("b")
    assert display("\x1b[2J") == "\\x1b[2J"
    assert display("\u202e") == "\\u202e"
    assert display("\U000e0041") == "\\U000e0041"


def test_ordinary_text_is_left_alone():
    for text in ("иван", "José", "日本語", "user@example.com", "emoji ❤️ ok", "[bold]x[/]"):
        assert display(text) == text


def test_display_is_idempotent_and_typed():
    once = display(HOSTILE["osc52"] + HOSTILE["bidi"])
    assert isinstance(once, DisplayText)
    assert display(once) == once


def test_limit_and_odd_inputs():
    assert display("x" * 300, limit=10) == "x" * 9 + "…"
    assert display(None) == ""
    assert display(b"ok\xff\x1b") == "ok\\xff\\x1b"
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert display(nested).startswith("<unprintable")
    assert display(10 ** 5000).startswith("<unprintable")


def test_rich_text_never_interprets_markup():
    text = rich_text(HOSTILE["click"])
    assert isinstance(text, Text)
    assert text.plain == HOSTILE["click"]
    assert text.spans == []
    assert rich_text("[/]").plain == "[/]"


def test_to_json_is_strict_and_escaped():
    line = to_json({"a": math.nan, "b": math.inf, "c": [-math.inf], "d": HOSTILE["bidi"] + "\x9b\U000e0041",
                    1: "key", "e": "иван"})
    assert "NaN" not in line and "Infinity" not in line
    assert not UNSAFE.search(line)
    data = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert data["a"] is None and data["b"] is None and data["c"] == [None]
    assert data["d"] == HOSTILE["bidi"] + "\x9b\U000e0041"
    assert data["1"] == "key" and data["e"] == "иван"


# --- parsers ----------------------------------------------------------------------------

def test_epochs_in_every_unit_are_recognised():
    assert read_epoch("1764500000") == (1764500000.0, "")
    assert read_epoch("1764500000000") == (1764500000.0, "")  # JavaScript's Date.now()
    assert read_epoch(1764500000000000) == (1764500000.0, "")
    assert read_epoch("1764500000000000000") == (1764500000.0, "")
    assert read_epoch("2025-11-30T10:00:00Z")[0] == 1764496800.0
    assert read_epoch(None) == (None, "")
    assert read_epoch("") == (None, "")


def test_malformed_times_are_invalid_not_errors():
    for raw in ("inf", "-inf", "1e400", "nan", "NaN", "-5", "abc", "1e300", "9" * 30, "2026-13-45",
                [], {}, True, 10 ** 400):
        value, why = read_epoch(raw)
        assert value is None and why, raw


def test_session_with_malformed_fields_is_listed_with_its_problems():
    fields = {"username": "u", "login_time": "1e308", "last_seen": "nan", "expires_at": "inf",
              "max_expires_at": "1e400", "logout_time": "1764500000000"}
    s = parse_session("sid1", fields)
    assert s is not None
    assert (s.login_time, s.last_seen, s.expires_at, s.max_expires_at) == (None, None, None, None)
    assert s.logout_time == 1764500000.0
    assert len(s.problems) == 4
    assert all("invalid" in p for p in s.problems)


def test_event_lines_are_total():
    assert parse_event(DEEP_JSON).kind == "text"
    deep = '{"kind": "login", "seq": 5, "x": ' + DEEP_JSON + "}"
    assert parse_event(deep).kind == "text"
    ev = parse_event('{"kind":"login","seq":3,"ts":1e300,"sid":{"a":[1]},"username":7}')
    assert ev.seq == 3 and ev.ts is None and ev.sid == "<dict>" and ev.username == "7"
    assert any("ts invalid" in p for p in ev.problems)
    ev = parse_event('{"kind":"login","seq":1.5,"ts":NaN}')
    assert ev.seq is None and ev.ts is None
    assert parse_event('{"kind":"login","seq":' + "9" * 5000 + "}").kind == "text"


def test_cache_json_with_nan_and_huge_numbers_renders():
    entry = parse_cache("sid", '{"username":"u","login_time":1e400,"last_seen":NaN,"x":' + DEEP_JSON[:400]
                        + DEEP_JSON[-400:] + "}", 5000)
    assert entry.summary is not None
    row = cache_row(entry.sid, entry.summary, entry.raw, entry.ttl)
    assert "invalid" in row[-1]
    assert parse_cache("sid", DEEP_JSON, -2).summary is None


def test_formatters_are_total():
    for bad in (math.nan, math.inf, -math.inf, 1e300, -1e300):
        assert fmt_clock(bad) == "invalid"
    assert fmt_duration(math.nan) == fmt_duration(math.inf) == "invalid"
    assert fmt_duration(1e300) == fmt_duration(1e12)


# --- properties -------------------------------------------------------------------------

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10)
field_text = st.one_of(st.text(), st.sampled_from(MALFORMED_NUMBERS + list(HOSTILE.values())),
                       st.floats().map(repr), st.integers().map(str))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["username", "app", "type", "ip", "user_agent", "login_time", "last_seen",
                                        "expires_at", "max_expires_at", "logout_time", "status", "end_reason",
                                        "ended_by", "email", "department", "x"]), field_text, min_size=1))
def test_any_session_hash_parses_and_renders_safely(fields):
    from tui.model import active_row, inactive_row, search_row

    s = parse_session("sid\x1b]0;x\x07", fields)
    assert s is not None
    for row in (active_row(s, 1.8e9), inactive_row(s, 1.8e9), search_row(s, 1.8e9)):
        for cell in row:
            assert not UNSAFE.search(cell)
    for value in (s.login_time, s.last_seen, s.expires_at, s.max_expires_at, s.logout_time):
        assert value is None or (math.isfinite(value) and 0 <= value < 253402214400)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "seq", "ts", "sid", "username", "app", "actor", "ip",
                                        "reason", "extra"]), anything))
def test_any_event_line_parses_and_renders_safely(data):
    from tui.cli import event_json, event_line

    try:
        line = json.dumps(data)
    except ValueError:
        return
    ev = parse_event(line)
    assert not UNSAFE.search(event_text(ev))
    assert not UNSAFE.search(event_line(ev))
    json.loads(event_json(ev), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), anything, max_size=6))
def test_any_cache_summary_renders_safely(data):
    text = json.dumps(data)
    entry = parse_cache("sid", text, 1000)
    assert not UNSAFE.search(summary_text(entry.summary or {}))
    for cell in cache_row(entry.sid, entry.summary, entry.raw, entry.ttl):
        assert not UNSAFE.search(cell)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary() | anything)
def test_display_never_lets_an_unsafe_character_through(value):
    assert not UNSAFE.search(display(value, 10_000))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["redis_version", "used_memory", "used_memory_human", "connected_clients",
                                        "instantaneous_ops_per_sec", "keyspace_hits", "uptime_in_seconds"]),
                       anything))
def test_any_info_reply_parses_and_renders_safely(info):
    from core.model import parse_info
    from tui.model import DashboardModel

    server = parse_info(info)
    model = DashboardModel(target="t")
    model.server = server
    model.poll_ok = True
    for text, _ in model.status_parts():
        assert not UNSAFE.search(text)
