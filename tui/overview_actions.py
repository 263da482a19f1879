"""What the Overview panel's rows and flags lead to, without Textual: the filter that shows
the sessions behind a row, and what ``l`` / ``L`` on a flag would end."""

from __future__ import annotations

from dataclasses import dataclass

from core.display import display
from core.overview import Flag

from .widgets.overview import Pick


def filter_for(pick: Pick, flag: Flag | None = None) -> tuple[str, str] | None:
    """``(panel, filter text)`` in the dashboard's filter language (:mod:`tui.query`) that
    shows the sessions behind ``pick``; ``None`` if no filter does (a flag about all logins)."""
    if pick.kind == "app":
        return "active", f"app:{pick.value}"
    if pick.kind == "ip":
        return "active", f"ip:{pick.value}"
    if pick.kind == "user":
        return "active", f"user:{pick.value}"
    if pick.kind == "type":
        return "active", f"type:{pick.value}"
    if pick.kind == "flag" and flag is not None:
        if flag.rule == "spray":
            return "active", f"ip:{flag.subject}"
        if flag.rule in ("sharing", "comeback"):
            return "active", f"user:{flag.subject}"
        if len(set(flag.users)) == 1:
            return "active", f"user:{flag.users[0]}"
    return None


@dataclass(frozen=True, slots=True)
class FlagAction:
    """What a logout from a flag ends: ``sids`` (``l``) or every session of ``users`` (``L``)."""

    question: str
    sids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def rows(self, limit: int = 6) -> list[tuple[str, str, str]]:
        items = self.users or self.sids
        return [(str(display(x, 40)), "", "") for x in items[:limit]]

    @property
    def more(self) -> int:
        return max(0, len(self.users or self.sids) - 6)


def logout_action(flag: Flag, *, every_session: bool) -> FlagAction | None:
    """``l``: the sessions the flag names; ``L``: every session of the users it names."""
    rule = str(display(flag.rule, 20))
    if every_session:
        users = tuple(dict.fromkeys(flag.users))
        if not users:
            return None
        return FlagAction(f"Log out every session of the {len(users)} user(s) behind the {rule} flag?",
                          users=users)
    if not flag.sids:
        return None
    return FlagAction(f"Log out the {len(flag.sids)} session(s) behind the {rule} flag?",
                      sids=tuple(flag.sids))
