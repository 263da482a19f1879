"""The original Flask admin app's user flows, on sessionwatch's core.

    python examples/flask_admin_app.py --url redis://127.0.0.1:21084/0

Log in with a username, an app name and a session type (web, mobile, api); submit profile
data (email, department); see your own session history; log out. Run the dashboard on
the same Redis (``sessionwatch --url ...``) and each of these shows up live.

The page is served over plain http on loopback, so the cookie is sent without the
Secure flag here (``--secure`` sets ``SESSION_COOKIE_SECURE``, for HTTPS). Cookie settings
are Flask's own ``SESSION_COOKIE_*`` configuration.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from flask import Flask, redirect, render_template_string, request, url_for

from core import DEFAULT_URL, InvalidInput, SessionStore, StoreError, redact_url
from core.embedded import free_port
from core.integrations.flask import (
    SessionWatch,
    current_session,
    current_store,
    end_session,
    start_session,
    update_profile,
)

PAGE = """<!doctype html>
<title>sessionwatch admin example</title>
<style>body{font:15px sans-serif;margin:2em;max-width:52em} td,th{padding:2px 8px;text-align:left}
.err{color:#b00} form{margin:1em 0}</style>
<h1>sessionwatch admin example</h1>
{% if error %}<p class=err>{{ error }}</p>{% endif %}
{% if not s %}
<form method=post action="{{ url_for('login') }}">
  <label>Username <input name=username required></label>
  <label>App <input name=app value=admin required></label>
  <label>Type <select name=type>{% for t in types %}<option>{{ t }}</option>{% endfor %}</select></label>
  <button>Log in</button>
</form>
{% else %}
<p>Logged in as <b>{{ s.username }}</b> to <b>{{ s.app }}</b> ({{ s.type }}), session {{ s.short_id }},
expires {{ fmt(s.expires_at) }}.</p>
<form method=post action="{{ url_for('profile') }}">
  <label>Email <input name=email value="{{ s.email }}"></label>
  <label>Department <input name=department value="{{ s.department }}"></label>
  <button>Save profile</button>
</form>
<form method=post action="{{ url_for('logout') }}"><button>Log out</button>
  <label><input type=checkbox name=everywhere value=1> everywhere</label></form>
<h2>Your sessions</h2>
<table><tr><th>session</th><th>app</th><th>type</th><th>logged in</th><th>status</th><th>ended</th></tr>
{% for h in history %}<tr><td>{{ h.short_id }}{% if h.sid == s.sid %} (this){% endif %}</td>
<td>{{ h.app }}</td><td>{{ h.type }}</td><td>{{ fmt(h.login_time) }}</td><td>{{ h.status }}</td>
<td>{{ h.end_reason }}</td></tr>{% endfor %}</table>
{% endif %}
"""


def fmt(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def create_app(store: SessionStore, *, secure: bool | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SESSION_COOKIE_SECURE=bool(secure), SESSION_COOKIE_SAMESITE="Lax")
    SessionWatch(app, store, app_name="admin")

    def render(error: str = "", status: int = 200) -> tuple[str, int]:
        s = current_session()
        history = current_store().user_history(s.username, limit=20) if s is not None else []
        return render_template_string(PAGE, s=s, history=history, error=error,
                                      types=("web", "mobile", "api"), fmt=fmt), status

    @app.get("/")
    def index() -> tuple[str, int]:
        return render()

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        try:
            start_session(request.form.get("username", ""), app=request.form.get("app") or "admin",
                       type=request.form.get("type", "web"))
        except InvalidInput as exc:
            return render(str(exc), 400)
        return redirect(url_for("index"))

    @app.post("/profile")
    def profile():  # type: ignore[no-untyped-def]
        if current_session() is None:
            return redirect(url_for("index"))
        try:
            update_profile(email=request.form.get("email", ""), department=request.form.get("department", ""))
        except InvalidInput as exc:
            return render(str(exc), 400)
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        end_session(everywhere=bool(request.form.get("everywhere")))
        return redirect(url_for("index"))

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="Redis URL (default %(default)s)")
    parser.add_argument("--prefix", default="", help="key prefix shared with the dashboard")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--secure", action="store_true", help="mark the cookie Secure (needs HTTPS)")
    args = parser.parse_args(argv)
    store = SessionStore.from_url(args.url, prefix=args.prefix)
    try:
        store.ping()
    except StoreError as exc:
        print(f"error: {redact_url(args.url)}: {exc}", file=sys.stderr)
        return 1
    port = args.port or free_port()
    print(f"admin example on http://127.0.0.1:{port}/ (sessions in {redact_url(args.url)})")
    create_app(store, secure=args.secure).run(host="127.0.0.1", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
