"""Starlette / FastAPI sessions kept in Redis by :class:`core.AsyncSessionStore`.

Two middlewares:

- :class:`SessionMiddleware`: a drop-in for Starlette's ``SessionMiddleware`` (same
  keyword arguments and defaults, plus ``store``): ``request.session`` is a plain dict
  with Starlette's semantics, kept in Redis (values as JSON, one field per key) instead
  of a signed cookie. Data written before login is an anonymous session (idle TTL, size
  cap); ``await session_handle(request).login(...)`` turns it into a user session in one
  script (new token and id, data carried over). ``request.session.clear()`` ends the
  session. Authlib's Starlette client works with it alone. The FastAPI dependencies below
  work on top of it. A request carrying the cookie costs one read (the dict is filled
  before the app runs, as Starlette's is), even if the app never touches it: the dict is
  read synchronously from async code, so loading it on first use would block the event
  loop (see the README's Cost note); a change costs one more call; a request without
  the cookie costs none. Websockets see the same session (read only, as with
  Starlette).
- :class:`SessionWatchMiddleware`: token sessions for APIs (bearer header or cookie),
  without ``request.session``:

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

import json
import logging
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any, Literal

try:
    from starlette.datastructures import MutableHeaders
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection
    from starlette.responses import PlainTextResponse, Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"needs Starlette: pip install 'sessionwatch[asgi]' ({exc})") from None

from core import AsyncSessionStore, DataTooLarge, Session, SessionNotFound, StoreUnavailable
from core.plans import data_of
from core.tokens import anon_id_from_token, sid_from_token

from . import COOKIE_NAME, UNAVAILABLE_MESSAGE, bearer_token, client_ip, with_profile
from .data import decode_all, diff, too_large

log = logging.getLogger(__name__)

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
    "DataSessionHandle",
    "SessionHandle",
    "SessionMiddleware",
    "SessionWatchMiddleware",
    "optional_session",
    "require_session",
    "session_handle",
]


# --- request.session: the drop-in for Starlette's SessionMiddleware ---------------------------

def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


_decode = json.loads


class DataSessionHandle(SessionHandle):
    """The handle :class:`SessionMiddleware` puts on each request: logging in or out also
    carries or clears ``request.session``."""

    def __init__(self, middleware: Any, scope: Scope, token: str | None) -> None:
        user_token = token if sid_from_token(token) is not None else None
        super().__init__(middleware, scope, user_token, "cookie" if user_token else None)
        self.anon_token = token if anon_id_from_token(token) is not None else None
        self.had_cookie = token is not None
        self.stored: dict[str, str] = {}
        self.ended: list[str] = []
        """User sessions ended in this request whose cookie must go."""

    @property
    def data(self) -> dict[str, Any]:
        return self._scope["session"]  # type: ignore[no-any-return]

    async def load(self) -> dict[str, Any]:
        """Fill ``request.session`` from Redis (one round trip when there is a cookie)."""
        if self.token is not None:
            session = await self.get()
            if session is not None:
                self.stored = data_of(session.metadata)
        elif self.anon_token is not None:
            try:
                anon = await self.store.read_anonymous(self.anon_token)
            except StoreUnavailable as exc:
                raise unavailable() from exc
            if anon is None:
                self.anon_token = None
            else:
                self.stored = anon.data
        data, bad = decode_all(_decode, self.stored)
        if bad:
            log.warning("session data unreadable for keys %s: left out", [k[:40] for k in bad])
        return data

    async def login(self, username: str, *, app: str | None = None, type: str = "web",
                    email: str | None = None, department: str | None = None,
                    metadata: Mapping[str, object] | None = None) -> tuple[Session, str]:
        """Log ``username`` in with a new token and id; ``request.session`` is carried over
        and the anonymous session it lived in is deleted, in one script."""
        conn = HTTPConnection(self._scope)
        sets, _, sizes = diff(self.data, {}, _encode, 0)
        old = self._session.sid if self._session is not None else None
        try:
            session, token = await self.store.login(
                username, app=app or self._mw.app_name, type=type,
                ip=client_ip(conn.client.host if conn.client else None),
                user_agent=(conn.headers.get("user-agent") or "")[:1024] or None,
                email=email, department=department, metadata=metadata, data=sets, anonymous=self.anon_token)
            if old is not None:
                await self.store.logout(old)
        except StoreUnavailable as exc:
            raise unavailable() from exc
        except DataTooLarge as exc:
            raise too_large(exc, sizes) from None
        self._session, self.token, self._loaded, self.source = session, token, True, "cookie"
        self.set_token, self.drop_cookie, self.anon_token, self.stored = token, False, None, dict(sets)
        return session, token

    async def logout(self, *, everywhere: bool = False) -> bool:
        """End this user session (or every session of the user) and start clean."""
        ended = await super().logout(everywhere=everywhere)
        self.data.clear()
        self.stored = {}
        return ended

    async def save(self) -> None:
        """Write what the app changed in ``request.session``: at most one call."""
        data, store = self.data, self.store
        limit = store.policy.data_max_bytes
        sets, deletes, sizes = diff(data, self.stored, _encode, limit)
        if sum(sizes.values()) > limit:
            raise too_large(DataTooLarge(sum(sizes.values()), limit), sizes)
        if not sets and not deletes:
            return
        try:
            if self._session is not None:
                if not data:
                    # request.session.clear() on a user session: a logout, as Starlette
                    # apps log out by clearing the session.
                    await store.logout(self._session.sid)
                    self._session, self.token, self.set_token, self.drop_cookie = None, None, None, True
                elif not await store.save_data(self._session.sid, sets, deletes):
                    log.info("session ended during the request; its changes were not saved")
                    self._session, self.token, self.set_token, self.drop_cookie = None, None, None, True
            elif self.anon_token is not None and not data:
                await store.end_anonymous(self.anon_token)
                self.anon_token, self.drop_cookie = None, True
            elif data:
                saved = await store.save_anonymous(self.anon_token, sets, deletes, app=self._mw.app_name)
                self.anon_token = saved.token
        except StoreUnavailable as exc:
            raise unavailable() from exc
        except DataTooLarge as exc:
            raise too_large(exc, sizes) from None
        self.stored = {k: v for k, v in {**self.stored, **sets}.items() if k not in deletes}


class SessionMiddleware:
    """Drop-in for ``starlette.middleware.sessions.SessionMiddleware`` with the data in
    Redis: ``app.add_middleware(SessionMiddleware, store=store)``. ``secret_key`` is
    accepted so the switch changes only the store argument; it is not needed (the cookie
    holds a random token, not signed data)."""

    def __init__(self, app: ASGIApp, store: AsyncSessionStore, secret_key: object = None,
                 session_cookie: str = "session", max_age: int | None = 14 * 24 * 60 * 60, path: str = "/",
                 same_site: Literal["lax", "strict", "none"] = "lax", https_only: bool = False,
                 domain: str | None = None, *, app_name: str = "asgi") -> None:
        self.app = app
        self.store = store
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        self.app_name = app_name
        flags = f"httponly; samesite={same_site}"
        if https_only:
            flags += "; secure"
        if domain is not None:
            flags += f"; domain={domain}"
        self.flags = flags

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = HTTPConnection(scope).cookies.get(self.session_cookie) or None
        handle = DataSessionHandle(self, scope, token)
        scope["session"] = {}
        scope.setdefault("state", {})[STATE_KEY] = handle
        try:
            scope["session"].update(await handle.load())
        except HTTPException:
            if scope["type"] != "http":
                raise
            await PlainTextResponse(UNAVAILABLE_MESSAGE, status_code=503)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        failed = False

        async def send_saving(message: Message) -> None:
            nonlocal failed
            if failed:
                return
            if message["type"] == "http.response.start":
                try:
                    await handle.save()
                except HTTPException:
                    failed = True
                    await PlainTextResponse(UNAVAILABLE_MESSAGE, status_code=503)(scope, receive, send)
                    return
                header = self._cookie(handle)
                if header is not None:
                    MutableHeaders(scope=message).append("Set-Cookie", header)
            await send(message)

        await self.app(scope, receive, send_saving)

    def _cookie(self, handle: DataSessionHandle) -> str | None:
        token = handle.token or handle.anon_token
        if token is not None and (handle.data or handle.token is not None):
            max_age = self.max_age
            session = handle._session
            if max_age and session is not None and session.max_expires_at:
                max_age = max(0, min(max_age, int(session.max_expires_at - self.store.ctx.clock())))
            age = f"Max-Age={max_age}; " if max_age else ""
            return f"{self.session_cookie}={token}; path={self.path}; {age}{self.flags}"
        if handle.had_cookie:
            return (f"{self.session_cookie}=null; path={self.path}; "
                    f"expires=Thu, 01 Jan 1970 00:00:00 GMT; {self.flags}")
        return None
