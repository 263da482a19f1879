"""Least privilege on Redis Cluster: the ``--cluster`` ACL users of core/acl.py on the real
loopback cluster (3 masters, 3 replicas), mirroring tests/test_security_acl.py.

The users are installed the way the README says: ``python -m core.acl setuser --cluster``
piped into ``redis-cli`` for every node, replicas included (ACLs are per node and not
replicated). The session cluster's ``default`` user stays on for the other tests (the
last ``setuser`` line, ``default off``, is not sent; tests/test_security_acl.py checks it).
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core import (
    AsyncSessionStore,
    PermissionDenied,
    Policy,
    SessionStore,
    StoreUnavailable,
    acl,
    bulk,
    topology,
)
from core.buckets import Buckets
from core.feed import EventFeed, FeedStatus, Resync
from core.overview import Flag
from tests.faults.cluster import ClusterGroup

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.real


class AclCluster:
    def __init__(self, group: ClusterGroup, passwords: dict[str, str]) -> None:
        self.group = group
        self.passwords = passwords

    def url(self, role: str) -> str:
        return acl.url_for(self.group.url, role, self.passwords[role])

    def store(self, role: str) -> SessionStore:
        return SessionStore.from_url(self.url(role), cluster=True)

    def raw(self, role: str) -> redis.cluster.RedisCluster:
        return self.group.client(username=acl.ROLES[role].user, password=self.passwords[role],
                                 socket_timeout=2)

    def node(self, role: str) -> redis.Redis:
        """A plain connection to one node as ``role``, for commands of no key."""
        return redis.Redis(port=self.group.live()[0].port, username=acl.ROLES[role].user,
                           password=self.passwords[role], decode_responses=True, socket_timeout=2)

    def node_logs(self) -> list[dict[str, object]]:
        """Every node's ACL LOG entries (denials), newest first per node."""
        out = []
        for n in self.group.live():
            with redis.Redis(port=n.port, decode_responses=True, socket_timeout=2) as c:
                out += c.acl_log()
        return out

    def reset_logs(self) -> None:
        for n in self.group.live():
            with redis.Redis(port=n.port, decode_responses=True, socket_timeout=2) as c:
                c.acl_log_reset()


@pytest.fixture(scope="module")
def acl_cluster(redis_cluster: ClusterGroup) -> Iterator[AclCluster]:
    if len(redis_cluster.live()) != len(redis_cluster.nodes):
        redis_cluster.heal()
    redis_cluster.flushall()
    passwords = acl.generate_passwords()
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           **{acl.env_name(role): pw for role, pw in passwords.items()}}
    commands = subprocess.run([sys.executable, "-m", "core.acl", "setuser", "--cluster"], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True, timeout=60).stdout
    assert "default off" in commands.splitlines()[-1]
    users = "\n".join(line for line in commands.splitlines() if line.split()[2] != "default") + "\n"
    for password in passwords.values():
        assert password not in commands
    for n in redis_cluster.nodes:  # primaries and replicas alike
        done = subprocess.run([redis_cluster.cli, "-p", str(n.port)], input=users, capture_output=True,
                              text=True, timeout=60, check=True)
        assert done.stdout.split() == ["OK"] * len(acl.ROLES), done.stdout
    found = AclCluster(redis_cluster, passwords)
    try:
        with found.store("admin") as admin:  # the deployment step: the admin loads the library
            assert admin.install_functions() in ("loaded", "present")
        yield found
    finally:
        for n in redis_cluster.live():
            with redis.Redis(port=n.port, socket_timeout=2) as c:
                c.execute_command("ACL", "DELUSER", *(r.user for r in acl.ROLES.values()))


@pytest.fixture
def app(acl_cluster: AclCluster) -> Iterator[SessionStore]:
    with acl_cluster.store("app") as store:
        yield store


def _denied(fn, *args, **kw) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        fn(*args, **kw)


