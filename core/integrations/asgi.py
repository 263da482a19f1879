"""Starlette / FastAPI sessions kept in Redis by :class:`core.AsyncSessionStore`.

>>> store = AsyncSessionStore.from_url(url, policy=Policy(max_sessions_per_user=1))
>>> app = FastAPI()
>>> app.add_middleware(SessionWatchMiddleware, store=store, app_name="api")
>>> @app.get("/me")
... async def me(session: Session = Depends(require_session)):
...     return session.to_dict()

- The token comes from an ``Authorization: Bearer <token>`` header or, failing that, from
  the cookie (HttpOnly, SameSite=Lax, Secure by default). Neither holds session data.
- Validation is lazy and cached per request: one EVALSHA the first time an endpoint asks
  for the session, none if it never does.
- ``await handle.login(...)`` issues a new token (no fixation): the session the request
  carried is ended first, and the new token is set as the cookie and returned (for API
  clients that send it back as a bearer token). With ``Policy(max_sessions_per_user=1)``
  core also ends the user's other sessions as ``replaced`` (single-session mode).
- Redis unreachable: HTTP 503 with a one-line message (an ``HTTPException`` the app may
  restyle); never a silent logout, never a session served without validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Literal

try:
    from starlette.datastructures import MutableHeaders
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection
    from starlette.responses import PlainTextResponse, Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"needs Starlette: pip install 'sessionwatch[asgi]' ({exc})") from None

from core import AsyncSessionStore, Session, SessionNotFound, StoreUnavailable
from core.tokens import sid_from_token

from . import COOKIE_NAME, UNAVAILABLE_MESSAGE, bearer_token, client_ip, with_profile

STATE_KEY = "sessionwatch"


def unavailable() -> HTTPException:
    return HTTPException(503, UNAVAILABLE_MESSAGE)


class SessionHandle:
    """What one request knows about its session; found at ``request.state.sessionwatch``."""

    def __init__(self, middleware: SessionWatchMiddleware, scope: Scope, token: str | None,
                 source: Literal["bearer", "cookie"] | None) -> None:
        self._mw = middleware
        self._scope = scope
        self.token = token
        self.source = source
        self._loaded = token is None
        self._session: Session | None = None
        self.set_token: str | None = None
        """A token issued in this request: sent as the cookie."""
        self.drop_cookie = False

    @property
    def store(self) -> AsyncSessionStore:
        return self._mw.store

    async def get(self) -> Session | None:
        """The validated session, or ``None``; validated once per request."""
        if not self._loaded:
            try:
                self._session = await self.store.validate(self.token)
            except StoreUnavailable as exc:
                raise unavailable() from exc
            self._loaded = True
            if self._session is None:
                self.token = None
                self.drop_cookie = self.source == "cookie"
        return self._session

    async def login(self, username: str, *, app: str | None = None, type: str = "web",
                    email: str | None = None, department: str | None = None,
                    metadata: Mapping[str, object] | None = None) -> tuple[Session, str]:
        """Log ``username`` in with a fresh token; the session this request carried ends."""
        conn = HTTPConnection(self._scope)
        # The previous session ends after the new one exists: bad input or an outage
        # during login leaves the client logged in as before.
        old = self._session.sid if self._session is not None else None
        if old is None and not self._loaded:
            old = sid_from_token(self.token)  # logout is idempotent: no validate round trip
        try:
            session, token = await self.store.login(
                username, app=app or self._mw.app_name, type=type,
                ip=client_ip(conn.client.host if conn.client else None),
                user_agent=(conn.headers.get("user-agent") or "")[:1024] or None,
                email=email, department=department, metadata=metadata,
            )
            if old is not None:
                await self.store.logout(old)
        except StoreUnavailable as exc:
            raise unavailable() from exc
        self._session, self.token, self._loaded = session, token, True
        self.set_token, self.drop_cookie = token, False
        return session, token

    async def logout(self, *, everywhere: bool = False) -> bool:
        """End this session in Redis (every copy of the token stops working), or with
        ``everywhere`` every session of the user; deletes the cookie."""
        session = await self.get()
        if session is None:
            return False
        try:
            if everywhere:
                ended = bool(await self.store.logout_user(session.username))
            else:
                ended = await self.store.logout(session.sid)
        except StoreUnavailable as exc:
            raise unavailable() from exc
        self._session, self.token, self.set_token = None, None, None
        self.drop_cookie = True
        return ended

    async def update_profile(self, *, email: str | None = None, department: str | None = None,
                             metadata: Mapping[str, object] | None = None) -> Session | None:
        """Set profile fields (one round trip); returns the updated session, or ``None`` if
        it has ended."""
        session = await self.get()
        if session is None:
            return None
        try:
            await self.store.update_profile(session.sid, email=email, department=department,
                                            metadata=metadata)
            self._session = with_profile(session, email=email, department=department, metadata=metadata)
        except SessionNotFound:
            self._session, self.drop_cookie = None, self.source == "cookie"
        except StoreUnavailable as exc:
            raise unavailable() from exc
        return self._session

    def cookie_headers(self) -> list[tuple[bytes, bytes]]:
        mw = self._mw
        if not (self.set_token or self.drop_cookie):
            return []
        response = Response()
        if self.set_token:
            expires = None
            if self._session is not None and self._session.max_expires_at:
                expires = max(0, int(self._session.max_expires_at - self.store.ctx.clock()))
            response.set_cookie(mw.cookie_name, self.set_token, max_age=expires, path=mw.path,
                                secure=mw.secure, httponly=True, samesite=mw.samesite)
        else:
            response.delete_cookie(mw.cookie_name, path=mw.path, secure=mw.secure, httponly=True,
                                   samesite=mw.samesite)
        return [(k, v) for k, v in response.raw_headers if k == b"set-cookie"]


class SessionWatchMiddleware:
    """Pure ASGI middleware: puts a :class:`SessionHandle` on every HTTP request and
    WebSocket, sets or deletes the cookie on responses, maps Redis outages to 503."""

    def __init__(self, app: ASGIApp, store: AsyncSessionStore, *, app_name: str = "api",
                 cookie_name: str = COOKIE_NAME, secure: bool = True,
                 samesite: Literal["lax", "strict", "none"] = "lax", path: str = "/",
                 accept_bearer: bool = True, accept_cookie: bool = True) -> None:
        self.app = app
        self.store = store
        self.app_name = app_name
        self.cookie_name = cookie_name
        self.secure = secure
        self.samesite = samesite
        self.path = path
        self.accept_bearer = accept_bearer
        self.accept_cookie = accept_cookie

    def _token(self, scope: Scope) -> tuple[str | None, Literal["bearer", "cookie"] | None]:
        conn = HTTPConnection(scope)
        if self.accept_bearer and (token := bearer_token(conn.headers.get("authorization"))):
            return token, "bearer"
        if self.accept_cookie and (token := _cookie(conn.headers.get("cookie"), self.cookie_name)):
            return token, "cookie"
        return None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token, source = self._token(scope)
        handle = SessionHandle(self, scope, token, source)
        scope.setdefault("state", {})[STATE_KEY] = handle
        started = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in handle.cookie_headers():
                    headers.append(name.decode("latin-1"), value.decode("latin-1"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        except StoreUnavailable:
            # The app called the store itself and did not handle the outage.
            if started or scope["type"] != "http":
                raise
            await PlainTextResponse(UNAVAILABLE_MESSAGE, status_code=503)(scope, receive, send)


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header from some other app is not our error
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


# --- FastAPI dependencies (plain callables: FastAPI injects the Starlette request) ------------

def session_handle(request: HTTPConnection) -> SessionHandle:
    """``Depends(session_handle)``: the request's handle, to log in or out."""
    handle = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(handle, SessionHandle):
        raise RuntimeError("SessionWatchMiddleware is not installed on this app")
    return handle


async def optional_session(request: HTTPConnection) -> Session | None:
    """``Depends(optional_session)``: the validated session or ``None``."""
    return await session_handle(request).get()


async def require_session(request: HTTPConnection) -> Session:
    """``Depends(require_session)``: the validated session, else HTTP 401."""
    session = await session_handle(request).get()
    if session is None:
        raise HTTPException(401, "Not logged in", headers={"WWW-Authenticate": "Bearer"})
    return session


__all__ = [
    "STATE_KEY",
    "SessionHandle",
    "SessionWatchMiddleware",
    "optional_session",
    "require_session",
    "session_handle",
]
