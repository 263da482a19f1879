"""The SSH side: authentication, roles, limits, audit, and one dashboard per connection.

Each authenticated connection may open one session; with a pty and a shell request it
gets ``sessionwatch watch`` (``--read-only`` for viewers) in its own pseudo-terminal and
process group (:class:`~.pty.PtyChild`), run as the server's OS user. Everything else a
client may ask for is refused: passwords, keyboard-interactive, exec, subsystems (sftp),
port, agent and X11 forwarding, a second session on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from core import AsyncSessionStore, ConnectOptions, StoreError
from tui.actor import ACTOR_ENV

from .guard import FailureLimiter
from .keys import AuthorizedKeys, Identity, printable, short_fingerprint, terminal_type
from .pty import PtyChild

log = logging.getLogger("sessionwatch.ssh")

NO_PTY_MESSAGE = (b"sessionwatch: this endpoint serves only the dashboard and needs a terminal "
                  b"(connect with 'ssh -t'); no commands, no shell.\r\n")
RESET_TERMINAL = (b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l"
                  b"\x1b[?1049l\x1b[?25h\x1b[0m\r\n")
"""Mouse reporting and bracketed paste off, main screen back, cursor shown, colours reset."""
MAX_AUTH_TRIES = 6
"""Keys a client may offer on one connection before it is disconnected (OpenSSH's default)."""


@dataclass(slots=True)
class ServerConfig:
    authorized_keys: Path
    host_key: Path
    host: str = "127.0.0.1"
    port: int = 2222
    url: str | None = None
    """What the dashboards get as ``$REDIS_URL`` (``None``: the server's own environment)."""
    store_url: str = ""
    """The URL the server writes audit events with (password resolved)."""
    password_file: str | None = None
    prefix: str = ""
    cluster: bool | None = None
    """``--cluster`` / ``--no-cluster`` (``None``: asked of the server)."""
    buckets: int | None = None
    timeout: float = 2.0
    read_only: bool = False
    idle_timeout: float = 1800.0
    max_connections: int = 16
    max_auth_failures: int = 5
    auth_failure_window: float = 300.0
    login_timeout: float = 30.0
    child_python: str = field(default_factory=lambda: sys.executable)


def load_or_create_host_key(path: Path) -> tuple[asyncssh.SSHKey, bool]:
    """The server's private key; a new ed25519 key (mode 600) if the file is missing.
    Refuses a key file that others may read."""
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="sessionwatch ssh-server")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
        return key, True
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"host key {path} is accessible by others (mode {mode:03o}); chmod 600 it")
    return asyncssh.read_private_key(str(path)), False


class Hub:
    """Server-wide state: keys, limits, the open dashboards, the audit store."""

    def __init__(self, config: ServerConfig, keys: AuthorizedKeys, store: AsyncSessionStore) -> None:
        self.config, self.keys, self.store = config, keys, store
        self.limiter = FailureLimiter(config.max_auth_failures, config.auth_failure_window)
        self.connections: set[Connection] = set()
        """Authenticated connections (what ``max_connections`` caps)."""
        self.open = 0
        """Every TCP connection, authenticated or not."""
        self.max_unauthenticated = max(8, 2 * config.max_connections)
        self._last_flood_log = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def audit(self, kind: str, who: Identity, address: str) -> None:
        try:
            await self.store.audit(kind, actor=who.actor, ip=address)
        except StoreError as exc:
            log.warning("could not write the %s event for %s: %s", kind, who.actor, printable(exc, 200))

    def child_command(self, who: Identity, address: str, term: str) -> tuple[list[str], dict[str, str]]:
        cfg = self.config
        argv = [cfg.child_python, "-m", "tui.sshd.child", "watch", "--timeout", str(cfg.timeout)]
        if not who.admin:
            argv.append("--read-only")
        if cfg.prefix:
            argv += ["--prefix", cfg.prefix]
        if cfg.cluster is not None:
            argv.append("--cluster" if cfg.cluster else "--no-cluster")
        if cfg.buckets is not None:
            argv += ["--buckets", str(cfg.buckets)]
        if cfg.password_file:
            argv += ["--password-file", cfg.password_file]
        drop = {"REDIS_URL", "TERM", "COLUMNS", "LINES", "COLORTERM", ACTOR_ENV}
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SSH_")}
        env.setdefault("LANG", "C.UTF-8")
        env.update(TERM=term, **{ACTOR_ENV: f"{who.actor} from {address}"})
        if cfg.url is not None:
            env["REDIS_URL"] = cfg.url  # the environment, not argv: ps shows argv to everyone
        return argv, env

    async def close(self, timeout: float = 15.0) -> None:
        """Disconnect everyone; wait for their dashboards to end and their events to be written."""
        for conn in list(self.connections):
            conn.close("server shutting down")
        deadline = time.monotonic() + timeout
        while (self.connections or self._tasks) and time.monotonic() < deadline:
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.05)  # disconnects are reported on a later loop turn


