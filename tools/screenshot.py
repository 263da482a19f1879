"""The README's screenshot, made from the real dashboard on the demo's traffic.

``python -m tools.screenshot`` rewrites ``examples/screenshot.svg``;
``tests/tui/test_screenshot.py`` checks that the committed file is what this makes, so the
picture cannot drift from the code. To make the same picture on every machine, the
demo's simulator runs seeded on an in-memory Redis (fakeredis, running the same Lua
scripts) under a clock that moves only with its steps; session secrets come from a
seeded generator, times are shown in UTC and every round trip "takes" 0.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import fakeredis

import core.tokens
from core import SessionStore
from tui.app import SessionWatchApp, build_app
from tui.simulator import Simulator

OUT = Path(__file__).resolve().parents[1] / "examples" / "screenshot.svg"
SIZE = (120, 36)
SEED = 2026
START = 1_800_000_000.0
"""The fixed clock's start (2027-01-15 08:00 UTC)."""
SESSIONS, MINUTES, RATE = 60, 7.5, 5.0
"""The demo's starting population, then this many minutes of its traffic at its rate."""
LABEL = "demo 127.0.0.1:21084"


class StepClock:
    """Time that moves only when the simulator steps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SeededSecrets:
    """Stands in for :mod:`secrets` in :mod:`core.tokens`: the real token code, seeded bytes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def token_urlsafe(self, nbytes: int) -> str:
        import base64

        raw = self.rng.getrandbits(8 * nbytes).to_bytes(nbytes, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Seeded session secrets and UTC, restored afterwards."""
    tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        with mock.patch.object(core.tokens, "secrets", SeededSecrets(SEED)):
            yield
    finally:
        if tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = tz
        time.tzset()


def demo_store() -> SessionStore:
    """A Redis holding what the demo's traffic leaves after ``MINUTES`` minutes."""
    clock = StepClock(START)
    client = fakeredis.FakeRedis(decode_responses=True, encoding_errors="replace")
    store = SessionStore(client, clock=clock)
    sim = Simulator(store, seed=SEED)
    sim.seed_sessions(SESSIONS)
    for _ in range(int(MINUTES * 60 * RATE)):
        clock.now += 1 / RATE
        sim.step()
    return store


def dashboard(store: SessionStore) -> SessionWatchApp:
    app = build_app(store, refresh_interval=3600, target_label=LABEL, feed=False, rules=False,
                    sweep=False, actor="admin")
    ticks = itertools.count(0, 0.0005)
    app.perf_counter = lambda: next(ticks)
    return app


async def _capture(app: SessionWatchApp) -> str:
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 60
        last, same = "", 0
        while same < 3:  # painted and settled: the same screen three looks in a row
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not settle")
            await pilot.pause(0.1)
            table = app.panel_widget("active").table
            ready = app.poll_count >= 1 and table.row_count > 0
            shot = app.export_screenshot(title="sessionwatch") if ready else ""
            same = same + 1 if ready and shot == last else 0
            last = shot
        return last


def make() -> str:
    """The screenshot as SVG text."""
    with deterministic():
        store = demo_store()
        return asyncio.run(_capture(dashboard(store)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the SVG (default {OUT})")
    args = parser.parse_args(argv)
    args.out.write_text(make(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
