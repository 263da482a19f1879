"""A Flask-Login + Flask-WTF shop written for Flask-Session, on sessionwatch instead.

    python examples/flask_login_shop.py --url redis://127.0.0.1:21084/0

Only the lines marked ``# the session layer`` differ from the Flask-Session version.
Add to the cart before logging in (an anonymous session: counted by ``sessionwatch
stats``, not listed as a user session), log in as alice/wonder or bob/builder (the cart
survives, the session id changes), tick "remember me", then end the session from the
dashboard (``sessionwatch --url ...``, key ``l``): the next page restores you through
remember-me with a fresh session. Log out and the session ends in Redis.
"""

from __future__ import annotations

import argparse
import sys

from flask import (
    Flask,
    flash,
    get_flashed_messages,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import BooleanField, PasswordField, StringField

from core import DEFAULT_URL, SessionStore, StoreError, redact_url  # the session layer
from core.embedded import free_port
from core.integrations.flask import SessionWatch  # the session layer

USERS = {"1": ("alice", "wonder"), "2": ("bob", "builder")}

PAGE = """<!doctype html><title>shop</title>
{% for m in flashes %}<p><i>{{ m }}</i></p>{% endfor %}
<p>{% if current_user.is_authenticated %}Hello <b>{{ current_user.username }}</b>
   <a href="{{ url_for('logout') }}">log out</a>
   {% else %}<a href="{{ url_for('login') }}">log in</a>{% endif %}
   | <a href="{{ url_for('orders') }}">orders (login required)</a></p>
<p>Cart: {{ cart|join(", ") or "empty" }}</p>
<form method="post" action="{{ url_for('add') }}">{{ form.csrf_token }}
  <button name="item" value="apple">add an apple</button> <button name="item" value="pear">add a pear</button>
</form>
{% if login %}<form method="post">{{ login.csrf_token }} {{ login.username(placeholder="username") }}
  {{ login.password(placeholder="password") }} <label>{{ login.remember() }} remember me</label>
  <button>log in</button></form>{% endif %}
"""


class User(UserMixin):
    def __init__(self, uid: str) -> None:
        self.id = uid
        self.username = USERS[uid][0]


class LoginForm(FlaskForm):
    username = StringField()
    password = PasswordField()
    remember = BooleanField()


class CartForm(FlaskForm):
    pass


def create_app(store: SessionStore, *, secret_key: str = "change-me") -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secret_key  # Flask-WTF signs its CSRF tokens with it
    SessionWatch(app, store, app_name="shop")  # the session layer (was: Session(app))
    CSRFProtect(app)
    manager = LoginManager(app)
    manager.login_view = "login"
    manager.user_loader(lambda uid: User(uid) if uid in USERS else None)

    def page(login: LoginForm | None = None, status: int = 200) -> tuple[str, int]:
        return render_template_string(PAGE, flashes=get_flashed_messages(), cart=session.get("cart", []),
                                      form=CartForm(), login=login), status

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return page()

    @app.post("/cart")
    def add():  # type: ignore[no-untyped-def]
        if CartForm().validate_on_submit():
            session["cart"] = [*session.get("cart", []), request.form.get("item", "?")[:20]]
        return redirect(url_for("index"))

    @app.route("/login", methods=["GET", "POST"])
    def login():  # type: ignore[no-untyped-def]
        form = LoginForm()
        if form.validate_on_submit():
            for uid, (name, password) in USERS.items():
                if (name, password) == (form.username.data, form.password.data):
                    login_user(User(uid), remember=form.remember.data)
                    return redirect(request.args.get("next") or url_for("index"))
            flash("Wrong username or password")
        return page(form)

    @app.get("/orders")
    @login_required
    def orders():  # type: ignore[no-untyped-def]
        flash(f"No orders yet, {current_user.username}.")
        return redirect(url_for("index"))

    @app.get("/logout")
    def logout():  # type: ignore[no-untyped-def]
        logout_user()
        flash("Logged out.")
        return redirect(url_for("index"))

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="Redis URL (default %(default)s)")
    parser.add_argument("--prefix", default="", help="key prefix shared with the dashboard")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    store = SessionStore.from_url(args.url, prefix=args.prefix)
    try:
        store.ping()
    except StoreError as exc:
        print(f"error: {redact_url(args.url)}: {exc}", file=sys.stderr)
        return 1
    port = args.port or free_port()
    print(f"shop example on http://127.0.0.1:{port}/ (sessions in {redact_url(args.url)})")
    create_app(store).run(host="127.0.0.1", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
