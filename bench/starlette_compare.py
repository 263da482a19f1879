"""Benchmark 3d: requests/s of a Starlette route using ``request.session`` under three
middlewares: Starlette's own SessionMiddleware (data in a signed cookie, no Redis),
starlette-session with its Redis backend, and sessionwatch's drop-in
(``core.integrations.asgi.SessionMiddleware``). One route reads the session, one writes
it on every request (a counter). In-process through httpx's ASGI transport, one event
loop, same Redis. Reported side by side; no target (the cookie middleware needs no
Redis at all, so it is the ceiling, not a rival).
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable

import httpx
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import AsyncSessionStore

from .config import Config
from .measure import Progress, Sample, Section, Table, fmt, ratio

USER = "alice"
COOKIE = "Starlette SessionMiddleware (signed cookie, no Redis)"
STARLETTE_SESSION = "starlette-session (redis backend)"
OURS = "sessionwatch SessionMiddleware (drop-in)"


def make_app(install: Callable[[Starlette], None], login: Callable[[Request], Awaitable[None]]) -> Starlette:
    async def do_login(request: Request) -> JSONResponse:
        await login(request)
        return JSONResponse({"ok": True})

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.session.get("user")})

    async def hit(request: Request) -> JSONResponse:
        request.session["hits"] = request.session.get("hits", 0) + 1
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/login", do_login, methods=["POST"]), Route("/me", me),
                            Route("/hit", hit, methods=["POST"])])
    install(app)
    return app


async def _plain_login(request: Request) -> None:
    request.session["user"] = USER


def variants(url: str, store: AsyncSessionStore) -> tuple[dict[str, Starlette], list[str]]:
    apps: dict[str, Starlette] = {}
    missing: list[str] = []
    from starlette.middleware.sessions import SessionMiddleware as CookieSessions

    apps[COOKIE] = make_app(lambda a: a.add_middleware(CookieSessions, secret_key="bench"), _plain_login)
    if importlib.util.find_spec("starlette_session") is not None:
        from starlette_session import SessionMiddleware as RedisSessions
        from starlette_session.backends import BackendType

        client = redis.Redis.from_url(url)
        apps[STARLETTE_SESSION] = make_app(
            lambda a: a.add_middleware(RedisSessions, secret_key="bench", cookie_name="session",
                                       backend_type=BackendType.redis, backend_client=client), _plain_login)
    else:
        missing.append("starlette-session is not installed (pip install starlette-session)")
    from core.integrations.asgi import SessionMiddleware, session_handle

    async def our_login(request: Request) -> None:
        request.session["user"] = USER
        await session_handle(request).login(USER)

    apps[OURS] = make_app(lambda a: a.add_middleware(SessionMiddleware, store=store), our_login)
    return apps, missing


async def _measure(url: str, cfg: Config, progress: Progress) -> tuple[
        dict[str, dict[str, Sample]], dict[str, dict[str, str]], dict[str, dict[str, Sample]], list[str]]:
    store = AsyncSessionStore.from_url(url)
    apps, missing = variants(url, store)
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
               for name, app in apps.items()}
    admin = redis.Redis.from_url(url, decode_responses=True)
    samples: dict[str, dict[str, Sample]] = {r: {n: Sample() for n in apps} for r in ("/me", "/hit")}
    cpu: dict[str, dict[str, Sample]] = {r: {n: Sample() for n in apps} for r in ("/me", "/hit")}
    cmds: dict[str, dict[str, str]] = {r: {} for r in ("/me", "/hit")}
    try:
        for client in clients.values():
            resp = await client.post("/login")
            resp.raise_for_status()

        async def call(client: httpx.AsyncClient, route: str) -> None:
            resp = await (client.get(route) if route == "/me" else client.post(route))
            if resp.status_code != 200 or (route == "/me" and resp.json() != {"user": USER}):
                raise RuntimeError(f"{route}: unexpected response {resp.status_code} {resp.text[:80]!r}")

        for route in ("/me", "/hit"):
            for name, client in clients.items():
                for _ in range(100):
                    await call(client, route)

                started = _commands(admin)
                for _ in range(100):
                    await call(client, route)
                cmds[route][name] = _delta(admin, started)
        n = cfg.flask_requests
        for rep in range(cfg.reps):
            progress(f"starlette: repetition {rep + 1}/{cfg.reps}")
            for route in ("/me", "/hit"):
                for name, client in clients.items():
                    t, c = time.perf_counter(), time.process_time()
                    for _ in range(n):
                        await call(client, route)
                    samples[route][name].add(n / (time.perf_counter() - t))
                    cpu[route][name].add((time.process_time() - c) / n * 1e6)
    finally:
        for client in clients.values():
            await client.aclose()
        await store.close()
        admin.close()
    return samples, cmds, cpu, missing


def _commands(admin: redis.Redis) -> dict[str, int]:
    info = admin.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


def _delta(admin: redis.Redis, before: dict[str, int]) -> str:
    after = _commands(admin)
    diff = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0) and k != "info"}
    total = sum(diff.values())
    parts = ", ".join(f"{k} {v}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1]))
    return f"{total / 100:.2f} ({parts or '-'})"


def run(url: str, cfg: Config, progress: Progress) -> Section:
    sec = Section("Starlette: request.session under three middlewares")
    samples, cmds, cpu, missing = asyncio.run(_measure(url, cfg, progress))
    sec.not_done.extend(missing)
    for route, what in (("/me", "reading the session"), ("/hit", "writing the session on every request "
                                                         "(a counter: reads, then writes)")):
        base = samples[route][COOKIE]
        t = Table(f"3d. Starlette route {what}, requests/s", ["middleware", "requests/s",
                                                              "× cookie middleware", "× starlette-session",
                                                              "client CPU µs / request",
                                                              "Redis commands / request (per 100)"])
        other = samples[route].get(STARLETTE_SESSION)
        for name, sample in samples[route].items():
            t.add(name, sample.cell(), ratio(sample, base).cell(2),
                  ratio(sample, other).cell(2) if other else "n/a", cpu[route][name].cell(),
                  cmds[route].get(name, "-"))
        t.notes.append(f"{cfg.flask_requests:,} requests per timed block through httpx.ASGITransport; every "
                       "response checked. sessionwatch's session is a logged-in user session; the others "
                       "hold the same data in their own format. starlette-session calls the synchronous "
                       "redis-py client inside the event loop, as it is written.")
        sec.tables.append(t)
        ours = samples[route][OURS]
        rival = f", starlette-session {fmt(other.median)}" if other else ""
        sec.headline.append((f"Starlette route {what.split(' (')[0]}",
                             f"{fmt(ours.median)} req/s via sessionwatch{rival}, cookie middleware "
                             f"{fmt(base.median)}"))
    return sec
