"""``python -m bench [--quick]``: run every benchmark, print the figures, write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .config import FULL, QUICK
from .measure import Progress


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (about a minute), smaller sizes")
    parser.add_argument("--out", type=Path, help="where to write the report (default bench/RESULTS.md)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this benchmark (round trip, flask, starlette, memory, sweep, "
                             "live path, scale, ssh, overview, bulk; cluster screenful and cluster "
                             "run only when named)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip-install Flask-Session when it is missing (skip that comparison)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.out:
        cfg = replace(cfg, out=args.out)
    if args.no_install:
        cfg = replace(cfg, install=False)
    from .runner import run

    command = " ".join(["python -m bench", *argv])
    report = run(cfg, command, Progress(), only=args.only)
    print(report.text())
    for failure in report.failures:
        print(f"not measured: {failure}", file=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