class Connection(asyncssh.SSHServer):
    """One client connection: authentication and what it may open."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.conn: asyncssh.SSHServerConnection | None = None
        self.address = "?"
        self.port = 0
        self.identity: Identity | None = None
        self._candidate: Identity | None = None
        self.session: DashboardSession | None = None
        self.rejected = 0
        self.started = time.monotonic()
        self.closed = False

    @property
    def peer(self) -> str:
        return f"{self.address} port {self.port}"

    def close(self, reason: str) -> None:
        if self.conn is not None and not self.closed:
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    # --- connection --------------------------------------------------------------------
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.address, self.port = str(peer[0]), int(peer[1])
        hub = self.hub
        hub.open += 1
        if hub.open - len(hub.connections) > hub.max_unauthenticated:
            now = time.monotonic()
            if now - hub._last_flood_log > 10:
                hub._last_flood_log = now
                log.warning("dropping %s: %d connections are still authenticating", self.peer,
                            hub.open - len(hub.connections) - 1)
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        hub = self.hub
        self.closed = True
        hub.open -= 1
        if self.identity is None:
            if self.rejected:
                blocked = hub.limiter.record(self.address)
                log.warning("failed authentication from %s (%d key(s) refused)%s", self.peer, self.rejected,
                            f"; {self.address} is refused for up to {hub.config.auth_failure_window:.0f} s"
                            if blocked else "")
            return
        hub.connections.discard(self)
        if self.session is not None:
            hub.spawn(self.session.stop())
        log.info("disconnect %s from %s after %.0f s", self.identity.actor, self.peer,
                 time.monotonic() - self.started)
        hub.spawn(hub.audit("ssh_disconnect", self.identity, self.address))

    # --- authentication ------------------------------------------------------------------
    def begin_auth(self, username: str) -> bool:
        hub = self.hub
        wait = hub.limiter.blocked_for(self.address)
        if wait:
            log.warning("refused %s before authentication: too many failed authentications", self.peer)
            assert self.conn is not None
            self.conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                                 f"too many failed authentications from {self.address}; try again later")
        elif len(hub.connections) >= hub.config.max_connections:
            log.warning("refused %s: %d connections open (the cap)", self.peer, len(hub.connections))
            assert self.conn is not None
            self.conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many connections; try again later")
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        hub = self.hub
        if hub.limiter.blocked_for(self.address):
            return False
        who = hub.keys.match(key, self.address)
        if who is None:
            self.rejected += 1
            log.warning("auth refused for %s key %s (user %r) from %s: not an authorized key",
                        printable(key.get_algorithm()), short_fingerprint(key), printable(username),
                        self.peer)
            if self.rejected >= MAX_AUTH_TRIES and self.conn is not None:
                self.conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many keys offered")
            return False
        self._candidate = who
        return True

    def auth_completed(self) -> None:
        hub = self.hub
        who = self._candidate
        assert who is not None and self.conn is not None
        if len(hub.connections) >= hub.config.max_connections:
            log.warning("refused %s (%s): %d connections open (the cap)", who.actor, self.peer,
                        len(hub.connections))
            self.conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many connections; try again later")
            return
        self.identity = who
        hub.connections.add(self)
        client = printable(self.conn.get_extra_info("client_version", ""), 80)
        log.info("connect %s role=%s from %s (%s)", who.actor, who.role, self.peer, client)
        hub.spawn(hub.audit("ssh_connect", who, self.address))

    # --- what the client may open ------------------------------------------------------------
    def session_requested(self) -> DashboardSession | bool:
        if self.identity is None or self.session is not None:
            return False  # one dashboard per connection
        self.session = DashboardSession(self)
        return self.session

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        log.warning("refused port forwarding (-L) for %s", self.who())
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        log.warning("refused remote port forwarding (-R) for %s", self.who())
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        log.warning("refused socket forwarding for %s", self.who())
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        log.warning("refused socket forwarding for %s", self.who())
        return False

    def who(self) -> str:
        """Who, for the log: the key holder (or "unauthenticated") and the client address."""
        return f"{self.identity.actor if self.identity else 'unauthenticated'} ({self.peer})"


class DashboardSession(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One SSH session: a pty and a shell request start the dashboard; nothing else does."""

    def __init__(self, owner: Connection) -> None:
        self.owner = owner
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: str | None = None
        self.size = (80, 24)
        self.child: PtyChild | None = None
        self.last_input = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int],
                      term_modes: Any) -> bool:
        self.term = terminal_type(term_type)
        if term_size[0] and term_size[1]:
            self.size = (term_size[0], term_size[1])
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        log.warning("refused exec request (%d characters) for %s", len(command), self.owner.who())
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        log.warning("refused subsystem %r for %s", printable(subsystem, 32), self.owner.who())
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        if self.term is None:
            self.chan.write(NO_PTY_MESSAGE)
            self.chan.exit(1)
            return
        self.owner.hub.spawn(self._start())

    async def _start(self) -> None:
        owner, chan = self.owner, self.chan
        assert owner.identity is not None and chan is not None
        argv, env = owner.hub.child_command(owner.identity, owner.address, self.term or "xterm-256color")
        child = PtyChild(argv, env, columns=self.size[0], rows=self.size[1],
                         on_output=self._output, on_exit=self._child_exited)
        try:
            await child.start()
        except OSError as exc:
            log.error("could not start a dashboard for %s: %s", owner.who(), printable(exc, 200))
            chan.write(b"sessionwatch: could not start the dashboard\r\n")
            chan.exit(1)
            return
        self.child = child
        log.info("dashboard pid %d for %s role=%s term=%s size=%dx%d", child.pid, owner.identity.actor,
                 owner.identity.role, self.term, *self.size)
        if self._closing:
            await child.stop()
        else:
            self._arm_idle()

    def _output(self, data: bytes) -> None:
        if self.chan is not None and not self._closing:
            self.chan.write(data)

    def _child_exited(self, code: int) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        owner = self.owner
        how = f"exited with code {code}" if code >= 0 else f"ended by signal {-code}"
        log.info("dashboard pid %s for %s %s", self.child.pid if self.child else "?",
                 owner.identity.actor if owner.identity else "?", how)
        if self.chan is not None and not self._closing:
            self.chan.exit(code if 0 <= code < 256 else 1)

    # --- input -------------------------------------------------------------------------------
    def data_received(self, data: bytes, datatype: Any) -> None:  # type: ignore[override]
        self.last_input = time.monotonic()
        if self.child is not None:
            self.child.write(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.last_input = time.monotonic()
        self.size = (width, height)
        if self.child is not None and width and height:
            self.child.resize(width, height)

    def break_received(self, msec: int) -> bool:
        return False

    def signal_received(self, signal: str) -> None:
        pass

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        if self.child is not None:
            self.child.pause_output()

    def resume_writing(self) -> None:
        if self.child is not None:
            self.child.resume_output()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self.owner.hub.spawn(self.stop())

    async def stop(self) -> None:
        self._closing = True
        if self.child is not None:
            await self.child.stop()

    # --- idle ----------------------------------------------------------------------------------
    def _arm_idle(self) -> None:
        limit = self.owner.hub.config.idle_timeout
        if limit <= 0:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.last_input + limit - time.monotonic())
        self._idle_timer = loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        limit = self.owner.hub.config.idle_timeout
        if time.monotonic() - self.last_input < limit:
            self._arm_idle()
            return
        log.info("idle for %.0f s: closing %s", limit, self.owner.who())
        self.owner.hub.spawn(self._idle_close(limit))

    async def _idle_close(self, limit: float) -> None:
        await self.stop()
        if self.chan is not None:
            # the dashboard was hung up mid-screen: give the client's terminal back, then say why
            self.chan.write(RESET_TERMINAL + f"sessionwatch: no input for {limit:.0f} s; "
                            "disconnected.\r\n".encode())
            self.chan.exit(0)  # the client closes the connection once it has read that
        loop = asyncio.get_running_loop()
        loop.call_later(10, self.owner.close, "idle timeout")


