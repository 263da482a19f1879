"""The sessionwatch dashboard: the App composes the panels of :mod:`tui.panels`.

The App owns what is shared: the connection status (a health poll scheduled with
``set_timer`` after each completion, never ``set_interval``), the live feed (a thread
worker tailing the event log through :mod:`core.feed`), the refresh scheduler, the
panel keys, and the admin writes (confirm, then a worker). Each panel owns its widgets,
its state and its reads (see :mod:`tui.panels.base`).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

import redis.exceptions
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TabPane

import core
from core import Event, Session, StoreError, topology
from core.anomalies import Thresholds
from core.connection import REDIS_ERRORS
from core.feed import EventFeed, ExpiryHint, FeedStatus, Resync
from core.flagger import Flagger
from core.overview import FlagIndex

from .actor import default_actor
from .messages import FeedItems, Polled, PollFailed
from .model import DashboardModel, clean, fmt_clock
from .overview_actions import FlagAction
from .panels import PANELS, Panel
from .screens.anonymous import AnonymousScreen
from .screens.confirm import ConfirmScreen
from .screens.detail import Detail, DetailScreen
from .screens.help import HelpScreen
from .source import DataSource
from .widgets.status import StatusBar

THEME = Theme(
    name="sessionwatch", dark=True, primary="#0178D4", secondary="#C678DD", error="#ba3c5b",
    warning="#FFB000", accent="#F5C542", success="#4EBF71", foreground="#e0e0e0",
)
"""Textual's dark theme with amber instead of orange for warnings and accents: orange is
drawn as bright red on a 16-colour terminal (the nearest of its colours), where only the
real alarms (``$error``) may be red."""

SESSION_KINDS = {"login", "logout", "admin_logout", "expired", "evicted", "replaced", "profile"}
FEED_REFRESH = 0.5
"""Seconds from a session event to the panel refresh that shows it (debounced: at most
about two refreshes a second however busy the feed is)."""
FEED_BUFFER_MAX = 5000
FEED_UI_RATE = 10
"""Live-feed batches applied to the screen per second, at most."""
FEED_BACKOFF = (0.1, 1.0)
"""Reconnect backoff of the live feed (first, cap): Redis back means the dashboard is
back within about a second (the feed's Resync triggers the reload)."""
SWEEP_EVERY = 10.0
"""Seconds between bounded sweeps (ending sessions past expiry) when not read-only."""
HEAP_SETTLES = 1.0
"""Seconds after mount when a dashboard process freezes its startup heap (see
:meth:`SessionWatchApp._freeze_heap`)."""
CONFIRM_ROWS = 8
"""Sessions listed by name in the log-out-user confirmation (the rest are counted)."""

APP_BINDINGS: list[Binding] = [
    *(Binding(str(i), f"show_panel('{cls.ID}')", cls.TITLE, show=False, id=f"panel.{cls.ID}")
      for i, cls in enumerate(PANELS, 1)),
    Binding("a", "flags", "Flags", show=False, id="panel.flags"),
    Binding("A", "anonymous", "Anonymous sessions", show=False, id="panel.anonymous"),
    Binding("p", "pause", "Pause", id="view.pause"),
    Binding("r", "refresh", "Refresh", show=False, id="view.refresh"),
    Binding("question_mark", "help", "Help", id="app.help"),
    Binding("q", "quit", "Quit", id="app.quit"),
]
OWN_IDS = {"panel", "session", "view", "app", "table", "events"}
EXTRA_HELP = [
    ("s (user, app)", "These two orders compare bytes, as the lex indexes hold them: case-sensitive "
                      "(A–Z before a–z, accented letters after z)"),
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


class DashboardCommands(Provider):
    """The dashboard's actions in the command palette (those of the app and of the
    focused panel, as registered)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, SessionWatchApp)
        out = []
        for node, binding in app.registered_bindings(with_nodes=True):
            run = partial(app.run_action, binding.action, node)
            out.append((f"{binding.description} ({binding.key_display or binding.key})",
                        binding.tooltip or binding.description, run))
        return out

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
    """Read-only by construction: the write keys are registered only when ``read_only``
    is false (on the panels that can end sessions)."""

    CSS_PATH = "styles/app.tcss"
    TITLE = "sessionwatch"
    BINDINGS: ClassVar[list[BindingType]] = list(APP_BINDINGS)
    COMMANDS: ClassVar = App.COMMANDS | {DashboardCommands}

    def __init__(self, store: core.SessionStore, *, read_only: bool = True, actor: str | None = None,
                 refresh_interval: float = 2.0, target_label: str | None = None, feed: bool = True,
                 sweep: bool | None = None, rules: bool = True, freeze_heap: bool = False) -> None:
        super().__init__()
        self.freeze_heap = freeze_heap
        self.register_theme(THEME)
        self.theme = THEME.name
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
        self.source = DataSource(store, lambda: self.perf_counter())
        self.clock: Callable[[], float] = store.ctx.clock
        self._timer: Timer | None = None
        self._due = 0.0
        self._polling = False
        self._again: float | None = None
        """Delay of a refresh asked for while a poll was running (it follows that poll)."""
        self._pending_events: list[Event] = []
        self._feed_drained = 0.0
        self._last_sweep = 0.0
        self._feed_stop = threading.Event()
        self._panels: list[Panel] = []
        self._feed_lock = threading.Lock()
        self._feed_buffer: list[object] = []
        self._feed_rung = False
        self.poll_count = 0
        try:
            thresholds = Thresholds.from_env()
        except ValueError as exc:  # a bad SESSIONWATCH_ANOMALY_* value: the defaults, and say so
            thresholds, self._rules_problem = Thresholds(), str(exc)
        else:
            self._rules_problem = ""
        self.rules = Flagger(store, thresholds=thresholds, actor=self.actor, write=not read_only)
        """The anomaly rules: fed every live event here, ticked by the Overview panel."""
        self.rules_write = not read_only
        self.rules_on = rules and feed
        """Evaluate the anomaly rules here (they need the live feed)."""
        self.rules_stop = threading.Event()
        self.flag_index = FlagIndex()
        """What the current flags name: the ⚑ markers in Active and Inactive."""

    def _describe_target(self) -> str:
        try:
            t = self.store.target()
        except Exception:  # never fail to start over a label
            return "redis"
        where = t.get("path") or f"{t.get('host')}:{t.get('port')}"
        user = f"{t['username']}@" if t.get("username") else ""
        buckets = getattr(self.store, "buckets", None)
        # The bucketed layout's schemas carry a hash tag; the label shows the prefix chosen.
        prefix = buckets.prefix if buckets is not None else getattr(self.store.schema, "prefix", "")
        return f"{user}{where}/{t.get('db', 0)}" + (f" prefix={prefix}" if prefix else "")

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with TabbedContent(initial=PANELS[0].ID, id="panels"):
            for cls in PANELS:
                with TabPane(cls.TITLE, id=cls.ID):
                    yield cls(self.source, writable=not self.read_only)
        yield Footer(compact=True)

    @property
    def main(self) -> Screen[Any]:
        """The dashboard screen (queries must not land on a dialog pushed over it)."""
        return self.screen_stack[0] if self.screen_stack else self.screen

    @property
    def closing(self) -> bool:
        """Shutting down: late worker messages and timers must not touch widgets."""
        return self._exit or not self.screen_stack or not self.main.is_attached

    @property
    def panels(self) -> list[Panel]:
        """The panels, found once (they live as long as the app; a query per live-feed
        batch cost milliseconds)."""
        if len(self._panels) == len(PANELS):
            return self._panels
        self._panels = list(self.main.query(Panel))
        return self._panels

    def panel_widget(self, panel_id: str | None = None) -> Panel:
        return self.main.query_one(f"#{panel_id or self.panel}-panel", Panel)

    def on_mount(self) -> None:
        self.focus_panel()
        self._show_status()
        if self._rules_problem:
            self.notify(f"anomaly rules use their defaults: {self._rules_problem}", severity="warning")
        self._schedule(0)
        if self.use_feed:
            self.run_feed()
        if self.freeze_heap:
            self.set_timer(HEAP_SETTLES, self._freeze_heap)

    def _freeze_heap(self) -> None:
        """Take what startup made (modules, styles, widgets: most of the heap, and it lives as
        long as the app) out of the cyclic collector's walks. Under a busy live feed each full
        collection walked all of it: pauses of 100-180 ms that stalled key presses."""
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        self._feed_stop.set()
        self.rules_stop.set()

    async def action_quit(self) -> None:
        self._feed_stop.set()
        self.rules_stop.set()
        await super().action_quit()

    # --- bindings, help, palette --------------------------------------------------------
    def registered_bindings(self, *, with_nodes: bool = False) -> list[Any]:
        """The app's bindings and those of the focused panel's chain, as registered (after
        any keymap): what works now."""
        out: list[tuple[Any, Binding]] = []
        seen: set[str | None] = set()
        for node, bindings in self.main._binding_chain:
            for binding_list in bindings.key_to_bindings.values():
                for b in binding_list:
                    if b.id and b.id.split(".")[0] in OWN_IDS and b.id not in seen:
                        seen.add(b.id)
                        out.append((node, b))
        return out if with_nodes else [b for _, b in out]

    def help_keys(self) -> list[tuple[str, str]]:
        """Every key of the app and of every panel (named where it works)."""
        keys = [(self.get_key_display(b), b.description) for b in self.bindings_of(self)]
        for panel in self.panels:
            widgets = [panel, *panel.query("*")]
            for node in widgets:
                for b in self.bindings_of(node):
                    entry = (self.get_key_display(b), f"{b.description} ({panel.TITLE})")
                    if entry not in keys:
                        keys.append(entry)
        return keys + EXTRA_HELP

    @staticmethod
    def bindings_of(node: Any) -> list[Binding]:
        out = []
        for binding_list in node._bindings.key_to_bindings.values():
            out.extend(b for b in binding_list if b.id and b.id.split(".")[0] in OWN_IDS)
        return out

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_keys()), callback=self._thaw)

    # --- panels, focus ------------------------------------------------------------------
    @property
    def panel(self) -> str:
        return self.main.query_one(TabbedContent).active or PANELS[0].ID

    def focus_panel(self) -> None:
        self.panel_widget().focus_main()

    def action_show_panel(self, panel: str) -> None:
        self.main.query_one(TabbedContent).active = panel
        self.focus_panel()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self.focus_panel)
        panel = self.panel_widget()
        panel.on_shown()
        if not self.frozen:
            panel.refresh_data()

    def action_flags(self) -> None:
        """Jump to the current anomaly flags (on the Overview panel)."""
        self.action_show_panel("overview")
        self.call_after_refresh(self.panel_widget("overview").focus_flags)  # type: ignore[attr-defined]

    def action_anonymous(self) -> None:
        """Open the list of anonymous sessions (visitors before login), kept apart from
        the user sessions of Active and Inactive."""
        self.push_screen(AnonymousScreen(self.source.anonymous_page, self.clock), callback=self._thaw)

    def show_filtered(self, panel: str, text: str) -> None:
        """Show ``panel`` filtered by ``text`` (what an Overview row leads to)."""
        from textual.widgets import Input

        self.action_show_panel(panel)
        box = self.panel_widget(panel).query_one(Input)
        box.value = text  # its Changed message starts the panel's filtered read

    def refresh_titles(self) -> None:
        self._show_titles()

    def _show_titles(self) -> None:
        try:
            tabs = self.main.query_one(TabbedContent)
        except NoMatches:  # shutting down
            return
        for panel in self.panels:
            with contextlib.suppress(Exception):
                tab = tabs.get_tab(panel.ID)
                title = panel.title(self.model.stats)
                if str(tab.label) != title:
                    tab.label = title  # type: ignore[assignment]

    # --- pause / refresh ----------------------------------------------------------------
    def action_pause(self) -> None:
        self.model.paused = not self.model.paused
        if self.model.paused and self.panel == "events":
            # what a burst left undrawn (EventLog.BURST) is there to read while paused
            self.panel_widget("events").redraw()  # type: ignore[attr-defined]
        self._show_status()
        if not self.model.paused:
            self._thaw()

    def action_refresh(self) -> None:
        self.request_refresh(0)

    @property
    def frozen(self) -> bool:
        """Nothing repaints while paused or while another screen (a dialog) is on top."""
        return self.model.paused or len(self.screen_stack) > 1

    def _thaw(self, _result: object = None) -> None:
        if self.closing or self.frozen:
            return
        if self._pending_events:
            events, self._pending_events = self._pending_events, []
            if len(events) >= self.model.max_events and self.panel == "events":
                self.panel_widget("events").redraw()  # type: ignore[attr-defined]
            else:
                for panel in self.panels:
                    panel.feed_events(events)
        self.panel_widget().refresh_data()
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
        sweep = self.sweep_enabled and time.monotonic() - self._last_sweep >= SWEEP_EVERY
        if sweep:
            self._last_sweep = time.monotonic()
        self.poll(sweep)
        if not self.frozen:
            self.panel_widget().refresh_data()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self, sweep: bool) -> None:
        """One health round: ping + stats + server info (+ a bounded sweep). Constant cost."""
        try:
            health = self.source.health(sweep=sweep)
            msg = Polled(stats=health.stats, server=health.server, latency_ms=health.latency_ms, panel="")
            with contextlib.suppress(*REDIS_ERRORS, redis.exceptions.RedisClusterException):
                msg.topology = topology.describe(self.store.client)  # a label: never fails a poll
            if self.use_feed:
                with contextlib.suppress(StoreError):  # an unreadable log is the feed's to report
                    bucketed = self.store.buckets is not None  # then every bucket is watched
                    heads = self.store.event_heads() if bucketed else self.store.event_head()
                    msg.log_head, msg.log_checked = heads, True
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
        self.model.poll_succeeded(msg.stats, msg.server, msg.latency_ms)
        if msg.topology is not None:
            self.model.topology = msg.topology
        if msg.log_checked:
            self.model.check_liveness(msg.log_head, time.monotonic())
        self._poll_done(self.model.quiet_delay(self.refresh_interval, msg.stats))
        self._show_status()

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

    def _show_status(self) -> None:
        if self.closing:
            return
        try:
            bar = self.main.query_one(StatusBar)
        except NoMatches:  # shutting down: the screen is still attached, its widgets are gone
            return
        bar.show(self.model)
        self._show_titles()

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
        if self.rules_on and isinstance(item, Event):
            self.rules.observe(item)  # in the feed thread: the rules see every event, paused or not
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
                self.model.feed_delivered(item.raw)
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
        screen = self.screen
        if isinstance(screen, DetailScreen) and any(ev.sid == screen.sid for ev in fresh):
            screen.load()  # the session it shows changed: show it now
        if self.frozen:
            self._pending_events.extend(fresh)
            del self._pending_events[: -self.model.max_events]
            return
        for panel in self.panels:
            panel.feed_events(fresh)

    # --- detail, logout -----------------------------------------------------------------
    def open_detail(self, session: Session) -> None:
        logout = None if self.read_only else self._detail_logout
        screen = DetailScreen(session.sid, self.source.detail, self.clock, logout)
        self.push_screen(screen, callback=self._thaw)

    def _detail_logout(self, detail: Detail) -> None:
        """``l`` on the detail screen: that session, confirmed like anywhere else."""
        s = detail.session
        ended = s is None or not s.is_active(self.clock())
        self.confirm_logout(s, ended=ended, sid=detail.sid)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Over a dialog only help and quit stay live."""
        if action == "help" and isinstance(self.screen, ConfirmScreen | HelpScreen):
            return False
        return not (action in ("show_panel", "pause", "refresh", "anonymous") and len(self.screen_stack) > 1)

    def confirm_logout(self, session: Session | None, *, ended: bool, sid: str) -> None:
        if self.read_only:
            return
        if ended or session is None or session.status != "active":
            self.notify(f"Session {sid[:8]} has already ended", severity="warning", timeout=3)
            return
        screen = ConfirmScreen("Log out this session?", [(session.username, session.app, session.ip)])
        self.push_screen(screen, callback=partial(self._confirmed, session.sid, None))

    def confirm_logout_user(self, session: Session) -> None:
        if not self.read_only:
            self.list_user_sessions(session)

    @work(thread=True, exclusive=True, group="write-list", exit_on_error=False)
    def list_user_sessions(self, selected: Session) -> None:
        """What ``L`` will end, read before asking (the whole list, not a page)."""
        user, note = selected.username, ""
        try:
            sessions = self.source.user_sessions(user)
        except StoreError as exc:  # listed as far as known: the session chosen
            sessions, note = [selected], f"cannot list the others: {exc}"
        sessions.sort(key=lambda s: s.sid != selected.sid)
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(self._ask_logout_user, user, sessions, note)

    def _ask_logout_user(self, user: str, sessions: list[Session], note: str = "") -> None:
        if self.closing:
            return
        if not sessions:
            self.notify(f"{clean(user, 40)} has no active session", severity="warning", timeout=3)
            return
        now = self.clock()
        rows = [(s.username, s.app, s.ip, s.short_id, fmt_clock(s.login_time, now))
                for s in sessions[:CONFIRM_ROWS]]
        count = f"{len(sessions)} active" + (f"; {note}" if note else "")
        question = f"Log out every session of {clean(user, 40)}? ({clean(count, 160)})"
        self.push_screen(ConfirmScreen(question, rows, more=max(0, len(sessions) - CONFIRM_ROWS)),
                         callback=partial(self._confirmed, None, user))

    def confirm_flag_logout(self, action: FlagAction) -> None:
        """``l`` / ``L`` on a flag: what it ends, asked first."""
        if self.read_only:
            return
        screen = ConfirmScreen(action.question, action.rows(CONFIRM_ROWS), more=action.more)
        self.push_screen(screen, callback=partial(self._flag_confirmed, action))

    def _flag_confirmed(self, action: FlagAction, ok: bool | None) -> None:
        if ok and not self.read_only:
            self.write_flag_logout(action.sids, action.users)
        self._thaw()

    @work(thread=True, group="write", exit_on_error=False)
    def write_flag_logout(self, sids: tuple[str, ...], users: tuple[str, ...]) -> None:
        try:
            ended = sum(1 for user in users for _ in self.source.logout_user(user, self.actor))
            ended += sum(1 for sid in sids if self.source.logout(sid, self.actor))
            result = (f"Logged out {ended} session(s) behind the flag", "information")
        except StoreError as exc:
            result = (f"Logout failed: {exc}", "error")
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.call_from_thread(self._written, *result)

    def _confirmed(self, sid: str | None, user: str | None, ok: bool | None) -> None:
        if ok and not self.read_only:
            self.write_logout(sid, user)
        self._thaw()

    @work(thread=True, group="write", exit_on_error=False)
    def write_logout(self, sid: str | None, user: str | None) -> None:
        try:
            if user is not None:
                ended = self.source.logout_user(user, self.actor)
                text = f"Logged out {len(ended)} session(s) of {clean(user, 40)}"
            else:
                assert sid is not None
                done = self.source.logout(sid, self.actor)
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
        for panel in self.panels:
            after = getattr(panel, "after_write", None)
            if after is not None:
                after()
        self.request_refresh(0)


def build_app(store: core.SessionStore, *, read_only: bool = False, actor: str | None = None,
              refresh_interval: float = 2.0, target_label: str | None = None, feed: bool = True,
              sweep: bool | None = None, rules: bool = True, freeze_heap: bool = False) -> SessionWatchApp:
    """The dashboard over ``store``. ``read_only`` never registers the write actions;
    ``rules`` evaluates the anomaly rules (raising flags in Redis unless read-only);
    ``freeze_heap``: a process running this one app (the command) freezes its startup heap
    a moment after the first paint (tests running many apps in one process do not)."""
    return SessionWatchApp(store, read_only=read_only, actor=actor, refresh_interval=refresh_interval,
                           target_label=target_label, feed=feed, sweep=sweep, rules=rules,
                           freeze_heap=freeze_heap)
