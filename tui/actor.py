"""Who is acting: recorded in the event log with every admin action."""

from __future__ import annotations

import getpass
import os


def default_actor(environ: dict[str, str] | None = None) -> str:
    """The OS user, plus the SSH client address when the admin came in over SSH
    (``root@ssh:203.0.113.9``), so the event log says who ended a session from where."""
    env = os.environ if environ is None else environ
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = env.get("USER") or env.get("LOGNAME") or f"uid{os.getuid()}"
    ssh = env.get("SSH_CONNECTION", "").split()
    return f"{user}@ssh:{ssh[0]}" if ssh else user
