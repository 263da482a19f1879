"""The dashboard counts anonymous sessions and lists them apart, on every backend (the
pilot tests in tests/tui run on fakeredis; this is the same data path on real servers):
a Flask visitor's session before login is counted in the status line, listed by
DataSource.anonymous_page (what ``A`` shows), and never listed as a user session."""

from __future__ import annotations

import time

from core import ServerInfo
from tui.model import DashboardModel
from tui.source import DataSource


def test_dashboard_counts_and_lists_a_flask_visitors_session_apart(store) -> None:
    from test_flask_dropin import cookie, make_app

    client = make_app(store).test_client()
    client.post("/cart/apple")  # a visitor's cart before login: an anonymous session
    client2 = make_app(store).test_client()
    client2.get("/private")  # Flask-Login's "please log in" flash: another one
    assert cookie(client).startswith("anon.") and cookie(client2).startswith("anon.")
    store.login("alice", app="crm")

    source = DataSource(store, time.perf_counter)
    health = source.health()
    model = DashboardModel()
    model.poll_succeeded(health.stats, ServerInfo(version="7.0.15"), 0.3)
    line = model.status_line()
    assert "active 1" in line and "anonymous 2" in line
    page = source.anonymous_page(100)
    assert page.total == 2 and {a.app for a in page.sessions} == {"shop"}
    assert sorted(len(a.data) for a in page.sessions) == [1, 1]  # the cart; the flashes
    assert [s.username for s in store.active_page().sessions] == ["alice"]  # never a user session
