"""The SSH endpoint's pure parts: authorized keys and roles, untrusted text, the
failed-authentication limiter, the listen address."""

from __future__ import annotations

import os
import time
from pathlib import Path

import asyncssh
import pytest

from tui.cli import CliError, main, parse_args
from tui.sshd.guard import FailureLimiter
from tui.sshd.keys import AuthorizedKeys, KeyFileError, parse, printable, short_fingerprint, terminal_type


@pytest.fixture(scope="module")
def pubs() -> list[asyncssh.SSHKey]:
    return [asyncssh.generate_private_key("ssh-ed25519").convert_to_public() for _ in range(3)]


def line(key: asyncssh.SSHKey, comment: str, options: str = "") -> str:
    data = key.export_public_key("openssh").decode().strip().split()
    return " ".join(p for p in (options, data[0], data[1], comment) if p)


def test_roles_come_from_the_environment_option(pubs: list[asyncssh.SSHKey]) -> None:
    a, v, n = pubs
    text = "\n".join([
        "# comments and blank lines are skipped", "",
        line(a, "alice@example", 'environment="SESSIONWATCH_ROLE=admin"'),
        line(v, "bob", 'no-agent-forwarding,environment="SESSIONWATCH_ROLE=viewer"'),
        line(n, "nobody in particular"),
    ])
    entries = parse(text)
    assert [(e.line, e.identity.name, e.identity.role) for e in entries] == [
        (3, "alice@example", "admin"), (4, "bob", "viewer"), (5, "nobody in particular", "viewer")]
    assert entries[0].identity.actor == f"alice@example@ssh-key:{short_fingerprint(a)}"
    assert short_fingerprint(a).startswith("SHA256:") and len(short_fingerprint(a)) == 19
    assert a.get_fingerprint("sha256").startswith(short_fingerprint(a))
    assert [e.identity.role for e in parse(text, force_viewer=True)] == ["viewer"] * 3


@pytest.mark.parametrize(("text", "message"), [
    ("environment=\"SESSIONWATCH_ROLE=root\" {key} x", "line 1: SESSIONWATCH_ROLE='root' is not one of"),
    ("ssh-ed25519 not-base64 x", "line 1:"),
    ("just words", "line 1:"),
])
def test_a_bad_line_is_refused_by_number(pubs: list[asyncssh.SSHKey], text: str, message: str) -> None:
    key = line(pubs[0], "").split(" ", 1)[0] + " " + line(pubs[0], "").split()[1]
    with pytest.raises(KeyFileError, match=message):
        parse(text.format(key=key))


def test_comments_and_client_strings_are_untrusted_text() -> None:
    assert printable("eve\x1b[31m\x07 red") == "eve\\x1b[31m\\x07 red"
    assert printable("evil\u202eevil\u200b") == "evil\\u202eevil\\u200b"  # bidi override, zero-width space
    assert printable("a\tb\n\nc") == "a b c"
    assert printable("x" * 100, 10) == "x" * 9 + "…"
    assert printable("", default="unnamed") == "unnamed"
    assert terminal_type("xterm-256color") == "xterm-256color"
    assert terminal_type("screen.xterm-256color") == "screen.xterm-256color"
    for bad in ("", None, "xterm\x1b]0;owned\x07", "../../etc/passwd", "a" * 100, "x y"):
        assert terminal_type(bad) == "xterm-256color"


def test_match_follows_from_restrictions_and_reloads_on_change(pubs: list[asyncssh.SSHKey],
                                                               tmp_path: Path) -> None:
    a, v, n = pubs
    path = tmp_path / "authorized_keys"
    path.write_text(line(a, "alice", 'from="10.0.0.0/8",environment="SESSIONWATCH_ROLE=admin"') + "\n"
                    + line(v, "bob\x1b[2J") + "\n")
    keys = AuthorizedKeys(path)
    assert keys.match(a, "10.1.2.3").role == "admin"
    assert keys.match(a, "192.0.2.1") is None  # from= is honoured
    assert keys.match(v, "192.0.2.1").name == "bob\\x1b[2J"
    assert keys.match(n, "10.1.2.3") is None
    path.write_text(line(n, "newcomer") + "\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert keys.match(n, "10.1.2.3").name == "newcomer" and keys.match(v, "192.0.2.1") is None
    path.write_text("garbage line\n")  # a broken edit keeps the keys read before
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert keys.match(n, "10.1.2.3").name == "newcomer"
    with pytest.raises(KeyFileError):
        AuthorizedKeys(path)  # ... but refuses to start with it


def test_failure_limiter_counts_per_address_in_a_window() -> None:
    now = [1000.0]
    limiter = FailureLimiter(3, 60, max_addresses=2, clock=lambda: now[0])
    assert not limiter.record("198.51.100.7") and not limiter.record("198.51.100.7")
    assert limiter.blocked_for("198.51.100.7") == 0
    now[0] += 10
    assert limiter.record("198.51.100.7")
    assert limiter.blocked_for("198.51.100.7") == pytest.approx(50)  # until the first failure ages out
    assert limiter.blocked_for("203.0.113.9") == 0  # other addresses are not affected
    now[0] += 50.5
    assert limiter.blocked_for("198.51.100.7") == 0
    limiter.record("203.0.113.1")
    limiter.record("203.0.113.2")
    assert len(limiter._failures) == 2  # bounded memory


def test_ssh_server_options() -> None:
    args = parse_args(["ssh-server", "--listen", "[::1]:2200", "--authorized-keys", "k"])
    assert (args.listen, args.idle_timeout, args.max_connections, args.max_auth_failures) == (
        ("::1", 2200), 1800.0, 16, 5)
    for bad in ("2222", "host:", "host:99999"):
        with pytest.raises(CliError):
            parse_args(["ssh-server", "--listen", bad, "--authorized-keys", "k"])
    assert main(["ssh-server", "--authorized-keys", "/nonexistent/keys", "--listen", "127.0.0.1:0"]) == 2