def test_every_node_holds_the_users(acl_cluster: AclCluster) -> None:
    """Primaries and replicas alike: a replica promoted by a failover serves the same users."""
    for n in acl_cluster.group.nodes:
        with redis.Redis(port=n.port, decode_responses=True, socket_timeout=2) as c:
            users = {u["name"] if isinstance(u, dict) else u for u in c.acl_users()}
            assert users >= {r.user for r in acl.ROLES.values()}
            app_rules = c.execute_command("ACL", "GETUSER", acl.ROLES["app"].user)
            assert "~{sw*}session:*" in str(app_rules)


def test_the_key_globs_match_every_bucket_of_any_count(acl_cluster: AclCluster) -> None:
    """ACL DRYRUN asks the server's own glob matching: every bucket's keys and channel, for
    any bucket count, and no key outside the bucketed layout."""
    app_user = acl.ROLES["app"].user
    with redis.Redis(port=acl_cluster.group.nodes[0].port, decode_responses=True, socket_timeout=2) as c:
        def dry(*cmd: object) -> str:
            return str(c.execute_command("ACL", "DRYRUN", app_user, *cmd))

        for count in (1, 64, 1024):
            buckets = Buckets("", count)
            for b in {0, count // 2, count - 1}:
                schema = buckets.schema(b)
                assert dry("HSET", schema.session("a" * 36), "f", "v") == "OK"
                assert dry("ZADD", schema.idx_expiry, 1, "x") == "OK"
                assert dry("SPUBLISH", schema.channel, "x") == "OK"
        for key in ("session:x", "{other}session:x", "{sw1-0}config:secret", "x{sw1-0}session:y"):
            assert dry("HSET", key, "f", "v") != "OK", key
        assert dry("SPUBLISH", "{other}event:live", "x") != "OK"
        assert dry("PUBLISH", Buckets("", 64).schema(3).channel, "x") != "OK"


def test_app_user_runs_every_session_write_with_no_denial(acl_cluster: AclCluster, app: SessionStore) -> None:
    acl_cluster.reset_logs()
    session, token = app.login("alice", app="crm", ip="10.0.0.1", email="a@example.org")
    assert app.validate(token).sid == session.sid
    app.update_profile(session.sid, department="ops")
    saved = app.save_anonymous(None, {"cart": "3"}, app="crm")
    assert saved.created and app.read_anonymous(saved.token).data == {"cart": "3"}
    again = app.save_anonymous(saved.token, {"cart": "4"}, app="crm")
    assert again.token == saved.token
    other, _ = app.login("alice", app="crm", anonymous=saved.token)  # replaces it in one script
    assert app.read_anonymous(saved.token) is None
    spare = app.save_anonymous(None, {"k": "v"}, app="crm")
    assert app.end_anonymous(spare.token) is True
    assert app.get(session.sid).department == "ops"
    assert app.logout(session.sid) is True
    assert app.logout_user("alice") == [other.sid]
    assert app.sweep().calls >= 0
    assert app.adopt("legacy-1", {"username": "bob", "status": "active"}) is True
    assert app.events(limit=5)
    # nothing the store or redis-py's cluster client sent was refused on any node
    assert acl_cluster.node_logs() == []
    raw = acl_cluster.raw("app")
    node = acl_cluster.node("app")
    key = app._for_sid(other.sid).schema.session(other.sid)
    for cmd in (("FLUSHALL",), ("CONFIG", "GET", "requirepass"), ("KEYS", "*"), ("FUNCTION", "DELETE", "x"),
                ("CLUSTER", "NODES"), ("CLUSTER", "FAILOVER"), ("ACL", "SETUSER", "x", "on"),
                ("PUBLISH", app._for_sid(other.sid).schema.channel, "x"),  # classic PUBLISH: broadcast
                ("SSUBSCRIBE", app._for_sid(other.sid).schema.channel)):
        _denied(node.execute_command, *cmd)
    node.close()
    _denied(raw.get, "config:secret")
    _denied(raw.set, "session:classic", "1")  # the single-node layout's names are not granted
    _denied(raw.set, "{other}session:x", "1")
    _denied(raw.eval, "return 1", 1, key)
    _denied(raw.script_load, "return redis.call('GET', 'config:secret')")
    _denied(raw.spublish, "{other}event:live", "x")
    raw.close()


def test_async_app_store_needs_nothing_more(acl_cluster: AclCluster) -> None:
    """redis-py's asyncio cluster client maps the cluster its own way: same rights."""
    acl_cluster.reset_logs()

    async def cycle() -> None:
        store = AsyncSessionStore.from_url(acl_cluster.url("app"), cluster=True)
        try:
            session, token = await store.login("ivy", app="crm")
            assert (await store.validate(token)).sid == session.sid
            saved = await store.save_anonymous(None, {"cart": "1"}, app="crm")
            assert (await store.read_anonymous(saved.token)).data == {"cart": "1"}
            assert await store.logout(session.sid) is True
        finally:
            await store.close()

    asyncio.run(cycle())
    assert acl_cluster.node_logs() == []


def test_app_waits_for_replicas_when_the_policy_asks(acl_cluster: AclCluster) -> None:
    acl_cluster.reset_logs()
    with SessionStore.from_url(acl_cluster.url("app"), cluster=True, policy=Policy(replica_acks=1)) as store:
        session, token = store.login("judy", app="crm")
        assert store.validate(token).sid == session.sid
        assert store.logout(session.sid) is True
        assert acl_cluster.node_logs() == []
        _set_everywhere(acl_cluster.group, "-wait", role="app")  # why WAIT is granted
        try:
            with pytest.raises(PermissionDenied):
                store.login("judy", app="crm")
            assert {e.get("object") for e in acl_cluster.node_logs()} == {"wait"}
        finally:
            _set_everywhere(acl_cluster.group, "+wait", role="app")


def test_dashboard_reads_and_follows_the_feed_but_never_writes(acl_cluster: AclCluster,
                                                               app: SessionStore) -> None:
    session, token = app.login("carol", app="crm", ip="10.0.0.2")
    acl_cluster.reset_logs()
    with acl_cluster.store("dashboard") as dash:
        assert session.sid in {s.sid for s in dash.active_page().sessions}
        assert session.sid in dash.window("login").sessions
        assert dash.get(session.sid).username == "carol"
        assert dash.stats().active >= 1
        assert dash.overview().active >= 1
        assert dash.ended_page().total >= 0
        assert dash.events(limit=3)
        assert dash.search("user", "car")
        assert dash.user_history("carol")
        assert dash.flags() == []
        assert bulk.export(dash, io.StringIO()).written
        assert dash.server_info().version
        assert topology.describe(dash.client) == "cluster 3 masters · 3 replicas"  # the header
        reads_refused = [e for e in acl_cluster.node_logs() if e.get("object") != "config|get"]
        assert reads_refused == []  # CONFIG GET (server_info's extras) stays denied, as on one node
        for write in (lambda: dash.login("mallory", app="crm"),
                      lambda: dash.validate(token),  # validate slides expiry: a script write
                      lambda: dash.logout(session.sid),
                      lambda: dash.logout_user("carol"),
                      lambda: dash.save_anonymous(None, {"k": "v"}, app="crm"),
                      lambda: dash.adopt("x-1", {"username": "m"})):
            with pytest.raises(PermissionDenied):
                write()
        # a sweep with nothing due only reads (a count per bucket); with work it is refused
        assert dash.sweep().calls == 0
        with acl_cluster.group.client() as superuser:  # an entry past its expiry, as if left by a crash
            superuser.zadd(dash.ctxs[5].schema.idx_expiry, {"f" * 32 + "0005": 1})
        with pytest.raises(PermissionDenied):
            dash.sweep()
    assert app.validate(token) is not None  # nothing above changed the session
    raw = acl_cluster.raw("dashboard")
    schema = app._for_sid(session.sid).schema
    for cmd in (("HSET", schema.session(session.sid), "status", "active"), ("DEL", schema.session(session.sid)),
                ("SPUBLISH", schema.channel, "forged"), ("EVAL", "return 1", 1, schema.events)):
        _denied(raw.execute_command, *cmd)
    raw.close()
    node = acl_cluster.node("dashboard")
    for cmd in (("PUBLISH", schema.channel, "forged"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"),
                ("CLUSTER", "FAILOVER"), ("CLUSTER", "FORGET", "x" * 40), ("WAIT", 1, 0),
                ("PSUBSCRIBE", "__keyevent@0__:*")):
        _denied(node.execute_command, *cmd)
    node.close()


def test_dashboard_feed_subscribes_on_every_shard(acl_cluster: AclCluster, app: SessionStore) -> None:
    acl_cluster.reset_logs()
    with acl_cluster.store("dashboard") as dash:
        feed = EventFeed(dash, heartbeat=0.2, backlog=5)
        stop = threading.Event()
        items: list[object] = []
        timer = threading.Timer(120, stop.set)  # a hung feed fails below instead of hanging the suite
        timer.start()
        try:
            for item in feed.run(stop):
                items.append(item)
                if isinstance(item, Resync):
                    app.login("dave", app="crm")
                if getattr(item, "kind", None) == "login" and item.username == "dave":
                    stop.set()
        finally:
            timer.cancel()
            feed.close()
    assert any(getattr(i, "kind", None) == "login" and i.username == "dave" for i in items), items[-5:]
    assert FeedStatus(True) in items
    assert not [i for i in items if isinstance(i, FeedStatus) and not i.connected]
    assert acl_cluster.node_logs() == []  # SSUBSCRIBE per shard and the expired hints all granted


def test_admin_ends_sessions_and_nothing_else(acl_cluster: AclCluster, app: SessionStore) -> None:
    acl_cluster.reset_logs()
    s1, t1 = app.login("erin", app="crm")
    s2, t2 = app.login("erin", app="crm")
    app.login("frank", app="crm")
    with acl_cluster.store("admin") as admin:
        assert admin.logout(s1.sid, actor="root@10.1.2.3") is True
        assert app.validate(t1) is None
        assert admin.logout_user("erin", actor="root") == [s2.sid]
        assert app.validate(t2) is None
        assert admin.sweep().calls >= 0
        assert admin.active_page().total >= 1
        ev = next(e for e in admin.events(limit=10) if e.sid == s1.sid)
        assert (ev.kind, ev.actor) == ("admin_logout", "root@10.1.2.3")
        assert admin.audit("ssh_connect", actor="ops@ssh-key:SHA256:x", ip="192.0.2.1") >= 1
        flag = Flag("spray:198.51.100.7", "spray", "198.51.100.7", {"users": 12}, time.time())
        assert admin.flag("raise", flag, actor="rules") is True
        assert [f.id for f in admin.flags()] == [flag.id]
        assert admin.flag("clear", flag, actor="rules") is True
        admin.set_event_log_max(5000)  # every bucket's settings
        assert admin.install_functions() == "present"  # on every primary, already there
        assert acl_cluster.node_logs() == []
        with pytest.raises(PermissionDenied):
            admin.login("mallory", app="crm")
    node = acl_cluster.node("admin")
    for cmd in (("FLUSHALL",), ("CONFIG", "SET", "appendonly", "no"), ("KEYS", "*"),
                ("SHUTDOWN", "NOSAVE"), ("CLUSTER", "FAILOVER"), ("CLUSTER", "RESET"),
                ("ACL", "SETUSER", "x", "on", "nopass", "+@all"), ("CLIENT", "KILL", "TYPE", "normal")):
        _denied(node.execute_command, *cmd)
    node.close()
    raw = acl_cluster.raw("admin")
    _denied(raw.get, "config:secret")
    _denied(raw.delete, "session:classic")
    _denied(raw.rpush, "{other}event:logs", "forged")
    raw.close()


def test_cluster_rules_cover_any_bucket_count_and_escape_the_prefix() -> None:
    """One glob per key name whatever the bucket count: ``{``/``}`` are literal in ACL
    globs, so ``{sw*}`` matches every bucket's tag; the prefix's glob characters are escaped."""
    from core.schema import Schema

    rules = acl.rules("app", Schema("t[1]:"), cluster=True)
    assert "~t\\[1\\]:{sw*}session:*" in rules and "&t\\[1\\]:{sw*}event:live" in rules
    assert "+spublish" in rules and "+publish" not in rules and "+cluster|slots" in rules
    assert not [r for r in rules if r.startswith("~") and "{sw*}" not in r]
    dash = acl.rules("dashboard", cluster=True)
    assert {"+ssubscribe", "+subscribe", "&__keyevent@0__:expired"} <= set(dash)
    assert "+spublish" not in dash and "+fcall" not in dash
    for count in (1, 64, 1024):
        assert all(s.prefix.startswith("{sw") and s.prefix.endswith("}") for s in Buckets("", count).schemas)
    with pytest.raises(Exception, match="Redis 7"):
        acl.rules("app", cluster=True, functions=False)


def test_a_slot_in_migration_is_followed_with_asking(acl_cluster: AclCluster, app: SessionStore) -> None:
    """While a slot moves, a key already gone from its old node answers ASK: redis-py
    sends ASKING, then the command, to the new node. Both are granted."""
    group = acl_cluster.group
    schema = app.ctxs[9].schema
    key = schema.session("0" * 32 + "0009")
    source = group.master_for_key(key)
    target = next(m for m in group.masters() if m.port != source.port)
    ids = {v.port: v.node_id for v in group.view()}
    with redis.Redis(port=source.port, decode_responses=True, socket_timeout=2) as src, \
            redis.Redis(port=target.port, decode_responses=True, socket_timeout=2) as dst:
        slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        try:
            acl_cluster.reset_logs()
            with acl_cluster.raw("dashboard") as raw:
                assert raw.hgetall(key) == {}  # not on the old node: ASK, then ASKING
            assert acl_cluster.node_logs() == []
            _set_everywhere(group, "-asking")  # without it the redirect cannot be followed
            try:
                with acl_cluster.raw("dashboard") as raw, pytest.raises(redis.exceptions.NoPermissionError):
                    raw.hgetall(key)
                assert {e.get("object") for e in acl_cluster.node_logs()} == {"asking"}
            finally:
                _set_everywhere(group, "+asking")
        finally:
            for c in (src, dst):
                c.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")


def _set_everywhere(group: ClusterGroup, rule: str, role: str = "dashboard") -> None:
    for n in group.live():
        with redis.Redis(port=n.port, socket_timeout=2) as c:
            c.execute_command("ACL", "SETUSER", acl.ROLES[role].user, rule)


@pytest.mark.parametrize("command", ["cluster|slots", "command"])
def test_the_cluster_client_cannot_start_without(acl_cluster: AclCluster, command: str) -> None:
    """Why CLUSTER SLOTS and COMMAND are granted: redis-py's cluster client sends both
    before its first command."""
    _set_everywhere(acl_cluster.group, f"-{command}")
    try:
        acl_cluster.reset_logs()
        with pytest.raises(StoreUnavailable):
            acl_cluster.store("dashboard").close()
        assert {e.get("object") for e in acl_cluster.node_logs()} == {command}
    finally:
        _set_everywhere(acl_cluster.group, f"+{command}")
    acl_cluster.store("dashboard").close()
