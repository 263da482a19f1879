"""Config lint of the shipped ``redis.conf`` and the ACL file generated for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import acl

REDIS_CONF = Path(__file__).resolve().parent.parent / "redis.conf"


def directives(text: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            out.setdefault(words[0].lower(), []).append(words[1:])
    return out


@pytest.fixture(scope="module")
def conf() -> dict[str, list[list[str]]]:
    return directives(REDIS_CONF.read_text(encoding="utf-8"))


def last(conf: dict[str, list[list[str]]], name: str) -> list[str]:
    assert name in conf, f"redis.conf does not set {name}"
    return conf[name][-1]


def test_protected_mode_on_and_loopback(conf) -> None:
    assert last(conf, "protected-mode") == ["yes"]
    assert all(addr.lstrip("-") in ("127.0.0.1", "::1") for addr in last(conf, "bind"))


def test_durability_and_no_eviction(conf) -> None:
    assert last(conf, "appendonly") == ["yes"]
    assert last(conf, "appendfsync") in (["everysec"], ["always"])
    assert last(conf, "maxmemory-policy") == ["noeviction"]


def test_debug_command_off_and_no_deprecated_renames(conf) -> None:
    assert last(conf, "enable-debug-command") == ["no"]
    assert "rename-command" not in conf  # deprecated: ACL rules do this job


def test_users_come_from_the_acl_file_only(conf) -> None:
    """No password and no user in the repository: users live in the generated ACL file."""
    assert last(conf, "aclfile") == [acl.ACL_FILE_NAME]
    assert "user" not in conf  # Redis refuses users in both places
    assert "requirepass" not in conf and "masterauth" not in conf
    assert "nopass" not in REDIS_CONF.read_text(encoding="utf-8").replace("`nopass`", "")


def test_generated_acl_file_lint(tmp_path: Path) -> None:
    acl.provision(tmp_path)
    lines = (tmp_path / acl.ACL_FILE_NAME).read_text().splitlines()
    assert lines[0].split()[:3] == ["user", "default", "off"]
    users = {line.split()[1]: line.split()[2:] for line in lines}
    assert set(users) == {"default", *(r.user for r in acl.ROLES.values())}
    for name, rules in users.items():
        assert "nopass" not in rules and "allkeys" not in rules and "~*" not in rules and "+@all" not in rules
        assert not [r for r in rules if r.startswith(">")], f"{name}: plaintext password"
        for dangerous in ("+flushall", "+flushdb", "+config", "+keys", "+debug", "+shutdown", "+acl",
                          "+client|kill", "+eval", "+module", "+monitor", "+script|flush"):
            assert dangerous not in rules, (name, dangerous)
    assert "+evalsha" not in users["sessionwatch-dashboard"]
    assert not [r for r in users["sessionwatch-dashboard"] if r[1:] in acl.script_commands("logout")
                and r[1:] not in acl.READ_COMMANDS]


def test_passwords_from_environment_or_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "admin.pw"
    secret_file.write_text("from-a-file-0123456789\n")
    env = {"SESSIONWATCH_APP_PASSWORD": "from-the-env-0123456789",
           "SESSIONWATCH_ADMIN_PASSWORD_FILE": str(secret_file)}
    assert acl.password_from_env("app", env) == "from-the-env-0123456789"
    assert acl.password_from_env("admin", env) == "from-a-file-0123456789"
    assert acl.password_from_env("dashboard", env) is None


def test_acl_cli_writes_file_from_env_and_never_prints_passwords(tmp_path: Path, capsys,
                                                                   monkeypatch) -> None:
    for role in acl.ROLES:
        monkeypatch.setenv(acl.env_name(role), f"{role}-secret-0123456789")
    out = tmp_path / "users.acl"
    assert acl.main(["write", str(out)]) == 0
    printed = capsys.readouterr()
    assert "secret" not in printed.out + printed.err
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    monkeypatch.delenv("SESSIONWATCH_ADMIN_PASSWORD")
    assert acl.main(["write", str(tmp_path / "x.acl")]) == 2
    assert "SESSIONWATCH_ADMIN_PASSWORD" in capsys.readouterr().err
