"""Flask sessions kept in Redis by :mod:`core`.

>>> app = Flask(__name__)
>>> SessionWatch(app, SessionStore.from_url(url), app_name="admin")
>>> # in a view
>>> login_user("alice", type="web")        # new token, new cookie, old session ended
>>> session["theme"] = "dark"              # stored in the session hash as field s_theme
>>> current_session().short_id
>>> logout_user()                          # ends the session in Redis, deletes the cookie

How it behaves, and its limits:

- The cookie holds only the bearer token (HttpOnly, SameSite=Lax, Secure unless the app
  runs in debug mode). Redis stores only ``sha256(secret)`` as the session id.
- Validation is lazy: the first access to ``session`` (or a helper) runs one EVALSHA. A
  request that never touches the session costs no Redis call; one that reads it costs one.
  A request that changes session data costs a second call (``update_profile``) when the
  response is saved; logging in costs one call (two if a previous session is ended).
- Only a changed session is written: at the end of the request every value is re-encoded
  and compared with what was loaded, so in-place changes (``session["cart"].append(x)``)
  are seen too, and unchanged sessions are never written.
- Values are stored as session-hash fields ``s_<key>``: keys must match
  ``[a-z0-9_]{1,62}`` (Flask's own ``_flashes``, ``_permanent`` and Flask-Login's keys do);
  a value is kept as plain text when that reads back unambiguously, else as JSON, and must
  encode to at most 1024 characters. Values must be JSON-serialisable (str, int, float,
  bool, None, list, dict); tuples come back as lists. A deleted key leaves an empty field.
- Data needs a logged-in user: sessions belong to users (the dashboard lists them by
  user), so writing to the session before :func:`login_user` raises
  :class:`AnonymousSessionError`; there are no anonymous server-side sessions.
- ``session.permanent`` is ignored: lifetimes come from :class:`core.Policy` (idle and
  absolute timeouts enforced in Redis); the cookie expires at the absolute deadline.
- Redis unreachable: the request ends with HTTP 503 and a one-line message (a werkzeug
  ``ServiceUnavailable``, so ``@app.errorhandler(503)`` can restyle it); the user is never
  logged out because of it and no session is ever served without validation.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

try:
    import flask
    from flask.sessions import SessionInterface, SessionMixin
    from werkzeug.exceptions import ServiceUnavailable
    from werkzeug.wrappers import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"needs Flask: pip install 'sessionwatch[flask]' ({exc})") from None

from core import Session, SessionNotFound, SessionStore, StoreUnavailable, validation
from core.tokens import sid_from_token

from . import COOKIE_NAME, UNAVAILABLE_MESSAGE, client_ip, with_profile

log = logging.getLogger(__name__)

FIELD_PREFIX = "s_"
"""Flask session key ``k`` is stored as session-hash field ``s_k``: a namespace apart from
the profile fields and login metadata, so ``session["status"]`` cannot clash with them."""
_KEY_RE = re.compile(r"^[a-z0-9_]{1,62}$")
VALUE_LIMIT = validation.LIMITS["metadata"]
BAD_CHARS = validation._BAD_CHARS  # what core refuses in stored text: stored as escaped JSON


class AnonymousSessionError(RuntimeError):
    """Session data was written with no user logged in."""


class SessionValueError(ValueError):
    """A session key or value that cannot be stored in the session hash."""


class SessionStoreUnavailable(ServiceUnavailable):
    """Redis cannot be reached: answered as HTTP 503 with a short message."""

    description = UNAVAILABLE_MESSAGE


# --- value codec ----------------------------------------------------------------------------

def field_name(key: object) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SessionValueError(f"session key {str(key)[:40]!r} must match [a-z0-9_]{{1,62}}")
    return FIELD_PREFIX + key


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def encode_value(key: str, value: Any) -> str:
    """Plain text when it reads back as itself (what the dashboard shows), else JSON."""
    if isinstance(value, str) and value and not _parses_as_json(value) and not BAD_CHARS.search(value):
        out = value
    else:
        try:
            out = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise SessionValueError(f"session[{key!r}]: {exc}") from None
        if BAD_CHARS.search(out):
            out = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    if len(out) > VALUE_LIMIT:
        raise SessionValueError(
            f"session[{key!r}] encodes to {len(out)} characters; the limit is {VALUE_LIMIT}")
    return out


def decode_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# --- the session object ---------------------------------------------------------------------

class WatchedSession(SessionMixin):
    """Flask's ``session``: a dict-like view of one core session, validated on first use."""

    new = False
    modified = False

    def __init__(self, interface: WatchedSessionInterface, token: str | None) -> None:
        self._interface = interface
        self._token = token
        self._loaded = token is None
        self._record: Session | None = None
        self._data: dict[str, Any] = {}
        self._stored: dict[str, str] = {}
        self.accessed = False
        self.issued = False
        """A new token was issued in this request (set the cookie)."""
        self.dropped = False
        """The cookie's token is no longer valid (delete the cookie)."""

    # loading
    def load(self) -> Session | None:
        """The core session behind the cookie (one EVALSHA, once per request)."""
        self.accessed = True
        if not self._loaded:
            try:
                record = self._interface.store.validate(self._token)
            except StoreUnavailable as exc:
                raise SessionStoreUnavailable() from exc
            self._loaded = True
            if record is None:
                self._token, self.dropped = None, True
            else:
                self._adopt(record, self._token)
        return self._record

    def _adopt(self, record: Session, token: str | None) -> None:
        self._record, self._token = record, token
        self._stored = {k: v for k, v in record.metadata.items() if k.startswith(FIELD_PREFIX)}
        self._data = {k[len(FIELD_PREFIX):]: decode_value(v) for k, v in self._stored.items() if v != ""}

    @property
    def token(self) -> str | None:
        return self._token

    # mapping protocol
    def __getitem__(self, key: str) -> Any:
        self.load()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        field_name(key)
        encode_value(key, value)  # refuse what cannot be stored here, not at save time
        if self.load() is None:
            raise AnonymousSessionError(
                "session data needs a logged-in user: call login_user() before writing to session")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self.load()
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(list(self._data))

    def __len__(self) -> int:
        self.load()
        return len(self._data)

    def __repr__(self) -> str:
        sid = self._record.short_id if self._record else None
        return f"<WatchedSession {sid} {sorted(self._data) if self._loaded else '(not loaded)'}>"

    @property  # type: ignore[override]
    def permanent(self) -> bool:
        """Always true: lifetimes come from core's Policy, not from Flask's flag."""
        return True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass

    # writing
    def changes(self) -> dict[str, str]:
        """Fields whose encoded value differs from what was loaded ("" for deleted keys)."""
        if self._record is None:
            return {}
        out = {}
        for key, value in self._data.items():
            name, raw = field_name(key), encode_value(key, value)
            if self._stored.get(name) != raw:
                out[name] = raw
        for name, raw in self._stored.items():
            if raw != "" and name[len(FIELD_PREFIX):] not in self._data:
                out[name] = ""
        return out

    def flush(self) -> bool:
        """Write changed values (one update_profile call); returns whether it wrote."""
        changed = self.changes()
        if not changed or self._record is None:
            return False
        try:
            self._interface.store.update_profile(self._record.sid, metadata=changed)
        except SessionNotFound:
            # Ended (admin logout, expiry) while this request ran: the change is dropped on
            # purpose rather than reviving the session; the cookie goes with it.
            log.info("session %s ended during the request; its changes were not saved", self._record.short_id)
            self._reset(dropped=True)
            return False
        self._stored.update(changed)
        return True

    def _reset(self, *, dropped: bool) -> None:
        self._record, self._token, self._loaded = None, None, True
        self._data, self._stored = {}, {}
        self.issued, self.dropped = False, dropped


