"""``sessionwatch simulate`` writes only where --url explicitly points, says where before
it starts, reports progress, and reports its true duration when stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from tui import cli

ROOT = Path(__file__).resolve().parent.parent


def test_refuses_redis_url_from_the_environment(real_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REDIS_URL", real_url)
    assert cli.main(["simulate", "--ops", "5"]) == cli.EXIT_USAGE
    assert "--url" in capsys.readouterr().err
    with redis.Redis.from_url(real_url) as c:
        assert c.dbsize() == 0  # nothing written


def test_says_where_before_writing(real_url: str, monkeypatch, capsys) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.main(["simulate", "--url", real_url, "--rate", "0", "--ops", "20", "--seed", "1"]) == 0
    out = capsys.readouterr()
    first = out.err.splitlines()[0]
    assert "simulating" in first and real_url.split("//")[1] in first and "20 operations" in first
    assert out.out.startswith("simulated 20 operations")


def test_progress_then_true_duration_after_ctrl_c(real_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tui", "simulate", "--url", real_url, "--rate", "50",
                             "--progress", "0.2", "--seed", "2"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    progressed = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if sum(" operations in " in x for x in lines) >= 3:  # ran >= 0.6 s by its own clock
                progressed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert progressed.wait(60), lines
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lifetime = time.monotonic() - started
    reader.join(timeout=10)
    assert proc.returncode == 0, (out, lines)
    assert "simulating" in lines[0]
    match = re.match(r"simulated (\d+) operations in ([\d.]+) s", out)
    assert match, out
    ops, reported = int(match.group(1)), float(match.group(2))
    assert ops > 0
    # The true running time: at least the time before SIGINT minus start-up, never more than
    # the process lived (before the fix it said 0.0 s).
    assert 0.5 <= reported <= lifetime


@pytest.mark.parametrize("argv", [["demo", "--help"], ["simulate", "--help"]])
def test_help_says_url_is_needed(argv: list[str], capsys) -> None:
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "--url" in text
