"""The dashboard's panels, one module each. To add a panel: write a :class:`Panel`
subclass in its own module and list it here; the App composes, numbers (1, 2, …) and
refreshes whatever this tuple holds."""

from __future__ import annotations

from .active import ActivePanel
from .base import Panel
from .cache import CachePanel
from .events import EventsPanel
from .inactive import InactivePanel
from .overview import OverviewPanel
from .search import SearchPanel

PANELS: tuple[type[Panel], ...] = (ActivePanel, InactivePanel, EventsPanel, CachePanel, SearchPanel,
                                   OverviewPanel)

__all__ = ["PANELS", "Panel"]
