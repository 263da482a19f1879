"""Benchmark 3: requests/s of Flask routes using the session, served through Flask-Session's
Redis backend, through core (validate in a before_request hook), through core's Flask
integration (``core.integrations.flask``), and with no session at all (the ceiling): a
route that reads the session, and two that write it on every request (a counter that
reads then writes, and a stamp that writes without reading). All in-process with
``app.test_client()``, same Redis.

Flask-Session is installed with pip for the run when missing (it is not a dependency).
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable

import flask
import redis

from core import SessionStore

from .config import Config
from .measure import Progress, Sample, Section, Table, Target, fmt, ratio
from .redisstats import measure

PAYLOAD_USER = "alice"


def ensure_flask_session(cfg: Config, progress: Progress) -> str | None:
    """``None`` when Flask-Session is importable, else why it is not measured."""
    if importlib.util.find_spec("flask_session") is not None:
        return None
    if not cfg.install:
        return "Flask-Session is not installed (pip install flask-session) and installing was not allowed"
    progress("flask: Flask-Session is missing; installing it for this benchmark: pip install flask-session")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "flask-session"],
                          capture_output=True, text=True, check=False)
    importlib.invalidate_caches()
    if done.returncode != 0 or importlib.util.find_spec("flask_session") is None:
        return f"pip install flask-session failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def bare_app() -> flask.Flask:
    app = flask.Flask("bare")

    @app.get("/me")
    def me() -> flask.Response:
        return flask.jsonify(user=PAYLOAD_USER)

    return app


def flask_session_app(url: str) -> flask.Flask:
    from flask_session import Session as FlaskSession

    app = flask.Flask("flask_session")
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(url), SECRET_KEY="bench")
    FlaskSession(app)

    @app.post("/login")
    def login() -> flask.Response:
        flask.session["user"] = PAYLOAD_USER
        return flask.jsonify(ok=True)

    @app.get("/me")
    def me() -> flask.Response:
        return flask.jsonify(user=flask.session.get("user"))

    add_write_routes(app)
    return app


def add_write_routes(app: flask.Flask) -> None:
    """The write-every-request routes, identical for every session layer."""

    @app.post("/hit")
    def hit() -> str:
        flask.session["hits"] = flask.session.get("hits", 0) + 1
        return "ok"

    @app.post("/stamp")
    def stamp() -> str:
        flask.session["last"] = flask.request.headers.get("X-N", "")
        return "ok"


def core_hook_app(store: SessionStore) -> flask.Flask:
    """Core without the integration: validate the bearer cookie in before_request."""
    app = flask.Flask("core_hook")

    @app.before_request
    def load() -> None:
        flask.g.user_session = store.validate(flask.request.cookies.get("sw", ""))

    @app.get("/me")
    def me() -> flask.Response:
        s = flask.g.user_session
        return flask.jsonify(user=s.username if s is not None else None)

    return app


def core_integration_app(store: SessionStore) -> flask.Flask | None:
    try:
        integ = importlib.import_module("core.integrations.flask")
    except ImportError:
        return None
    app = flask.Flask("core_integration")
    integ.SessionWatch(app, store)

    @app.post("/login")
    def login() -> flask.Response:
        integ.start_session(PAYLOAD_USER, type="web")
        return flask.jsonify(ok=True)

    @app.get("/me")
    def me() -> flask.Response:
        s = integ.current_session()
        return flask.jsonify(user=s.username if s is not None else None)

    add_write_routes(app)
    return app


def _client(app: flask.Flask, setup: Callable[[object], None]) -> Callable[[], None]:
    client = app.test_client()
    setup(client)

    def get() -> None:
        resp = client.get("/me")
        if resp.status_code != 200 or resp.get_json() != {"user": PAYLOAD_USER}:
            raise RuntimeError(f"{app.name}: unexpected response {resp.status_code} {resp.get_data()[:80]!r}")
    return get


def _poster(app: flask.Flask, path: str, setup: Callable[[object], None]) -> Callable[[], None]:
    client = app.test_client()
    setup(client)
    n = 0

    def post() -> None:
        nonlocal n
        n += 1
        resp = client.post(path, headers={"X-N": str(n)})
        if resp.status_code != 200:
            raise RuntimeError(f"{app.name}{path}: unexpected response {resp.status_code} "
                               f"{resp.get_data()[:80]!r}")
    return post


def _time(variants: dict[str, Callable[[], None]], admin: redis.Redis, cfg: Config, progress: Progress,
          label: str) -> tuple[dict[str, Sample], dict[str, tuple[float, str]], dict[str, Sample]]:
    """Requests/s (wall clock), Redis commands per request, and this process's CPU per
    request in µs (steadier than requests/s on a shared machine: other load inflates wall
    time, not our CPU time)."""
    samples = {k: Sample() for k in variants}
    cpu = {k: Sample() for k in variants}
    cmds = {}
    for name, call in variants.items():
        for _ in range(100):
            call()  # warm: connections, scripts, Flask's first-request work
        cost = measure(admin, lambda c=call: [c() for _ in range(100)])
        cmds[name] = (cost.total_commands / 100, cost.breakdown())
    n = cfg.flask_requests
    for rep in range(cfg.reps):
        progress(f"{label}: repetition {rep + 1}/{cfg.reps}")
        for name, call in variants.items():
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n):
                call()
            samples[name].add(n / (time.perf_counter() - t))
            cpu[name].add((time.process_time() - c) / n * 1e6)
    return samples, cmds, cpu


def _write_tables(sec: Section, url: str, store: SessionStore, admin: redis.Redis, cfg: Config,
                  progress: Progress, with_fs: bool) -> None:
    if core_integration_app(store) is None:
        return
    fs_name, sw_name = "Flask-Session (redis backend, defaults)", "core.integrations.flask (SessionWatch)"
    routes = (("/hit", "a counter: reads, then writes"), ("/stamp", "a stamp: writes without reading"))
    for path, what in routes:
        variants: dict[str, Callable[[], None]] = {}
        if with_fs:
            variants[fs_name] = _poster(flask_session_app(url), path, lambda c: c.post("/login"))
        variants[sw_name] = _poster(core_integration_app(store), path, lambda c: c.post("/login"))
        samples, cmds, cpu = _time(variants, admin, cfg, progress, f"flask {path}")
        fs = samples.get(fs_name)
        t = Table(f"3{'b' if path == '/hit' else 'c'}. Flask route writing the session on every request, "
                  f"{what}, requests/s", ["route", "requests/s", "× Flask-Session", "client CPU µs / request",
                                          "Redis commands / request (per 100)"])
        for name in variants:
            t.add(name, samples[name].cell(), ratio(samples[name], fs).cell(2) if fs else "n/a",
                  cpu[name].cell(), f"{cmds[name][0]:.2f} ({cmds[name][1] or '-'})")
        t.notes.append(f"{cfg.flask_requests:,} POSTs per timed block to `{path}` in a logged-in session; "
                       "every response checked (200).")
        sec.tables.append(t)
        if fs is not None:
            r = ratio(samples[sw_name], fs)
            sec.targets.append(Target(f"Flask route writing every request ({what}), SessionWatch vs "
                                      "Flask-Session", f"{fmt(r.median, 2)}×", "≥ 1.5×", r.median >= 1.5))
            sec.headline.append((f"Flask route writing every request, {what.split(':')[0]}",
                                 f"{fmt(samples[sw_name].median)} req/s via SessionWatch vs "
                                 f"{fmt(fs.median)} via Flask-Session = {fmt(r.median, 2)}×"))


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("Flask: sessionwatch vs Flask-Session")
    store = SessionStore.from_url(url)
    admin = redis.Redis.from_url(url, decode_responses=True)
    variants: dict[str, Callable[[], None]] = {
        "bare route, no session (ceiling)": _client(bare_app(), lambda c: None)}

    why_not = ensure_flask_session(cfg, progress) if cfg.flask_session else "skipped in this configuration"
    if why_not is None:
        variants["Flask-Session (redis backend, defaults)"] = _client(
            flask_session_app(url), lambda c: c.post("/login"))
    else:
        sec.not_done.append(f"Flask-Session comparison: {why_not}")
    _, token = store.login(PAYLOAD_USER, app="bench", type="web")
    variants["core: store.validate in before_request"] = _client(
        core_hook_app(store), lambda c: c.set_cookie("sw", token))
    integ = core_integration_app(store)
    if integ is not None:
        variants["core.integrations.flask (SessionWatch)"] = _client(integ, lambda c: c.post("/login"))
    else:
        sec.not_done.append("core.integrations.flask route: module not importable")

    samples, cmds, cpu = _time(variants, admin, cfg, progress, "flask")
    n = cfg.flask_requests

    bare = samples["bare route, no session (ceiling)"]
    fs_name = "Flask-Session (redis backend, defaults)"
    fs = samples.get(fs_name)
    t = Table("3. Flask route reading the session, app.test_client(), requests/s",
              ["route", "requests/s", "× bare route", "× Flask-Session", "client CPU µs / request",
               "Redis commands / request (per 100)"])
    for name in variants:
        t.add(name, samples[name].cell(), ratio(samples[name], bare).cell(2),
              ratio(samples[name], fs).cell(2) if fs else "n/a", cpu[name].cell(),
              f"{cmds[name][0]:.2f} ({cmds[name][1] or '-'})")
    t.notes.append(f"{n:,} requests per timed block; every response checked ({{'user': '{PAYLOAD_USER}'}}). "
                   "Flask-Session with its defaults (permanent sessions, refresh on each request).")
    sec.tables.append(t)
    for name in ("core: store.validate in before_request", "core.integrations.flask (SessionWatch)"):
        if fs is not None and name in samples:
            r = ratio(samples[name], fs)
            sec.targets.append(Target(f"Flask route, {name.split(' (')[0]} vs Flask-Session",
                                      f"{fmt(r.median, 2)}×", "≥ 1.5×", r.median >= 1.5))
    if fs is not None:
        core_s = samples["core: store.validate in before_request"]
        sec.headline.append(("Flask route reading the session", f"{fmt(core_s.median)} req/s via core vs "
                             f"{fmt(fs.median)} via Flask-Session = {fmt(ratio(core_s, fs).median, 2)}× "
                             f"(bare route {fmt(bare.median)})"))
    _write_tables(sec, url, store, admin, cfg, progress, with_fs=why_not is None)
    store.close()
    admin.close()
    return sec
