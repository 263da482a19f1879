"""A child process in its own pseudo-terminal and its own session, relayed by asyncio.

The child is a session (and process group) leader whose controlling terminal is the pty
(see :mod:`.child`): a resize is ``TIOCSWINSZ`` on the master (the kernel sends SIGWINCH),
and :meth:`PtyChild.stop` hangs up and then kills the whole process group, so nothing the
dashboard started outlives the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Callable, Mapping, Sequence

READ_SIZE = 65536
MAX_PENDING_INPUT = 1 << 20
"""Input held for a child that is not reading; past this, more input is dropped."""


def set_window_size(fd: int, columns: int, rows: int) -> None:
    columns, rows = max(1, min(columns, 1000)), max(1, min(rows, 1000))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class PtyChild:
    """Runs ``argv`` in a new pty; ``on_output(bytes)`` gets what it writes, ``on_exit(code)``
    is called once when it has exited and its output is drained."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, columns: int, rows: int,
                 on_output: Callable[[bytes], None], on_exit: Callable[[int], None]) -> None:
        self.argv, self.env = list(argv), dict(env)
        self.columns, self.rows = columns, rows
        self.on_output, self.on_exit = on_output, on_exit
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._pending = bytearray()
        self._reading = False
        self._paused = False
        self._exited = asyncio.Event()

    async def start(self) -> None:
        master, slave = os.openpty()
        try:
            set_window_size(slave, self.columns, self.rows)
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=slave, stdout=slave, stderr=slave, env=self.env,
                start_new_session=True, close_fds=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.pid = self._proc.pid
        self._master = master
        os.set_blocking(master, False)
        self._watch_output(True)
        asyncio.get_running_loop().create_task(self._wait())

    # --- output ---------------------------------------------------------------------------
    def _watch_output(self, on: bool) -> None:
        if self._master < 0 or on == self._reading:
            return
        loop = asyncio.get_running_loop()
        if on:
            loop.add_reader(self._master, self._readable)
        else:
            loop.remove_reader(self._master)
        self._reading = on

    def _read(self) -> bytes | None:
        """Bytes available now, ``b""`` if none, ``None`` once the pty is closed."""
        try:
            return os.read(self._master, READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # every slave end closed: the child is gone
                return None
            raise

    def _readable(self) -> None:
        data = self._read()
        if data is None:
            self._watch_output(False)
        elif data:
            self.on_output(data)

    def pause_output(self) -> None:
        """The SSH channel is full: stop reading (the child blocks on its writes)."""
        self._paused = True
        self._watch_output(False)

    def resume_output(self) -> None:
        self._paused = False
        if not self._exited.is_set():
            self._watch_output(True)

    # --- input and size --------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._master < 0 or len(self._pending) + len(data) > MAX_PENDING_INPUT:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and self._master >= 0:
            try:
                sent = os.write(self._master, self._pending)
            except BlockingIOError:
                loop.add_writer(self._master, self._flush)
                return
            except OSError:
                self._pending.clear()
                break
            del self._pending[:sent]
        if self._master >= 0:
            loop.remove_writer(self._master)

    def resize(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        if self._master >= 0:
            with contextlib.suppress(OSError):
                set_window_size(self._master, columns, rows)

    # --- end -------------------------------------------------------------------------------
    async def _wait(self) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        self._kill_group(signal.SIGKILL)  # anything the child left behind in its group
        for _ in range(64):  # what it wrote last, unless the client stopped reading
            data = self._read() if self._master >= 0 and not self._paused else None
            if not data:
                break
            self.on_output(data)
        self._close_master()
        self._exited.set()
        self.on_exit(code)

    def _close_master(self) -> None:
        if self._master >= 0:
            self._watch_output(False)
            loop = asyncio.get_running_loop()
            loop.remove_writer(self._master)
            os.close(self._master)
            self._master = -1

    def _kill_group(self, sig: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    async def stop(self, grace: float = 3.0) -> None:
        """Hang up the child's session, then SIGTERM, then SIGKILL the whole group."""
        if self._proc is None:
            return
        if not self._exited.is_set():
            self._close_master()  # the kernel hangs up the session: SIGHUP to its processes
            self._kill_group(signal.SIGHUP)
            self._kill_group(signal.SIGCONT)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    await asyncio.wait_for(self._exited.wait(), grace)
                    break
                except TimeoutError:
                    self._kill_group(sig)
            await self._exited.wait()
