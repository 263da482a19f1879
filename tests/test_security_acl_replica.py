"""The generated replication user on real Debian redis-server: a master and a replica,
both loading the generated ACL file (``default`` off), the replica configured with
``masteruser``/``masterauth`` as the README says. The link comes up, data replicates,
nothing is refused (``ACL LOG``), and the user can read and write no key."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from core import Schema, SessionStore, acl
from core.embedded import RedisServer, system_binary

pytestmark = pytest.mark.real


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.05)


OPERATOR = "test-operator"


def _operator(server: RedisServer, passwords: dict[str, str]) -> redis.Redis:
    return redis.Redis(port=server.port, username=OPERATOR, password=passwords["app"], decode_responses=True,
                       socket_timeout=5)


def _refused(client: redis.Redis) -> list[str]:
    """What ACL LOG says the replication user was refused."""
    return [e["object"] for e in client.acl_log() if e["username"] == acl.ROLES["replica"].user]


def _client(server: RedisServer, role: str, passwords: dict[str, str]) -> redis.Redis:
    return redis.Redis(port=server.port, username=acl.ROLES[role].user, password=passwords[role],
                       decode_responses=True, socket_timeout=5)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, RedisServer, dict[str, str]]]:
    binary = system_binary()
    if binary is None:
        pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
    base = tmp_path_factory.mktemp("replica")
    passwords = acl.generate_passwords()
    for node in ("master", "replica"):
        (base / node).mkdir()
        acl.provision(base / node, passwords)
        with (base / node / acl.ACL_FILE_NAME).open("a") as fh:  # test-only: reads ACL LOG
            fh.write(f"user {OPERATOR} on >{passwords['app']} ~* &* +@all\n")
    args = ["--aclfile", acl.ACL_FILE_NAME, "--save", "", "--appendonly", "no"]
    with RedisServer(binary=binary, directory=base / "master", args=args) as master:
        conf = Path(base / "replica" / "replica.conf")  # masterauth in a file, as in production
        conf.write_text(f"replicaof 127.0.0.1 {master.port}\nmasteruser {acl.ROLES['replica'].user}\n"
                        f"masterauth {passwords['replica']}\n")
        with RedisServer(binary=binary, directory=base / "replica", config_file=str(conf),
                         args=args) as replica:
            yield master, replica, passwords


def _url(server: RedisServer, role: str, passwords: dict[str, str]) -> str:
    return acl.url_for(server.url, role, passwords[role])


def test_generated_file_has_the_replication_user_and_nothing_else_for_it() -> None:
    assert acl.rules("replica") == ["reset", "on", "resetkeys", "resetchannels", "-@all", "+psync", "+replconf"]
    assert acl.rules("replica", cluster=True) == acl.rules("replica")
    text = acl.render_acl_file(acl.generate_passwords())
    assert sum(line.startswith("user sessionwatch-replica reset on #") for line in text.splitlines()) == 1


def test_replica_syncs_as_the_generated_user(pair: tuple[RedisServer, RedisServer, dict[str, str]]) -> None:
    master, replica, passwords = pair
    with _operator(master, passwords) as admin, _operator(replica, passwords) as op, \
            _client(replica, "dashboard", passwords) as reader:
        assert "off" in admin.acl_getuser("default")["flags"]
        assert "off" in op.acl_getuser("default")["flags"]
        assert op.config_get("masteruser")["masteruser"] == "sessionwatch-replica"
        _wait(lambda: reader.info("replication").get("master_link_status") == "up", 30, "replica link stayed down")
        assert admin.info("replication")["connected_slaves"] == 1
        with SessionStore.from_url(_url(master, "admin", passwords)) as store:
            store.install_functions()
        with SessionStore.from_url(_url(master, "app", passwords)) as app:
            session, _token = app.login("alice", app="crm", ip="10.0.0.1")
        with _client(master, "app", passwords) as raw_app:
            assert raw_app.wait(1, 20_000) == 1  # the replica's REPLCONF ACKs are accepted
        key = Schema().session(session.sid)
        _wait(lambda: reader.exists(key) == 1, 20, "session did not replicate")
        with SessionStore.from_url(_url(replica, "dashboard", passwords)) as dashboard:
            assert dashboard.get(session.sid).username == "alice"
        # the replica's own traffic was never refused, on either side
        assert _refused(admin) == []
        assert _refused(op) == []


def test_replication_user_reads_and_writes_no_key(pair: tuple[RedisServer, RedisServer, dict[str, str]]) -> None:
    master, _replica, passwords = pair
    key = Schema().session("x")
    with _client(master, "replica", passwords) as repl:
        with pytest.raises(redis.exceptions.NoPermissionError):
            repl.hgetall(key)
        with pytest.raises(redis.exceptions.NoPermissionError):
            repl.set("anything", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            repl.publish(Schema().channel, "x")
    with _operator(master, passwords) as admin:
        assert set(_refused(admin)) >= {"hgetall", "set", "publish"}


def test_the_replication_user_is_written_only_when_its_password_is_set(tmp_path, monkeypatch, capsys) -> None:
    from core import acl

    for role in acl.ROLES:
        monkeypatch.delenv(acl.env_name(role), raising=False)
        monkeypatch.delenv(acl.env_name(role) + "_FILE", raising=False)
    for role in ("app", "dashboard", "admin"):
        monkeypatch.setenv(acl.env_name(role), f"{role}-password-0123456789abcdef")
    target = tmp_path / "users.acl"
    assert acl.main(["write", str(target)]) == 0
    assert "sessionwatch-replica" not in target.read_text()
    assert "sessionwatch-replica" not in capsys.readouterr().out
    monkeypatch.setenv(acl.env_name("replica"), "replica-password-0123456789abcdef")
    assert acl.main(["write", str(target)]) == 0
    assert "user sessionwatch-replica reset on " in target.read_text()
