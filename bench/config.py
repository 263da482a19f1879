"""How big each benchmark runs: the full run, ``--quick``, and the smoke test's tiny size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Config:
    reps: int = 5
    """Interleaved repetitions of every timed block."""
    rt_ops: int = 4000
    """Operations per timed block, sync round-trip benchmarks."""
    async_ops: int = 5000
    """Operations per timed block, asyncio benchmarks (split over the tasks)."""
    concurrency: int = 50
    flask_requests: int = 3000
    scale_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    refreshes: int = 20
    """Dashboard refreshes timed per size."""
    sweep_sessions: int = 100_000
    sweep_batches: tuple[int, ...] = (10, 25, 50)
    sweep_reps: int = 2
    bulk_sizes: tuple[int, ...] = (100_000, 1_000_000)
    """Sessions for the bulk commands (reindex, sweep, export, import)."""
    bulk_reps: int = 1
    memory_sessions: int = 20_000
    memory_reps: int = 3
    paint_runs: int = 3
    live_seconds: float = 6.0
    keys_seconds: float = 25.0
    """Key presses under the live load: about 10 a second, so a p99 is more than the worst key."""
    live_rate: int = 1000
    """Logins per second of the live-path load generator."""
    flag_injections: int = 5
    """Spraying runs injected while measuring flag latency."""
    ssh_counts: tuple[int, ...] = (1, 10)
    """Dashboards open at once over SSH, one round each."""
    ssh_idle_seconds: float = 10.0
    cluster_users: int = 10_000
    """Users logging in once each for the per-master share of commands."""
    cluster_cpu_logins: int = 2_000
    """Logins per repetition for Redis CPU per login, one node vs cluster."""
    screenful_sizes: tuple[int, int] = (1_000, 100_000)
    """Sessions at which the cluster's dashboard reads are counted (bench/screenful.py)."""
    tui: bool = True
    """Measure the dashboard (first paint, RSS, live path) when ``tui.app`` exists."""
    flask_session: bool = True
    """Measure Flask-Session (installed with pip for the run if missing, when ``install``)."""
    install: bool = True
    out: Path | None = RESULTS
    label: str = "full"


FULL = Config()

QUICK = replace(
    FULL, reps=3, rt_ops=600, async_ops=1000, flask_requests=400, scale_sizes=(1_000, 20_000),
    refreshes=5, sweep_sessions=10_000, sweep_batches=(50,), sweep_reps=1, memory_sessions=2000,
    memory_reps=1, paint_runs=1, bulk_sizes=(20_000,),
    live_seconds=2.0, keys_seconds=4.0, ssh_idle_seconds=4.0, cluster_users=2_000, cluster_cpu_logins=500,
    label="quick",
)

TINY = replace(
    FULL, reps=2, rt_ops=40, async_ops=100, concurrency=10, flask_requests=30, scale_sizes=(600, 1200),
    refreshes=2, sweep_sessions=300, sweep_batches=(50,), sweep_reps=1, memory_sessions=200, memory_reps=1,
    bulk_sizes=(400,), live_seconds=0.5, keys_seconds=0.5, live_rate=200, flag_injections=2, ssh_counts=(1,),
    ssh_idle_seconds=0.5, cluster_users=300, cluster_cpu_logins=60, screenful_sizes=(1500, 3000),
    tui=False, flask_session=False, install=False, out=None,
    label="tiny",
)
