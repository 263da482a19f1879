"""Benchmark 10: Redis Cluster. On a loopback cluster of three masters and three replicas
(Debian's ``redis-server``, started here) against the single node the other benchmarks use:

- how evenly a login load spreads over the masters (``INFO commandstats`` per master);
- Redis CPU per login, bucketed store on the cluster vs the classic layout on one node;
- Redis memory per session, same two modes;
- what ``Policy(replica_acks=1)`` costs per login on the cluster;
- acknowledged logins lost when a master is killed under load, without and with
  ``replica_acks=1`` (:mod:`tests.faults.cluster_load`).
"""

from __future__ import annotations

import time
from collections import Counter

import redis
import redis.cluster

from core import Policy, SessionStore
from core.buckets import DEFAULT_BUCKETS

from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt, ratio
from .redisstats import _snapshot

SCRIPT_CALLS = ("fcall", "fcall_ro", "evalsha", "eval")
EVEN_WITHIN = 0.15
"""Each master's share of commands may differ from an even share by this fraction."""


def _login_args(i: int) -> dict[str, str]:
    return {"app": ("crm", "billing", "admin")[i % 3], "type": "web", "ip": f"10.0.{i % 250}.{i % 199 + 1}",
            "user_agent": "Mozilla/5.0 (bench)"}


def _plain(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True)


def _reset(admins: list[redis.Redis]) -> None:
    for a in admins:
        a.config_resetstat()


def _script_usec(admins: list[redis.Redis]) -> tuple[float, Counter[str]]:
    """Server CPU of the script calls on these nodes (a call's time includes its inner
    commands) and every command's call count, summed over the nodes."""
    usec = 0.0
    calls: Counter[str] = Counter()
    for a in admins:
        snap = _snapshot(a)
        usec += sum(snap.usec[k] for k in SCRIPT_CALLS)
        calls.update(snap.commands)
    return usec, calls


def _used(admins: list[redis.Redis]) -> int:
    return sum(int(a.info("memory")["used_memory"]) for a in admins)


def _events_bytes(admins: list[redis.Redis], store: SessionStore) -> int:
    """MEMORY USAGE of every event log the store writes (one per bucket, or the one)."""
    schemas = store.buckets.schemas if store.buckets is not None else (store.schema,)
    total = 0
    for s in schemas:
        for a in admins:
            try:
                total += int(a.memory_usage(s.events, samples=0) or 0)
                break
            except redis.exceptions.ResponseError:  # MOVED: another master holds it
                continue
    return total


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("Redis Cluster")
    from tests.faults.cluster import ClusterGroup, missing_tools

    why = missing_tools()
    if why is not None:
        sec.not_done.append(f"Redis Cluster: {why}")
        return sec
    progress("cluster: starting 3 masters + 3 replicas")
    group = ClusterGroup().start()
    try:
        _share(sec, group, cfg, progress)
        _cpu_and_memory(sec, group, url, cfg, progress)
        _failover(sec, group, cfg, progress)
    finally:
        group.stop()
    return sec


def _cluster_store(group, policy: Policy | None = None) -> SessionStore:
    return SessionStore(group.client(), buckets=DEFAULT_BUCKETS, policy=policy)


def _share(sec: Section, group, cfg: Config, progress: Progress) -> None:
    n = cfg.cluster_users
    progress(f"cluster: {n:,} users log in once each; commands per master")
    group.flushall()
    masters = group.masters()
    admins = [_plain(m.port) for m in masters]
    store = _cluster_store(group)
    store.login("warmup", app="crm")  # function library, slot map
    _reset(admins)
    for i in range(n):
        store.login(f"user{i:06d}", **_login_args(i))
    # less the replicas' REPLCONF ACKs (one a second per replica, whatever the load)
    counts = [sum(v for k, v in _snapshot(a).commands.items() if k != "replconf") for a in admins]
    logins = [sum(_snapshot(a).commands[k] for k in SCRIPT_CALLS) for a in admins]
    store.close()
    total = sum(counts)
    even = total / len(counts)
    t = Table(f"10. Share of Redis commands per master under {n:,} logins ({n:,} users, "
              f"{DEFAULT_BUCKETS} buckets, 3 masters)",
              ["master", "commands (incl. inside scripts)", "login scripts run", "share", "vs even"])
    worst = 0.0
    for m, c, s in zip(masters, counts, logins, strict=True):
        dev = c / even - 1
        worst = max(worst, abs(dev))
        t.add(f"127.0.0.1:{m.port}", f"{c:,}", f"{s:,}", f"{c / total:.1%}", f"{dev:+.1%}")
    t.notes.append("Counted with INFO commandstats on each master after CONFIG RESETSTAT, less the "
                   "replicas' REPLCONF acknowledgements; the counting calls themselves are included (a "
                   "handful next to the logins').")
    sec.tables.append(t)
    sec.targets.append(Target(f"each master's share of commands under {n:,} logins, vs even",
                              f"worst {worst:+.1%}", f"within ±{EVEN_WITHIN:.0%}", worst <= EVEN_WITHIN))
    sec.headline.append(("cluster: commands per master under a login load",
                         " / ".join(f"{c / total:.1%}" for c in counts) + f" (worst {worst:+.1%} of even)"))
    for a in admins:
        a.close()