# --- the interface --------------------------------------------------------------------------

class WatchedSessionInterface(SessionInterface):
    """Flask ``SessionInterface`` over a :class:`core.SessionStore`."""

    def __init__(self, store: SessionStore, *, app_name: str | None = None, cookie_name: str = COOKIE_NAME,
                 secure: bool | None = None, samesite: str | None = "Lax") -> None:
        self.store = store
        self.app_name = app_name
        self.cookie_name = cookie_name
        self.secure = secure
        """``None``: Secure unless ``app.debug`` (plain-http development server)."""
        self.samesite = samesite

    def get_cookie_name(self, app: flask.Flask) -> str:
        return self.cookie_name

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return (not app.debug) if self.secure is None else self.secure

    def get_cookie_samesite(self, app: flask.Flask) -> str | None:
        return self.samesite

    def get_cookie_httponly(self, app: flask.Flask) -> bool:
        return True

    def open_session(self, app: flask.Flask, request: flask.Request) -> WatchedSession:
        return WatchedSession(self, request.cookies.get(self.cookie_name) or None)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, WatchedSession):
            return
        if session.accessed:
            response.vary.add("Cookie")
        try:
            session.flush()
        except StoreUnavailable:
            _become_unavailable(response)
            return
        name, domain, path = self.cookie_name, self.get_cookie_domain(app), self.get_cookie_path(app)
        if session.issued and session.token and session._record is not None:
            deadline = session._record.max_expires_at
            response.set_cookie(
                name, session.token, path=path, domain=domain, httponly=True,
                secure=self.get_cookie_secure(app), samesite=self.samesite,
                expires=datetime.fromtimestamp(deadline, UTC) if deadline else None,
            )
        elif session.dropped:
            response.delete_cookie(name, path=path, domain=domain, secure=self.get_cookie_secure(app),
                                   httponly=True, samesite=self.samesite)


