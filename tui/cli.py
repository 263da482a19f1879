"""The ``sessionwatch`` command: the dashboard, the demo, and non-interactive commands for
scripts, cron jobs and health probes.

Every failure is one line on stderr and a non-zero exit code, never a traceback:
1 error (unknown session, nothing to do, file problem), 2 bad usage or input,
3 Redis unreachable or credentials refused, 4 refused (read-only mode or Redis ACL),
130 interrupted. Passwords are never printed; URLs are shown redacted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from core import (
    DEFAULT_URL,
    ConnectOptions,
    Event,
    InvalidInput,
    Page,
    PermissionDenied,
    Session,
    SessionNotFound,
    SessionStore,
    Stats,
    StoreError,
    StoreUnavailable,
    redact_url,
)
from core.buckets import DEFAULT_BUCKETS, MAX_BUCKETS
from core.display import display
from core.display import to_json as display_json
from core.overview import Flag
from core.tokens import sid_from_token

PROG = "sessionwatch"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
WRITE_COMMANDS = frozenset({"logout", "sweep", "import", "reindex", "simulate", "install-functions"})


class CliError(Exception):
    """A failure to report as one line with an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (plus a pointer to --help)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


# --- output helpers -------------------------------------------------------------------------

def safe(text: object) -> str:
    """Text that other apps control, made harmless for a terminal (the one display path,
    :func:`core.display.display`): escape sequences, controls, bidi and invisible
    characters are shown as ``\\x1b``/``\\u202e`` escapes instead of being interpreted."""
    return display(text, 100_000)


def to_json(obj: Any) -> str:
    """One line of strict JSON (no NaN/Infinity), unsafe characters ``\\u``-escaped."""
    return display_json(obj)


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError, TypeError):
        return "invalid"


