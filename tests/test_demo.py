"""The demo backend without a terminal: the embedded Redis runs with redis.conf's settings
(keyspace notifications, AOF, noeviction, loopback), per-run ACL users when the config
asks for them, seeded sessions and live traffic, and a clean stop."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core import SessionStore, StoreError
from core.embedded import system_binary
from tui import demo

pytestmark = pytest.mark.real

REPO_CONF = Path(__file__).resolve().parent.parent / "redis.conf"


def process_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def backend() -> Iterator[demo.Backend]:
    b = demo.start_backend(seed=5, sessions=30, warmup=30)
    try:
        yield b
    finally:
        b.stop()


# --- config -----------------------------------------------------------------------------------

def test_find_config_locates_the_repository_redis_conf(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(demo.CONFIG_ENV, raising=False)
    assert demo.find_config().read_text() == REPO_CONF.read_text()
    custom = tmp_path / "my.conf"
    custom.write_text("port 1\n")
    monkeypatch.setenv(demo.CONFIG_ENV, str(custom))
    assert demo.find_config() == custom
    monkeypatch.setenv(demo.CONFIG_ENV, str(tmp_path / "missing.conf"))
    with pytest.raises(StoreError, match="no such file"):
        demo.find_config()


def test_repo_redis_conf_has_the_required_settings() -> None:
    settings = {}
    for line in REPO_CONF.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            settings.setdefault(words[0], " ".join(words[1:]))
    assert settings["port"] == "21084"
    assert settings["bind"].split()[0] == "127.0.0.1"
    assert settings["protected-mode"] == "yes"
    assert settings["notify-keyspace-events"] == "Ex"
    assert settings["appendonly"] == "yes" and settings["appendfsync"] == "everysec"
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["enable-debug-command"] == "no"


def test_embedded_config_adapts_to_older_binaries_and_overrides_paths(tmp_path) -> None:
    text = "port 21084\nenable-debug-command no\naclfile /etc/redis/users.acl\nappendonly yes\ndir /var/lib\n"
    old = demo.embedded_config(text, 6, tmp_path / "u.acl")
    lines = [line for line in old.splitlines() if not line.startswith("#")]
    assert lines == ["appendonly yes", f"aclfile {tmp_path / 'u.acl'}"]
    new = demo.embedded_config(text, 7, None)
    assert "enable-debug-command no" in [line for line in new.splitlines() if not line.startswith("#")]
    assert demo.uses_acl(text) and not demo.uses_acl("# aclfile x\nport 1\n")


# --- the embedded backend -----------------------------------------------------------------------

def test_backend_runs_seeds_sessions_and_stops_cleanly(backend: demo.Backend) -> None:
    server = backend.server
    assert server is not None and backend.directory is not None
    pid = server.pid
    assert pid is not None and process_gone(pid, timeout=0) is False
    page = backend.store.active_page(limit=100)
    assert page.total > 0 and page.mode == "index"
    assert backend.store.ended_page(limit=10).sessions  # warmup ended some: Inactive has rows
    assert all(secret not in backend.label for secret in backend.urls.values() if "@" in secret)
    backend.stop()
    assert process_gone(pid)
    assert not backend.directory.exists()
    backend.stop()  # idempotent


def test_keyspace_expired_notifications_reach_the_dashboard_user(backend: demo.Backend) -> None:
    """Functional check that works with ACL users on (they may not run CONFIG)."""
    sub = redis.Redis.from_url(backend.urls["admin"], decode_responses=True)
    writer = redis.Redis.from_url(backend.urls["app"], decode_responses=True)
    try:
        pubsub = sub.pubsub()
        pubsub.subscribe("__keyevent@0__:expired")
        assert pubsub.get_message(timeout=2)["type"] == "subscribe"
        writer.hset("cache:session:notify-check", "x", "1")
        writer.pexpire("cache:session:notify-check", 20)

        def got_expired() -> bool:
            msg = pubsub.get_message(timeout=0.2)
            return bool(msg) and msg["data"] == "cache:session:notify-check"

        assert wait_for(got_expired, timeout=30)
        pubsub.close()
    finally:
        sub.close()
        writer.close()


def test_background_traffic_changes_what_the_dashboard_sees(backend: demo.Backend) -> None:
    start = backend.store.events(limit=1)[0].seq
    backend.start_traffic(rate=50.0)
    assert wait_for(lambda: backend.store.events(limit=1)[0].seq >= start + 10)
    assert backend.thread is not None and backend.thread.is_alive()
    backend.stop()
    assert not backend.thread.is_alive() and backend.failure == ""


def test_embedded_server_settings_match_redis_conf() -> None:
    b = demo.start_backend(seed=1, sessions=3, warmup=0, acl=False)
    try:
        client = redis.Redis.from_url(b.urls["admin"], decode_responses=True)
        cfg = client.config_get("*")
        client.close()
        assert "E" in cfg["notify-keyspace-events"] and "x" in cfg["notify-keyspace-events"]
        assert cfg["appendonly"] == "yes" and cfg["appendfsync"] == "everysec"
        assert cfg["maxmemory-policy"] == "noeviction" and cfg["protected-mode"] == "yes"
        assert cfg["bind"].split()[0] == "127.0.0.1"
        assert b.store.stats().active == 3
    finally:
        b.stop()


def test_acl_users_with_per_run_passwords() -> None:
    b = demo.start_backend(seed=1, sessions=3, warmup=5, acl=True)
    try:
        assert b.server is not None and b.directory is not None
        with socket.create_connection(("127.0.0.1", b.server.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(200).startswith(b"-NOAUTH")  # the default user is off
        assert "sessionwatch-app" in b.urls["app"] and "sessionwatch-admin" in b.urls["admin"]
        conf = (b.directory / "redis.conf").read_text()
        passwords = [url.split(":")[2].split("@")[0] for url in b.urls.values()]
        assert not any(pw in conf or pw in b.label for pw in passwords)
        # the dashboard (admin) may end sessions; it may not run admin commands
        sid = b.store.active_page(limit=1).sessions[0].sid
        assert b.store.logout(sid, actor="tester") is True
        admin = redis.Redis.from_url(b.urls["admin"])
        with pytest.raises(redis.exceptions.NoPermissionError):
            admin.flushall()
        admin.close()
    finally:
        b.stop()


@pytest.mark.skipif(system_binary() is None, reason="Debian's redis-server is not installed")
def test_redis7_binary_takes_the_full_config() -> None:
    server, directory, urls = demo.start_embedded(binary=system_binary(), acl=False)
    try:
        conf = (directory / "redis.conf").read_text()
        assert "\nenable-debug-command no" in conf
        client = redis.Redis.from_url(urls["admin"])
        with pytest.raises(redis.exceptions.ResponseError):
            client.execute_command("DEBUG", "SLEEP", "0")
        client.close()
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def test_backend_against_a_given_url(real_url: str) -> None:
    b = demo.start_backend(real_url, seed=2, sessions=5, warmup=0)
    try:
        assert b.server is None and b.label.startswith("demo: redis://")
        with SessionStore.from_url(real_url) as store:
            assert store.stats().active == 5
    finally:
        b.stop()


def test_unreachable_url_fails_fast_with_a_store_error() -> None:
    from core.embedded import free_port

    with pytest.raises(StoreError):
        demo.start_backend(f"redis://127.0.0.1:{free_port()}/0", sessions=1)


def test_run_opens_the_dashboard_then_stops_everything(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import tui.app

    seen: dict = {}

    class FakeApp:
        def __init__(self, store: SessionStore, **kw: object) -> None:
            seen.update(kw, store=store)

        def run(self) -> None:
            seen["active"] = seen["store"].stats().active
            seen["server"] = seen["store"].target()["port"]

    monkeypatch.setattr(tui.app, "build_app", FakeApp)
    started: list[demo.Backend] = []
    real_start = demo.start_backend
    monkeypatch.setattr(demo, "start_backend", lambda *a, **kw: started.append(real_start(*a, **kw)) or started[-1])
    assert demo.run(rate=20.0, seed=3, sessions=10) == 0
    assert seen["active"] >= 1 and seen["feed"] is True and seen["target_label"].startswith("demo 127.0.0.1:")
    [b] = started
    assert b.server is not None and process_gone(b.server.process.pid)
    assert "simulated" in capsys.readouterr().out


def test_demo_scenario_runs_on_top_of_the_traffic(real_url: str) -> None:
    b = demo.start_backend(real_url, seed=2, sessions=5, warmup=0, rate=50, scenario="spray", scenario_after=0)
    try:
        client = redis.Redis.from_url(real_url, decode_responses=True)
        deadline = time.monotonic() + 20
        while float(client.zscore("ov:ip:users", "203.0.113.250") or 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert float(client.zscore("ov:ip:users", "203.0.113.250") or 0) >= 3
        client.close()
    finally:
        b.stop()
    assert demo.scenario_delay("burst", None) == 200 and demo.scenario_delay("spray", None) == 10