def _become_unavailable(response: Response) -> None:
    """Turn the response into a 503: the session write failed after the view ran, and a
    response that pretends it was saved would be a silent data loss."""
    fresh = SessionStoreUnavailable().get_response()
    response.status_code = fresh.status_code
    response.headers.clear()
    response.headers.extend(fresh.headers)
    response.set_data(fresh.get_data())


class SessionWatch:
    """Flask extension: ``SessionWatch(app, store)`` or ``ext.init_app(app)`` later."""

    def __init__(self, app: flask.Flask | None = None, store: SessionStore | None = None,
                 **options: Any) -> None:
        self.store = store
        self.options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask, store: SessionStore | None = None) -> WatchedSessionInterface:
        store = store or self.store
        if store is None:
            raise TypeError("SessionWatch needs a core.SessionStore")
        interface = WatchedSessionInterface(store, **{"app_name": app.name, **self.options})
        app.session_interface = interface
        app.extensions["sessionwatch"] = interface
        return interface


# --- helpers for views ----------------------------------------------------------------------

def _session() -> WatchedSession:
    obj = flask.session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(obj, WatchedSession):
        raise RuntimeError("this app does not use sessionwatch sessions: call SessionWatch(app, store) first")
    return obj


def current_store() -> SessionStore:
    return _session()._interface.store


def current_session() -> Session | None:
    """The logged-in session of this request, or ``None``."""
    return _session().load()


def login_user(username: str, *, app: str | None = None, type: str = "web", email: str | None = None,
               department: str | None = None, metadata: Mapping[str, object] | None = None) -> Session:
    """Log ``username`` in with a fresh token (no fixation): a new session is created, its
    token set as the cookie, and the session the cookie named before (if any) is ended."""
    sess = _session()
    store = sess._interface.store
    request = flask.request
    # The session the cookie named (if any) is ended after the new one exists, so bad
    # input or an outage during login leaves the user logged in as before.
    old = sess._record.sid if sess._record is not None else None
    if old is None and not sess._loaded:
        old = sid_from_token(sess.token)  # logout is idempotent: no validate round trip
    try:
        record, token = store.login(
            username, app=app or sess._interface.app_name or flask.current_app.name, type=type,
            ip=client_ip(request.remote_addr), user_agent=request.user_agent.string[:1024] or None,
            email=email, department=department, metadata=metadata,
        )
        if old is not None:
            store.logout(old)
    except StoreUnavailable as exc:
        raise SessionStoreUnavailable() from exc
    sess._reset(dropped=False)
    sess._adopt(record, token)
    sess.issued = True
    sess.accessed = True
    return record


def logout_user(*, everywhere: bool = False) -> bool:
    """End this session in Redis (so every copy of the token stops working) and delete the
    cookie; with ``everywhere`` end every session of the user. Returns whether one ended."""
    sess = _session()
    record = sess.load()
    if record is None:
        return False
    store = sess._interface.store
    try:
        ended = bool(store.logout_user(record.username)) if everywhere else store.logout(record.sid)
    except StoreUnavailable as exc:
        raise SessionStoreUnavailable() from exc
    sess._reset(dropped=True)
    return ended


def update_profile(*, email: str | None = None, department: str | None = None,
                   metadata: Mapping[str, object] | None = None) -> Session | None:
    """Set profile fields (shown in the dashboard) of the current session, now. Returns the
    updated session, or ``None`` if it ended meanwhile (the cookie is then deleted)."""
    sess = _session()
    record = sess.load()
    if record is None:
        raise AnonymousSessionError("update_profile needs a logged-in user")
    try:
        sess._interface.store.update_profile(record.sid, email=email, department=department,
                                             metadata=metadata)
    except SessionNotFound:
        sess._reset(dropped=True)
        return None
    except StoreUnavailable as exc:
        raise SessionStoreUnavailable() from exc
    sess._record = with_profile(record, email=email, department=department, metadata=metadata)
    return sess._record


__all__ = [
    "AnonymousSessionError",
    "SessionStoreUnavailable",
    "SessionValueError",
    "SessionWatch",
    "WatchedSession",
    "WatchedSessionInterface",
    "current_session",
    "current_store",
    "login_user",
    "logout_user",
    "update_profile",
]
