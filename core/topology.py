"""What the dashboard's header says about the deployment: a cluster's masters and
replicas up, or the master Sentinel names now. Read on every health poll, so the header
follows a failover as it happens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.cluster
import redis.sentinel


def count_nodes(nodes: Any) -> tuple[int, int, int]:
    """``(masters up serving slots, replicas up, nodes down)`` from redis-py's parsed
    ``CLUSTER NODES`` (address -> fields). Total: odd entries count as nothing."""
    masters = replicas = down = 0
    if not isinstance(nodes, Mapping):
        return 0, 0, 0
    for info in nodes.values():
        if not isinstance(info, Mapping):
            continue
        flags = set(str(info.get("flags", "")).split(","))
        if flags & {"fail", "fail?", "noaddr", "handshake"}:
            down += 1
        elif "master" in flags:
            masters += 1 if info.get("slots") else 0
        elif "slave" in flags or "replica" in flags:
            replicas += 1
    return masters, replicas, down


def cluster_label(nodes: Any) -> str:
    masters, replicas, down = count_nodes(nodes)
    text = f"cluster {masters} master{'s' * (masters != 1)} · {replicas} replica{'s' * (replicas != 1)}"
    return text + (f" · {down} down" if down else "")


def describe(client: Any) -> str | None:
    """The header's topology label for a sync client (one round trip), or ``None`` for a
    single server. Raises redis-py's errors when the deployment cannot be asked."""
    if isinstance(client, redis.cluster.RedisCluster):
        return cluster_label(client.cluster_nodes())
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        host, port = pool.get_master_address()  # asks the sentinels: the master now
        return f"sentinel {pool.service_name} master {host}:{port}"
    return None