def _cpu_and_memory(sec: Section, group, url: str, cfg: Config, progress: Progress) -> None:
    reps = max(1, min(cfg.reps, 3))
    n = cfg.cluster_cpu_logins
    single_admin = redis.Redis.from_url(url, decode_responses=True)
    single = SessionStore.from_url(url)
    cstore = _cluster_store(group)
    acked = _cluster_store(group, Policy(replica_acks=1))
    cpu_single, cpu_cluster, wall_plain, wall_acks = Sample(), Sample(), Sample(), Sample()
    for rep in range(reps):
        progress(f"cluster: repetition {rep + 1}/{reps}: {n:,} logins each on one node and on the cluster")
        single_admin.flushall()
        group.flushall()
        single.login("warmup", app="crm")
        cstore.login("warmup", app="crm")
        acked.login("warmup2", app="crm")
        masters = [_plain(m.port) for m in group.masters()]

        single_admin.config_resetstat()
        for i in range(n):
            single.login(f"s{rep}u{i // 2}", **_login_args(i))
        cpu_single.add(_script_usec([single_admin])[0] / n)

        _reset(masters)
        start = time.perf_counter()
        for i in range(n):
            cstore.login(f"c{rep}u{i // 2}", **_login_args(i))
        wall_plain.add((time.perf_counter() - start) / n * 1e6)
        cpu_cluster.add(_script_usec(masters)[0] / n)

        start = time.perf_counter()
        for i in range(n):
            acked.login(f"a{rep}u{i // 2}", **_login_args(i))
        wall_acks.add((time.perf_counter() - start) / n * 1e6)
        for m in masters:
            m.close()

    t = Table(f"10b. Redis CPU per login ({n:,} logins per repetition, 2 per user)",
              ["mode", "Redis µs per login (script call, inner commands included)", "vs one node"])
    t.add("one node, classic layout (store.login)", cpu_single.cell(1), "1")
    t.add(f"cluster, {DEFAULT_BUCKETS} buckets (summed over the masters)", cpu_cluster.cell(1),
          ratio(cpu_cluster, cpu_single).cell(2))
    t.notes.append("INFO commandstats usec of FCALL/EVALSHA after CONFIG RESETSTAT, on the single node "
                   "and on each master. Both run Debian's redis-server 7.0 on the same 2 cores; the "
                   "cluster's six processes share them.")
    sec.tables.append(t)
    r = ratio(cpu_cluster, cpu_single)
    sec.headline.append(("cluster: Redis CPU per login vs one node",
                         f"{fmt(cpu_cluster.median, 1)} µs vs {fmt(cpu_single.median, 1)} µs "
                         f"({fmt(r.median, 2)}×)"))

    a = Table(f"10c. What replica_acks=1 costs per login on the cluster ({n:,} logins per repetition)",
              ["policy", "wall µs per login (one thread)", "vs replica_acks=0"])
    a.add("replica_acks=0 (asynchronous replication)", wall_plain.cell(0), "1")
    a.add("replica_acks=1 (script and WAIT 1 on the shard's connection)", wall_acks.cell(0),
          ratio(wall_acks, wall_plain).cell(2))
    a.notes.append("Wall time per login from one client thread: WAIT adds the replica's "
                   "replication round trip (loopback here; a network hop in production).")
    sec.tables.append(a)
    sec.headline.append(("cluster: login with replica_acks=1 vs without",
                         f"{fmt(wall_acks.median, 0)} µs vs {fmt(wall_plain.median, 0)} µs per login "
                         f"({fmt(ratio(wall_acks, wall_plain).median, 2)}×)"))
    acked.close()

    # memory: the same sessions in both modes, from empty
    m = cfg.memory_sessions
    mem_single, mem_cluster, ex_single, ex_cluster = Sample(), Sample(), Sample(), Sample()
    for rep in range(max(1, cfg.memory_reps - 1)):
        progress(f"cluster: memory repetition {rep + 1}: {m:,} sessions each way")
        single_admin.flushall()
        group.flushall()
        masters = [_plain(x.port) for x in group.masters()]
        single.login("warmup", app="crm")
        cstore.login("warmup", app="crm")
        before, ev0 = _used([single_admin]), _events_bytes([single_admin], single)
        for i in range(m):
            single.login(f"user{i // 2:07d}", **_login_args(i))
        delta = _used([single_admin]) - before
        mem_single.add(delta / m)
        ex_single.add((delta - (_events_bytes([single_admin], single) - ev0)) / m)

        before, ev0 = _used(masters), _events_bytes(masters, cstore)
        for i in range(m):
            cstore.login(f"user{i // 2:07d}", **_login_args(i))
        delta = _used(masters) - before
        mem_cluster.add(delta / m)
        ex_cluster.add((delta - (_events_bytes(masters, cstore) - ev0)) / m)
        for x in masters:
            x.close()
    t = Table(f"10d. Redis memory per session ({m:,} sessions, 2 per user)",
              ["mode", "bytes/session (used_memory delta)", "excluding the event logs", "vs one node"])
    t.add("one node, classic layout", mem_single.cell(), ex_single.cell(), "1")
    t.add(f"cluster, {DEFAULT_BUCKETS} buckets (summed over the masters)", mem_cluster.cell(),
          ex_cluster.cell(), ratio(mem_cluster, mem_single).cell(2))
    t.notes.append("Both from an empty database, so each event log's growth (one per bucket on the cluster, "
                   "capped per bucket) is charged to the sessions in the first column and taken out in the "
                   "second (MEMORY USAGE of the event logs). Replicas hold the same again; a cluster node "
                   "also keeps per-slot key bookkeeping, included here.")
    sec.tables.append(t)
    sec.headline.append(("cluster: Redis memory per session vs one node",
                         f"{fmt(mem_cluster.median)} B vs {fmt(mem_single.median)} B "
                         f"({fmt(ratio(mem_cluster, mem_single).median, 2)}×; excluding event logs "
                         f"{fmt(ex_cluster.median)} B vs {fmt(ex_single.median)} B)"))
    single_admin.flushall()
    group.flushall()
    single.close()
    cstore.close()
    single_admin.close()


