"""Secrets on the command line are never shown: a password holding URL delimiters in
``--url`` appears in no message, and a bearer token pasted into ``logout`` never even
reaches Redis."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from core import SessionStore, redact_url
from core.embedded import RedisServer
from core.errors import InvalidInput
from tui import cli

PIECES = ["Sekr3t", "PartTwo", "Third", "Fourth"]
PASSWORDS = ["Sekr3t/PartTwo", "Sekr3t?PartTwo=Third", "Sekr3t#PartTwo", "Sekr3t/PartTwo?Third#Fourth",
             "Sekr3t@PartTwo/Third", "Sekr3t:PartTwo/Third"]


def assert_hidden(text: str) -> None:
    for piece in PIECES:
        assert piece not in text, text


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("template", ["redis://alice:{pw}@127.0.0.1:6390/0", "rediss://:{pw}@cache.internal/2",
                                      "redis://alice:{pw}@[::1]:6390/0?ssl_ca_certs=/etc/ca.pem"])
def test_redact_url_hides_raw_and_encoded_passwords(template: str, password: str) -> None:
    assert_hidden(redact_url(template.format(pw=password)))
    encoded = redact_url(template.format(pw=quote(password, safe="")))
    assert_hidden(encoded)
    assert "***@" in encoded


@pytest.mark.parametrize("password", PASSWORDS)
def test_store_refuses_an_ambiguous_url_without_quoting_it(password: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidInput) as err:
        SessionStore.from_url(f"redis://alice:{password}@127.0.0.1:6390/0")
    assert "percent-encode" in str(err.value)
    assert_hidden(str(err.value))
    assert_hidden(caplog.text)


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory):
    """A server whose user alice has a password full of URL delimiters."""
    password = PASSWORDS[3]
    with RedisServer(args=["--save", ""]) as server:
        with redis.Redis.from_url(server.url) as c:
            c.acl_setuser("alice", enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                          commands=["+@all"])
            c.acl_setuser("default", enabled=False)
        yield server, password


@pytest.mark.parametrize("command", [["health"], ["sessions"], ["stats"], ["logout", "--user", "bob"],
                                     ["events"]])
def test_cli_never_prints_a_raw_url_password(acl_server, command, capsys) -> None:
    server, password = acl_server
    code = cli.main(["--url", f"redis://alice:{password}@127.0.0.1:{server.port}/0", *command])
    out = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert "percent-encode" in out.err
    assert_hidden(out.out + out.err)


def test_cli_uses_encoded_password_and_password_file_without_printing_them(acl_server, tmp_path: Path,
                                                                           capsys) -> None:
    server, password = acl_server
    assert cli.main(["--url", f"redis://alice:{quote(password, safe='')}@127.0.0.1:{server.port}/0",
                     "health"]) == cli.EXIT_OK
    pw_file = tmp_path / "pw"
    pw_file.write_text(password + "\n")
    assert cli.main(["--url", f"redis://alice@127.0.0.1:{server.port}/0", "--password-file", str(pw_file),
                     "health"]) == cli.EXIT_OK
    wrong = tmp_path / "wrong"
    wrong.write_text(password.replace("Fourth", "Fifth") + "\n")
    assert cli.main(["--url", f"redis://alice@127.0.0.1:{server.port}/0", "--password-file", str(wrong),
                     "sessions"]) == cli.EXIT_UNAVAILABLE
    out = capsys.readouterr()
    assert "alice:***@" in out.out
    assert_hidden(out.out + out.err)


# --- a token pasted into logout -------------------------------------------------------------

def commands_processed(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


@pytest.mark.parametrize("shape", ["{t}", "Bearer {t}", " {t}\n", "sw_session={t}"])
@pytest.mark.parametrize("where", ["sid", "user"])
def test_pasted_token_is_refused_before_anything_reaches_redis(real_url: str, shape: str, where: str,
                                                               capsys) -> None:
    store = SessionStore.from_url(real_url)
    session, token = store.login("alice", app="crm")
    pasted = shape.format(t=token)
    watcher = redis.Redis.from_url(real_url)
    before = commands_processed(watcher)
    args = ["logout", pasted] if where == "sid" else ["logout", "--user", pasted]
    code = cli.main(["--url", real_url, *args])
    after = commands_processed(watcher)
    out = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert after - before == 1  # only the watcher's own first INFO: the CLI sent nothing
    assert "token" in out.err and session.sid[:8] in out.err
    assert token.split(".")[1] not in out.out + out.err
    assert store.validate(token) is not None  # refused, not acted on
    watcher.close()
    store.close()


def test_session_ids_and_short_ids_are_not_mistaken_for_tokens(real_url: str, capsys) -> None:
    store = SessionStore.from_url(real_url)
    session, _ = store.login("alice", app="crm")
    assert cli.main(["--url", real_url, "logout", session.sid[:8]]) == cli.EXIT_OK
    session2, _ = store.login("alice", app="crm")
    assert cli.main(["--url", real_url, "logout", session2.sid]) == cli.EXIT_OK
    assert cli.main(["--url", real_url, "logout", "--user", "alice.smith"]) == cli.EXIT_ERROR
    store.close()
