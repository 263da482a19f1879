"""Client CPU per request of the bench's Flask routes with the sync store's fast path
(:mod:`core.fastpath`) on and off, in one process, in interleaved blocks: what the fast
path saves per request, next to the bare route and Flask-Session measured alongside.

``python -m bench.flask_fastpath URL [--reps 15] [-n 200]`` (e.g. a Debian redis-server on
a unix socket): first the store's calls alone, then whole requests. The store without it
sends every command through redis-py's ``execute_command``, as the store did before. On
a shared machine CPU time is the steadier figure (other load inflates wall time, and our
CPU time less); min and p25 show the least disturbed blocks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from core import SessionStore

from .flask_compare import _client, _poster, bare_app, core_hook_app, core_integration_app, flask_session_app


def _variants(url: str, path: str) -> dict[str, Callable[[], None]]:
    fast = SessionStore.from_url(url)
    slow = SessionStore.from_url(url)
    slow._pooled = (slow.client, None)  # no fast path: execute_command for every command
    def login(client: object) -> None:
        client.post("/login")  # type: ignore[attr-defined]

    def make(app: object) -> Callable[[], None]:
        return _client(app, login) if path == "/me" else _poster(app, path, login)  # type: ignore[arg-type]

    out: dict[str, Callable[[], None]] = {"bare route": _client(bare_app(), lambda c: None),
                                          "Flask-Session": make(flask_session_app(url))}
    if path == "/me":
        _, token = fast.login("alice", app="bench")
        out["core hook, without"] = _client(core_hook_app(slow), lambda c: c.set_cookie("sw", token))
        out["core hook, with"] = _client(core_hook_app(fast), lambda c: c.set_cookie("sw", token))
    out["drop-in, without"] = make(core_integration_app(slow))
    out["drop-in, with"] = make(core_integration_app(fast))
    return out


def store_calls(url: str, reps: int, n: int = 1000) -> None:
    """The store's calls alone: one HGETALL, validate, save_data, with and without."""
    fast = SessionStore.from_url(url)
    slow = SessionStore.from_url(url)
    slow._pooled = (slow.client, None)
    session, token = fast.login("alice", app="bench", data={"hits": "1"})
    key = fast.schema.session(session.sid)
    ops: dict[str, Callable[[SessionStore], object]] = {
        "HGETALL (store._call)": lambda st: st._call("HGETALL", key),
        "validate": lambda st: st.validate(token),
        "save_data": lambda st: st.save_data(session.sid, {"hits": "2"}),
    }
    cpu: dict[tuple[str, str], list[float]] = {(o, w): [] for o in ops for w in ("without", "with")}
    for op in ops.values():
        for st in (fast, slow):
            for _ in range(300):
                op(st)
    for _ in range(reps):
        for name, op in ops.items():
            for which, st in (("without", slow), ("with", fast)):
                started = time.process_time()
                for _ in range(n):
                    op(st)
                cpu[(name, which)].append((time.process_time() - started) / n * 1e6)
    print("| store call | client CPU µs without the fast path: min / median | with: min / median |")
    print("|---|---|---|")
    for name in ops:
        a, b = sorted(cpu[(name, "without")]), sorted(cpu[(name, "with")])
        print(f"| {name} | {a[0]:.0f} / {statistics.median(a):.0f} "
              f"| {b[0]:.0f} / {statistics.median(b):.0f} |")
    print()
    fast.close()
    slow.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flask_fastpath", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("-n", type=int, default=200, help="requests per block")
    args = parser.parse_args()
    store_calls(args.url, args.reps)
    print("| route | served by (fast path) | client CPU µs / request: min | p25 | median |")
    print("|---|---|---|---|---|")
    for path in ("/me", "/hit", "/stamp"):
        variants = _variants(args.url, path)
        for call in variants.values():
            for _ in range(200):
                call()  # warm: connections, scripts, Flask's first-request work
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.reps):
            for name, call in variants.items():
                started = time.process_time()
                for _ in range(args.n):
                    call()
                cpu[name].append((time.process_time() - started) / args.n * 1e6)
        for name, values in cpu.items():
            values.sort()
            print(f"| `{path}` | {name} | {values[0]:.0f} | {values[len(values) // 4]:.0f} | "
                  f"{statistics.median(values):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
