"""Before/after of the Flask drop-in in one run: client CPU per request of the bench's
Flask routes (``/me`` reads, ``/hit`` reads then writes, ``/stamp`` writes without
reading) served from two source trees and by Flask-Session, each in its own process
against one Redis, in interleaved blocks; ratios per repetition.

``python -m bench.flask_ab URL BEFORE_TREE [--reps 5] [-n 600]`` from the tree to compare
(the "after"); BEFORE_TREE is another checkout, e.g. ``git worktree add /tmp/old <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROUTES = ("/me", "/hit", "/stamp")

WORKER = r'''
import json, sys, time
from core import SessionStore
from bench.flask_compare import _client, _poster, core_integration_app, flask_session_app
url, which = sys.argv[1], sys.argv[2]
store = SessionStore.from_url(url)
calls = {}
for path in ("/me", "/hit", "/stamp"):
    app = flask_session_app(url) if which == "fs" else core_integration_app(store)
    login = lambda c: c.post("/login")
    calls[path] = _client(app, login) if path == "/me" else _poster(app, path, login)
    for _ in range(200):
        calls[path]()
print("ready", flush=True)
for line in sys.stdin:
    path, n = line.split()
    call, n = calls[path], int(n)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    print(json.dumps([(time.process_time() - c) / n * 1e6, n / (time.perf_counter() - t)]), flush=True)
'''


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flask_ab", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("before", type=Path)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("-n", type=int, default=600, help="requests per block")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = {"before": args.before.resolve(), "after": here, "Flask-Session": here}
    procs = {}
    for name, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree)}
        which = "fs" if name == "Flask-Session" else "sw"
        procs[name] = subprocess.Popen([sys.executable, "-c", WORKER, args.url, which], cwd=tree, env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert procs[name].stdout.readline().strip() == "ready"  # type: ignore[union-attr]
    res: dict[tuple[str, str], list[list[float]]] = {(t, r): [] for t in trees for r in ROUTES}
    for _ in range(args.reps):
        for route in ROUTES:
            for name, proc in procs.items():
                proc.stdin.write(f"{route} {args.n}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                res[(name, route)].append(json.loads(proc.stdout.readline()))  # type: ignore[union-attr]
    for proc in procs.values():
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait()
    print("| route | tree | client CPU µs / request, median (min) | requests/s "
          "| × Flask-Session CPU (FS / this) |")
    print("|---|---|---|---|---|")
    for route in ROUTES:
        fs = res[("Flask-Session", route)]
        for name in trees:
            mine = res[(name, route)]
            cpu = statistics.median(x[0] for x in mine)
            low = min(x[0] for x in mine)
            rps = statistics.median(x[1] for x in mine)
            r = statistics.median(b[0] / a[0] for a, b in zip(mine, fs, strict=True))
            print(f"| `{route}` | {name} | {cpu:.0f} ({low:.0f}) | {rps:.0f} | {r:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
