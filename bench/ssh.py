"""Benchmark 8: the SSH endpoint. ``sessionwatch ssh-server`` runs as its own process;
asyncssh clients in this process connect with a key, ask for a 120x40 pty and read until
the dashboard shows a seeded session (connect → first paint). With 1 and then 10
dashboards open and idle, the CPU share and RSS of every dashboard process and of the
server itself are read from /proc over the same interval."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from core import SessionStore

from .config import Config
from .measure import Progress, Sample, Section, Table

MARKER = "sshbench-user"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended between listing and reading: it has none
            continue
    return out


class _Screen(asyncssh.SSHClientSession[bytes]):
    """Keeps what the dashboard writes and notes when the marker first appears."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.painted = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if not self.painted.done():
            self.buffer += data
            if MARKER.encode() in self.buffer:
                self.painted.set_result(time.perf_counter())
                self.buffer.clear()


async def _open(port: int, key: asyncssh.SSHKey) -> tuple[float, asyncssh.SSHClientConnection]:
    t0 = time.perf_counter()
    conn = await asyncssh.connect("127.0.0.1", port, username="bench", client_keys=[key], known_hosts=None,
                                  agent_path=None, encoding=None)
    _, session = await conn.create_session(_Screen, term_type="xterm-256color", term_size=(120, 40),
                                           encoding=None)
    painted = await asyncio.wait_for(session.painted, 120)
    return painted - t0, conn


async def _round(port: int, key: asyncssh.SSHKey, server_pid: int, count: int,
                 idle: float) -> dict[str, Sample]:
    before = set(_children(server_pid))
    opened = await asyncio.gather(*(_open(port, key) for _ in range(count)))
    out = {k: Sample() for k in ("paint", "cpu", "rss", "server_cpu")}
    for seconds, _ in opened:
        out["paint"].add(seconds * 1000)
    try:
        deadline = time.monotonic() + 30
        while len(set(_children(server_pid)) - before) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        pids = sorted(set(_children(server_pid)) - before)
        await asyncio.sleep(min(3.0, idle))  # let the first refreshes settle
        start = {pid: _cpu_seconds(pid) for pid in [*pids, server_pid]}
        t0 = time.monotonic()
        await asyncio.sleep(idle)
        elapsed = time.monotonic() - t0
        for pid in pids:
            out["cpu"].add((_cpu_seconds(pid) - start[pid]) / elapsed * 100)
            out["rss"].add(_rss_mib(pid))
        out["server_cpu"].add((_cpu_seconds(server_pid) - start[server_pid]) / elapsed * 100)
        out["server_rss"] = Sample([_rss_mib(server_pid)])
    finally:
        for _, conn in opened:
            conn.close()
        await asyncio.gather(*(conn.wait_closed() for _, conn in opened), return_exceptions=True)
    return out


def _start_server(url: str, tmp: Path, authorized: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "ssh-server", "--url", url, "--listen", "127.0.0.1:0",
         "--authorized-keys", str(authorized), "--host-key", str(tmp / "host_key")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on [^ ]+:(\d+)", line)
        if match:
            return proc, int(match.group(1))
    raise RuntimeError("ssh-server did not start")


def run(url: str, cfg: Config, progress: Progress) -> Section:
    section = Section("SSH endpoint")
    with SessionStore.from_url(url) as store:
        for i in range(50):
            store.login(f"{MARKER}{i:02d}", app="bench", ip="192.0.2.1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="bench")
        authorized = tmp / "authorized_keys"
        authorized.write_bytes(b'environment="SESSIONWATCH_ROLE=viewer" ' + key.export_public_key())
        server, port = _start_server(url, tmp, authorized)
        try:
            results: dict[int, dict[str, Sample]] = {}
            for count in cfg.ssh_counts:
                progress(f"ssh: {count} connection(s), idle {cfg.ssh_idle_seconds:.0f} s")
                merged: dict[str, Sample] = {}
                for _ in range(cfg.paint_runs if count == 1 else 1):
                    got = asyncio.run(_round(port, key, server.pid, count, cfg.ssh_idle_seconds))
                    for k, s in got.items():
                        merged.setdefault(k, Sample()).values.extend(s.values)
                results[count] = merged
        finally:
            server.terminate()
            server.wait(30)
            if server.stdout:
                server.stdout.close()
    t = Table("8. SSH endpoint: dashboards over SSH (asyncssh client, 120x40 pty, viewer key)",
              ["connections", "connect → first paint (ms)", "idle CPU per dashboard (% of a core)",
               "RSS per dashboard (MiB)", "server idle CPU (% of a core)", "server RSS (MiB)"])
    for count, r in results.items():
        t.add(count, r["paint"].cell(), r["cpu"].cell(), r["rss"].cell(1), r["server_cpu"].cell(),
              r["server_rss"].cell(1))
    t.notes.append(
        "First paint: from the TCP connect (key exchange, public-key authentication, pty and shell "
        "requests, the dashboard process starting and connecting to Redis) to the first bytes that "
        f"contain a seeded username. With 10, all connect at once. Idle: {cfg.ssh_idle_seconds:.0f} s "
        "after the first paint settled, 50 sessions, no traffic; CPU from /proc utime+stime.")
    section.tables.append(t)
    for count, r in results.items():
        section.headline.append((f"SSH dashboard, {count} connection(s): connect → first paint",
                                 f"{r['paint'].cell()} ms; idle {r['cpu'].cell()} % CPU and "
                                 f"{r['rss'].cell(1)} MiB per dashboard; server idle "
                                 f"{r['server_cpu'].cell()} % CPU"))
    return section