def configure_logging(level: int = logging.INFO) -> None:
    """One line per event on stderr; asyncssh's own chatter only from warnings up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s sessionwatch-ssh %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


async def serve(config: ServerConfig, *, announce: Callable[[str], None] = print,
                stop: asyncio.Event | None = None) -> int:
    """Run the endpoint until SIGINT/SIGTERM (or ``stop`` is set); returns the exit code."""
    keys = AuthorizedKeys(config.authorized_keys, force_viewer=config.read_only)
    host_key, created = load_or_create_host_key(config.host_key)
    fingerprint = host_key.get_fingerprint("sha256")
    announce(f"host key {fingerprint} ({host_key.get_algorithm()}) "
             f"{'created in' if created else 'from'} {config.host_key}")
    store = AsyncSessionStore.from_url(config.store_url, prefix=config.prefix, cluster=config.cluster,
                                       buckets=config.buckets,
                                       options=ConnectOptions(socket_timeout=config.timeout,
                                                              connect_timeout=config.timeout))
    hub = Hub(config, keys, store)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    acceptor = await asyncssh.create_server(
        lambda: Connection(hub), config.host, config.port, server_host_keys=[host_key],
        encoding=None, line_editor=False, allow_pty=True, agent_forwarding=False, x11_forwarding=False,
        allow_scp=False, login_timeout=config.login_timeout, keepalive_interval=60, keepalive_count_max=3,
        server_version="sessionwatch")
    try:
        sockname = acceptor.sockets[0].getsockname()
        roles = sorted({e.identity.role for e in keys.entries})
        announce(f"listening on {sockname[0]}:{sockname[1]} with {len(keys.entries)} authorized key(s) "
                 f"(roles: {', '.join(roles) or 'none'})")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        acceptor.close()
        await hub.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(acceptor.wait_closed(), 5)
        await store.close()
    return 0
