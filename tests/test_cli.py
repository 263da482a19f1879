"""The ``sessionwatch`` CLI, run in-process (``main([...])`` returns the exit code)
against a real redis-server: every command's happy path, JSON output, every error path
(one line on stderr, the right exit code, no traceback), the classic layout written
with raw commands, export/import round trip and reindex."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest
import redis

from core import Policy, SessionStore
from core.embedded import RedisServer, free_port
from tui import cli
from tui.cli import main

pytestmark = pytest.mark.real


class Run:
    """Run the CLI and keep what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str) -> None:
        self.capsys, self.url = capsys, url
        self.out = self.err = ""

    def __call__(self, *args: str, url: bool = True) -> int:
        argv = [*args, "--url", self.url] if url else list(args)
        code = main(argv)
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        assert "Traceback" not in self.err
        return code

    def one_error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("sessionwatch: error: ")
        return lines[0]

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def sw(capsys: pytest.CaptureFixture[str], real_url: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    return Run(capsys, real_url)


@pytest.fixture
def app_store(real_url: str) -> Iterator[SessionStore]:
    """The app side: a store writing sessions into the same Redis the CLI reads."""
    with SessionStore.from_url(real_url) as store:
        yield store


@pytest.fixture
def raw(real_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(real_url, decode_responses=True)
    yield client
    client.close()


def login(store: SessionStore, user: str = "alice", app: str = "crm", ip: str = "203.0.113.7"):
    return store.login(user, app=app, type="web", ip=ip, user_agent="pytest")[0]


# --- help and parsing -----------------------------------------------------------------------

@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_has_accurate_help(command: str, sw: Run) -> None:
    assert sw(command, "--help", url=False) == 0
    assert f"usage: sessionwatch {command}" in sw.out
    for option in ("--url", "--prefix", "--read-only", "--timeout", "--password-file"):
        assert option in sw.out


def test_top_level_help_lists_every_command(sw: Run) -> None:
    assert sw("--help", url=False) == 0
    for command in cli.COMMANDS:
        assert command in sw.out


def test_global_options_work_before_and_after_the_command(sw: Run, app_store: SessionStore) -> None:
    login(app_store)
    assert sw("--url", sw.url, "--timeout", "3", "sessions", "--json", url=False) == 0
    assert sw.json_lines()[0]["username"] == "alice"
    args = cli.parse_args(["--prefix", "a:", "stats", "--timeout", "5"])
    assert (args.prefix, args.timeout, args.command) == ("a:", 5.0, "stats")


def test_usage_errors_are_one_line(sw: Run) -> None:
    assert sw("sessions", "--limit", "0") == cli.EXIT_USAGE
    assert "--limit" in sw.one_error_line()
    assert sw("frobnicate", url=False) == cli.EXIT_USAGE
    sw.one_error_line()
    assert sw("logout") == cli.EXIT_USAGE
    assert "session id or --user" in sw.one_error_line()


# --- sessions -------------------------------------------------------------------------------

def test_sessions_lists_active_newest_first_with_short_ids(sw: Run, app_store: SessionStore) -> None:
    first = login(app_store, "alice")
    second = login(app_store, "bob", app="erp", ip="2001:db8::5")
    assert sw("sessions") == 0
    lines = sw.out.splitlines()
    assert lines[0].startswith("SID")
    assert first.short_id in sw.out and second.short_id in sw.out
    assert first.sid not in sw.out  # only the short id in the table
    assert "2001:db8::5" in sw.out


def test_sessions_json_lines_parse(sw: Run, app_store: SessionStore) -> None:
    s = login(app_store)
    assert sw("sessions", "--json") == 0
    [row] = sw.json_lines()
    assert row["sid"] == s.sid and row["active"] is True and row["short_id"] == s.short_id
    assert row["ip"] == "203.0.113.7" and row["problems"] == []


def test_sessions_inactive_and_by_user(sw: Run, app_store: SessionStore) -> None:
    ended = login(app_store, "alice")
    live = login(app_store, "alice", app="wiki")
    login(app_store, "bob")
    app_store.logout(ended.sid)
    assert sw("sessions", "--status", "inactive", "--json") == 0
    [row] = sw.json_lines()
    assert row["sid"] == ended.sid and row["end_reason"] == "logout" and row["active"] is False
    assert sw("sessions", "--status", "inactive") == 0
    assert "(logout)" in sw.out
    assert sw("sessions", "--user", "alice", "--json") == 0
    assert {r["sid"] for r in sw.json_lines()} == {ended.sid, live.sid}
    assert sw("sessions", "--user", "alice", "--status", "active", "--json") == 0
    assert [r["sid"] for r in sw.json_lines()] == [live.sid]


def test_sessions_limit_and_all_page_through_everything(sw: Run, app_store: SessionStore) -> None:
    sids = {login(app_store, f"user{i:04d}").sid for i in range(620)}
    assert sw("sessions", "--limit", "7", "--json") == 0
    assert len(sw.json_lines()) == 7
    assert sw("sessions", "--all", "--json") == 0
    rows = sw.json_lines()
    assert len(rows) == 620 and {r["sid"] for r in rows} == sids


def test_no_sessions_is_not_an_error(sw: Run) -> None:
    assert sw("sessions") == 0
    assert sw.out == "" and "no sessions match" in sw.err


def test_terminal_escapes_from_other_writers_are_shown_literally(sw: Run, raw: redis.Redis) -> None:
    raw.hset("session:evil", mapping={"username": "mallory\x1b]0;pwned\x07", "app": "crm\x1b[2J",
                                      "status": "active", "login_time": "2030-01-01T00:00:00Z"})
    assert sw("sessions") == 0
    assert "\x1b" not in sw.out and "\x07" not in sw.out
    assert "mallory\\x1b]0;pwned" in sw.out
    assert sw("sessions", "--json") == 0
    assert "\x1b" not in sw.out
    assert sw.json_lines()[0]["username"] == "mallory\x1b]0;pwned\x07"


# --- logout ---------------------------------------------------------------------------------

def test_logout_by_short_id_records_the_actor(sw: Run, app_store: SessionStore,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.23 50022 192.0.2.1 22")
    s = login(app_store, "alice")
    assert sw("logout", s.short_id) == 0
    assert s.short_id in sw.out and "alice" in sw.out and "203.0.113.7" in sw.out
    assert app_store.get(s.sid).status == "inactive"
    ev = app_store.events(limit=1)[0]
    assert ev.kind == "admin_logout" and ev.sid == s.sid
    assert ev.actor.endswith("@ssh:198.51.100.23")


def test_logout_by_full_id(sw: Run, app_store: SessionStore) -> None:
    s = login(app_store)
    assert sw("logout", s.sid) == 0
    assert not app_store.get(s.sid).is_active(time.time())


def test_logout_unknown_or_ended_session_is_one_line_exit_1(sw: Run, app_store: SessionStore) -> None:
    assert sw("logout", "0123456789abcdef") == 1
    assert "no such session" in sw.one_error_line()
    s = login(app_store)
    app_store.logout(s.sid)
    assert sw("logout", s.short_id) == 1
    assert "already ended" in sw.one_error_line()
    assert sw("logout", "abc") == 1  # too short to look up by prefix
    sw.one_error_line()


def test_logout_ambiguous_prefix(sw: Run, raw: redis.Redis, app_store: SessionStore) -> None:
    for sid in ("feed0001", "feed0002"):
        app_store.adopt(sid, {"username": "u", "status": "active", "app": "crm"})
    assert sw("logout", "feed") == cli.EXIT_USAGE
    assert "ambiguous" in sw.one_error_line()


def test_logout_user(sw: Run, app_store: SessionStore) -> None:
    a, b = login(app_store, "alice"), login(app_store, "alice", app="mail")
    other = login(app_store, "bob")
    assert sw("logout", "--user", "alice") == 0
    assert "2 session(s) of alice" in sw.out
    assert all(not app_store.get(s.sid).is_active(time.time()) for s in (a, b))
    assert app_store.get(other.sid).is_active(time.time())
    assert sw("logout", "--user", "alice") == 1
    assert "no active sessions" in sw.one_error_line()


def test_logout_other_apps_sessions_with_long_ids_and_user_names(sw: Run, raw: redis.Redis) -> None:
    """JWT-style ids (over 256 characters) and long user names of other apps' sessions."""
    jwt_sid, long_user = "eyJhbGciOiJIUzI1NiJ9." + "y" * 400 + ".sig", "v" * 300
    for sid in (jwt_sid, "other-1"):
        raw.hset(f"session:{sid}", mapping={"username": long_user, "app": "jwtapp", "status": "active",
                                             "login_time": str(time.time())})
        raw.sadd(f"user:active_sessions:{long_user}", sid)
    assert sw("logout", jwt_sid) == 0
    assert raw.hget(f"session:{jwt_sid}", "status") == "inactive"
    assert sw("logout", "--user", long_user) == 0
    assert "1 session(s)" in sw.out
    assert raw.hget("session:other-1", "status") == "inactive"


def test_invalid_input_is_exit_2(sw: Run) -> None:
    assert sw("logout", "--user", "bad\x1bname") == cli.EXIT_USAGE
    assert "invalid input" in sw.one_error_line()


# --- read-only ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["logout", "abcdef12"], ["logout", "--user", "alice"], ["sweep"],
                                  ["import", "/nonexistent"], ["reindex"], ["simulate", "--ops", "1"]])
def test_read_only_refuses_writes(argv: list[str], sw: Run, app_store: SessionStore) -> None:
    s = login(app_store, "alice")
    before = len(app_store.events(limit=100))
    assert sw(*argv, "--read-only") == cli.EXIT_REFUSED
    assert "--read-only" in sw.one_error_line()
    assert app_store.get(s.sid).status == "active"
    assert len(app_store.events(limit=100)) == before


def test_read_only_still_reads(sw: Run, app_store: SessionStore) -> None:
    login(app_store)
    for argv in (["sessions"], ["stats"], ["events"], ["health"], ["export"]):
        assert sw(*argv, "--read-only") == 0, argv


def test_acl_permission_denied_is_exit_4(sw: Run, raw: redis.Redis, app_store: SessionStore) -> None:
    s = login(app_store)
    raw.acl_setuser("cli-reader", enabled=True, passwords=["+reader-password-123"], keys=["*"],
                    commands=["+@read", "+ping", "+hello", "+info", "+client"])
    try:
        url = sw.url.replace("redis://", "redis://cli-reader:reader-password-123@")
        assert sw("sessions", "--url", url, url=False) == 0
        assert sw("logout", s.sid, "--url", url, url=False) == cli.EXIT_REFUSED
        assert "denied" in sw.one_error_line()
    finally:
        raw.acl_deluser("cli-reader")
    assert app_store.get(s.sid).status == "active"


# --- connection errors ----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["health", "sessions", "stats", "events", "export", "sweep"])
def test_unreachable_redis_is_one_line_exit_3(command: str, sw: Run) -> None:
    assert sw(command, "--url", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "0.5", url=False) == 3
    assert "cannot reach Redis" in sw.one_error_line()
    assert sw.out == ""


@pytest.mark.parametrize("url", ["http://127.0.0.1:21084/0", "redis://127.0.0.1:notaport/0", ""])
def test_bad_url_is_one_line_exit_2(url: str, sw: Run) -> None:
    assert sw("health", "--url", url, url=False) == cli.EXIT_USAGE
    assert "url" in sw.one_error_line()


def test_default_url_comes_from_redis_url_env(sw: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", sw.url)
    assert sw("health", url=False) == 0
    assert sw.out.startswith("ok: ")


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    with RedisServer(args=["--requirepass", "s3cret-pw", "--save", "", "--appendonly", "no"]) as server:
        yield server


def test_wrong_or_missing_password_is_one_line_exit_3(sw: Run, password_server: RedisServer) -> None:
    wrong = password_server.url.replace("redis://", "redis://:not-it@")
    assert sw("health", "--url", wrong, url=False) == 3
    line = sw.one_error_line()
    assert "refused the credentials" in line and "not-it" not in line
    assert sw("sessions", "--url", password_server.url, url=False) == 3
    assert "requires authentication" in sw.one_error_line()


def test_password_file_is_used_and_never_printed(sw: Run, password_server: RedisServer, tmp_path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pw\n")
    assert sw("health", "--url", password_server.url, "--password-file", str(pw), url=False) == 0
    assert "s3cret-pw" not in sw.out + sw.err
    assert sw("health", "--url", password_server.url, "--password-file", str(tmp_path / "missing"),
              url=False) == 1
    assert "password-file" in sw.one_error_line()


def test_with_password_keeps_user_and_encodes() -> None:
    assert cli.with_password("redis://bob@h:1/2", "p@ss:/") == "redis://bob:p%40ss%3A%2F@h:1/2"
    assert cli.with_password("rediss://:old@h:1/0?ssl_ca_certs=/ca.pem", "n") == \
        "rediss://:n@h:1/0?ssl_ca_certs=/ca.pem"
    assert "password=n" in cli.with_password("unix:///tmp/r.sock?db=1", "n")


# --- events, stats, sweep, health -------------------------------------------------------------

def test_events_text_and_json(sw: Run, app_store: SessionStore, raw: redis.Redis) -> None:
    s = login(app_store, "alice")
    app_store.logout(s.sid, actor="root@ssh:192.0.2.9")
    raw.lpush("event:logs", "plain line from another app")
    assert sw("events", "--limit", "3") == 0
    lines = sw.out.splitlines()
    assert "login" in lines[0] and "admin_logout" in lines[1] and "by root@ssh:192.0.2.9" in lines[1]
    assert lines[2].endswith("plain line from another app")
    assert sw("events", "--limit", "3", "--json") == 0
    rows = sw.json_lines()
    assert [r["kind"] for r in rows] == ["login", "admin_logout", "text"]
    assert rows[1]["sid"] == s.sid and rows[2]["raw"] == "plain line from another app"


def test_events_follow_prints_new_events(sw: Run, app_store: SessionStore) -> None:
    login(app_store, "before")
    stop = threading.Event()

    def traffic() -> None:
        # start once the follower listens (a condition, not a head start in time): each
        # login is then either its one backlog line or a new event, never lost
        while not stop.is_set() and not app_store.client.pubsub_numsub(app_store.schema.channel)[0][1]:
            stop.wait(0.01)
        for i in range(200):
            if stop.wait(0.05):
                return
            login(app_store, f"live{i}")

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        assert sw("events", "--follow", "--count", "2", "--limit", "1", "--json") == 0
    finally:
        stop.set()
        worker.join(5)
    rows = sw.json_lines()
    assert len(rows) == 3 and rows[0]["username"] in ("before", "live0")
    assert all(r["username"].startswith("live") for r in rows[1:])
    assert rows[0]["seq"] < rows[1]["seq"] < rows[2]["seq"]


def test_follow_events_stops_on_stop_event(app_store: SessionStore) -> None:
    login(app_store)
    stop = threading.Event()
    out = io.StringIO()
    threading.Timer(0.5, stop.set).start()
    assert cli.follow_events(app_store, 5, cli.event_line, stop=stop, out=out) == 1
    assert "login" in out.getvalue()


def test_stats_text_and_json(sw: Run, app_store: SessionStore) -> None:
    login(app_store, "alice", app="crm")
    login(app_store, "bob", app="erp")
    app_store.logout(login(app_store, "carol").sid)
    assert sw("stats", "--json") == 0
    [st] = sw.json_lines()
    assert st["active"] == 2 and st["ended"] == 1 and st["by_app"] == {"crm": 1, "erp": 1}
    assert st["mode"] == "index" and sum(st["logins_per_minute"]) == 3
    assert sw("stats") == 0
    assert "active       2" in sw.out and "crm 1" in sw.out


def test_stats_count_anonymous_sessions_apart(sw: Run, app_store: SessionStore) -> None:
    login(app_store, "alice", app="crm")
    app_store.save_anonymous(None, {"cart": "[1]"}, app="shop")
    app_store.save_anonymous(None, {"_flashes": "[]"}, app="shop")
    assert sw("stats", "--json") == 0
    [st] = sw.json_lines()
    assert st["active"] == 1 and st["anonymous"] == 2
    assert sw("stats") == 0
    assert "anonymous    2" in sw.out and "active       1" in sw.out
    assert sw("sessions", "--anonymous", "--json") == 0
    rows = sw.json_lines()
    assert len(rows) == 2 and {r["app"] for r in rows} == {"shop"} and {r["keys"] for r in rows} == {1}
    assert sw("sessions", "--anonymous") == 0
    assert "ANON ID" in sw.out and "[1]" not in sw.out  # the data itself is never shown
    assert sw("sessions", "--json") == 0
    assert [r["username"] for r in sw.json_lines()] == ["alice"]


def test_sweep_ends_expired_sessions(sw: Run, real_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    past = SessionStore.from_url(real_url, policy=Policy(idle_ttl=60), clock=lambda: time.time() - 600)
    s = login(past)
    past.close()
    monkeypatch.setenv("USER", "tester")
    assert sw("sweep") == 0
    assert "ended 1 expired" in sw.out
    with SessionStore.from_url(real_url) as store:
        assert store.get(s.sid).end_reason == "expired"
        assert store.events(limit=1)[0].actor.startswith("sweep:")


def test_health_ok(sw: Run) -> None:
    assert sw("health") == 0
    assert sw.out.startswith("ok: ") and "redis 6.2" in sw.out and len(sw.out.splitlines()) == 1


# --- export / import / reindex --------------------------------------------------------------

def test_export_import_round_trip_into_an_empty_redis(sw: Run, app_store: SessionStore, tmp_path) -> None:
    live = login(app_store, "alice")
    ended = login(app_store, "bob", app="erp")
    app_store.update_profile(live.sid, email="alice@example.com", department="sales")
    app_store.logout(ended.sid)
    backup = tmp_path / "sessions.jsonl"
    assert sw("export", "--out", str(backup)) == 0
    assert backup.stat().st_mode & 0o777 == 0o600
    records = [json.loads(line) for line in backup.read_text().splitlines()]
    assert {r["sid"] for r in records} == {live.sid, ended.sid}

    empty = sw.url.rsplit("/", 1)[0] + "/1"  # another database on the same server: empty
    assert sw("import", str(backup), "--url", empty, url=False) == cli.EXIT_USAGE  # live: needs --trust
    assert "--trust" in sw.one_error_line() and "nothing was written" in sw.err
    assert sw("import", str(backup), "--trust", "--url", empty, url=False) == 0
    assert "imported 2" in sw.out
    with SessionStore.from_url(empty) as restored:
        got = restored.get(live.sid)
        assert got.email == "alice@example.com" and got.is_active(time.time())
        assert restored.get(ended.sid).status == "inactive"
        assert [s.sid for s in restored.active_page().sessions] == [live.sid]
        assert [s.sid for s in restored.ended_page().sessions] == [ended.sid]
        assert restored.stats().active == 1
    # importing again never overwrites
    assert sw("import", str(backup), "--trust", "--url", empty, url=False) == 0
    assert "imported 0" in sw.out and "skipped 2" in sw.out


def test_export_to_stdout_and_import_from_stdin(sw: Run, app_store: SessionStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    s = login(app_store)
    assert sw("export") == 0
    dump = sw.out
    assert json.loads(dump)["sid"] == s.sid
    empty = sw.url.rsplit("/", 1)[0] + "/2"
    monkeypatch.setattr("sys.stdin", io.StringIO(dump))
    assert sw("import", "--trust", "--url", empty, url=False) == 0
    assert "imported 1" in sw.out


@pytest.mark.parametrize("content, problem", [
    ("not json\n", "line 1: not JSON"),
    ('{"sid": "a"}\n', "line 1: expected"),
    ('{"sid": "a", "fields": {"username": "u", "status": "inactive"}}\n{"sid": "b", "fields": {"app": "x"}}\n',
     "line 2: fields.username"),
    ('{"sid": "a", "fields": {"username": "u\\u001b[2J"}}\n', "line 1: fields.username"),
    ('{"sid": "a", "fields": {"username": ["x"]}}\n', "line 1: fields.username"),
])
def test_import_rejects_bad_input_before_writing(content: str, problem: str, sw: Run, tmp_path,
                                                 raw: redis.Redis) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert sw("import", str(path)) == cli.EXIT_USAGE
    assert problem in sw.one_error_line()
    assert raw.dbsize() == 0


def test_import_missing_file(sw: Run, tmp_path) -> None:
    assert sw("import", str(tmp_path / "nope.jsonl")) == 1
    assert "cannot read" in sw.one_error_line()


# --- the classic layout (another app's raw commands, no sessionwatch indexes) ---------------

def write_classic(raw: redis.Redis) -> None:
    now = time.time()
    raw.hset("session:classic-alice-1", mapping={
        "username": "alice", "app": "crm", "type": "web", "ip": "192.0.2.10",
        "login_time": str(now - 120), "last_seen": str(now - 60), "expires_at": str(now + 1800),
        "status": "active"})
    raw.hset("session:classic-alice-0", mapping={
        "username": "alice", "app": "crm", "status": "inactive", "login_time": "2026-01-01T10:00:00Z",
        "logout_time": "2026-01-01T11:00:00Z", "end_reason": "logout"})
    raw.hset("session:classic-bob-1", mapping={
        "username": "bob", "app": "shop", "type": "mobile", "status": "active",
        "login_time": str(now - 30), "expires_at": str(now + 600)})
    raw.sadd("user:active_sessions:alice", "classic-alice-1")
    raw.sadd("user:active_sessions:bob", "classic-bob-1")
    raw.lpush("user:sessions:alice", "classic-alice-0", "classic-alice-1")
    raw.lpush("event:logs", "2026-01-01 10:00:00 alice logged in to crm")
    raw.set("cache:session:classic-alice-1", json.dumps({"username": "alice"}))


def test_classic_layout_reads(sw: Run, raw: redis.Redis) -> None:
    write_classic(raw)
    assert sw("sessions", "--json") == 0
    assert {r["sid"] for r in sw.json_lines()} == {"classic-alice-1", "classic-bob-1"}
    assert "classic layout" in sw.err and "reindex" in sw.err
    assert sw("sessions", "--status", "inactive", "--json") == 0
    assert [r["sid"] for r in sw.json_lines()] == ["classic-alice-0"]
    assert sw("sessions", "--user", "alice", "--json") == 0
    assert {r["sid"] for r in sw.json_lines()} == {"classic-alice-0", "classic-alice-1"}
    assert sw("stats", "--json") == 0
    [st] = sw.json_lines()
    assert (st["active"], st["ended"], st["mode"]) == (2, 1, "scan")
    assert st["by_app"] == {"crm": 1, "shop": 1}
    assert sw("events") == 0
    assert "alice logged in to crm" in sw.out
    assert sw("export") == 0
    assert len(sw.json_lines()) == 3
    assert sw("health") == 0


def test_classic_layout_logout(sw: Run, raw: redis.Redis) -> None:
    write_classic(raw)
    assert sw("logout", "classic-bob-1") == 0
    assert raw.hget("session:classic-bob-1", "status") == "inactive"
    assert sw("logout", "classic-alice-0") == 1
    assert "already ended" in sw.one_error_line()
    assert sw("logout", "--user", "alice") == 0
    assert raw.hget("session:classic-alice-1", "status") == "inactive"


def test_reindex_makes_a_classic_redis_fully_indexed(sw: Run, raw: redis.Redis) -> None:
    write_classic(raw)
    for i in range(30):
        raw.hset(f"session:bulk-{i:03d}", mapping={"username": f"u{i}", "status": "active", "app": "wiki",
                                                   "login_time": str(time.time())})
    raw.set("session:not-a-hash", "x")  # another app's odd key: skipped by SCAN TYPE hash
    assert sw("reindex", "--batch", "7") == 0
    assert "33 session key(s) scanned, 33 newly indexed" in sw.out
    assert sw("stats", "--json") == 0
    [st] = sw.json_lines()
    assert (st["mode"], st["active"], st["ended"]) == ("index", 32, 1)
    assert sw("sessions", "--all", "--json") == 0
    assert len(sw.json_lines()) == 32 and "classic layout" not in sw.err
    assert sw("reindex") == 0
    assert "0 newly indexed" in sw.out


# --- dashboard and demo wiring (no terminal) ------------------------------------------------

class FakeApp:
    def __init__(self, store: SessionStore, **kw: object) -> None:
        self.store, self.kw = store, kw
        FakeApp.made.append(self)

    def run(self) -> None:
        self.ping = self.store.ping()

    made: ClassVar[list[FakeApp]] = []


def test_no_command_opens_the_dashboard(sw: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.app

    FakeApp.made = []
    monkeypatch.setattr(tui.app, "build_app", FakeApp)
    monkeypatch.setenv("REDIS_URL", sw.url)
    assert sw("--read-only", url=False) == 0
    [app] = FakeApp.made
    assert app.kw["read_only"] is True and app.kw["refresh_interval"] == 2.0 and app.kw["feed"] is True
    assert app.kw["actor"] and app.ping is True


def test_watch_target_label_is_redacted(sw: Run, monkeypatch: pytest.MonkeyPatch,
                                        password_server: RedisServer) -> None:
    import tui.app

    FakeApp.made = []
    monkeypatch.setattr(tui.app, "build_app", FakeApp)
    url = password_server.url.replace("redis://", "redis://:s3cret-pw@")
    assert sw("watch", "--url", url, "--refresh", "0.5", "--no-feed", url=False) == 0
    [app] = FakeApp.made
    assert "s3cret-pw" not in app.kw["target_label"] and "***" in app.kw["target_label"]
    assert app.kw["refresh_interval"] == 0.5 and app.kw["feed"] is False


def test_demo_command_ignores_redis_url_env(sw: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.demo

    calls: list[dict] = []
    monkeypatch.setattr(tui.demo, "run", lambda **kw: calls.append(kw) or 0)
    monkeypatch.setenv("REDIS_URL", sw.url)
    assert sw("demo", "--rate", "3", "--seed", "7", url=False) == 0
    assert calls[0]["url"] is None and calls[0]["rate"] == 3.0 and calls[0]["seed"] == 7
    assert sw("demo", "--sessions", "5") == 0
    assert calls[1]["url"] == sw.url


def test_simulate_prints_a_summary(sw: Run) -> None:
    assert sw("simulate", "--rate", "0", "--ops", "150", "--seed", "4", "--users", "20") == 0
    assert sw.out.startswith("simulated ") and "login" in sw.out and len(sw.out.splitlines()) == 1
    with SessionStore.from_url(sw.url) as store:
        assert store.stats().active > 0


def test_keyboard_interrupt_is_quiet(sw: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "stats", interrupted)
    assert sw("stats") == cli.EXIT_INTERRUPTED
