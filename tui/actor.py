"""Who is acting: recorded in the event log with every admin action."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from collections.abc import Callable

ACTOR_ENV = "SESSIONWATCH_ACTOR"
"""Set by ``sessionwatch ssh-server`` for each dashboard it starts: who holds the SSH key."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _tmux(args: list[str]) -> str | None:
    """Output of a tmux command for the current client, or ``None`` (no tmux, no answer)."""
    try:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ssh_origin(env: dict[str, str] | os._Environ[str],
               tmux: Callable[[list[str]], str | None] = _tmux) -> str | None:
    """The SSH client address of whoever is at the keyboard. Inside tmux the shell's
    ``SSH_CONNECTION`` is the one of the client that started the server, possibly long
    gone: tmux's session environment (updated on every attach) names the client now
    attached."""
    value = env.get("SSH_CONNECTION", "")
    if env.get("TMUX"):
        line = tmux(["show-environment", "SSH_CONNECTION"])
        if line is not None:
            # "SSH_CONNECTION=<ip> <port> <ip> <port>", or "-SSH_CONNECTION" (attached locally)
            value = line.partition("=")[2] if line.startswith("SSH_CONNECTION=") else ""
    parts = value.split()
    return parts[0] if parts else None


def default_actor(environ: dict[str, str] | None = None,
                  tmux: Callable[[list[str]], str | None] = _tmux) -> str:
    """The person acting, plus the SSH client address when they came in over SSH
    (``alice@ssh:203.0.113.9``), so the event log says who ended a session from where:
    under sudo the invoking user (``SUDO_USER``), not root; or ``$SESSIONWATCH_ACTOR``
    when the SSH endpoint names the key's holder."""
    env = os.environ if environ is None else environ
    given = env.get(ACTOR_ENV, "").strip()
    if given and len(given) <= 256 and not _CONTROL.search(given):
        return given
    sudo = env.get("SUDO_USER", "").strip()
    if sudo and len(sudo) <= 64 and not _CONTROL.search(sudo):
        user = sudo
    else:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = env.get("USER") or env.get("LOGNAME") or f"uid{os.getuid()}"
    origin = ssh_origin(env, tmux)
    return f"{user}@ssh:{origin}" if origin else user
