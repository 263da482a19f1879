"""The filter language, without Textual."""

from __future__ import annotations

from tui.query import parse

ALICE = {"username": "Alice.Martin", "app": "shop-eu", "ip": "10.2.0.7", "email": "alice@example.org",
         "type": "web", "status": "active"}
BOB = {"username": "bob", "app": "crm", "ip": "192.0.2.1", "email": "", "type": "api", "status": "inactive",
       "end_reason": "expired"}


def test_bare_terms_are_case_insensitive_substrings_of_any_text_field() -> None:
    for text in ("martin", "SHOP", "alice", "10.2.", "example.org", "beef"):
        assert parse(text).matches("00beef", ALICE), text
    assert not parse("nobody").matches("00beef", ALICE)


def test_fielded_terms_combine_and_narrow() -> None:
    assert parse("app:shop ip:10.2. alice").matches("s1", ALICE)
    assert not parse("app:crm alice").matches("s1", ALICE)
    assert not parse("user:shop").matches("s1", ALICE)  # shop is the app, not the user
    assert parse("status:expired type:api").matches("s2", BOB)
    assert parse("status:inactive").matches("s2", BOB)
    assert not parse("type:ap").matches("s2", BOB)  # type and status compare whole values


def test_empty_field_values_are_ignored_and_index_prefixes_come_from_the_first_term() -> None:
    q = parse("app: bob")
    assert [t.field for t in q.terms] == [None]
    assert q.index_prefixes() == [("user", "bob"), ("app", "bob"), ("ip", "bob"), ("sid", "bob")]
    assert parse("type:web ip:10.2").index_prefixes() == [("ip", "10.2")]
    assert not parse("   ")
