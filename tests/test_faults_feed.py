"""Live-feed faults at the feed level (core.feed): the subscriber killed during logouts,
and a slow subscriber dropped by Redis for overrunning its pub/sub output buffer. After
each, the feed resyncs and its events have strictly increasing seq with no gap compared
to event:logs; the pages read after the resync equal the truth in Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from feed_collector import Collector

from core import ConnectOptions, Policy, SessionStore
from core.embedded import RedisServer
from core.model import Event, parse_event
from tests.faults import aof_server, client_kill_pubsub, set_pubsub_buffer_limit, wait_until

pytestmark = [pytest.mark.real, pytest.mark.slow]

OPTS = ConnectOptions(socket_timeout=0.5, connect_timeout=0.5, retries=1, backoff_cap=0.2)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with aof_server() as srv:
        yield srv


def log_seqs(store: SessionStore) -> list[int]:
    return sorted(parse_event(x).seq for x in store.client.lrange(store.schema.events, 0, -1))


def truth(store: SessionStore) -> set[str]:
    """Active sessions by reading every session hash (no index involved)."""
    now = time.time()
    out = set()
    for key in store.client.scan_iter(match=store.schema.session_pattern, count=1000):
        h = store.client.hgetall(key)
        if h.get("status") == "active" and float(h["expires_at"]) > now:
            out.add(store.schema.sid_from_session_key(key))
    return out


def test_subscriber_killed_during_logouts_resyncs_without_gap(server: RedisServer) -> None:
    writer = SessionStore.from_url(server.url, options=OPTS, policy=Policy(idle_ttl=3600))
    dash = SessionStore.from_url(server.url, options=OPTS)
    sessions = [writer.login(f"u{i % 30}", app="crm")[0] for i in range(150)]
    reader = Collector(dash)
    wait_until(lambda: reader.resyncs() >= 1)
    kills = 0
    resynced_before = reader.resyncs()
    for i, session in enumerate(sessions[:120]):
        writer.logout(session.sid, actor="root" if i % 2 else None)
        if i % 30 == 15:
            # Each kill hits a feed that has resynced since the previous one.
            if kills:
                wait_until(lambda n=resynced_before: reader.resyncs() > n)
            resynced_before = reader.resyncs()
            kills += client_kill_pubsub(server.url)
    head = log_seqs(writer)[-1]
    wait_until(lambda: head in reader.seqs(), timeout=30)
    resyncs = reader.resyncs()
    reader.close()
    assert kills == 4
    assert resyncs >= 1 + kills  # every re-subscribe was followed by a catch-up/resync
    seqs = reader.seqs()
    assert seqs == sorted(set(seqs))  # strictly increasing: no duplicate
    assert seqs == [s for s in log_seqs(writer) if s >= seqs[0]]  # no gap against the log
    # What a dashboard reloads after the resync equals the truth in Redis.
    page = dash.active_page(limit=1000)
    expected = truth(writer)
    assert {s.sid for s in page.sessions} == expected and page.total == len(expected) == 30
    assert dash.stats().active == 30 and dash.stats().ended == 120
    ended_events = {x.sid for x in reader.items if isinstance(x, Event) and x.kind in ("logout", "admin_logout")}
    assert ended_events == {s.sid for s in sessions[:120]}
    writer.close()
    dash.close()


def test_slow_subscriber_dropped_by_redis_is_detected_and_resynced(server: RedisServer) -> None:
    set_pubsub_buffer_limit(server.url, "64kb 32kb 1")
    writer = SessionStore.from_url(server.url, options=OPTS)
    dash = SessionStore.from_url(server.url, options=OPTS)
    reader = Collector(dash)
    wait_until(lambda: reader.resyncs() >= 1)
    writer.login("first", app="crm")
    wait_until(lambda: len(reader.seqs()) >= 1)
    reader.hold.set()
    # Logins while the reader does not read, plus 15 MB of other publishers' traffic on
    # the channel: past the kernel's socket buffers (a few MB) and the 64 kB limit.
    junk = "j" * 100_000
    for i in range(150):
        if i % 10 == 0:
            writer.login(f"flood{i}", app="crm")
        writer.client.publish(writer.schema.channel, junk)
    wait_until(lambda: writer.client.execute_command("CLIENT", "LIST", "TYPE", "pubsub") == "", timeout=30)
    log = (server.directory / "redis.log").read_text(errors="replace")
    assert "output buffer limits" in log  # Redis dropped it, as intended
    reader.hold.clear()
    head = log_seqs(writer)[-1]
    wait_until(lambda: head in reader.seqs(), timeout=30)
    resyncs = reader.resyncs()
    reader.close()
    seqs = reader.seqs()
    assert seqs == list(range(seqs[0], head + 1))  # every event once, in order
    assert resyncs >= 2
    assert dash.active_page(limit=1000).total == len(truth(writer))
    writer.close()
    dash.close()
