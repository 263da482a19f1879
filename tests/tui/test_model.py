"""The Textual-free dashboard model: what fault tests assert against."""

from __future__ import annotations

from core import Event, ServerInfo, Session, SessionStore, Stats
from tui.actor import default_actor
from tui.app import build_app
from tui.model import (
    DashboardModel,
    active_row,
    clean,
    event_text,
    fmt_duration,
    parse_query,
)


def stats(active: int = 3, ended: int = 1) -> Stats:
    return Stats(active=active, ended=ended, expired_pending=0, by_app={}, by_type={},
                 logins_per_minute=[0, 2, 5], ends_per_minute=[0, 0, 1])


def ev(seq: int | None, kind: str = "login", raw: str = "") -> Event:
    return Event(raw=raw or f'{{"seq":{seq}}}', seq=seq, ts=1_800_000_000.0 if seq else None, kind=kind,
                 sid="a" * 36, username="alice", app="crm")


def test_clean_makes_control_and_bidi_characters_visible() -> None:
    assert clean("a\x1b[2Jb\x07c\u202ed") == "a\\x1b[2Jb\\x07c\\u202ed"
    assert clean("[bold]x[/]") == "[bold]x[/]"  # markup is left for Text() to show literally
    assert clean("x" * 300, limit=10) == "x" * 9 + "…"
    assert clean(None) == ""


def test_parse_query() -> None:
    assert parse_query("alice") == ("user", "alice")
    assert parse_query("ip:10.0") == ("ip", "10.0")
    assert parse_query(" app: crm ") == ("app", "crm")
    assert parse_query("sid:ab12") == ("sid", "ab12")
    assert parse_query("203.0.113") == ("ip", "203.0.113")
    assert parse_query("2001:db8::") == ("ip", "2001:db8::")
    assert parse_query("bob:x") == ("user", "bob:x")


def test_events_deduplicated_by_seq_and_bounded() -> None:
    model = DashboardModel(max_events=3)
    assert model.add_events([ev(1), ev(2), ev(2), ev(1), ev(3)]) == [ev(1), ev(2), ev(3)]
    assert model.add_event(ev(None, kind="text", raw="plain")) is True  # other apps' lines: no seq
    assert model.add_event(ev(4)) is True
    assert [e.seq for e in model.events] == [3, None, 4] and model.last_seq == 4


def test_connection_state_transitions_and_backoff() -> None:
    model = DashboardModel(target="127.0.0.1:21084/0")
    assert model.state == "connecting"
    model.poll_succeeded(stats(), ServerInfo(version="7.0.15", used_memory=2_500_000), 0.42)
    assert model.state == "connected" and model.connected
    assert model.retry_delay(2.0) == 2.0
    model.poll_failed("cannot reach Redis: Connection refused")
    assert model.state == "reconnecting" and "Connection refused" in model.status_line()
    delays = []
    for _ in range(6):
        delays.append(model.retry_delay(2.0))
        model.poll_failed("down")
    assert delays == sorted(delays) and delays[-1] == 10.0
    model.poll_succeeded(stats(), ServerInfo(), None)
    assert model.state == "connected" and model.failures == 0
    model.feed_status(False, "feed lost")
    assert model.state == "reconnecting"
    model.feed_status(True)
    assert model.state == "connected"


def test_status_line_shows_everything_the_header_needs() -> None:
    model = DashboardModel(target="127.0.0.1:21084/0 prefix=app1:", read_only=True)
    model.poll_succeeded(stats(5, 2), ServerInfo(version="7.0.15", used_memory=3 * 1024 * 1024), 0.42)
    model.paused = True
    line = model.status_line()
    for part in ("READ-ONLY", "PAUSED", "● connected", "127.0.0.1:21084/0 prefix=app1:", "Redis 7.0.15",
                 "rtt 0.4ms", "mem 3.0M", "active 5", "inactive 2"):
        assert part in line
    assert model.logins_per_minute() == [0, 2, 5]


def test_sorting_within_page_and_server_side() -> None:
    model = DashboardModel()
    a = Session(sid="a" * 36, username="zed", ip="10.0.0.2", last_seen=2.0)
    b = Session(sid="b" * 36, username="amy", ip="10.0.0.1", last_seen=1.0)
    assert model.order([a, b]) == [a, b]  # last_seen: Redis already sorted it
    model.sort_by("user")
    assert model.sort.server is None and model.order([a, b]) == [a, b]  # descending: zed first
    model.sort_by("user")
    assert not model.descending and model.order([a, b]) == [b, a]
    assert [model.cycle_sort().key for _ in range(2)] == ["app", "type"]


