"""Opening a node backend for a CLI command: found through the ``lnlens.backends`` entry points.

A backend that lives only inside the process (the simulator) would start over with every
command. When it offers ``restore_state(path) -> str | None`` and ``save_state(path)``, the
state saved next to the database (``<db>.<backend>-state``) is restored when the command
opens it and saved when the command ends, so ``policy apply`` then ``policy rollback`` in
two commands act on one node. ``restore_state`` answers why it did not restore a file
(other settings, ...); that is printed as a warning. A backend offering
``continue_after(time, next_htlc_ids)`` is then moved past the database's newest data, so a
simulator rebuilt from its settings never replays time the database already holds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..backend import NodeBackend
from ..clock import Clock
from ..errors import ConfigError
from ..lens import Lens
from ..plugins import get_plugin_manager
from .context import CliContext

__all__ = ["open_backend", "backend_lens", "backend_factory", "state_path"]


def open_backend(name: str, ctx: CliContext) -> NodeBackend:
    """Build backend ``name`` from the settings table of the same name (``[sim]``, ``[lnd]``).

    :raises ConfigError: no such backend is installed, or its settings are wrong.
    """
    backend = backend_factory(name, ctx)({})
    restore, save = getattr(backend, "restore_state", None), getattr(backend, "save_state", None)
    if callable(restore) and callable(save):
        path = state_path(ctx, name)
        why_not = restore(path)
        if why_not:
            print(f"lnlens: warning: {why_not}", file=sys.stderr)
        ctx.on_close(lambda: _save(save, path))
    continue_after = getattr(backend, "continue_after", None)
    if callable(continue_after):
        # A node that lives in this process only (the simulator, rebuilt from its settings when no saved
        # state fits) continues the database's history rather than replaying its first day over it.
        store = ctx.store(create=True)
        newest = store.latest_data_time()
        if newest is not None:
            continue_after(newest, store.next_htlc_ids())
    return backend


def backend_factory(name: str, ctx: CliContext) -> Callable[[Mapping[str, Any]], NodeBackend]:
    """Build backend ``name`` from its settings table with some keys replaced (``{"seed": 3}``), with no
    saved state: a new, separate instance each call (``policy experiment`` runs one per seed).

    :raises ConfigError: no such backend is installed (its settings are checked when it is built).
    """
    found = {ep.name: ep for ep in entry_points(group="lnlens.backends")}
    if name not in found:
        raise ConfigError(f"--backend {name}: no such backend (installed: {', '.join(sorted(found)) or 'none'})")
    factory = found[name].load()
    table = dict(ctx.config().backends.get(name, {}))
    return lambda overrides: factory({**table, **overrides})


def state_path(ctx: CliContext, name: str) -> Path:
    """Where backend ``name`` keeps its state between commands: next to the database."""
    db = ctx.config().db_path
    return db.with_name(f"{db.name}.{name}-state")


def _save(save: Callable[[Path], None], path: Path) -> None:
    try:
        save(path)
    except OSError as exc:
        # The command's own work is done; say that the next command will not see it.
        print(f"lnlens: error: cannot save the simulator state to {path}: {exc.strerror or exc}", file=sys.stderr)


def backend_lens(name: str, ctx: CliContext) -> Lens:
    """A Lens on backend ``name``. A simulator drives its own clock, and its database is marked
    as simulated so that later commands read "now" from the data, not the wall clock."""
    backend = open_backend(name, ctx)
    config = ctx.config()
    clock: Clock = getattr(backend, "clock", None) or ctx.clock
    store = ctx.store(create=True)
    if clock is not ctx.clock:
        store.set_meta("clock", "simulated")
    pm = get_plugin_manager(blocked=config.blocked_plugins)
    return Lens(config, store=store, clock=clock, pm=pm, backend=backend)
