"""Authorized keys with a role per key, and who a key names.

The file is OpenSSH's ``authorized_keys`` format. A key's role is its
``environment="SESSIONWATCH_ROLE=admin"`` option (``viewer`` or ``admin``; none means
``viewer``); its comment names the person. asyncssh parses each line and applies the
options it knows (``from=``, ``expiry-time=`` ...), so OpenSSH restrictions keep working.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.display import display

ROLE_VARIABLE = "SESSIONWATCH_ROLE"
ROLES = ("viewer", "admin")
DEFAULT_ROLE = "viewer"
_ROLE_OPTION = re.compile(r'environment="' + ROLE_VARIABLE + r'=([^"]*)"')
_TERM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

log = logging.getLogger("sessionwatch.ssh")


class KeyFileError(ValueError):
    """The authorized-keys file cannot be used as it is (the message names the line)."""


def printable(text: object, limit: int = 64, default: str = "?") -> str:
    """Untrusted text (a key comment, an SSH user name, a client version) made safe to
    log, show and store, through the project's one display path: whitespace runs become
    one space, controls, bidi and invisible characters visible escapes (``\\x1b``), at
    most ``limit`` characters."""
    return str(display(" ".join(str(text).split()), limit)) or default


def terminal_type(term: str | None) -> str:
    """The client's TERM if it is a plausible terminal name, else ``xterm-256color``."""
    return term if term and _TERM.match(term) else "xterm-256color"


def short_fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:`` and the first 12 characters of OpenSSH's SHA256 fingerprint."""
    fp = key.get_fingerprint("sha256")
    algo, _, digest = fp.partition(":")
    return f"{algo}:{digest[:12]}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who authenticated: the key's comment, its fingerprint and its role."""

    name: str
    fingerprint: str
    role: str

    @property
    def actor(self) -> str:
        """``<key comment>@ssh-key:<short fingerprint>``, as written to the event log."""
        return f"{self.name}@ssh-key:{self.fingerprint}"

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    line: int
    key: asyncssh.SSHKey
    identity: Identity
    rules: asyncssh.SSHAuthorizedKeys
    """This line alone, parsed by asyncssh: it applies ``from=`` and similar options."""


def _split_key(line: str) -> tuple[str, asyncssh.SSHKey]:
    """The options text and the public key (with its comment) of one line."""
    for match in re.finditer(r"(?:^|(?<=\s))\S", line):
        try:
            return line[: match.start()].strip(), asyncssh.import_public_key(line[match.start():])
        except (asyncssh.KeyImportError, ValueError):
            continue
    raise KeyFileError("no public key found")


def parse_line(text: str, number: int, *, force_viewer: bool = False) -> KeyEntry | None:
    line = text.strip()
    if not line or line.startswith("#"):
        return None
    try:
        options, key = _split_key(line)
        rules = asyncssh.import_authorized_keys(line)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyFileError(f"line {number}: {printable(exc, 120)}") from None
    roles = _ROLE_OPTION.findall(options)
    role = roles[-1] if roles else DEFAULT_ROLE
    if role not in ROLES:
        raise KeyFileError(f"line {number}: {ROLE_VARIABLE}={printable(role)!r} is not one of "
                           f"{', '.join(ROLES)}")
    if force_viewer:
        role = "viewer"
    name = printable(key.get_comment() or "", 64, default="unnamed")
    return KeyEntry(number, key, Identity(name, short_fingerprint(key), role), rules)


def parse(text: str, *, force_viewer: bool = False) -> list[KeyEntry]:
    """Every key of an authorized-keys text; raises :class:`KeyFileError` on a bad line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = parse_line(line, number, force_viewer=force_viewer)
        if entry is not None:
            entries.append(entry)
    return entries


class AuthorizedKeys:
    """The authorized-keys file, read again when it changes (so keys can be added or
    revoked without a restart; a broken edit keeps the previous keys and is logged)."""

    def __init__(self, path: str | os.PathLike[str], *, force_viewer: bool = False) -> None:
        self.path = Path(path)
        self.force_viewer = force_viewer
        self._stamp: tuple[int, int, int] | None = None
        self.entries: list[KeyEntry] = []
        self.reload(strict=True)

    def _read(self) -> tuple[tuple[int, int, int], str]:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino), self.path.read_text(encoding="utf-8")

    def reload(self, *, strict: bool = False) -> None:
        try:
            stamp = self.path.stat()
            if self._stamp == (stamp.st_mtime_ns, stamp.st_size, stamp.st_ino):
                return
            stamp_now, text = self._read()
            self.entries = parse(text, force_viewer=self.force_viewer)
            self._stamp = stamp_now
        except (OSError, UnicodeDecodeError, KeyFileError) as exc:
            message = f"authorized keys {self.path}: {getattr(exc, 'strerror', None) or exc}"
            if strict:
                raise KeyFileError(message) from None
            log.warning("%s; keeping the %d key(s) read before", printable(message, 300), len(self.entries))

    def match(self, key: asyncssh.SSHKey, address: str) -> Identity | None:
        """The identity ``key`` authenticates from ``address``, or ``None``."""
        self.reload()
        blob = key.public_data
        for entry in self.entries:
            if entry.key.public_data != blob:
                continue
            if entry.rules.validate(key, address, address) is not None:
                return entry.identity
        return None