def test_rows_and_event_lines_are_safe_text() -> None:
    s = Session(sid="c" * 36, username="x\x1b]0;pwn\x07", app="crm", type="web", ip="::1",
                login_time=100.0, last_seen=100.0, expires_at=190.0)
    row = active_row(s, now=130.0)
    assert row[0] == "x\\x1b]0;pwn\\x07" and row[3] == "30s ago" and row[4] == "1m00s" and row[5] == "c" * 8
    assert "\x1b" not in event_text(Event(raw="\x1b[31mred", kind="text"))
    assert fmt_duration(3 * 86400 + 7200) == "3d02h"


def test_default_actor_includes_ssh_client_address() -> None:
    assert default_actor({"SSH_CONNECTION": "203.0.113.9 52100 10.0.0.5 22"}).endswith("@ssh:203.0.113.9")
    assert "@ssh:" not in default_actor({})


def test_header_never_shows_a_password() -> None:
    store = SessionStore.from_url("redis://admin:s3cret@127.0.0.1:6390/2")  # lazy: no connection made
    try:
        app = build_app(store, feed=False)
        assert "s3cret" not in app.model.status_line()
        assert "127.0.0.1:6390/2" in app.model.target and "admin@" in app.model.target
    finally:
        store.close()


def test_quiet_polls_back_off_only_while_the_feed_is_up():
    from tui.model import DashboardModel

    model = DashboardModel()
    stats = ("same",)
    assert model.quiet_delay(2.0, stats) == 2.0  # feed not up: plain interval
    model.feed_status(True)
    assert [model.quiet_delay(2.0, stats) for _ in range(4)] == [4.0, 8.0, 8.0, 8.0]
    assert model.quiet_delay(2.0, ("changed",)) == 2.0
    model.feed_status(False, "gone")
    assert model.quiet_delay(2.0, ("changed",)) == 2.0


def test_status_line_counts_anonymous_sessions_apart() -> None:
    """Visitors' sessions before login are counted in the header, never as active."""
    import fakeredis

    store = SessionStore(fakeredis.FakeRedis(decode_responses=True))
    store.login("alice", app="crm")
    for _ in range(3):
        store.save_anonymous(None, {"csrf_token": '"x"'}, app="shop")
    model = DashboardModel()
    model.poll_succeeded(store.stats(), ServerInfo(version="7.0.15"), 0.3)
    line = model.status_line()
    assert "active 1" in line and "anonymous 3" in line
    assert [s.username for s in store.active_page().sessions] == ["alice"]
    model.poll_succeeded(stats(2, 0), ServerInfo(version="7.0.15"), 0.3)
    assert "anonymous" not in model.status_line()  # shown only when there are some


def test_actor_is_the_sudo_user_and_the_ssh_client_attached_to_tmux_now() -> None:
    stale = {"SSH_CONNECTION": "198.51.100.1 40000 10.0.0.5 22", "SUDO_USER": "alice", "TMUX": "/tmp/t,1,0"}
    asked: list[list[str]] = []

    def tmux(args: list[str]) -> str | None:
        asked.append(args)
        return "SSH_CONNECTION=203.0.113.9 52100 10.0.0.5 22"

    assert default_actor(stale, tmux=tmux) == "alice@ssh:203.0.113.9"
    assert asked == [["show-environment", "SSH_CONNECTION"]]
    # attached from a local terminal: no SSH origin, whatever the shell inherited
    assert default_actor(stale, tmux=lambda a: "-SSH_CONNECTION") == "alice"
    # tmux not answering: the shell's own variable is all there is
    assert default_actor(stale, tmux=lambda a: None) == "alice@ssh:198.51.100.1"
    assert default_actor({"SUDO_USER": "bob\x1b[2J"}, tmux=lambda a: None) != "bob\x1b[2J"


def test_never_connected_says_how_to_point_the_dashboard_somewhere() -> None:
    from tui.model import DashboardModel

    model = DashboardModel(target="127.0.0.1:6379/0")
    model.poll_failed("Connection refused")
    model.feed_status(False, "Connection refused")
    text = model.status_line()
    assert "--url" in text and "REDIS_URL" in text and "sessionwatch demo" in text
