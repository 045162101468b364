"""Running the fee engine on a simulated node over simulated time.

``lnlens policy experiment`` and ``scripts/fees_decision_quality.py`` both drive a backend
that makes its own traffic (the simulator: ``run(seconds)``, ``attach(monitor)`` and a
``clock`` it advances) through the engine's production path, on a store of their own
that never touches the operator's database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backend import NodeBackend
from ..config import LensConfig
from ..errors import ConfigError
from ..lens import Lens
from ..plugins import get_plugin_manager
from ..storage import Store

__all__ = ["simulated_lens", "drive", "require_simulator"]


def require_simulator(backend: NodeBackend, what: str) -> None:
    """:raises ConfigError: ``backend`` does not simulate its own traffic, so ``what`` cannot run on it."""
    if not (callable(getattr(backend, "run", None)) and callable(getattr(backend, "attach", None))):
        raise ConfigError(f"{what} needs a backend that simulates its own traffic (the simulator), "
                          f"not {backend.name}")  # fmt: skip


def simulated_lens(config: LensConfig, backend: NodeBackend, *, pm: Any = None) -> Lens:
    """A Lens on ``backend`` with a fresh in-memory store, on the backend's clock, recording its forwards.

    :param pm: a plugin manager; default: the installed plugins, less ``config.blocked_plugins``
        (so their vetoes apply as they do in ``policy apply``).
    """
    require_simulator(backend, "a simulated run")
    pm = pm if pm is not None else get_plugin_manager(blocked=config.blocked_plugins)
    lens = Lens(config, store=Store(None), clock=backend.clock, pm=pm, backend=backend)  # type: ignore[attr-defined]
    backend.attach(lens.monitor)  # type: ignore[attr-defined]
    return lens


def drive(
    lens: Lens,
    backend: NodeBackend,
    seconds: float,
    *,
    interval_s: float,
    each_interval: Callable[[], object] | None = None,
    progress: Callable[[float], object] | None = None,
) -> None:
    """Simulate ``seconds`` from the clock's time. At the start of every ``interval_s`` the channels
    are snapshotted into the store (the engine's fee histories read them) and ``each_interval``
    runs (the engine); then traffic runs to the next interval. ``progress`` gets the seconds done."""
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    clock = lens.clock
    end = clock.now() + seconds
    while (left := end - clock.now()) > 0:
        lens.store.add_snapshots(backend.list_channels(), time=clock.now())
        if each_interval is not None:
            each_interval()
        step = min(interval_s, left)
        backend.run(step)  # type: ignore[attr-defined]
        if progress is not None:
            progress(step)
