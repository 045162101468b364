"""Per-thread read access to the store: SQLite connections stay on the thread that opened them.

Starlette runs plain (sync) endpoints on a thread pool; each pool thread opens its own
:class:`~lnlens_core.storage.Store` (and a :class:`~lnlens_core.lens.Lens` over it) once,
so requests never share a connection and readers never block the writer (WAL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from ..clock import Clock
from ..config import LensConfig
from ..lens import Lens
from ..plugins import get_plugin_manager
from ..storage import Store

__all__ = ["DataClock", "Readers"]


class DataClock:
    """ "Now" for a database written by a simulator: the newest time its data refers to."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def now(self) -> float:
        return self.store.latest_data_time() or 0.0

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return stop.is_set() if stop is not None else False


@dataclass
class Readers:
    """Opens one Store and Lens per thread over ``config.db_path``.

    :param clock: the process's clock (a simulator's, or the system clock); a database
        marked ``clock=simulated`` with no running simulator reads "now" from its data.
    """

    config: LensConfig
    clock: Clock
    live_clock: bool = False
    """True when ``clock`` is driven by a simulator running in this process."""
    pm_factory: Callable[[], pluggy.PluginManager] | None = None
    _local: threading.local = field(default_factory=threading.local)
    _opened: list[Store] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def db_path(self) -> Path:
        return self.config.db_path

    def lens(self) -> Lens:
        lens = getattr(self._local, "lens", None)
        if lens is None:
            store = Store(self.config.db_path)
            with self._lock:
                self._opened.append(store)
            simulated = store.get_meta("clock") == "simulated" and not self.live_clock
            clock: Any = DataClock(store) if simulated else self.clock
            pm = self.pm_factory() if self.pm_factory else get_plugin_manager(blocked=self.config.blocked_plugins)
            lens = self._local.lens = Lens(self.config, store=store, clock=clock, pm=pm)
        return lens

    def close(self) -> None:
        """Close every connection opened (call once the server has stopped)."""
        with self._lock:
            stores, self._opened = self._opened, []
        for store in stores:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a connection owned by a finished thread; closing is best effort
                pass