def span(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _cell(text: str, width: int) -> str:
    text = safe(text)
    return (text[: width - 1] + "…" if len(text) > width else text).ljust(width)


SESSION_HEADER = (f"{'SID':<8}  {'USER':<20}  {'APP':<10}  {'TYPE':<6}  {'IP':<15}  {'LOGIN':<19}  "
                  f"{'LAST SEEN':<19}  STATE")


def session_line(s: Session, now: float) -> str:
    if s.is_active(now):
        state = f"active, expires in {span((s.expires_at or now) - now)}" if s.expires_at else "active"
    else:
        reason = s.end_reason or ("expired" if s.status == "active" else s.status)
        state = f"ended {when(s.logout_time)}" if s.logout_time else "ended"
        state += f" ({safe(reason)})"
    if s.problems:
        state += f" [{safe('; '.join(s.problems))}]"
    return (f"{_cell(s.short_id, 8)}  {_cell(s.username, 20)}  {_cell(s.app, 10)}  {_cell(s.type, 6)}  "
            f"{safe(s.ip or '-'):<15}  {when(s.login_time):<19}  {when(s.last_seen):<19}  {state}")


def session_json(s: Session, now: float) -> str:
    return to_json({**s.to_dict(), "short_id": s.short_id, "active": s.is_active(now),
                    "problems": list(s.problems)})


_EVENT_BASE = ("seq", "ts", "kind", "sid", "username", "app", "actor")


def event_line(ev: Event) -> str:
    if ev.kind == "text":
        return f"{'-':<19}  {'':>6}  {'text':<12}  {safe(ev.raw)}"
    seq = "" if ev.seq is None else f"#{ev.seq}" if ev.bucket is None else f"#{ev.bucket}.{ev.seq}"
    line = (f"{when(ev.ts):<19}  {seq:>6}  {_cell(ev.kind, 12)}  {_cell(ev.username or '-', 20)}  "
            f"{_cell(ev.app or '-', 10)}  {safe(ev.short_id) or '-':<8}")
    if ev.actor and ev.actor != ev.username:
        line += f"  by {safe(ev.actor)}"
    extra = [f"{safe(k)}={safe(v)}" for k, v in sorted(ev.data.items()) if k not in _EVENT_BASE and v != ""]
    if ev.problems:
        extra.append(f"[{safe('; '.join(ev.problems))}]")
    return line + ("  " + " ".join(extra) if extra else "")


def event_json(ev: Event) -> str:
    """The event as one strict JSON object: the line's own fields (NaN and infinities as
    ``null``), or ``{"kind": "text", "raw": ...}`` for a line that is not one; on a
    cluster also ``bucket``, the log it came from (``seq`` counts per bucket)."""
    where = {} if ev.bucket is None else {"bucket": ev.bucket}
    if ev.kind == "text" or not ev.data:
        return to_json({"kind": "text", "raw": ev.raw, **where})
    return to_json({**ev.data, **where})


def note(message: str) -> None:
    print(f"{PROG}: {safe(message)}", file=sys.stderr)


# --- connection -----------------------------------------------------------------------------

def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` set (percent-encoded) in place of any password it had."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                 if k != "password"]
        query.append(("password", password))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    host = parts.netloc.rsplit("@", 1)[-1]
    user = urllib.parse.quote(parts.username or "", safe="")
    netloc = f"{user}:{urllib.parse.quote(password, safe='')}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def read_password_file(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read --password-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"--password-file {path} is not UTF-8 text", EXIT_USAGE) from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise CliError(f"--password-file {path} is empty", EXIT_USAGE)
    return lines[0]


def resolve_url(args: argparse.Namespace) -> str:
    url = args.url if args.url is not None else os.environ.get("REDIS_URL") or DEFAULT_URL
    if args.password_file:
        url = with_password(url, read_password_file(args.password_file))
    return url


def connect_options(args: argparse.Namespace) -> ConnectOptions:
    timeout = args.timeout
    return ConnectOptions(socket_timeout=timeout, connect_timeout=timeout)


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """What every command passes to ``SessionStore.from_url`` besides the URL."""
    return {"prefix": args.prefix, "options": connect_options(args), "cluster": args.cluster,
            "buckets": args.buckets}


def open_store(args: argparse.Namespace) -> SessionStore:
    return SessionStore.from_url(resolve_url(args), **store_options(args))


def actor() -> str:
    from .actor import default_actor

    return default_actor()


# --- commands -------------------------------------------------------------------------------

def cmd_watch(args: argparse.Namespace) -> int:
    from .app import build_app  # Textual loads only for the dashboard

    url = resolve_url(args)
    store = SessionStore.from_url(url, **store_options(args))
    try:
        label = redact_url(url) + (f" prefix={args.prefix}" if args.prefix else "")
        app = build_app(store, read_only=args.read_only, actor=actor(), refresh_interval=args.refresh,
                        target_label=label, feed=args.feed, sweep=args.sweep, freeze_heap=True)
        app.run()
    finally:
        store.close()
    return int(getattr(app, "return_code", None) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    # only an explicit --url: $REDIS_URL must not send simulated sessions to a real Redis
    return demo.run(url=resolve_url(args) if args.url else None,
                    prefix=args.prefix, rate=args.rate, seed=args.seed, sessions=args.sessions,
                    read_only=args.read_only, refresh_interval=args.refresh,
                    options=connect_options(args), scenario=args.scenario, scenario_after=args.scenario_after)


def default_host_key() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "sessionwatch", "ssh_host_ed25519_key")


def cmd_ssh_server(args: argparse.Namespace) -> int:
    import asyncio

    from .sshd import server as sshd
    from .sshd.keys import KeyFileError

    config = sshd.ServerConfig(
        authorized_keys=Path(args.authorized_keys), host_key=Path(args.host_key or default_host_key()),
        host=args.listen[0], port=args.listen[1], store_url=resolve_url(args),
        url=args.url if args.url is not None else os.environ.get("REDIS_URL") or DEFAULT_URL,
        password_file=args.password_file, prefix=args.prefix, cluster=args.cluster, buckets=args.buckets,
        timeout=args.timeout, read_only=args.read_only,
        idle_timeout=args.idle_timeout, max_connections=args.max_connections,
        max_auth_failures=args.max_auth_failures)
    sshd.configure_logging()
    try:
        return asyncio.run(sshd.serve(config, announce=lambda line: print(safe(line), flush=True)))
    except KeyFileError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"ssh-server: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
                       ) from None


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:2222, got {text!r}")
    return host, int(port)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import Simulator, scenario

    # Simulated sessions must never land in a Redis by accident: only an explicit --url,
    # never $REDIS_URL or the default, and it says where before it writes anything.
    if args.url is None:
        raise CliError("simulate writes made-up sessions: name the Redis with --url "
                       "(it never uses $REDIS_URL or the default)", EXIT_USAGE)
    url = resolve_url(args)
    with SessionStore.from_url(url, **store_options(args)) as store:
        store.ping()
        where = redact_url(url) + (f" prefix={args.prefix}" if args.prefix else "")
        limits = [f"{args.duration:g} s" if args.duration else "",
                  f"{args.ops} operations" if args.ops else ""]
        until = " or ".join(x for x in limits if x) or "Ctrl-C"
        note(f"simulating {args.rate:g} operations/s into {where} until {until}")
        sim = Simulator(store, seed=args.seed, users=args.users)
        progress = (lambda st: note(st.progress_line())) if args.progress > 0 else None
        pattern = scenario(args.scenario, sim.clock() + args.scenario_after) if args.scenario else None
        if pattern is not None:
            note(f"scenario {pattern.name} starts in {args.scenario_after:g} s: {pattern.__doc__}")
        try:
            stats = sim.run(args.rate, duration=args.duration, max_ops=args.ops, progress=progress,
                            progress_every=args.progress or 5.0, scenario=pattern)
        except KeyboardInterrupt:
            stats = sim.stats  # elapsed is the true running time (set however run() ends)
        print(stats.summary())
        return EXIT_OK if stats.total or not stats.errors else EXIT_UNAVAILABLE


def _finish_scan(page: Page, fetch: Callable[[int, int], Page]) -> Page:
    """Classic layout: drive the incremental SCAN to the end, so paging sees a stable order."""
    found = -1
    while page.problems and page.mode == "scan" and page.total != found:
        found = page.total
        page = fetch(0, 1)
    return page


def _paged(fetch: Callable[[int, int], Page], limit: int | None, page_size: int = 500, *,
           quiet: bool = False) -> Iterator[Session]:
    """Sessions from successive pages; everything when ``limit`` is ``None``."""
    size = page_size if limit is None else min(page_size, limit)
    page = fetch(0, size)
    if page.mode == "scan":
        if not quiet:
            note("classic layout (no sessionwatch indexes): listing by SCAN; "
                 "run 'sessionwatch reindex' to index it")
        if limit is None or len(page.sessions) < limit:
            page = _finish_scan(page, fetch)
            page = fetch(0, size)
    count, offset = 0, 0
    while True:
        for s in page.sessions:
            yield s
            count += 1
            if limit is not None and count >= limit:
                return
        offset += size
        if offset >= page.total:
            return
        page = fetch(offset, size)


def cmd_sessions(args: argparse.Namespace) -> int:
    if args.anonymous:
        return _anonymous_sessions(args)
    limit = None if args.all else args.limit
    with open_store(args) as store:
        now = store.ctx.clock()
        if args.user:
            sessions: Iterator[Session] = iter(store.user_history(args.user, limit=min(limit or 1000, 1000)))
            if args.status:
                want = args.status == "active"
                sessions = (s for s in sessions if s.is_active(now) == want)
        elif args.status == "inactive":
            sessions = _paged(lambda o, n: store.ended_page(offset=o, limit=n), limit)
        else:
            sessions = _paged(lambda o, n: store.active_page(sort=args.sort, offset=o, limit=n), limit)
        first = next(sessions, None)  # fails (one line, exit code) before any output
        if first is None:
            if not args.json:
                note("no sessions match")
            return EXIT_OK
        if not args.json:
            print(SESSION_HEADER)
        for s in itertools.chain([first], sessions):
            print(session_json(s, now) if args.json else session_line(s, now))
    return EXIT_OK


def _anonymous_sessions(args: argparse.Namespace) -> int:
    """Visitors' sessions before login: never user sessions, listed apart. Their data's
    keys are counted, never shown."""
    with open_store(args) as store:
        page = store.anonymous_page(limit=1000 if args.all else args.limit)
    if not page.sessions:
        if not args.json:
            note("no anonymous sessions")
        return EXIT_OK
    if not args.json:
        print(f"{'ANON ID':<10} {'APP':<16} {'CREATED':<19} {'LAST SEEN':<19} KEYS  BYTES")
    for a in page.sessions:
        size = sum(len(k) + len(v) for k, v in a.data.items())
        if args.json:
            print(to_json({"aid": a.aid[:8], "app": a.app, "created_at": a.created_at,
                           "last_seen": a.last_seen, "keys": len(a.data), "bytes": size}))
        else:
            print(f"{_cell(a.aid[:8], 10)} {_cell(a.app, 16)} {_when(a.created_at):<19} "
                  f"{_when(a.last_seen):<19} {len(a.data):>4}  {size:>5}")
    return EXIT_OK


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # another writer's value (ms epoch, huge)
        return "?"


def _resolve_sid(store: SessionStore, ref: str) -> Session:
    """A session from its full id or an unambiguous prefix (the 8-character short id)."""
    session = store.get(ref)
    if session is not None:
        return session
    if len(ref) < 4:
        raise SessionNotFound(ref, "no such session (give at least 4 characters of the id)")
    found = {s.sid: s for s in store.search("sid", ref, limit=2)}
    if not found:
        raise SessionNotFound(ref)
    if len(found) > 1:
        raise CliError(f"session id prefix {safe(ref)!r} is ambiguous; give more characters", EXIT_USAGE)
    return next(iter(found.values()))


_TOKEN_SHAPE = re.compile(r"^(?:bearer\s+|[A-Za-z0-9_-]*=)?[0-9a-f]{4}\.[A-Za-z0-9_-]{20,}$", re.IGNORECASE)
"""A bearer token (``<tag>.<secret>``, :mod:`core.tokens`), perhaps pasted with its
``Bearer`` or ``cookie=`` prefix; session ids are hex and never contain a dot."""


def looks_like_token(text: str | None) -> bool:
    return bool(text) and _TOKEN_SHAPE.match(text.strip()) is not None  # type: ignore[union-attr]


def cmd_logout(args: argparse.Namespace) -> int:
    if bool(args.sid) == bool(args.user):
        raise CliError("give a session id or --user USER (not both)", EXIT_USAGE)
    # Checked before connecting: a secret pasted by mistake must not reach Redis (MONITOR,
    # slow log, ACL log) or the screen.
    pasted = args.sid if looks_like_token(args.sid) else args.user if looks_like_token(args.user) else None
    if pasted is not None:
        sid = sid_from_token(re.sub(r"^(?:bearer\s+|[A-Za-z0-9_-]*=)", "", pasted.strip(), flags=re.I))
        which = f" (its session id begins {sid[:8]})" if sid else ""
        raise CliError("that is a session token (a bearer secret), not a session id; it was not sent to "
                       f"Redis{which}. Treat it as leaked and end that session by its id", EXIT_USAGE)
    who = actor()
    with open_store(args) as store:
        if args.user:
            ended = store.logout_user(args.user, actor=who)
            if not ended:
                raise CliError(f"user {safe(args.user)!r} has no active sessions")
            print(f"logged out {len(ended)} session(s) of {safe(args.user)}: "
                  + " ".join(safe(sid[:8]) for sid in ended))
            return EXIT_OK
        session = _resolve_sid(store, args.sid)
        if not session.is_active(store.ctx.clock()):
            raise CliError(f"session {session.short_id} ({safe(session.username)}) has already ended "
                           f"({safe(session.end_reason or 'expired')})")
        if not store.logout(session.sid, actor=who):
            raise CliError(f"session {session.short_id} ({safe(session.username)}) was not ended: "
                           "Redis no longer holds it as an active session")
        print(f"logged out {safe(session.short_id)}: {safe(session.username)}, {safe(session.app) or '-'}, "
              f"{safe(session.ip) or '-'}")
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    fmt = event_json if args.json else event_line
    with open_store(args) as store:
        if not args.follow:
            for ev in reversed(store.events(limit=args.limit)):
                print(fmt(ev))
            return EXIT_OK
        store.ping()
        follow_events(store, args.limit, fmt, count=args.count)
    return EXIT_OK


def follow_events(store: SessionStore, backlog: int, fmt: Callable[[Event], str], *,
                  count: int | None = None, stop: threading.Event | None = None,
                  out: TextIO | None = None) -> int:
    """Print the last ``backlog`` events, then each new one as it happens, until ``stop``
    is set, ``count`` new events were printed, or Ctrl-C. Outages are noted on stderr
    and the feed reconnects and catches up by itself."""
    from core.feed import EventFeed, FeedStatus, Resync

    stop = stop or threading.Event()
    out = out or sys.stdout
    feed = EventFeed(store, backlog=backlog)
    printed, new = 0, 0
    initial = True
    try:
        for item in feed.run(stop):
            if isinstance(item, Event):
                print(fmt(item), file=out, flush=True)
                printed += 1
                if not initial:
                    new += 1
                    if count is not None and new >= count:
                        break
            elif isinstance(item, FeedStatus):
                if not item.connected:
                    note(f"live feed lost ({item.detail}); reconnecting")
                elif not initial:
                    note("live feed reconnected")
            elif isinstance(item, Resync):
                initial = False
                if item.rewound:
                    note("the event log started again (Redis lost or flushed its data); following it anew")
                elif item.gap:
                    note("some events were trimmed from the log before they could be read")
                if count is not None and count <= 0:
                    break
    finally:
        stop.set()
        feed.close()
    return printed


def scan_stats(store: SessionStore, minutes: int) -> Stats:
    """Counts for the classic layout (no indexes to count from): one pass over the
    sessions found by SCAN, a page at a time."""
    active = 0
    by_app: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    ended = sum(1 for _ in _paged(lambda o, n: store.ended_page(offset=o, limit=n), None, quiet=True))
    for s in _paged(lambda o, n: store.active_page(offset=o, limit=n), None, quiet=True):
        active += 1
        by_app[s.app] += 1
        by_type[s.type] += 1
    zeros = [0] * minutes
    return Stats(active=active, ended=ended, expired_pending=0, by_app=dict(by_app), by_type=dict(by_type),
                 logins_per_minute=zeros, ends_per_minute=list(zeros), mode="scan")


def cmd_stats(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        st = store.stats(minutes=args.minutes)
        if st.mode == "scan":
            st = dataclasses.replace(scan_stats(store, args.minutes), anonymous=st.anonymous)
        ov = store.overview() if st.mode == "index" else None
    if args.json:
        print(to_json({"active": st.active, "ended": st.ended, "expired_pending": st.expired_pending,
                       "by_app": st.by_app, "by_type": st.by_type,
                       "logins_per_minute": st.logins_per_minute, "ends_per_minute": st.ends_per_minute,
                       "mode": st.mode, "anonymous": st.anonymous,
                       "overview": ov.to_dict() if ov is not None else None}))
        return EXIT_OK

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{safe(k)} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "-"

    print(f"active       {st.active}" + (f"  ({st.expired_pending} past expiry, awaiting sweep)"
                                         if st.expired_pending else ""))
    print(f"ended        {st.ended}")
    print(f"anonymous    {st.anonymous}  (visitors' sessions before login; not user sessions)")
    print(f"by app       {counts(st.by_app)}")
    print(f"by type      {counts(st.by_type)}")
    print(f"logins       {sum(st.logins_per_minute)} in the last {args.minutes} min, "
          f"{st.logins_per_minute[-1] if st.logins_per_minute else 0} this minute")
    print(f"ends         {sum(st.ends_per_minute)} in the last {args.minutes} min")
    print(f"layout       {'sessionwatch indexes' if st.mode == 'index' else 'classic (SCAN; run reindex)'}")
    if ov is not None:
        per = ", ".join(f"{name.replace('_', ' ')} {s.total} (peak {s.peak}/min)"
                        for name, s in ov.series.items())
        print(f"last 60 min  {per}")

        def top(items: list[tuple[str, int]]) -> str:
            return ", ".join(f"{safe(k)} {n}" for k, n in items[:5]) or "-"

        print(f"addresses    by sessions: {top(ov.top_ip_sessions)}")
        print(f"             by users: {top(ov.top_ip_users)}")
        print(f"users        by sessions: {top(ov.top_user_sessions)}")
        print(f"             by addresses: {top(ov.top_user_ips)}")
        if ov.anonymous is not None:
            print(f"anonymous    {ov.anonymous}")
        print(f"flags        {len(ov.flags)}" + (" (sessionwatch anomalies)" if ov.flags else ""))
    return EXIT_OK


def flag_line(flag: Flag) -> str:
    """One flag as a line: since, rule, subject, the numbers that tripped it, what it means."""
    return (f"{when(flag.since):<19}  {_cell(flag.rule, 9)}  {_cell(flag.subject, 24)}  "
            f"{safe(flag.numbers_text())}  {safe(flag.detail)}")


def cmd_anomalies(args: argparse.Namespace) -> int:
    from core.anomalies import Thresholds
    from core.flagger import Flagger

    try:
        thresholds = Thresholds.from_env()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    with open_store(args) as store:
        flags = store.flags()
        for flag in flags:
            print(to_json(flag.to_dict()) if args.json else flag_line(flag), flush=True)
        if not flags and not args.json:
            print("no current flags", flush=True)
        if not args.follow:
            return EXIT_OK
        write = not args.read_only
        flagger = Flagger(store, thresholds=thresholds, actor=f"rules:{actor()}", write=write)
        stop = threading.Event()
        printed = 0
        local: dict[str, Flag] = {}

        def show(kind: str, flag: Flag | None, raw: str = "") -> None:
            nonlocal printed
            if args.json:
                print(raw or to_json({"kind": kind, **(flag.to_dict() if flag else {})}), flush=True)
            elif flag is not None:
                print(f"{kind:<13} {flag_line(flag)}", flush=True)
            printed += 1
            if args.count is not None and printed >= args.count:
                stop.set()

        def on_event(ev: Event) -> None:
            if ev.kind in ("flag_raised", "flag_cleared") and ev.seq is not None and started.is_set():
                show(ev.kind, _flag_of(ev), event_json(ev))

        def on_tick() -> None:
            if write:
                return
            now = flagger.last.holding  # read-only: nothing is written, say what this follower sees
            for fid in now.keys() - local.keys():
                show("local_raised", now[fid])
            for fid in local.keys() - now.keys():
                show("local_cleared", local[fid])
            local.clear()
            local.update(now)

        started = threading.Event()

        def on_status(item: object) -> None:
            from core.feed import FeedStatus, Resync

            if isinstance(item, Resync):
                started.set()
            elif isinstance(item, FeedStatus) and not item.connected:
                note(f"live feed lost ({item.detail}); reconnecting")

        flagger.run(stop, on_event=on_event, on_status=on_status, on_tick=on_tick)
    return EXIT_OK


def _flag_of(ev: Event) -> Flag:
    from core.overview import parse_flag

    d = ev.data
    fields = ("rule", "subject", "numbers", "since", "detail")
    return parse_flag(d.get("flag", ""), json.dumps({k: d.get(k) for k in fields}))


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.plans import SweepResult

    from .progress import BulkProgress

    last = SweepResult(0, 0, 0)
    with open_store(args) as store:
        due, old = store.sweep_due()
        try:
            with BulkProgress("sweeping", due + old) as bar:
                def step(r: SweepResult) -> None:
                    nonlocal last
                    bar(r.expired + r.purged - last.expired - last.purged)
                    last = r

                result = store.sweep(actor=f"sweep:{actor()}", max_calls=None, on_batch=step)
        except KeyboardInterrupt:
            note(f"interrupted: ended {last.expired} expired session(s), purged {last.purged} old one(s) "
                 f"in {last.calls} call(s); run 'sweep' again to continue")
            return EXIT_INTERRUPTED
    print(f"ended {result.expired} expired session(s), purged {result.purged} old one(s) "
          f"in {result.calls} call(s)")
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    url = resolve_url(args)
    with SessionStore.from_url(url, **store_options(args)) as store:
        t0 = time.perf_counter()
        store.ping()
        rtt = (time.perf_counter() - t0) * 1000
        info = store.server_info()
    line = f"ok: {redact_url(url)} answered in {rtt:.1f} ms"
    if info.version:
        line += f", redis {info.version}"
    flags = info.notify_keyspace_events
    if flags is not None and not ("x" in flags and ("E" in flags or "A" in flags)):
        line += "; note: keyspace notifications for expired keys are off (notify-keyspace-events Ex)"
    if info.maxmemory_policy not in (None, "noeviction"):
        line += (f"; warning: maxmemory-policy {info.maxmemory_policy} lets Redis delete sessions silently "
                 "when memory is full (use noeviction)")
    print(safe(line))
    return EXIT_OK


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 and count else "-"


def cmd_install_functions(args: argparse.Namespace) -> int:
    from core.functions import library_name

    with open_store(args) as store:
        status = store.install_functions()
    if status == "unsupported":
        raise CliError("this Redis has no functions (before 7.0): sessionwatch runs its scripts by "
                       "EVALSHA there, so nothing to install")
    print(f"{'loaded' if status == 'loaded' else 'already loaded'}: function library {library_name()}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Stream every session to stdout or, atomically, to --out (gzip if it ends in .gz)."""
    from core import bulk
    from core.backup import fsync, open_text_out

    from .progress import BulkProgress

    tally = bulk.Tally()
    to_file = args.out not in (None, "-")
    target = Path(args.out) if to_file else None
    tmp = target.with_name(f".{target.name}.tmp") if target else None
    t0 = time.monotonic()
    with open_store(args) as store:
        try:
            out = open_text_out(tmp, compress=target.suffix == ".gz") if tmp and target else sys.stdout
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        try:
            with BulkProgress("exporting") as bar:
                bulk.export(store, out, tally=tally, progress=bar)
            if tmp and target:
                out.close()
                fsync(tmp)
                os.replace(tmp, target)
        except KeyboardInterrupt:
            where = f"; {args.out} was not written" if to_file else ""
            note(f"interrupted after exporting {tally.written} session(s){where}")
            return EXIT_INTERRUPTED
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        finally:
            if tmp and target:
                with contextlib.suppress(OSError):
                    out.close()
                with contextlib.suppress(OSError):
                    tmp.unlink()
    dup = f", {tally.duplicates} duplicate(s) from SCAN dropped" if tally.duplicates else ""
    note(f"exported {tally.written} session(s){' to ' + args.out if to_file else ''} "
         f"in {time.monotonic() - t0:.1f} s ({_rate(tally.written, time.monotonic() - t0)}){dup}")
    return EXIT_OK


class _ImportSource:
    """Opens the import's lines once per pass. Standard input is read once and spooled to a
    private temporary file, so both passes stream. ``unchanged()``: the bytes the second
    pass reads are those the first pass checked (same file, size and modification time)."""

    def __init__(self, name: str | None) -> None:
        import tempfile

        self.name = name
        self.spool: Any = None
        if name in (None, "-"):
            self.spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed by close()
            for line in sys.stdin:
                self.spool.write(line)
            self.spool.flush()
        self.first: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.fstat(self.spool.fileno()) if self.spool else os.stat(str(self.name))
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    @contextlib.contextmanager
    def __call__(self) -> Iterator[TextIO]:
        from core.backup import open_text_in

        if self.first is None:
            self.first = self._stat()
        if self.spool is not None:
            self.spool.seek(0)
            yield self.spool
            return
        try:
            fh = open_text_in(str(self.name))
        except OSError as exc:
            raise CliError(f"cannot read {self.name}: {exc.strerror or exc}") from None
        with fh:
            yield fh

    def unchanged(self) -> bool:
        return self.first is not None and self._stat() == self.first

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


@contextlib.contextmanager
def _import_source(name: str | None) -> Iterator[_ImportSource]:
    source = _ImportSource(name)
    try:
        yield source
    finally:
        source.close()


def _problem_note(tally: Any) -> None:
    if tally.problem_count:
        sample = "; ".join(f"{safe(sid[:12])}: {safe(why)}" for sid, why in tally.problems[:3])
        note(f"{tally.problem_count} session(s) left alone: {sample}")


def cmd_import(args: argparse.Namespace) -> int:
    """Two streaming passes: check every line (nothing written), then write in batches."""
    from core import bulk

    from .progress import BulkProgress

    tally = bulk.Tally()
    t0 = time.monotonic()
    try:
        with _import_source(args.file) as source, open_store(args) as store, \
                BulkProgress("checking") as bar:
            with source() as lines:
                try:
                    count = bulk.check_lines(lines, policy=store.policy, now=store.ctx.clock(),
                                             trust=args.trust, progress=bar)
                except bulk.LineError as exc:
                    raise CliError(f"{exc}; nothing was written", EXIT_USAGE) from None
            bar.phase("importing", count)
            with source() as lines:
                bulk.restore(store, lines, trust=args.trust, actor=f"import:{actor()}", tally=tally,
                             progress=bar, checked=source.unchanged())
    except KeyboardInterrupt:
        note(f"interrupted: imported {tally.written} session(s), skipped {tally.skipped} already present; "
             "run the same import again to continue (it skips what is there)")
        return EXIT_INTERRUPTED
    except bulk.LineError as exc:
        raise CliError(f"{exc} (the file changed while importing)", EXIT_USAGE) from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file or 'stdin'} is not UTF-8 text", EXIT_USAGE) from None
    _problem_note(tally)
    elapsed = time.monotonic() - t0
    print(f"imported {tally.written} session(s); skipped {tally.skipped} already present "
          f"({elapsed:.1f} s, {_rate(tally.written + tally.skipped, elapsed)})")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace) -> int:
    """Index sessions that another app wrote with plain commands (classic layout)."""
    from core import bulk

    from .progress import BulkProgress

    tally = bulk.Tally()
    t0 = time.monotonic()
    with open_store(args) as store:
        try:
            with BulkProgress("reindexing") as bar:
                bulk.reindex(store, actor=f"reindex:{actor()}", tally=tally, progress=bar,
                             scan_count=args.batch)
        except KeyboardInterrupt:
            note(f"interrupted: {tally.scanned} session key(s) scanned, {tally.written} newly indexed; "
                 "run 'reindex' again to continue (it skips what is indexed)")
            return EXIT_INTERRUPTED
    _problem_note(tally)
    elapsed = time.monotonic() - t0
    print(f"reindexed: {tally.scanned} session key(s) scanned, {tally.written} newly indexed "
          f"({elapsed:.1f} s, {_rate(tally.scanned, elapsed)})")
    return EXIT_OK


# --- parser ---------------------------------------------------------------------------------

def _float_from(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    """An argparse type: a number above ``minimum`` (or equal to it, if ``inclusive``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum or (value == minimum and not inclusive):
            bound = f"{minimum:g} or more" if inclusive else f"greater than {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


_positive_float = _float_from(0, inclusive=False)
_non_negative_float = _float_from(0, inclusive=True)


def _int_between(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts (also before the subcommand name)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    s = argparse.SUPPRESS
    g.add_argument("--url", default=s, metavar="URL",
                   help="redis://[user:pass@]host:port/db, rediss://... (TLS, e.g. "
                        "?ssl_ca_certs=/path/ca.pem) or unix:///path.sock "
                        f"(default: $REDIS_URL, else {DEFAULT_URL})")
    g.add_argument("--password-file", default=s, metavar="FILE",
                   help="read the Redis password from the first line of FILE instead of the URL")
    g.add_argument("--prefix", default=s, metavar="PREFIX",
                   help="key prefix the app uses, e.g. 'myapp:' (default: none)")
    g.add_argument("--cluster", default=s, action=argparse.BooleanOptionalAction,
                   help="the URL names a Redis Cluster node: use the cluster client and the bucketed "
                        "layout (default: asked of the server, INFO cluster; --no-cluster: one node)")
    g.add_argument("--buckets", default=s, type=_int_between(1, MAX_BUCKETS), metavar="N",
                   help=f"buckets of the bucketed layout (default on a cluster: {DEFAULT_BUCKETS}; "
                        "fixed for a deployment's life: every writer and reader must use the same N)")
    g.add_argument("--timeout", default=s, type=_positive_float, metavar="SECONDS",
                   help="socket and connect timeout per Redis call (default: 2)")
    g.add_argument("--read-only", default=s, action="store_true",
                   help="never write: the dashboard hides write actions; logout, sweep, import, reindex "
                        "and simulate refuse")
    return p


DEFAULTS = {"url": None, "password_file": None, "prefix": "", "timeout": 2.0, "read_only": False,
            "cluster": None, "buckets": None}

COMMANDS = {
    "watch": cmd_watch, "demo": cmd_demo, "simulate": cmd_simulate, "sessions": cmd_sessions,
    "logout": cmd_logout, "events": cmd_events, "stats": cmd_stats, "sweep": cmd_sweep,
    "health": cmd_health, "export": cmd_export, "import": cmd_import, "reindex": cmd_reindex,
    "ssh-server": cmd_ssh_server, "anomalies": cmd_anomalies,
    "install-functions": cmd_install_functions,
}


def build_parser() -> argparse.ArgumentParser:
    from .simulator import SCENARIOS

    common = _common()
    parser = _Parser(prog=PROG, parents=[common],
                     description="Watch and control user sessions stored in Redis. "
                                 "With no command, opens the live dashboard ('watch').",
                     epilog="Exit codes: 0 ok, 1 error, 2 bad usage or input, 3 Redis unreachable or "
                            "credentials refused, 4 refused (read-only or ACL), 130 interrupted.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=description or help)

    def dashboard_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--refresh", type=_positive_float, default=2.0, metavar="SECONDS",
                       help="reconciliation interval; live changes arrive sooner (default: 2)")

    p = add("watch", "open the live dashboard (the default command)")
    dashboard_options(p)
    p.add_argument("--no-feed", dest="feed", action="store_false",
                   help="poll only; do not subscribe to the live feed")
    p.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the dashboard periodically ends expired sessions "
                        "(default: on unless --read-only)")

    p = add("demo", "run the dashboard over simulated traffic",
            "Start an embedded Redis (no install needed) configured like redis.conf, seed sessions, "
            "run the traffic simulator in the background and open the dashboard. With --url, use "
            "that Redis instead (it will receive simulated sessions).")
    dashboard_options(p)
    p.add_argument("--rate", type=_non_negative_float, default=5.0, metavar="OPS",
                   help="simulated operations per second (default: 5; 0 = no background traffic)")
    p.add_argument("--sessions", type=_int_between(0, 100_000), default=60, metavar="N",
                   help="sessions to log in before the dashboard opens (default: 60)")
    p.add_argument("--seed", type=int, default=None, help="random seed, for a reproducible run")
    p.add_argument("--scenario", choices=SCENARIOS, default=None,
                   help="add one anomalous pattern to the traffic (see 'simulate --help'); the dashboard "
                        "flags it")
    p.add_argument("--scenario-after", type=_non_negative_float, default=None, metavar="SECONDS",
                   help="start the scenario this long after the dashboard opens (default: 10; 200 for "
                        "burst and newusers, whose rules need three minutes of baseline)")

    p = add("simulate", "generate realistic session traffic into --url (no dashboard)",
            "Log users in and out, validate tokens, update profiles, evict over the per-user cap, "
            "expire short sessions and sweep them, at a steady rate, then print a summary. Writes "
            "only to the Redis named by an explicit --url (never $REDIS_URL), and says where first.")
    p.add_argument("--rate", type=_non_negative_float, default=20.0, metavar="OPS",
                   help="operations per second (default: 20; 0 = as fast as possible)")
    p.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop after this long (default: until Ctrl-C or --ops)")
    p.add_argument("--ops", type=_int_between(1, 10**9), default=None, metavar="N",
                   help="stop after N operations")
    p.add_argument("--users", type=_int_between(1, 100_000), default=200, metavar="N",
                   help="number of simulated people (default: 200)")
    p.add_argument("--progress", type=_non_negative_float, default=5.0, metavar="SECONDS",
                   help="print progress on stderr this often (default: 5; 0 = never)")
    p.add_argument("--seed", type=int, default=None, help="random seed, for reproducible traffic")
    p.add_argument("--scenario", choices=SCENARIOS, default=None,
                   help="also produce one anomalous pattern on top of the normal traffic: spray (one "
                        "address, 40 accounts), sharing (one account, 8 networks), burst (40 logins/s for "
                        "15 s), comeback (back 30 s after an admin logout everywhere), newusers (60 "
                        "never-seen usernames at 3/s)")
    p.add_argument("--scenario-after", type=_non_negative_float, default=10.0, metavar="SECONDS",
                   help="start the scenario this long after the traffic (default: 10)")

    p = add("sessions", "list sessions (active by default)")
    p.add_argument("--user", metavar="USER", help="only this user's sessions (any status unless --status)")
    p.add_argument("--status", choices=("active", "inactive"), default=None,
                   help="active (default) or inactive (ended) sessions")
    p.add_argument("--all", action="store_true", help="list every matching session (ignores --limit)")
    p.add_argument("--limit", type=_int_between(1, 1000), default=50, metavar="N",
                   help="at most N sessions (default: 50)")
    p.add_argument("--anonymous", action="store_true",
                   help="list anonymous sessions (visitors' data before login) instead: id, app, times, "
                        "number of keys and bytes, never the data")
    p.add_argument("--sort", choices=("last_seen", "login_time", "expires_at"), default="last_seen",
                   help="order of active sessions, newest first (default: last_seen)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = add("logout", "end one session, or every session of a user",
            "End a session by id (full id or at least 4 characters of it, e.g. the 8-character short "
            "id), or every active session of --user. The event log records who did it.")
    p.add_argument("sid", nargs="?", metavar="SID", help="session id or unambiguous prefix")
    p.add_argument("--user", metavar="USER", help="end every active session of USER")

    p = add("events", "show the event log (oldest first); --follow for live events")
    p.add_argument("--limit", type=_int_between(1, 1000), default=20, metavar="N",
                   help="show the last N events (default: 20)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events as they happen")
    p.add_argument("--count", type=_int_between(0, 10**9), default=None, metavar="N",
                   help="with --follow: exit after N new events")
    p.add_argument("--json", action="store_true",
                   help="one strict JSON object per event (a plain line: kind 'text' and its raw text)")

    p = add("anomalies", "current anomaly flags; --follow evaluates the rules and prints changes",
            "Print the current anomaly flags (rule, subject, the numbers that tripped it, since when). "
            "With --follow, also evaluate the rules on the live feed (raising and clearing flags in "
            "Redis unless --read-only) and print every flag raised or cleared, by any follower.",
            )
    p.epilog = ("Rules and defaults (set SESSIONWATCH_ANOMALY_<NAME>): spray_users 10 in spray_window 300 s "
                "(spraying if >= spray_rate 0.2 logins/s, else shared NAT); sharing_addresses 5 or "
                "sharing_networks 4 at once; burst_factor 4x the median of baseline_minutes 15 (at least "
                "burst_floor 120/min over burst_window 10 s); comeback within comeback_window 600 s of an "
                "admin logging the user out everywhere; newusers_count 20 in newusers_window 60 s and "
                "newusers_factor 4x baseline; clear_after 60 s.")
    p.add_argument("--follow", action="store_true", help="keep evaluating and print flags as they change")
    p.add_argument("--count", type=_int_between(1, 10**9), default=None, metavar="N",
                   help="with --follow: exit after N flag changes")
    p.add_argument("--json", action="store_true", help="one JSON object per flag or change")

    p = add("stats", "session counts, by app and type, logins per minute, top addresses and users")
    p.add_argument("--minutes", type=_int_between(1, 120), default=30, metavar="N",
                   help="per-minute history to sum (default: 30)")
    p.add_argument("--json", action="store_true", help="one JSON object")

    add("sweep", "end sessions whose expiry passed and purge old history now",
        "End sessions whose idle or absolute expiry passed (as 'expired' events) and purge ended "
        "sessions older than the retention, in bounded batches (one short script call each) until "
        "none is left, with a progress bar on a terminal; Ctrl-C stops cleanly and a rerun "
        "continues. Apps and the dashboard also do this.")

    add("health", "check that Redis answers (for probes: exit 0 ok, 3 unreachable, 4 denied)")

    add("install-functions", "load sessionwatch's Lua function library into Redis 7 (as the admin)",
        "Load the Redis Function library that runs every session write (FUNCTION LOAD), so the app "
        "and dashboard users need no EVAL rights. Run it once per version, as the admin user; a "
        "store whose user may load it does so by itself. Redis 6.2 has no functions (EVALSHA there).")

    p = add("export", "write every session as JSON lines (backup)",
            "Stream every session, one self-describing JSON record per line "
            "({\"kind\": \"session\", \"v\": 1, \"sid\": ..., \"fields\": {...}}), reading a page at "
            "a time: memory stays flat however many there are. Indexed sessions come in id order, "
            "then any the indexes lack (found by SCAN); each session is written once, as one "
            "consistent read. A progress bar shows on a terminal; Ctrl-C stops cleanly.")
    p.add_argument("--out", metavar="FILE",
                   help="write to FILE atomically (mode 0600; only a complete export replaces it), "
                        "gzip-compressed if FILE ends in .gz (default: stdout)")

    p = add("import", "restore sessions from an export (never overwrites existing ones)",
            "Restore each session of an export (plain or .gz) that is not already in Redis, with its "
            "indexes. Two streaming passes: the first checks every line and writes nothing if any "
            "is wrong (not JSON, NaN or non-finite times, wrong types, a live session beyond the "
            "policy's idle or absolute lifetime); the second writes in batches of bounded size. "
            "Interrupted? Run it again: it skips what is already there.")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="export file, .gz or plain (default: stdin, or '-')")
    p.add_argument("--trust", action="store_true",
                   help="also restore live (active, unexpired) sessions; without it such a line is "
                        "refused, because the file chooses the ids, so its author could use them")

    p = add("reindex", "index sessions another app wrote with plain Redis commands",
            "SCAN session:* in bounded batches and add each session to sessionwatch's indexes, so a "
            "Redis written in the classic layout is fully indexed (fast pages, search, stats). The "
            "sessions themselves are only read: one without expiry fields stays without one, and "
            "no sweep ends it. Idempotent: a rerun skips what is indexed.")
    p.add_argument("--batch", type=_int_between(1, 10_000), default=500, metavar="N",
                   help="SCAN COUNT per call (default: 500); sessions are indexed 16 per script call")

    p = add("ssh-server", "serve the dashboard over SSH (public keys only, a role per key)",
            "Serve the dashboard to SSH clients: 'ssh -p 2222 host' opens it, with no shell. Only "
            "the keys in --authorized-keys (OpenSSH format) get in; environment=\"SESSIONWATCH_ROLE="
            "admin\" in a key's options gives the full dashboard, any other key the read-only one; "
            "the key's comment names the person in the event log. Each connection runs its own "
            "dashboard process with this command's connection options.")
    p.add_argument("--listen", type=_listen_address, default=("127.0.0.1", 2222), metavar="HOST:PORT",
                   help="address to listen on (default: 127.0.0.1:2222; port 0 picks a free one)")
    p.add_argument("--authorized-keys", required=True, metavar="FILE",
                   help="OpenSSH authorized_keys file; re-read when it changes")
    p.add_argument("--host-key", metavar="FILE",
                   help="server private key; an ed25519 key is created (mode 600) if missing "
                        "(default: ~/.config/sessionwatch/ssh_host_ed25519_key)")
    p.add_argument("--idle-timeout", type=_non_negative_float, default=1800.0, metavar="SECONDS",
                   help="disconnect after this long without input (default: 1800; 0 = never)")
    p.add_argument("--max-connections", type=_int_between(1, 10_000), default=16, metavar="N",
                   help="at most N dashboards at once (default: 16)")
    p.add_argument("--max-auth-failures", type=_int_between(1, 1000), default=5, metavar="N",
                   help="failed logins per client address in 5 minutes before it is refused (default: 5)")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, value in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    if args.command is None:
        args.command = "watch"
        args.refresh, args.feed, args.sweep = 2.0, True, None
    return args


def run(args: argparse.Namespace) -> int:
    if args.read_only and args.command in WRITE_COMMANDS:
        raise CliError(f"--read-only: refusing to run '{args.command}' (it writes)", EXIT_REFUSED)
    return COMMANDS[args.command](args)


def _explain(message: str) -> str:
    """Add where the CLI takes credentials from to core's "requires authentication"."""
    if "requires authentication" in message:
        return (f"{message}: put user:password in the URL (redis://user:pass@host:port/db) "
                "or use --password-file")
    return message


_EXIT_CODES: tuple[tuple[type[StoreError], int], ...] = (
    (InvalidInput, EXIT_USAGE),
    (SessionNotFound, EXIT_ERROR),
    (PermissionDenied, EXIT_REFUSED),
    (StoreUnavailable, EXIT_UNAVAILABLE),
    (StoreError, EXIT_ERROR),
)
"""Exit code for each error core raises (first match wins)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionwatch`` console script; returns the exit code."""
    try:
        args = parse_args(argv)
        return run(args)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except CliError as exc:
        note(f"error: {exc}")
        return exc.code
    except StoreError as exc:
        code = next(code for kind, code in _EXIT_CODES if isinstance(exc, kind))
        text = _explain(str(exc)) if isinstance(exc, StoreUnavailable) else str(exc)
        note(f"error: {'invalid input: ' if isinstance(exc, InvalidInput) else ''}{text}")
        return code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (| head): exit quietly, without a flush error at shutdown
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
