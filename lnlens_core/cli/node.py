"""Opening a node backend for a CLI command: found through the ``lnlens.backends`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from ..backend import NodeBackend
from ..clock import Clock
from ..errors import ConfigError
from ..lens import Lens
from ..plugins import get_plugin_manager
from .context import CliContext

__all__ = ["open_backend", "backend_lens"]


def open_backend(name: str, ctx: CliContext) -> NodeBackend:
    """Build backend ``name`` from the settings table of the same name (``[sim]``, ``[lnd]``).

    :raises ConfigError: no such backend is installed, or its settings are wrong.
    """
    found = {ep.name: ep for ep in entry_points(group="lnlens.backends")}
    if name not in found:
        raise ConfigError(f"--backend {name}: no such backend (installed: {', '.join(sorted(found)) or 'none'})")
    factory = found[name].load()
    return factory(ctx.config().backends.get(name, {}))


def backend_lens(name: str, ctx: CliContext) -> Lens:
    """A Lens on backend ``name``. A simulator drives its own clock, and its database is marked
    as simulated so that later commands read "now" from the data, not the wall clock."""
    backend = open_backend(name, ctx)
    config = ctx.config()
    clock: Clock = getattr(backend, "clock", None) or ctx.clock
    if clock is not ctx.clock:
        ctx.store().set_meta("clock", "simulated")
    pm = get_plugin_manager(blocked=config.blocked_plugins)
    return Lens(config, store=ctx.store(), clock=clock, pm=pm, backend=backend)
