"""Flask sessions kept in Redis by :mod:`core`: a drop-in for Flask's default session and
for Flask-Session, with hashed ids, id rotation at login and admin logout on top.

>>> app = Flask(__name__)
>>> SessionWatch(app, SessionStore.from_url(url), app_name="crm")   # instead of Session(app)

Then use ``flask.session`` as always, and Flask-Login, Flask-WTF, ``flash()`` and
Authlib's Flask client unchanged.

- **Sessions before login.** The first write to ``session`` creates an anonymous session
  (its own Redis key, idle TTL ``Policy.anonymous_idle_ttl`` by the server's clock, size
  cap ``Policy.data_max_bytes``), never listed as a user session. Flask-Login's
  ``login_user`` (its ``user_logged_in`` signal) turns it into a user session in one
  script: new token and id (no fixation), the data carried over, the anonymous key
  deleted, a ``login`` event. Remember-me (``user_loaded_from_cookie``) does the same
  after an idle expiry or an admin logout. ``logout_user``, a ``strong``
  ``session_protection`` failure and ``session.clear()`` end the session in Redis and
  start clean. The username comes from the user object: its ``username`` attribute, else
  ``get_id()``, or the ``username=`` callable given to :class:`SessionWatch`.
- **Data.** Any string key; values go through Flask's tagged JSON serializer (tuple,
  bytes, Markup, UUID, datetime round-trip as with Flask's cookie session), one Redis
  field per key. Only changed keys are written; in-place changes are seen.
- **Cookies.** Every ``SESSION_COOKIE_*`` setting (NAME, DOMAIN, PATH, HTTPONLY, SECURE,
  SAMESITE, PARTITIONED) with Flask's defaults; ``session.permanent`` with
  ``PERMANENT_SESSION_LIFETIME`` (never past the session's absolute deadline), and
  ``SESSION_REFRESH_EACH_REQUEST``. The cookie holds only a token; Redis holds its hash.
  So a data change alone sends no new cookie: it is sent for a new token, a change of
  ``permanent``, and a permanent session's refresh.
- **Cost.** A request that never touches ``session`` makes no Redis call; one that reads
  it, one; one that changes it, one more (a write that never read, just that one). A
  request that never touched the session does not refresh a permanent cookie.
- **Redis down:** HTTP 503 with a one-line message (never a silent logout). A session
  ended during a request (admin logout) is not revived by that request's save.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

try:
    import flask
    from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
    from werkzeug.exceptions import ServiceUnavailable
    from werkzeug.wrappers import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"needs Flask: pip install 'sessionwatch[flask]' ({exc})") from None

from core import DataTooLarge, Session, SessionNotFound, SessionStore, StoreUnavailable
from core.plans import data_of
from core.tokens import anon_id_from_token, sid_from_token

from . import UNAVAILABLE_MESSAGE, client_ip, with_profile
from .data import (
    Known,
    LazyDict,
    SessionDataError,
    check_key,
    decode_all,
    diff,
    encode_one,
    remember,
    remember_all,
    too_large,
)

log = logging.getLogger(__name__)

SessionValueError = SessionDataError
"""Raised for a key or value that cannot be stored (the message names the key)."""

KEPT_AT_LOGOUT = ("_remember", "_flashes")
"""What survives a logout into the fresh session: Flask-Login's note to delete its
remember cookie, and messages flashed for the next page."""


class SessionStoreUnavailable(ServiceUnavailable):
    """Redis cannot be reached: answered as HTTP 503 with a short message."""

    description = UNAVAILABLE_MESSAGE


_PLAIN = frozenset((str, int, bool, type(None)))
"""Exact types that Flask's tagged serializer writes as plain JSON (no tag applies): they
skip its tag walk, which costs several times the JSON itself (same text, same value)."""


def _encode(value: Any) -> str:
    if type(value) in _PLAIN:
        return json.dumps(value, separators=(",", ":"))
    return session_json_serializer.dumps(value)


def _decode(raw: str) -> Any:
    if raw[:1] not in ("{", "["):  # no object in it: no tag to undo
        return json.loads(raw)
    return session_json_serializer.loads(raw)


def _default_username(user: Any) -> str:
    name = getattr(user, "username", None)
    return str(name if name else user.get_id())


# --- the session object ---------------------------------------------------------------------

class WatchedSession(LazyDict, SessionMixin):
    """Flask's ``session``: a ``dict`` of this visitor's data, read from Redis on first use."""

    def __init__(self, interface: WatchedSessionInterface, token: str | None) -> None:
        super().__init__()
        self._interface = interface
        self.had_cookie = token is not None
        self.kind: str | None = None
        """``user``, ``anon`` or ``None`` (no session in Redis yet)."""
        if sid_from_token(token) is not None:
            self.kind = "user"
        elif anon_id_from_token(token) is not None:
            self.kind = "anon"
        self.token = token if self.kind else None
        self._loaded = self.kind is None
        self.record: Session | None = None
        self.stored: dict[str, str] = {}
        self.known: Known = {}
        """Encodings already computed this request (see :func:`.data.diff`)."""
        self.new = self.kind is None
        self.modified = False
        self.accessed = False
        self.issued = False
        """A new token was made in this request: the cookie must be set."""
        self.dropped = token is not None and self.kind is None
        """The cookie names no session (any more): it is deleted unless a new one is set."""
        self.replaced: list[tuple[str, str]] = []
        """Sessions ended by clear() or a logout in this request, ended in Redis at save."""
        self.pending_login: dict[str, Any] | None = None
        self.failed = False
        """Redis failed during this request: nothing more is written and the cookie is
        left as it is (never a silent logout)."""

    def _io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable as exc:
            self.failed = True
            raise SessionStoreUnavailable() from exc

    @property
    def store(self) -> SessionStore:
        return self._interface.store

    # loading -----------------------------------------------------------------------------
    def _fetch(self) -> dict[str, Any]:
        self.accessed = True
        found = False
        if self.kind == "user":
            record = self._io(self.store.validate, self.token)
            if record is not None:
                found, self.record, self.stored = True, record, data_of(record.metadata)
        elif self.kind == "anon":
            anon = self._io(self.store.read_anonymous, self.token)
            if anon is not None:
                found, self.stored = True, anon.data
        if self.kind is not None and not found:
            self.kind, self.token, self.dropped, self.new = None, None, True, True
        data, bad = decode_all(_decode, self.stored)
        if bad:
            log.warning("session data unreadable for keys %s: left out", [k[:40] for k in bad])
        remember_all(self.known, data, self.stored)
        return data

    def load(self) -> Session | None:
        """The user session behind the cookie, if any (one round trip, once per request)."""
        self.accessed = True
        self._load()
        return self.record

    # dict changes mark the session modified -------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        remember(self.known, key, value,
                 encode_one(_encode, check_key(key), value, self.store.policy.data_max_bytes))
        self.accessed = self.modified = True
        super().__setitem__(key, value)

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def __delitem__(self, key: str) -> None:
        self.accessed = self.modified = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.accessed = self.modified = True
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self.accessed = self.modified = True
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        self._load()
        if not dict.__contains__(self, key):
            self[key] = default
        return dict.__getitem__(self, key)

    def clear(self) -> None:
        """Empty the session and end it in Redis (at the end of the request): a logout in
        apps that log out with ``session.clear()``. New data starts a new session."""
        self._end_current(keep=())

    def _end_current(self, keep: tuple[str, ...]) -> None:
        kept = {}
        if keep:
            self._load()
            kept = {k: dict.__getitem__(self, k) for k in keep if dict.__contains__(self, k)}
        if self.kind is not None and self.token is not None:
            self.replaced.append((self.kind, self.token))
        self.kind, self.token, self.record, self.stored = None, None, None, {}
        self.pending_login, self.issued = None, False
        self._loaded, self._blind = True, set()
        dict.clear(self)
        dict.update(self, kept)
        self.accessed = self.modified = True

    # login and logout ----------------------------------------------------------------------
    def begin_login(self, username: str, **options: Any) -> None:
        """Make this a user session of ``username`` at the end of the request (or at once,
        with :meth:`finish_login`), carrying its data over."""
        self.pending_login = {"username": username, **options}
        self.accessed = self.modified = True

    def finish_login(self) -> Session | None:
        if self.pending_login is None:
            return self.record
        options, self.pending_login = self.pending_login, None
        self._load()
        sets, _, sizes = diff(self, {}, _encode, 0, known=self.known)
        anon = self.token if self.kind == "anon" else None
        old_sid = self.record.sid if self.record is not None else None
        request = flask.request
        try:
            record, token = self._io(
                self.store.login, options.pop("username"),
                app=options.pop("app", None) or self._interface.app_name or flask.current_app.name,
                ip=client_ip(request.remote_addr), user_agent=request.user_agent.string[:1024] or None,
                data=sets, anonymous=anon, **options)
        except DataTooLarge as exc:
            raise too_large(exc, sizes) from None
        if old_sid is not None:
            self._io(self.store.logout, old_sid)
        self.kind, self.token, self.record, self.stored = "user", token, record, dict(sets)
        self.issued, self.dropped, self.new = True, False, False
        return record

    # saving --------------------------------------------------------------------------------
    def save(self) -> None:
        """Write what changed (and end what was ended) in as few calls as possible."""
        if self.pending_login is not None:
            self.finish_login()
        replaces = None
        for kind, token in self.replaced:
            if kind == "user":
                sid = sid_from_token(token)
                if sid is not None:
                    self._io(self.store.logout, sid)
            elif replaces is None and self.kind is None and dict.__len__(self):
                replaces = token  # ended by the call that stores the new data
            else:
                self._io(self.store.end_anonymous, token)
        self.replaced = []
        limit = self.store.policy.data_max_bytes
        if self.kind is None:
            if dict.__len__(self):
                sets, _, sizes = diff(self, {}, _encode, limit, known=self.known)
                self._new_anonymous(sets, sizes, replaces)
            return
        if not self._loaded:
            if not self._blind:
                return
            sets, deletes, sizes = diff(self, {}, _encode, limit, only=self._blind, known=self.known)
        else:
            sets, deletes, sizes = diff(self, self.stored, _encode, limit, known=self.known)
            if sum(sizes.values()) > limit:
                raise too_large(DataTooLarge(sum(sizes.values()), limit), sizes)
        if not sets and not deletes:
            return
        try:
            if self.kind == "user":
                sid = self.record.sid if self.record is not None else sid_from_token(self.token)
                assert sid is not None
                if not self._io(self.store.save_data, sid, sets, deletes):
                    # Ended (admin logout, expiry) while this request ran: the change is
                    # dropped rather than reviving the session, and the cookie goes.
                    log.info("session ended during the request; its changes were not saved")
                    self.kind, self.token, self.record, self.stored, self.dropped = None, None, None, {}, True
                    return
            else:
                saved = self._io(self.store.save_anonymous, self.token, sets, deletes,
                                 app=self._interface.app_name or "")
                if saved.token is None:
                    self.kind, self.token, self.stored, self.dropped = None, None, {}, True
                    return
                if saved.created:
                    self.token, self.issued, self.stored = saved.token, True, {}
        except DataTooLarge as exc:
            raise too_large(exc, sizes) from None
        self.stored.update(sets)
        for key in deletes:
            self.stored.pop(key, None)

    def _new_anonymous(self, sets: dict[str, str], sizes: dict[str, int], replaces: str | None) -> None:
        if sum(sizes.values()) > self.store.policy.data_max_bytes:
            raise too_large(DataTooLarge(sum(sizes.values()), self.store.policy.data_max_bytes), sizes)
        saved = self._io(self.store.save_anonymous, None, sets, app=self._interface.app_name or "",
                         replaces=replaces)
        self.kind, self.token, self.stored = "anon", saved.token, dict(sets)
        self.issued, self.dropped = True, False


# --- the interface --------------------------------------------------------------------------

class WatchedSessionInterface(SessionInterface):
    """Flask ``SessionInterface`` over a :class:`core.SessionStore`; cookie settings come
    from the app's ``SESSION_COOKIE_*`` configuration, as for Flask's own sessions."""

    def __init__(self, store: SessionStore, *, app_name: str | None = None,
                 username: Callable[[Any], str] | None = None) -> None:
        self.store = store
        self.app_name = app_name
        self.username = username or _default_username

    def open_session(self, app: flask.Flask, request: flask.Request) -> WatchedSession:
        return WatchedSession(self, request.cookies.get(self.get_cookie_name(app)))

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, WatchedSession) or session.failed:
            return
        was_permanent = session.stored.get("_permanent") == "true"
        try:
            session.save()
        except (StoreUnavailable, ServiceUnavailable):
            _become_unavailable(response)
            return
        if session.accessed:
            response.vary.add("Cookie")
        if session.token is None:
            if session.had_cookie and (session.dropped or session.modified):
                response.delete_cookie(self.get_cookie_name(app), **self._cookie_settings(app))
                response.vary.add("Cookie")
            return
        if not (session.issued or self._refresh(app, session, was_permanent)):
            return
        expires = None
        if dict.get(session, "_permanent", False):  # known here: loaded, issued or just set
            expires = datetime.now(UTC) + app.permanent_session_lifetime
        if expires is not None and session.record is not None and session.record.max_expires_at:
            expires = min(expires, datetime.fromtimestamp(session.record.max_expires_at, UTC))
        response.set_cookie(self.get_cookie_name(app), session.token, expires=expires,
                            **self._cookie_settings(app))
        response.vary.add("Cookie")

    def _cookie_settings(self, app: flask.Flask) -> dict[str, Any]:
        """The ``SESSION_COOKIE_*`` settings, read only when a cookie is sent or deleted."""
        return {"domain": self.get_cookie_domain(app), "path": self.get_cookie_path(app),
                "secure": self.get_cookie_secure(app), "httponly": self.get_cookie_httponly(app),
                "samesite": self.get_cookie_samesite(app), "partitioned": self.get_cookie_partitioned(app)}

    def _refresh(self, app: flask.Flask, session: WatchedSession, was_permanent: bool) -> bool:
        """Whether to send the same token again. The cookie holds only the token, so a
        change of the data alone needs no new cookie (unlike Flask's cookie session); the
        cookie is sent again when ``session.permanent`` changed, and for a permanent
        session on requests that used it, to move its expiry (Flask's rule). Knowing
        ``permanent`` needs the data: a write that never read the session (and never set
        ``permanent``) leaves the cookie as it is."""
        if not session.loaded:  # what it was is unknown: sent again only if it was set
            return "_permanent" in session._blind
        permanent = bool(dict.get(session, "_permanent", False))
        if permanent != was_permanent:
            return True
        return permanent and session.accessed and self.should_set_cookie(app, session)


def _become_unavailable(response: Response) -> None:
    """Turn the response into a 503: the session write failed after the view ran, and a
    response that pretends it was saved would be a silent data loss."""
    fresh = SessionStoreUnavailable().get_response()
    response.status_code = fresh.status_code
    response.headers.clear()
    response.headers.extend(fresh.headers)
    response.set_data(fresh.get_data())


class SessionWatch:
    """Flask extension: ``SessionWatch(app, store)`` or ``ext.init_app(app)`` later.

    Options: ``app_name`` (shown in the dashboard; default the Flask app's name) and
    ``username`` (a callable from Flask-Login's user object to the username recorded).
    """

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
        _connect_flask_login(app, interface)
        return interface


def _connect_flask_login(app: flask.Flask, interface: WatchedSessionInterface) -> None:
    """Follow Flask-Login (when installed) through its signals, so its ``login_user`` and
    ``logout_user`` make and end sessionwatch user sessions."""
    try:
        from flask_login import signals
    except ImportError:
        return

    def current() -> WatchedSession | None:
        obj = flask.session._get_current_object()  # type: ignore[attr-defined]
        return obj if isinstance(obj, WatchedSession) else None

    def logged_in(sender: Any, user: Any = None, **_: Any) -> None:
        sess = current()
        if sess is not None and user is not None:
            sess.begin_login(interface.username(user))

    def logged_out(sender: Any, **_: Any) -> None:
        sess = current()
        if sess is not None:
            sess._end_current(keep=KEPT_AT_LOGOUT)

    def protected(sender: Any, **_: Any) -> None:
        sess = current()
        if sess is not None and sess.kind == "user" and "_user_id" not in sess:
            sess._end_current(keep=KEPT_AT_LOGOUT)

    for signal, handler in ((signals.user_logged_in, logged_in), (signals.user_loaded_from_cookie, logged_in),
                            (signals.user_logged_out, logged_out), (signals.session_protected, protected)):
        signal.connect(handler, sender=app, weak=False)


# --- helpers for views ----------------------------------------------------------------------

def _session() -> WatchedSession:
    obj = flask.session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(obj, WatchedSession):
        raise RuntimeError("this app does not use sessionwatch sessions: call SessionWatch(app, store) first")
    return obj


def current_store() -> SessionStore:
    return _session().store


def current_session() -> Session | None:
    """The logged-in (user) session of this request, or ``None``."""
    sess = _session()
    if sess.pending_login is not None:
        return sess.finish_login()
    return sess.load()


def start_session(username: str, *, app: str | None = None, type: str = "web", email: str | None = None,
                  department: str | None = None, metadata: Mapping[str, object] | None = None) -> Session:
    """Log ``username`` in now, without Flask-Login: a new token and id (no fixation), the
    session's data carried over, the previous session (anonymous or not) ended."""
    sess = _session()
    sess.begin_login(username, app=app, type=type, email=email, department=department, metadata=metadata)
    record = sess.finish_login()
    assert record is not None
    return record


def end_session(*, everywhere: bool = False) -> bool:
    """End this user session in Redis now (every copy of the token stops working; with
    ``everywhere`` every session of the user) and start clean. Returns whether one ended."""
    sess = _session()
    record = current_session()
    if record is None:
        return False
    store = sess.store
    if everywhere:
        ended = bool(sess._io(store.logout_user, record.username))
    else:
        ended = sess._io(store.logout, record.sid)
    sess._end_current(keep=())
    sess.replaced.clear()
    sess.dropped = True
    return ended


def update_profile(*, email: str | None = None, department: str | None = None,
                   metadata: Mapping[str, object] | None = None) -> Session | None:
    """Set profile fields (shown in the dashboard) of the current user session, now.
    Returns the updated session, or ``None`` if there is none (or it ended meanwhile)."""
    sess = _session()
    record = current_session()
    if record is None:
        return None
    try:
        sess._io(sess.store.update_profile, record.sid, email=email, department=department, metadata=metadata)
    except SessionNotFound:
        sess._end_current(keep=())
        sess.replaced.clear()
        sess.dropped = True
        return None
    sess.record = with_profile(record, email=email, department=department, metadata=metadata)
    return sess.record


__all__ = [
    "SessionStoreUnavailable",
    "SessionValueError",
    "SessionWatch",
    "WatchedSession",
    "WatchedSessionInterface",
    "current_session",
    "current_store",
    "end_session",
    "start_session",
    "update_profile",
]
