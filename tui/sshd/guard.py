"""Failed authentications, limited per client address."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureLimiter:
    """At most ``limit`` failed authentications per address in ``window`` seconds; past
    that the address is refused before authentication until old failures age out.
    Remembers at most ``max_addresses`` addresses (the least recently failing go first)."""

    def __init__(self, limit: int = 5, window: float = 300.0, *, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_addresses, self.clock = limit, window, max_addresses, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0 if it may now)."""
        times = self._recent(address)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window - self.clock())

    def record(self, address: str) -> bool:
        """Count one failure; returns whether ``address`` is now blocked."""
        times = self._recent(address) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return len(times) >= self.limit
