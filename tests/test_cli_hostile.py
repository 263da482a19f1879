"""Every CLI subcommand against hostile text and malformed values planted by another app:
no escape sequence (or bidi, zero-width, NUL) in what it prints, no traceback, and
``--json`` is strict JSON (no NaN/Infinity) on a real redis-server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
import redis
from hostile import DEEP_JSON, HOSTILE, MALFORMED_NUMBERS, forbidden_in

from core import SessionStore
from core.display import UNSAFE
from core.model import read_epoch
from tui import cli

TIME_FIELDS = ("login_time", "last_seen", "expires_at", "max_expires_at", "logout_time")


@pytest.fixture
def redis_url(real_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    return real_url


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def b(text: object) -> bytes:
    return str(text).encode("utf-8", "surrogateescape")


def strict(line: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(line, parse_constant=refuse)


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--url", url])
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


READ_COMMANDS = [
    ("sessions",), ("sessions", "--json"), ("sessions", "--status", "inactive"),
    ("sessions", "--status", "inactive", "--json"), ("sessions", "--all"), ("sessions", "--sort", "expires_at"),
    ("events", "--limit", "200"), ("events", "--limit", "200", "--json"), ("stats",), ("stats", "--json"),
    ("health",), ("export",), ("sessions", "--anonymous"), ("sessions", "--anonymous", "--json"),
    ("anomalies",), ("anomalies", "--json"),
]


def plant(raw: redis.Redis, store: SessionStore, now: float) -> list[str]:
    """Hostile text in every field, key name, cache entry and event attribute."""
    s = store.schema
    sids = []
    for i, (name, text) in enumerate(HOSTILE.items()):
        sid = f"{text[:40] if name != 'badutf8' else 'bad'}{name}{i:02d}"
        sids.append(sid)
        fields = {f: text for f in ("username", "app", "type", "ip", "user_agent", "email", "department",
                                    "ended_by", "end_reason")}
        fields.update(status="active" if i % 2 else "inactive", login_time=now - 60, last_seen=now - i,
                      expires_at=now + 3600, logout_time=now - 5)
        fields[f"meta {text[:30]}"] = text
        raw.hset(b(s.session(sid)), mapping={b(k): b(v) for k, v in fields.items()})
        if i % 2:
            for key in (s.idx_seen, s.idx_login, s.idx_expiry):
                raw.zadd(key, {b(sid): now - i})
        else:
            raw.zadd(s.idx_ended, {b(sid): now + 30 * 86400})  # scored by purge time
        raw.zadd(s.idx_search, {b(f"u:{text}"): 0})
        raw.rpush(b(s.user_sessions(text)), b(sid))
        raw.hset(s.stats_app, b(text), 1)
        raw.set(b(s.cache(sid)), json.dumps({"username": text, text[:20]: text}), ex=600)
        raw.lpush(s.events, json.dumps({"seq": 900 + i, "ts": now, "kind": text, "sid": sid, "username": text,
                                        "app": text, "actor": text, "ip": text, "reason": text, text: text}))
        raw.lpush(s.events, b(f"plain {name}: {text}"))
        aid = f"{text[:30] if name != 'badutf8' else 'bad'}anon{i:02d}"
        raw.hset(b(s.anonymous(aid)), mapping={b("app"): b(text), b("created_at"): b(text),
                                               b("last_seen"): now, b(f"d:{text[:20]}"): b(text)})
        raw.zadd(s.idx_anonymous, {b(aid): now + 600})
    return sids


def test_every_read_command_prints_hostile_text_only_escaped(capsys, redis_url, raw) -> None:
    with SessionStore.from_url(redis_url) as store:
        store.login("alice", app="crm")  # the indexes
        now = store.ctx.clock()
        plant(raw, store, now)
    for args in READ_COMMANDS:
        code, out, err = run(capsys, redis_url, *args)
        assert code == 0, (args, err)
        data = (out + err).encode("utf-8", "backslashreplace")
        assert forbidden_in(data) == [], args
        assert not any(UNSAFE.search(line) for line in (out + err).splitlines()), args
        if "--json" in args or args[0] == "export":
            for line in out.splitlines():
                strict(line)
    code, out, err = run(capsys, redis_url, "sessions", "--user", HOSTILE["click"])
    assert code == 0 and "[@click=app.quit]CLICKME[/]" in out
    code, out, err = run(capsys, redis_url, "sessions", "--anonymous")
    assert code == 0 and "\\x1b]52;" in out and "\\u202e" in out  # aid and app of visitors' sessions
    code, out, err = run(capsys, redis_url, "events", "--limit", "200")
    assert "\\x1b]52;c;" in out and "\\u202e" in out and "\\x00byte" in out


@pytest.mark.parametrize("value", MALFORMED_NUMBERS)
def test_malformed_values_never_crash_any_read_command(capsys, redis_url, raw, value) -> None:
    with SessionStore.from_url(redis_url) as store:
        store.login("alice", app="crm")
        now = store.ctx.clock()
        s = store.schema
        for i, name in enumerate(TIME_FIELDS):
            sid = f"bad-{name}"
            fields = {"username": f"u{i}", "app": "other", "status": "active", "login_time": now,
                      "last_seen": now, "expires_at": now + 600, name: value}
            raw.hset(s.session(sid), mapping=fields)
            for key in (s.idx_seen, s.idx_login, s.idx_expiry):
                raw.zadd(key, {sid: now})
            raw.set(s.cache(sid), '{"login_time": %s, "x": NaN}' % (value or "1e400"))
        raw.lpush(s.events, f'{{"kind": "login", "seq": 50, "ts": "{value}", "username": "t"}}')
        raw.lpush(s.events, '{"kind": "login", "seq": 51, "ts": %s}' % (value if value.strip() else "1e400"))
        raw.lpush(s.events, '{"kind": "login", "seq": 52, "ts": NaN, "n": Infinity}')
        raw.lpush(s.events, '{"kind": "login", "seq": 53, "x": ' + DEEP_JSON + "}")
    for args in [*READ_COMMANDS, ("sessions", "--user", "u1"), ("sessions", "--user", "u4", "--json")]:
        code, out, err = run(capsys, redis_url, *args)
        assert code == 0, (args, err)
        if "--json" in args or args[0] == "export":
            rows = [strict(line) for line in out.splitlines()]
            for row in rows:
                for v in (row.values() if isinstance(row, dict) else []):
                    assert not (isinstance(v, float) and not math.isfinite(v))
    code, out, err = run(capsys, redis_url, "sessions", "--json")
    rows = {r["sid"]: r for r in map(strict, out.splitlines())}
    listed = {f"bad-{n}" for n in TIME_FIELDS if n != "logout_time"}
    expiry, why = read_epoch(value)
    if not why and expiry is not None:
        listed.discard("bad-expires_at")  # a valid time (in the past): rightly not active
    assert listed <= set(rows)
    for sid in listed:
        if read_epoch(value)[1]:
            assert any("invalid" in p for p in rows[sid]["problems"]), rows[sid]


def test_wrong_redis_types_are_reported_not_raised(capsys, redis_url, raw) -> None:
    with SessionStore.from_url(redis_url) as store:
        store.login("alice", app="crm")
        s = store.schema
        raw.set(s.session("strsess"), "not a hash")
        for key in (s.idx_seen, s.idx_login, s.idx_expiry):
            raw.zadd(key, {"strsess": store.ctx.clock()})
        raw.set(s.user_sessions("alice"), "not a list")
        raw.lpush(s.cache("x"), "a list")
    for args in [*READ_COMMANDS, ("sessions", "--user", "alice")]:
        code, out, err = run(capsys, redis_url, *args)
        assert code in (0, 1), (args, err)
    raw.delete(s.events)
    raw.hset(s.events, "a", "b")  # the event log of the wrong type
    for args in (("events",), ("events", "--json")):
        code, out, err = run(capsys, redis_url, *args)
        assert code in (0, 1), (args, err)