def _failover(sec: Section, group, cfg: Config, progress: Progress) -> None:
    from tests.faults.cluster_load import crash_a_master_under_load

    t = Table("10e. A master killed (kill -9) under a steady login load (2 threads, bucketed store)",
              ["policy", "logins acknowledged", "acknowledged then lost", "refused meanwhile",
               "first login on the failed shard after the crash"])
    for acks in (0, 1):
        if len(group.live()) != len(group.nodes):
            group.heal()
        group.flushall()
        progress(f"cluster: killing a master under load, replica_acks={acks}")
        out = crash_a_master_under_load(group, acks)
        refused = ", ".join(f"{k} {v}" for k, v in sorted(out.refused.items())) or "none"
        t.add(f"replica_acks={acks}", f"{out.acked:,}", f"{out.lost:,}", refused,
              f"{out.resumed_after:.1f} s")
        sec.headline.append((f"cluster failover, replica_acks={acks}",
                             f"{out.lost} of {out.acked:,} acknowledged logins lost; logins on the failed "
                             f"shard resumed {out.resumed_after:.1f} s after the crash"))
        if acks:
            sec.targets.append(Target("acknowledged logins lost on a master crash with replica_acks=1",
                                      f"{out.lost} of {out.acked:,}", "0", out.lost == 0))
        if out.unexpected:
            sec.not_done.append(f"failover run (replica_acks={acks}) raised non-store errors: "
                                f"{out.unexpected[:3]}")
    group.heal()
    t.notes.append(f"cluster-node-timeout {group.node_timeout_ms} ms. With replica_acks=1 the promoted "
                   "master has no replica until the crashed node rejoins (restarted by the harness once the "
                   "promotion is seen), so logins on its shard are refused (NotReplicated) until then "
                   "rather than acknowledged unreplicated. Losses without replica_acks need writes "
                   "acknowledged in the last moment before the crash and not yet passed on; on loopback "
                   "replication is fast, so they are rare here and likelier over a network.")
    sec.tables.append(t)
