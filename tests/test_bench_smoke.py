"""The benchmark harness runs end to end at tiny sizes, so it never rots.

Not a performance test: nothing here asserts a speed. It checks that every benchmark
runs against a real server, reports its figures and targets, and writes the report.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from bench.config import TINY
from bench.measure import Progress
from bench.runner import run

pytestmark = [pytest.mark.real, pytest.mark.timeout(90)]


def test_every_benchmark_runs_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    report = run(replace(TINY, out=out), "python -m bench (smoke)", Progress(quiet=True))
    assert report.failures == []
    names = [s.name for s in report.sections]
    assert names == ["round trip", "Flask: sessionwatch vs Flask-Session",
                     "Starlette: request.session under three middlewares", "memory per session", "sweep",
                     "live path", "dashboard refresh at scale", "SSH endpoint", "overview and anomaly rules",
                     "bulk commands"]
    text = out.read_text()
    for needle in ("python -m bench (smoke)", "## Environment", "parser in use", "## Targets",
                   "1. Round-trip limit", "2. Against the classic layout", "3. Flask route",
                   "3d. Starlette route", "4. Redis cost per dashboard refresh", "5. Live path", "6. Sweep",
                   "7. Redis memory"):
        assert needle in text
    scale = report.sections[6]
    identical = [t for t in scale.targets if "identical" in t.target]
    assert identical and all(t.met for t in identical), [t.measured for t in identical]
    sweep = report.sections[4]
    assert "longest call" in sweep.headline[0][1]
    ssh = report.sections[7]
    assert ssh.headline[0][0] == "SSH dashboard, 1 connection(s): connect → first paint"
    assert "8. SSH endpoint" in text
    assert "9. What the overview and the rules add" in text and "9b. Flag latency" in text
    assert "overview refresh" in text
    bulk = report.sections[9]
    assert [t.what for t in bulk.targets][:3] == [f"{c} of 400 sessions vs the plain write"
                                                  for c in ("reindex", "export", "import")]
    assert "Bulk commands vs the same sessions" in text


def test_flask_session_comparison(tmp_path: Path) -> None:
    if importlib.util.find_spec("flask_session") is None:
        pytest.skip("Flask-Session is installed only for benchmarks (pip install flask-session); "
                    "the harness installs it for a real run")
    cfg = replace(TINY, flask_session=True, out=None)
    report = run(cfg, "python -m bench (smoke)", Progress(quiet=True), only=["flask"])
    assert report.failures == []
    (section,) = report.sections
    rows = [row[0] for row in section.tables[0].rows]
    assert "Flask-Session (redis backend, defaults)" in rows
    assert any("Flask-Session" in t.what for t in section.targets)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cluster_section_runs(tmp_path: Path) -> None:
    """The cluster section on its own (a loopback cluster, two master crashes), tiny sizes."""
    from tests.faults.cluster import missing_tools

    if missing_tools():
        pytest.skip(missing_tools())
    cfg = replace(TINY, out=tmp_path / "RESULTS.md")
    report = run(cfg, "python -m bench (smoke)", Progress(quiet=True), only=["cluster"])
    assert report.failures == []
    (section,) = report.sections
    assert section.name == "Redis Cluster" and not section.not_done
    text = (tmp_path / "RESULTS.md").read_text()
    for needle in ("10. Share of Redis commands per master", "10b. Redis CPU per login",
                   "10c. What replica_acks=1 costs", "10d. Redis memory per session",
                   "10e. A master killed"):
        assert needle in text
    lost = [t for t in section.targets if "replica_acks=1" in t.what]
    assert lost and lost[0].met, lost


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cluster_screenful_section_runs(tmp_path: Path) -> None:
    """Dashboard commands per screenful on a loopback cluster, tiny sizes: every Active read
    costs the same commands at both sizes."""
    from tests.faults.cluster import missing_tools

    if missing_tools():
        pytest.skip(missing_tools())
    report = run(replace(TINY, out=tmp_path / "RESULTS.md"), "python -m bench (smoke)", Progress(quiet=True),
                 only=["cluster screenful"])
    assert report.failures == []
    (section,) = report.sections
    assert section.headline == [("dashboard commands per screenful on cluster, 1,500 vs 3,000 sessions",
                                 "identical")]
    rows = {row[0]: row[-1] for row in section.tables[0].rows}
    assert all(same == "yes" for name, same in rows.items() if name.startswith("Active") and "seek" not in name)
