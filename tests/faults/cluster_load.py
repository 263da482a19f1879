"""A steady login load on a bucketed store over a :class:`ClusterGroup`, and a master crash
under it: what the failover tests assert on and what ``python -m bench --only cluster``
reports (acknowledged logins lost, time until logins resume on the failed shard)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis
from redis.crc import key_slot

from core import Policy, SessionStore
from core.errors import StoreError

from .cluster import ClusterGroup, wait_for

BUCKETS = 16
USERS = 400


@dataclass(frozen=True)
class FailoverOutcome:
    """What one crash under load came to."""

    acked: int
    """Logins acknowledged during the whole run."""
    lost: int
    """Acknowledged logins whose session no longer exists afterwards."""
    resumed_after: float
    """Seconds from the crash to the first login acknowledged on the failed shard."""
    refused: dict[str, int]
    """Logins refused meanwhile, by exception type (never acknowledged)."""
    unexpected: list[BaseException]
    """Anything raised that is not a StoreError (should stay empty)."""


def make_store(group: ClusterGroup, policy: Policy | None = None) -> SessionStore:
    # short socket timeouts: a crashed node refuses at once, but a half-dead one must not
    # hold a login thread for long
    client = group.client(socket_timeout=2, socket_connect_timeout=2)
    return SessionStore(client, buckets=BUCKETS, policy=policy)


@dataclass
class Ack:
    sid: str
    at: float


@dataclass
class ClusterLogins:
    """Logins from ``threads`` threads, each with its own store, until stopped or until
    ``max_seconds`` pass (the threads stop by themselves either way). Acknowledged logins
    are kept with their time; refusals are counted by exception type."""

    group: ClusterGroup
    policy: Policy | None = None
    threads: int = 2
    max_seconds: float = 150.0
    acked: list[Ack] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    unexpected: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, n: int) -> None:
        store = make_store(self.group, self.policy)
        end = time.monotonic() + self.max_seconds
        i = n
        try:
            while not self.stop.is_set() and time.monotonic() < end:
                try:
                    session, _ = store.login(f"load{i % USERS}", app="crm")
                    with self._lock:
                        self.acked.append(Ack(session.sid, time.monotonic()))
                except StoreError as exc:
                    with self._lock:
                        name = type(exc).__name__
                        self.refused[name] = self.refused.get(name, 0) + 1
                    self.stop.wait(0.05)
                except Exception as exc:  # recorded; the test fails on it
                    with self._lock:
                        self.unexpected.append(exc)
                    self.stop.wait(0.05)
                i += self.threads
        finally:
            store.close()

    def acks(self) -> int:
        with self._lock:
            return len(self.acked)

    def __enter__(self) -> ClusterLogins:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            self._workers.append(t)
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._workers:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._workers), "a login thread did not stop"


def slot_of(store: SessionStore, sid: str) -> int:
    return key_slot(store.buckets.schema(store.buckets.of_sid(sid)).session(sid).encode())


def slots_of(group: ClusterGroup, server_port: int) -> set[int]:
    client = redis.Redis(port=group.live()[0].port, decode_responses=True)
    try:
        out: set[int] = set()
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if int(primary[1]) == server_port:
                out.update(range(int(start), int(end) + 1))
        return out
    finally:
        client.close()


def lost_logins(group: ClusterGroup, acked: list[Ack]) -> int:
    """Acknowledged sessions that no longer exist (read through a fresh store)."""
    checker = make_store(group)
    try:
        client = checker.client
        missing = 0
        for a in acked:
            key = checker.buckets.schema(checker.buckets.of_sid(a.sid)).session(a.sid)
            missing += 0 if client.exists(key) else 1
        return missing
    finally:
        checker.close()


def crash_a_master_under_load(group: ClusterGroup, acks: int) -> FailoverOutcome:
    """Kill -9 a master under load, wait for its replica's promotion and for logins on the
    failed shard to resume; bring the crashed node back as a replica, let the load go on a
    little, stop it and count the acknowledged logins that were lost."""
    probe = make_store(group)
    with ClusterLogins(group, Policy(replica_acks=acks)) as load:
        wait_for(lambda: load.acks() >= 300, 60, "the login load did not start")
        victim = group.masters()[0]
        moved = slots_of(group, victim.port)
        standby = group.kill(victim)
        if standby is None:
            raise AssertionError(f"{victim.port} was not a master")
        killed_at = time.monotonic()
        group.wait_promoted(standby)
        if acks:
            # the promoted master has no replica until the crashed node rejoins: its logins
            # are refused as NotReplicated, never acknowledged unreplicated
            group.restart(victim)

        def resumed_on_failed_shard() -> bool:
            with load._lock:
                return any(a.at > killed_at and slot_of(probe, a.sid) in moved for a in load.acked)

        wait_for(resumed_on_failed_shard, 90, "logins on the failed shard did not resume")
        with load._lock:
            first = min(a.at for a in load.acked if a.at > killed_at and slot_of(probe, a.sid) in moved)
        group.restart(victim)
        group.wait_healthy()
        settled = load.acks()
        wait_for(lambda: load.acks() >= settled + 100, 60, "logins did not go on after the rejoin")
    probe.close()
    return FailoverOutcome(acked=len(load.acked), lost=lost_logins(group, load.acked),
                           resumed_after=first - killed_at, refused=dict(load.refused),
                           unexpected=list(load.unexpected))


