"""A real Redis Cluster on loopback: three masters and three replicas from Debian's
``redis-server``, joined by ``redis-cli --cluster create``.

Kill a master with :meth:`ClusterGroup.kill` and :meth:`ClusterGroup.wait_promoted` waits
for its replica to take over its slots; :meth:`ClusterGroup.restart` brings the crashed node
back (it rejoins as a replica of the node that replaced it, from the ``nodes.conf`` kept in
its directory); :meth:`ClusterGroup.heal` restarts whatever is down and waits until the
cluster is whole again.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import redis.cluster

from core.embedded import RedisServer, system_binary

NODE_TIMEOUT_MS = 3000
"""``cluster-node-timeout``: short, so a failover takes seconds, yet long enough that a
busy two-core machine does not make a healthy master look dead."""

SLOTS = 16384
CLI = "/usr/bin/redis-cli"


@dataclass(frozen=True)
class NodeView:
    """One line of ``CLUSTER NODES``, as much as the tests need."""

    node_id: str
    port: int
    master: bool
    master_id: str | None
    failed: bool
    slots: int


def cluster_port(taken: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """A loopback port for a cluster node: at most 55535 (the bus listens 10000 higher), with
    both it and its bus port free a moment ago."""
    for _ in range(1000):
        port = random.randint(20000, 45000)
        if port in taken or port + 10000 in taken or port - 10000 in taken:
            continue
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def missing_tools() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if system_binary() is None:
        return "Debian's redis-server is not installed (.ci/run installs it)"
    if shutil.which(CLI) is None and shutil.which("redis-cli") is None:
        return "redis-cli is not installed (.ci/run installs redis-tools)"
    return None


class ClusterGroup:
    """Three masters and three replicas; :meth:`start` then :meth:`stop`."""

    def __init__(self, masters: int = 3, replicas: int = 1,
                 node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        why = missing_tools()
        if why:
            raise RuntimeError(why)
        self.binary = system_binary()
        self.cli = CLI if shutil.which(CLI) else str(shutil.which("redis-cli"))
        self.replicas_per_master = replicas
        self.node_timeout_ms = node_timeout_ms
        args = ["--save", "", "--appendonly", "no", "--notify-keyspace-events", "Ex",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                # a replica may always stand in, however long it was cut off: the tests want
                # a promotion, not a cluster that stays down
                "--cluster-replica-validity-factor", "0"]
        self.nodes: list[RedisServer] = []
        for _ in range(masters * (1 + replicas)):
            taken = {n.port for n in self.nodes}
            self.nodes.append(RedisServer(binary=str(self.binary), port=cluster_port(taken),
                                          args=list(args)))

    # --- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """URL of a live seed node; the cluster client discovers the rest from it."""
        return self.live()[0].url

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        return [redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.nodes]

    def client(self, **kwargs: object) -> redis.cluster.RedisCluster:
        """A cluster client seeded with every node (so a dead seed does not matter)."""
        kwargs.setdefault("decode_responses", True)
        return redis.cluster.RedisCluster(startup_nodes=self.startup_nodes, **kwargs)  # type: ignore[arg-type]

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> ClusterGroup:
        try:
            for n in self.nodes:
                n.start()
            cmd = [self.cli, "--cluster", "create",
                   *(f"127.0.0.1:{n.port}" for n in self.nodes),
                   "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-800:]} "
                                   f"{done.stderr[-800:]}")
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.cleanup()

    def __enter__(self) -> ClusterGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self, server: RedisServer) -> bool:
        return server.process is not None and server.process.poll() is None

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if self.alive(n)]

    # --- topology -------------------------------------------------------------------------
    def view(self, via: RedisServer | None = None) -> list[NodeView]:
        """``CLUSTER NODES`` as seen by ``via`` (default: the first live node)."""
        server = via or self.live()[0]
        with _plain(server) as c:
            text = c.execute_command("CLUSTER", "NODES")
        return _parse_nodes(text if isinstance(text, str) else text.decode())

    def masters(self) -> list[RedisServer]:
        """Live nodes that serve slots as masters, by a live node's view."""
        ports = {v.port for v in self.view() if v.master and not v.failed and v.slots}
        return [n for n in self.live() if n.port in ports]

    def replicas(self) -> list[RedisServer]:
        ports = {v.port for v in self.view() if not v.master and not v.failed}
        return [n for n in self.live() if n.port in ports]

    def replica_of(self, master: RedisServer) -> RedisServer:
        view = self.view()
        mid = next(v.node_id for v in view if v.port == master.port)
        port = next(v.port for v in view if v.master_id == mid)
        return self.node(port)

    def master_for_key(self, key: str) -> RedisServer:
        """The live master serving ``key``'s slot."""
        with _plain(self.live()[0]) as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return self.node(int(primary[1]))
        raise AssertionError(f"no master serves slot {slot}")

    # --- faults ---------------------------------------------------------------------------
    def kill(self, server: RedisServer) -> RedisServer | None:
        """kill -9 (a crash); its directory, and so its ``nodes.conf``, is kept. For a master,
        returns the replica that should take over (None for a replica)."""
        view = self.view()
        me = next(v for v in view if v.port == server.port)
        standby = None
        if me.master:
            standby = self.node(next(v.port for v in view if v.master_id == me.node_id))
        server.kill()
        return standby

    def restart(self, server: RedisServer, timeout: float = 30.0) -> None:
        """Start a crashed node again. Without persistence it comes back empty; having lost
        its slots to a promoted replica it rejoins as that node's replica and resyncs."""
        if not self.alive(server):
            server.start(timeout)

    def wait_promoted(self, standby: RedisServer, timeout: float = 60.0) -> None:
        """Wait until ``standby`` (what :meth:`kill` returned) is a master serving slots, no
        live node lists a failed master with slots, and every live node says the cluster is
        ok."""
        def done() -> bool:
            for n in self.live():
                view = self.view(n)
                mine = next(v for v in view if v.port == standby.port)
                if not (mine.master and mine.slots):
                    return False
                if sum(v.slots for v in view if v.master and not v.failed) != SLOTS:
                    return False
                if _info(n).get("cluster_state") != "ok":
                    return False
            return True

        wait_for(done, timeout, f"replica {standby.port} was not promoted")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every node is up, says cluster_state:ok, knows every other node, sees all slots
        covered by as many masters as it started with, and every replica's link is up."""
        want_masters = len(self.nodes) // (1 + self.replicas_per_master)

        def healthy() -> bool:
            if len(self.live()) != len(self.nodes):
                return False
            for n in self.nodes:
                info = _info(n)
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) \
                        != len(self.nodes):
                    return False
                view = self.view(n)
                masters = [v for v in view if v.master and v.slots and not v.failed]
                if len(masters) != want_masters or sum(v.slots for v in masters) != SLOTS:
                    return False
                if any(v.failed for v in view):
                    return False
                with _plain(n) as c:
                    repl = c.info("replication")
                if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                    return False
            return True

        wait_for(healthy, timeout, "the cluster did not become healthy")

    def heal(self, timeout: float = 60.0) -> None:
        """Restart every crashed node and wait until the cluster is whole."""
        for n in self.nodes:
            self.restart(n)
        self.wait_healthy(timeout)

    def flushall(self) -> None:
        """FLUSHALL on every master (replicas follow)."""
        for m in self.masters():
            with _plain(m) as c:
                c.flushall()


def _parse_nodes(text: str) -> list[NodeView]:
    out: list[NodeView] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@")[0]
        flags = set(parts[2].split(","))
        slots = 0
        for r in parts[8:]:
            if r.startswith("["):  # a slot being migrated
                continue
            a, _, b = r.partition("-")
            slots += (int(b) - int(a) + 1) if b else 1
        out.append(NodeView(node_id=parts[0], port=int(addr.rsplit(":", 1)[1] or 0),
                            master="master" in flags, master_id=None if parts[3] == "-" else parts[3],
                            failed="fail" in flags or "fail?" in flags, slots=slots))
    return out


class _plain:
    """A short-lived plain client on one node (context manager)."""

    def __init__(self, server: RedisServer) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2,
                                  socket_connect_timeout=2, decode_responses=True)

    def __enter__(self) -> redis.Redis:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _info(server: RedisServer) -> dict[str, str]:
    with _plain(server) as c:
        text = c.execute_command("CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` (Redis errors count as "not yet") until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (redis.RedisError, OSError, StopIteration, ValueError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s (last error: {last})")
