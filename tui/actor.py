"""Who is acting: recorded in the event log with every admin action."""

from __future__ import annotations

import getpass
import os
import re

ACTOR_ENV = "SESSIONWATCH_ACTOR"
"""Set by ``sessionwatch ssh-server`` for each dashboard it starts: who holds the SSH key."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def default_actor(environ: dict[str, str] | None = None) -> str:
    """The OS user, plus the SSH client address when the admin came in over SSH
    (``root@ssh:203.0.113.9``), so the event log says who ended a session from where;
    or ``$SESSIONWATCH_ACTOR`` when the SSH endpoint names the key's holder."""
    env = os.environ if environ is None else environ
    given = env.get(ACTOR_ENV, "").strip()
    if given and len(given) <= 256 and not _CONTROL.search(given):
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = env.get("USER") or env.get("LOGNAME") or f"uid{os.getuid()}"
    ssh = env.get("SSH_CONNECTION", "").split()
    return f"{user}@ssh:{ssh[0]}" if ssh else user
