"""Loads the Lua scripts under ``core/lua``: each write script is the shared prelude
(``common.lua``) plus its body; ``validate.lua``, the session-data scripts (anonymous
sessions, web-framework data) and the dashboard filter's read-only ``scan_match`` stand
alone to stay lean."""

from __future__ import annotations

from functools import cache
from importlib import resources

WRITE_SCRIPTS = ("login", "logout", "logout_user", "update_profile", "sweep", "adopt", "audit", "adopt_batch",
                 "flag")
STANDALONE_SCRIPTS = ("validate", "anon_read", "anon_save", "anon_end", "session_data", "scan_match")
REPLICATED_SCRIPTS = frozenset((*WRITE_SCRIPTS, "session_data"))
"""Scripts followed by ``WAIT`` when ``Policy.replica_acks`` asks: every write to a user
session, its web-framework data included. Anonymous sessions' writes are left out (data
kept before login is cheap to lose, and pays no replication round trip)."""


def _read(name: str) -> str:
    return resources.files("core").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@cache
def script_source(name: str) -> str:
    if name in WRITE_SCRIPTS:
        return _read("common") + "\n" + _read(name)
    if name in STANDALONE_SCRIPTS:
        return _read(name)
    raise KeyError(name)


def all_scripts() -> dict[str, str]:
    return {name: script_source(name) for name in WRITE_SCRIPTS + STANDALONE_SCRIPTS}
