"""Runs the anomaly rules against a live Redis: events in, flags out.

:class:`Flagger` holds an :class:`~core.anomalies.Evaluator`. Whoever reads the live feed
hands it each event (:meth:`Flagger.observe`; the dashboard does this from its own feed,
``sessionwatch anomalies --follow`` through :meth:`Flagger.run`), and :meth:`Flagger.tick`
(every ``tick`` seconds) reads the Redis-side inputs at a fixed cost, evaluates, and
raises or clears flags through ``flag.lua``. With ``write=False`` (read-only followers)
the flags stay local.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .anomalies import Evaluator, Thresholds
from .errors import StoreError
from .model import Event
from .overview import Flag
from .store import SessionStore

TICK = 0.25
"""Seconds between evaluations: a pattern is flagged well within 2 s of crossing."""


@dataclass(slots=True)
class TickResult:
    raised: list[Flag] = field(default_factory=list)
    """Flags this tick raised in Redis (its call wrote the flag_raised event)."""
    cleared: list[Flag] = field(default_factory=list)
    holding: dict[str, Flag] = field(default_factory=dict)
    """Flags whose condition holds now, by this evaluator's reckoning."""
    stored: dict[str, Flag] = field(default_factory=dict)
    """Flags in Redis after this tick (whoever raised them)."""
    error: str = ""


class Flagger:
    """Evaluates the rules for one follower; thread-safe between the feed and the ticks."""

    def __init__(self, store: SessionStore, *, thresholds: Thresholds | None = None, actor: str = "rules",
                 write: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.clock = clock or store.ctx.clock
        self.thresholds = thresholds or Thresholds()
        self.evaluator = Evaluator(self.thresholds, started=self.clock())
        self.actor = actor
        self.write = write
        self.lock = threading.Lock()
        self.last = TickResult()

    def observe(self, ev: Event) -> None:
        with self.lock:
            self.evaluator.observe(ev)

    def tick(self) -> TickResult:
        """One evaluation. Redis errors are reported in the result, never raised."""
        th = self.thresholds
        now = self.clock()
        result = TickResult()
        try:
            inputs = self.store.rule_inputs(min_addresses=min(th.sharing_addresses, th.sharing_networks),
                                            baseline_minutes=th.baseline_minutes)
        except StoreError as exc:
            result.error = str(exc)
            self.last = result
            return result
        stored = {f.id: f for f in inputs.flags}
        with self.lock:
            holding = self.evaluator.evaluate(now, inputs)
            to_raise, to_clear = self.evaluator.decide(now, holding, stored if self.write else {})
        result.holding = holding
        if self.write:
            try:
                for flag in to_raise:
                    if self.store.flag("raise", flag, actor=self.actor):
                        result.raised.append(flag)
                    stored[flag.id] = flag
                for flag in to_clear:
                    if self.store.flag("clear", flag, actor=self.actor):
                        result.cleared.append(flag)
                    stored.pop(flag.id, None)
            except StoreError as exc:
                result.error = str(exc)
        result.stored = stored
        self.last = result
        return result

    def run(self, stop: threading.Event, *, tick: float = TICK,
            on_event: Callable[[Event], None] | None = None,
            on_status: Callable[[object], None] | None = None,
            on_tick: Callable[[], None] | None = None) -> None:
        """Follow the live feed and tick until ``stop`` is set (blocks). ``on_event`` sees
        every event (for printing), ``on_status`` the feed's status items, ``on_tick`` runs
        after each evaluation (in the ticking thread)."""
        from .feed import EventFeed

        feed = EventFeed(self.store)
        ticker = threading.Thread(target=self._tick_loop, args=(stop, tick, on_tick), daemon=True,
                                  name="sessionwatch-flagger")
        ticker.start()
        try:
            for item in feed.run(stop):
                if isinstance(item, Event):
                    self.observe(item)
                    if on_event is not None:
                        on_event(item)
                elif on_status is not None:
                    on_status(item)
        finally:
            stop.set()
            feed.close()
            ticker.join(timeout=5)

    def _tick_loop(self, stop: threading.Event, tick: float, on_tick: Callable[[], None] | None) -> None:
        while not stop.wait(tick):
            self.tick()
            if on_tick is not None:
                on_tick()
