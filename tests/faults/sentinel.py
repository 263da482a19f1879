"""A real Sentinel group on loopback: one master, one replica, three sentinels, all from
Debian's ``redis-server`` (sentinel is the same binary with ``--sentinel``)."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from core.embedded import RedisServer, free_port, system_binary

SERVICE = "sw"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelGroup:
    """Start with :meth:`start`; :meth:`kill_master` crashes the current master so the
    sentinels promote the replica."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or system_binary()
        if self.binary is None:
            raise RuntimeError("Sentinel tests need Debian's redis-server (.ci/run installs it)")
        args = ["--save", "", "--appendonly", "no", "--notify-keyspace-events", "Ex"]
        self.master = RedisServer(binary=self.binary, args=args)
        self.replica = RedisServer(binary=self.binary, args=args)
        self.sentinels: list[RedisServer] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.args = [*self.replica.args, "--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica.start()
        self.wait_replica_synced()
        for _ in range(3):
            port = free_port()
            server = RedisServer(binary=self.binary, port=port)
            server.command_line()  # creates its directory
            assert server.directory is not None
            conf = Path(server.directory) / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            server.config_file = str(conf)
            server.args = ["--sentinel"]
            server.start()
            self.sentinels.append(server)
        self.wait_sentinels_agree(self.master.port)
        return self

    def master_port(self) -> int | None:
        """The master port the first reachable sentinel reports."""
        for s in self.sentinels:
            try:
                client = redis.Redis(port=s.port, socket_timeout=1, decode_responses=True)
                try:
                    _host, port = client.sentinel_get_master_addr_by_name(SERVICE)
                    return int(port)
                finally:
                    client.close()
            except (redis.RedisError, TypeError):
                continue
        return None

    def wait_replica_synced(self, timeout: float = 20.0) -> None:
        client = redis.Redis(port=self.replica.port, socket_timeout=1, decode_responses=True)
        try:
            _wait(lambda: client.info("replication").get("master_link_status") == "up", timeout,
                  "replica did not sync")
        finally:
            client.close()

    def wait_sentinels_agree(self, port: int, timeout: float = 30.0, *, replicas: int = 1) -> None:
        """Every sentinel names ``port`` as master and knows the others and ``replicas``."""
        def agreed() -> bool:
            for s in self.sentinels:
                client = redis.Redis(port=s.port, socket_timeout=1, decode_responses=True)
                try:
                    info = client.sentinel_master(SERVICE)
                    if int(info["port"]) != port or int(info.get("num-other-sentinels", 0)) < 2:
                        return False
                    if int(info.get("num-slaves", 0)) < replicas:
                        return False
                except (redis.RedisError, KeyError, TypeError):
                    return False
                finally:
                    client.close()
            return True
        _wait(agreed, timeout, f"sentinels did not agree on master {port}")

    def rejoin(self, crashed: RedisServer, master: RedisServer) -> None:
        """Bring a crashed (empty, no persistence) master back as a replica of ``master``,
        once every sentinel agrees on ``master``: restarted as a master, a sentinel still
        holding the old view could make the promoted node its replica and wipe it."""
        self.wait_sentinels_agree(master.port, replicas=0)
        args = crashed.args
        if "--replicaof" in args:  # drop the old "--replicaof host port"
            i = args.index("--replicaof")
            args = args[:i] + args[i + 3:]
        crashed.args = [*args, "--replicaof", "127.0.0.1", str(master.port)]
        crashed.start()

    def kill_master(self) -> tuple[RedisServer, RedisServer]:
        """kill -9 the current master; returns it and the server that should be promoted."""
        old, new = (self.master, self.replica) if self.master_port() == self.master.port \
            else (self.replica, self.master)
        old.kill()
        return old, new

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.cleanup()


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")
