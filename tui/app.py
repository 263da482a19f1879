"""The sessionwatch dashboard: five panels over a live Redis session store.

Redis is only touched from thread workers. The poll worker reconciles counts and the
visible page, then schedules the next poll (``set_timer`` after completion, never
``set_interval``); the feed worker tails the event log through :mod:`core.feed`. Both post
messages; the handlers update :class:`~tui.model.DashboardModel` and the thin widgets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

import core
from core import Event, Session, StoreError
from core.feed import EventFeed, ExpiryHint, FeedStatus, Resync
from core.model import CacheEntry, parse_cache

from .actor import default_actor
from .messages import FeedItems, Polled, PollFailed, SearchResults
from .model import (
    ACTIVE_COLUMNS,
    CACHE_COLUMNS,
    INACTIVE_COLUMNS,
    PAGE_SIZE,
    SEARCH_COLUMNS,
    DashboardModel,
    active_row,
    cache_row,
    clean,
    event_matches,
    inactive_row,
    parse_query,
    search_row,
)
from .screens.confirm import ConfirmScreen
from .screens.detail import Detail, DetailScreen
from .screens.help import HelpScreen
from .widgets.events import EventLog
from .widgets.status import StatusBar
from .widgets.table import SessionTable

PANELS = ("active", "inactive", "events", "cache", "search")
SESSION_KINDS = {"login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile"}
FEED_REFRESH = 0.5
"""Seconds from a session event to the page refresh that shows it (debounced: at most
about two page polls a second however busy the feed is)."""
FEED_BUFFER_MAX = 5000
FEED_UI_RATE = 10
"""Live-feed batches applied to the screen per second, at most."""
FEED_BACKOFF = (0.1, 1.0)
"""Reconnect backoff of the live feed (first, cap): Redis back means the dashboard is
back within about a second (the feed's Resync triggers the reload)."""
SWEEP_EVERY = 10.0
"""Seconds between bounded sweeps (ending sessions past expiry) when not read-only."""

READ_BINDINGS: list[Binding] = [
    Binding("1", "show_panel('active')", "Active", show=False, id="panel.active"),
    Binding("2", "show_panel('inactive')", "Inactive", show=False, id="panel.inactive"),
    Binding("3", "show_panel('events')", "Events", show=False, id="panel.events"),
    Binding("4", "show_panel('cache')", "Cache", show=False, id="panel.cache"),
    Binding("5", "show_panel('search')", "Search", show=False, id="panel.search"),
    Binding("enter", "detail", "Detail", id="session.detail"),
    Binding("slash", "filter", "Filter", id="view.filter"),
    Binding("s", "sort", "Sort", id="view.sort"),
    Binding("S", "sort_order", "Sort order", show=False, id="view.sort_order"),
    Binding("p", "pause", "Pause", id="view.pause"),
    Binding("r", "refresh", "Refresh", show=False, id="view.refresh"),
    Binding("question_mark", "help", "Help", id="app.help"),
    Binding("q", "quit", "Quit", id="app.quit"),
]
WRITE_BINDINGS: list[Binding] = [
    Binding("l", "logout", "Log out", id="session.logout"),
    Binding("L", "logout_user", "Log out user", id="session.logout_user"),
]
FILTER_HINT = "/ filter: user prefix, ip:…, app:…, sid:…"
MAIN_ACTIONS = {"show_panel", "detail", "filter", "sort", "sort_order", "pause", "refresh", "logout",
                "logout_user"}
OWN_IDS = {"panel", "session", "view", "app"}
EXTRA_HELP = [
    ("up/down, pgup/pgdn, home/end", "Move the selection"),
    ("tab / shift+tab", "Move focus (filter box, table)"),
    ("escape", "Leave the filter box; close a dialog"),
    ("y / n (in a dialog)", "Confirm / cancel (Cancel has the focus)"),
    ("ctrl+p", "Command palette: every action"),
]


def _trim_feed(items: list[object], keep_events: int) -> list[object]:
    """Drop the oldest events of a backlog the UI has not drained (status items stay)."""
    events = [i for i in items if isinstance(i, Event)]
    drop = {id(e) for e in events[: max(0, len(events) - keep_events)]}
    return [i for i in items if id(i) not in drop]


class FilterInput(Input):
    """A one-line filter box; ``escape`` and ``enter`` hand the keys back to the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "done", "Back to table", show=False, id="filter.done"),
    ]

    def action_done(self) -> None:
        self.app.focus_panel()  # type: ignore[attr-defined]


class DashboardCommands(Provider):
    """The dashboard's actions in the command palette (only those registered)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, SessionWatchApp)
        return [(f"{b.description} ({b.key_display or b.key})", b.tooltip or b.description,
                 partial(app.run_action, b.action)) for b in app.registered_bindings()]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class SessionWatchApp(App[None]):
    """Read-only by construction: the write keys exist only on :class:`AdminApp`."""

    CSS_PATH = "styles/app.tcss"
    TITLE = "sessionwatch"
    BINDINGS: ClassVar[list[BindingType]] = list(READ_BINDINGS)
    COMMANDS: ClassVar = App.COMMANDS | {DashboardCommands}

    def __init__(self, store: core.SessionStore, *, read_only: bool = True, actor: str | None = None,
                 refresh_interval: float = 2.0, target_label: str | None = None, feed: bool = True,
                 sweep: bool | None = None) -> None:
        super().__init__()
        self.store = store
        self.read_only = read_only
        self.actor = actor or default_actor()
        self.refresh_interval = refresh_interval
        self.use_feed = feed
        self.sweep_enabled = (not read_only) if sweep is None else (sweep and not read_only)
        self.model = DashboardModel(target=clean(target_label or self._describe_target(), 120),
                                    read_only=read_only)
        self.perf_counter: Callable[[], float] = time.perf_counter
        """Latency timer; tests replace it to make the status bar deterministic."""
        self.clock: Callable[[], float] = store.ctx.clock
        self.filters: dict[str, str] = dict.fromkeys(PANELS, "")
        self.shown: dict[str, dict[str, Session]] = {p: {} for p in PANELS}
        self.cache_entries: list[CacheEntry] = []
        self._panel_note: dict[str, str] = dict.fromkeys(PANELS, "")
        self._timer: Timer | None = None
        self._due = 0.0
        self._polling = False
        self._again: float | None = None
        """Delay of a refresh asked for while a poll was running (it follows that poll)."""
        self._pending: Polled | None = None
        self._pending_events: list[Event] = []
        self._events_stale = False
        self._feed_drained = 0.0
        """Events arrived while the Events tab was hidden; it is redrawn when shown."""
        self._last_sweep = 0.0
        self._feed_stop = threading.Event()
        self._feed_lock = threading.Lock()
        self._feed_buffer: list[object] = []
        self._feed_rung = False
        self.poll_count = 0

    def _describe_target(self) -> str:
        try:
            t = self.store.target()
        except Exception:  # never fail to start over a label
            return "redis"
        where = t.get("path") or f"{t.get('host')}:{t.get('port')}"
        user = f"{t['username']}@" if t.get("username") else ""
        prefix = self.store.schema.prefix if hasattr(self.store.schema, "prefix") else ""
        return f"{user}{where}/{t.get('db', 0)}" + (f" prefix={prefix}" if prefix else "")

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with TabbedContent(initial="active", id="panels"):
            with TabPane("Active", id="active"):
                yield FilterInput(placeholder=FILTER_HINT, id="active-filter")
                yield Static(id="active-info", classes="info")
                yield SessionTable(ACTIVE_COLUMNS, id="active-table")
            with TabPane("Inactive", id="inactive"):
                yield FilterInput(placeholder=FILTER_HINT, id="inactive-filter")
                yield Static(id="inactive-info", classes="info")
                yield SessionTable(INACTIVE_COLUMNS, id="inactive-table")
            with TabPane("Events", id="events"):
                yield FilterInput(placeholder="/ filter events (any text)", id="events-filter")
                yield EventLog(id="events-log")
            with TabPane("Cache", id="cache"):
                yield FilterInput(placeholder="/ filter cache entries (any text)", id="cache-filter")
                yield Static(id="cache-info", classes="info")
                yield SessionTable(CACHE_COLUMNS, id="cache-table")
            with TabPane("Search", id="search"):
                yield FilterInput(placeholder="user prefix (whole history), sid:…, ip:…, app:…  then enter",
                                  id="search-input")
                yield Static(id="search-info", classes="info")
                yield SessionTable(SEARCH_COLUMNS, id="search-table")
        yield Footer(compact=True)

    @property
    def main(self) -> Screen[Any]:
        """The dashboard screen (queries must not land on a dialog pushed over it)."""
        return self.screen_stack[0] if self.screen_stack else self.screen

    @property
    def closing(self) -> bool:
        """Shutting down: late worker messages and timers must not touch widgets."""
        return self._exit or not self.screen_stack or not self.main.is_attached

    def on_mount(self) -> None:
        self.focus_panel()
        self._show_status()
        for panel in ("active", "inactive", "cache"):
            self._show_info(panel)
        self.main.query_one("#search-info", Static).update(
            Text("Type a username prefix (shows the user's whole history), or sid:, ip:, app: and enter."))
        self._schedule(0)
        if self.use_feed:
            self.run_feed()

    def on_unmount(self) -> None:
        self._feed_stop.set()

    async def action_quit(self) -> None:
        self._feed_stop.set()
        await super().action_quit()

    # --- bindings, help, palette --------------------------------------------------------
    def registered_bindings(self) -> list[Binding]:
        """The app's own bindings, as registered (after any keymap)."""
        out = []
        for bindings in self._bindings.key_to_bindings.values():
            out.extend(b for b in bindings if b.id and b.id.split(".")[0] in OWN_IDS)
        seen: set[str] = set()
        return [b for b in out if not (b.id in seen or seen.add(b.id))]  # type: ignore[func-returns-value]

    def help_keys(self) -> list[tuple[str, str]]:
        keys = [(self.get_key_display(b), b.description) for b in self.registered_bindings()]
        return keys + EXTRA_HELP

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_keys()), callback=self._thaw)

    # --- panels, focus, filters ---------------------------------------------------------
    @property
    def panel(self) -> str:
        return self.main.query_one(TabbedContent).active or "active"

    def main_widget(self, panel: str | None = None) -> Any:
        panel = panel or self.panel
        if panel == "events":
            return self.main.query_one(EventLog)
        return self.main.query_one(f"#{panel}-table", SessionTable)

    def focus_panel(self) -> None:
        self.main_widget().focus()

    def action_show_panel(self, panel: str) -> None:
        self.main.query_one(TabbedContent).active = panel
        self.focus_panel()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self.focus_panel)
        if self.panel in ("active", "inactive", "cache"):
            self.request_refresh(0)
        elif self.panel == "events" and self._events_stale:
            self._events_stale = False
            self.main.query_one(EventLog).replace(self.model.visible_events())

    def action_filter(self) -> None:
        target = "search-input" if self.panel == "search" else f"{self.panel}-filter"
        self.main.query_one(f"#{target}", Input).focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        panel = (event.input.id or "").removesuffix("-filter").removesuffix("-input")
        if panel not in PANELS:
            return
        self.filters[panel] = event.value
        if panel == "events":
            self.model.event_filter = event.value
            self.main.query_one(EventLog).replace(self.model.visible_events())
        elif panel == "cache":
            self._show_cache()
        elif panel == "search":
            if event.value.strip():
                self.run_search(event.value)
        else:
            self.request_refresh(0.15)

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search-input" and event.value.strip():
            self.run_search(event.value)
        self.focus_panel()

    # --- sorting ------------------------------------------------------------------------
    def action_sort(self) -> None:
        if self.panel != "active":
            self.notify("Sorting applies to the Active panel", timeout=2)
            return
        column = self.model.cycle_sort()
        self.model.descending = True
        self._show_info("active")
        self.notify(f"Sorted by {column.label}", timeout=1.5)
        self.request_refresh(0)

    def action_sort_order(self) -> None:
        self.model.descending = not self.model.descending
        self._show_info("active")
        self.request_refresh(0)

    @on(DataTable.HeaderSelected, "#active-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.model.sort_by(str(event.column_key.value))
        self._show_info("active")
        self.request_refresh(0)

    # --- pause / refresh ----------------------------------------------------------------
    def action_pause(self) -> None:
        self.model.paused = not self.model.paused
        if self.model.paused and self.panel == "events":
            # what a burst left undrawn (EventLog.BURST) is there to read while paused
            self.main.query_one(EventLog).replace(self.model.visible_events())
        self._show_status()
        if not self.model.paused:
            self._thaw()

    def action_refresh(self) -> None:
        self.request_refresh(0)
        if self.panel == "search" and self.filters["search"].strip():
            self.run_search(self.filters["search"])

    @property
    def frozen(self) -> bool:
        """Nothing repaints while paused or while another screen (a dialog) is on top."""
        return self.model.paused or len(self.screen_stack) > 1

    def _thaw(self, _result: object = None) -> None:
        if self.closing:
            return
        if self.frozen:
            return
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._apply(pending)
        if self._pending_events:
            events, self._pending_events = self._pending_events, []
            log = self.main.query_one(EventLog)
            if self.panel != "events":
                self._events_stale = True
            elif len(events) >= self.model.max_events:
                log.replace(self.model.visible_events())
            else:
                log.append(ev for ev in events if self._event_visible(ev))
        self._show_status()

    # --- polling ------------------------------------------------------------------------
    def request_refresh(self, delay: float = 0.0) -> None:
        """Poll within ``delay`` seconds (debounced; a running poll is followed by another)."""
        if self._polling:
            self._again = delay if self._again is None else min(self._again, delay)
            return
        if self._timer is not None and self._due <= time.monotonic() + delay:
            return
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._due = time.monotonic() + delay
        self._timer = self.set_timer(max(delay, 0.001), self._start_poll)

    def _start_poll(self) -> None:
        self._timer = None
        if self.closing:
            return
        if self._polling:
            self._again = 0.0
            return
        self._polling = True
        panel = self.panel
        sweep = self.sweep_enabled and time.monotonic() - self._last_sweep >= SWEEP_EVERY
        if sweep:
            self._last_sweep = time.monotonic()
        self.poll(panel, self.filters.get(panel, ""), self.model.sort, self.model.descending, sweep)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self, panel: str, filter_text: str, sort: Any, descending: bool, sweep: bool) -> None:
        """One reconciliation: ping + stats + server info + one page. Constant cost."""
        store = self.store
        try:
            started = self.perf_counter()
            store.ping()
            latency = (self.perf_counter() - started) * 1000
            if sweep:
                store.sweep(batch=50, max_calls=2)
            stats = store.stats()
            server = store.server_info()
            msg = Polled(stats=stats, server=server, latency_ms=latency, panel=panel)
            kind, query = parse_query(filter_text)
            now = self.clock()
            if panel in ("active", "inactive") and query:
                found = store.search(kind, query, limit=PAGE_SIZE)
                want_active = panel == "active"
                msg.sessions = [s for s in found if s.is_active(now) == want_active]
                msg.total = len(msg.sessions)
                msg.note = f"{kind} starts with {query!r}"
            elif panel == "active":
                page = store.active_page(sort=sort.server or "last_seen",
                                         descending=descending if sort.server else True, limit=PAGE_SIZE)
                msg.sessions, msg.total = page.sessions, page.total
                msg.note = "; ".join(page.problems)
            elif panel == "inactive":
                page = store.ended_page(limit=PAGE_SIZE)
                msg.sessions, msg.total = page.sessions, page.total
                msg.note = "; ".join(page.problems)
            elif panel == "cache":
                msg.cache = store.cache_page(limit=PAGE_SIZE)
                msg.total = len(msg.cache)
            self.post_message(msg)
        except StoreError as exc:
            self.post_message(PollFailed(str(exc)))
        except Exception as exc:  # a bug must not stop polling forever
            self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))

    @on(Polled)
    def _polled(self, msg: Polled) -> None:
        if self.closing:
            return
        self.poll_count += 1
        was = self.model.state
        self.model.poll_succeeded(msg.stats, msg.server, msg.latency_ms)
        self._poll_done(self.model.quiet_delay(self.refresh_interval, msg.stats))
        if self.frozen:
            self._pending = msg
            if was != self.model.state:
                self._show_status()
            return
        self._apply(msg)

    @on(PollFailed)
    def _poll_failed(self, msg: PollFailed) -> None:
        if self.closing:
            return
        self.poll_count += 1
        self.model.poll_failed(msg.detail)
        self._show_status()
        self._poll_done(self.model.retry_delay(self.refresh_interval))

    def _poll_done(self, delay: float) -> None:
        self._polling = False
        if self._again is not None:
            delay, self._again = min(delay, self._again), None
        self._schedule(delay)

    def _apply(self, msg: Polled) -> None:
        self._show_status()
        now = self.clock()
        if msg.panel == "active":
            sessions = self.model.order(msg.sessions, server_sorted=not self.filters["active"].strip())
            self._fill("active", sessions, lambda s: active_row(s, now), msg.total, msg.note)
        elif msg.panel == "inactive":
            self._fill("inactive", msg.sessions, lambda s: inactive_row(s, now), msg.total, msg.note)
        elif msg.panel == "cache":
            self.cache_entries = msg.cache
            self._show_cache()

    def _fill(self, panel: str, sessions: list[Session], row: Callable[[Session], tuple[str, ...]],
              total: int, note: str = "") -> None:
        self.shown[panel] = {s.sid: s for s in sessions}
        self.main.query_one(f"#{panel}-table", SessionTable).sync([(s.sid, row(s)) for s in sessions])
        self._panel_note[panel] = note
        self._show_info(panel, total, len(sessions))

    def _show_cache(self) -> None:
        needle = self.filters["cache"].strip().casefold()
        rows = [(e.sid, cache_row(e.sid, e.summary, e.raw, e.ttl)) for e in self.cache_entries]
        if needle:
            rows = [r for r in rows if needle in " ".join(r[1]).casefold()]
        self.main.query_one("#cache-table", SessionTable).sync(rows)
        self.main.query_one("#cache-info", Static).update(
            Text(f"{len(rows)} cache entries (newest activity first, one page of {PAGE_SIZE})"))

    def _show_info(self, panel: str, total: int | None = None, shown: int | None = None) -> None:
        widget = self.main.query_one(f"#{panel}-info", Static)
        parts: list[str] = []
        if total is not None:
            label = {"active": "active sessions", "inactive": "ended sessions"}.get(panel, "entries")
            parts.append(f"{total} {label}" + (f", showing {shown}" if shown is not None and shown < total
                                               else ""))
        if panel == "active":
            sort = self.model.sort
            arrow = "↓" if self.model.descending else "↑"
            parts.append(f"sort: {sort.label} {arrow}" + ("" if sort.server else " (within page)"))
        if self.filters.get(panel, "").strip():
            parts.append(f"filter: {clean(self._panel_note.get(panel) or self.filters[panel], 60)}")
        elif self._panel_note.get(panel):
            parts.append(clean(self._panel_note[panel], 80))
        widget.update(Text(" · ".join(parts)))

    def _show_status(self) -> None:
        self.main.query_one(StatusBar).show(self.model)

    # --- live feed ----------------------------------------------------------------------
    def feed_items(self, stop: threading.Event) -> Iterable[object]:
        """What the feed worker iterates; tests may replace it."""
        feed = EventFeed(self.store, heartbeat=1.0, backlog=200, backoff=FEED_BACKOFF)
        try:
            yield from feed.run(stop)
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="feed", exit_on_error=False)
    def run_feed(self) -> None:
        """Tail the feed. Items go to a buffer and one message rings the UI; items that
        arrive before the UI drained it join the same batch, so a burst costs one repaint."""
        stop = self._feed_stop
        while not stop.is_set():
            try:
                for item in self.feed_items(stop):
                    if stop.is_set():
                        break
                    self._feed_push(item)
                if stop.is_set():
                    return
                detail = "live feed reader stopped; restarting"
            except Exception as exc:  # the reader died: say so (not "connected") and restart it
                detail = f"live feed reader failed ({type(exc).__name__}: {exc}); restarting"
            self._feed_push(FeedStatus(False, detail))
            stop.wait(FEED_BACKOFF[1])

    def _feed_push(self, item: object) -> None:
        with self._feed_lock:
            self._feed_buffer.append(item)
            if len(self._feed_buffer) > FEED_BUFFER_MAX:  # the UI is stalled: keep it bounded
                self._feed_buffer = _trim_feed(self._feed_buffer, self.model.max_events)
            if self._feed_rung:
                return
            self._feed_rung = True
        self.post_message(FeedItems([]))

    @on(FeedItems)
    def _feed(self, msg: FeedItems) -> None:
        # At most FEED_UI_RATE drains a second: at a thousand events a second, drawing
        # each small batch as it comes costs far more than drawing ten batches a second.
        wait = self._feed_drained + 1 / FEED_UI_RATE - time.monotonic()
        if wait > 0 and not msg.items:
            self.set_timer(wait, self._drain_feed)
            return
        self._drain_feed(msg.items)

    def _drain_feed(self, extra: Iterable[object] = ()) -> None:
        self._feed_drained = time.monotonic()
        with self._feed_lock:
            items, self._feed_buffer, self._feed_rung = [*extra, *self._feed_buffer], [], False
        if self.closing:
            return
        fresh: list[Event] = []
        refresh = False
        for item in items:
            if isinstance(item, Event):
                if self.model.add_event(item):
                    fresh.append(item)
                    refresh = refresh or item.kind in SESSION_KINDS
            elif isinstance(item, FeedStatus):
                self.model.feed_status(item.connected, item.detail)
                self._show_status()
            elif isinstance(item, Resync):
                if item.rewound:
                    self.model.log_restarted()
                    note = "event log started again (Redis lost or flushed its data): resynced"
                    self.notify(note, severity="warning", timeout=5)
                elif item.gap:
                    note = "some events were trimmed from the log before they could be read: resynced"
                if item.gap or item.rewound:
                    marker = Event(raw=f"── {note} ──", kind="error")
                    if self.model.add_event(marker):
                        fresh.append(marker)
                refresh = True
            elif isinstance(item, ExpiryHint):
                refresh = True
        if refresh:
            self.model.quiet_polls = 0
            self.request_refresh(FEED_REFRESH)
        if not fresh:
            return
        if self.frozen:
            self._pending_events.extend(fresh)
            del self._pending_events[: -self.model.max_events]
            return
        if self.panel != "events":
            # The tail is hidden: rendering every line into it costs CPU for nothing when
            # events come by the thousand. The model keeps them; the tab redraws on show.
            self._events_stale = True
            return
        visible = [ev for ev in fresh if self._event_visible(ev)]
        self.main.query_one(EventLog).append(visible[-self.model.max_events:])

    def _event_visible(self, ev: Event) -> bool:
        return event_matches(ev, self.model.event_filter)

    # --- search -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def run_search(self, text: str) -> None:
        kind, query = parse_query(text)
        if not query:
            return
        try:
            found = self.store.search(kind, query, limit=PAGE_SIZE)
            self.post_message(SearchResults(query, kind, found))
        except StoreError as exc:
            self.post_message(SearchResults(query, kind, [], error=str(exc)))

    @on(SearchResults)
    def _search_results(self, msg: SearchResults) -> None:
        if self.closing:
            return
        if parse_query(self.filters["search"]) != (msg.kind, msg.query):
            return  # an older query's answer
        now = self.clock()
        self.shown["search"] = {s.sid: s for s in msg.sessions}
        rows = [(s.sid, search_row(s, now)) for s in msg.sessions]
        self.main.query_one("#search-table", SessionTable).sync(rows)
        text = msg.error or f"{len(msg.sessions)} sessions where {msg.kind} starts with {msg.query!r}"
        if msg.kind == "user" and not msg.error:
            text += " (the users' whole history)"
        self.main.query_one("#search-info", Static).update(Text(clean(text, 200)))

    # --- selection, detail, logout ------------------------------------------------------
    def selected_session(self) -> Session | None:
        panel = self.panel
        if panel not in ("active", "inactive", "search", "cache"):
            return None
        sid = self.main.query_one(f"#{panel}-table", SessionTable).selected_key
        if sid is None:
            return None
        return self.shown[panel].get(sid) or Session(sid=sid, username="?")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def action_detail(self) -> None:
        session = self.selected_session()
        if session is None:
            return
        self.push_screen(DetailScreen(session.sid, self.load_detail, self.clock), callback=self._thaw)

    def load_detail(self, sid: str) -> Detail:
        """Runs in the detail screen's thread worker: a few round trips, bounded."""
        session = self.store.get(sid)
        client = self.store.client
        key = self.store.schema.cache(sid)
        try:
            raw, pttl = client.get(key), client.pttl(key)
        except Exception as exc:
            raise StoreError(f"cannot read the cache entry: {exc}") from exc
        cache = parse_cache(sid, raw, pttl) if raw is not None else None
        events = [e for e in self.store.events(limit=1000) if e.sid == sid][:50]
        return Detail(sid, session, cache, list(reversed(events)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Write actions exist only when not read-only; over the main view only help and
        quit stay live (and logout on the detail screen, for the session it shows)."""
        if action in ("logout", "logout_user") and self.read_only:
            return False
        if action == "help" and isinstance(self.screen, ConfirmScreen | HelpScreen):
            return False
        if action in MAIN_ACTIONS and len(self.screen_stack) > 1:
            return action in ("logout", "logout_user") and isinstance(self.screen, DetailScreen)
        return True

    def action_logout(self) -> None:
        session = self._selected_for_write()
        if session is None:
            return
        screen = ConfirmScreen("Log out this session?", [(session.username, session.app, session.ip)])
        self.push_screen(screen, callback=partial(self._confirmed, session.sid, None))

    def action_logout_user(self) -> None:
        session = self._selected_for_write()
        if session is None:
            return
        user = session.username
        same = [s for s in self.shown[self.panel].values() if s.username == user and s.status == "active"]
        same.sort(key=lambda s: s.sid != session.sid)
        rows = [(s.username, s.app, s.ip) for s in same[:6]] or [(user, session.app, session.ip)]
        question = f"Log out every session of {clean(user, 40)}?"
        self.push_screen(ConfirmScreen(question, rows, more=max(0, len(same) - 6)),
                         callback=partial(self._confirmed, None, user))

    def _selected_for_write(self) -> Session | None:
        if self.read_only:
            return None
        session = self.selected_session()
        if session is None or self.panel not in ("active", "search"):
            self.notify("Select a session in Active or Search first", severity="warning", timeout=2)
            return None
        return session

    def _confirmed(self, sid: str | None, user: str | None, ok: bool | None) -> None:
        if ok and not self.read_only:
            self.write_logout(sid, user)
        self._thaw()

    @work(thread=True, group="write", exit_on_error=False)
    def write_logout(self, sid: str | None, user: str | None) -> None:
        try:
            if user is not None:
                ended = self.store.logout_user(user, actor=self.actor)
                text = f"Logged out {len(ended)} session(s) of {clean(user, 40)}"
            else:
                assert sid is not None
                done = self.store.logout(sid, actor=self.actor)
                short = clean(sid, 8)
                text = f"Logged out session {short}" if done else f"Session {short} had already ended"
            result = (text, "information")
        except StoreError as exc:
            result = (f"Logout failed: {exc}", "error")
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.call_from_thread(self._written, *result)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast goes through the display path and is never read as markup (a user
        named ``[@click=app.quit]x[/]`` or ``[/]`` is shown as typed)."""
        super().notify(clean(message, 500), title=clean(title, 80), severity=severity, timeout=timeout,
                       markup=False)

    def _written(self, text: str, severity: str) -> None:
        if self.closing:
            return
        self.notify(text, severity=severity, timeout=3)  # type: ignore[arg-type]
        self.request_refresh(0)


class AdminApp(SessionWatchApp):
    """The dashboard with the write keys registered (``l``, ``L``)."""

    BINDINGS: ClassVar[list[BindingType]] = list(WRITE_BINDINGS)


def build_app(store: core.SessionStore, *, read_only: bool = False, actor: str | None = None,
              refresh_interval: float = 2.0, target_label: str | None = None, feed: bool = True,
              sweep: bool | None = None) -> SessionWatchApp:
    """The dashboard over ``store``. ``read_only`` never registers the write actions."""
    cls = SessionWatchApp if read_only else AdminApp
    return cls(store, read_only=read_only, actor=actor, refresh_interval=refresh_interval,
               target_label=target_label, feed=feed, sweep=sweep)
