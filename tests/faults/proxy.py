"""A TCP proxy on 127.0.0.1 between a client and Redis, with switchable faults.

Modes (``proxy.mode = ...``, switchable at any time, also mid-connection):

``pass``       bytes flow both ways.
``delay``      every chunk waits ``proxy.delay`` seconds before it is forwarded (order kept).
``blackhole``  bytes are read and dropped; nothing comes back and nothing is closed, like
               a peer whose kernel still ACKs but whose process is gone (keepalive
               never fires, so only a socket timeout notices).
``reset``      new connections are reset at once; :meth:`reset_all` resets existing ones.

Toxiproxy's server is not installable here (no Debian package, Go binary); this is the
few lines of it the tests need. It runs its own asyncio loop in a daemon thread, so sync
and async tests can use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "delay", "blackhole", "reset"]


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.port = 0
        self.accepted = 0
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # --- control (from any thread) ------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, db: int = 0, scheme: str = "redis") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{db}"

    def set(self, mode: Mode, delay: float | None = None) -> None:
        if delay is not None:
            self.delay = delay
        self.mode = mode

    def reset_all(self) -> None:
        """RST every open connection (both sides)."""
        async def go() -> None:
            for client, upstream in list(self._pairs):
                _rst(client)
                _rst(upstream)
            self._pairs.clear()
        asyncio.run_coroutine_threadsafe(go(), self._loop).result(5)

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for client, upstream in list(self._pairs):
                client.transport.abort()
                upstream.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the proxy itself (on its loop) ---------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "reset":
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # proxy shutting down (asyncio's stream callback would log the cancel)
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue
                if self.mode == "delay" and self.delay > 0:
                    await asyncio.sleep(self.delay)
                if self.mode == "reset":
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if self.mode == "reset":
                _rst(dst)
            else:
                dst.transport.abort()
