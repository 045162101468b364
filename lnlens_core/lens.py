"""The composition root: one running lnlens, handed to every hook as ``lens``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import pluggy

from .backend import NodeBackend
from .clock import Clock
from .config import LensConfig
from .domain import Channel, FeeUpdate, NodeInfo
from .errors import PluginError
from .events import LensEvent
from .fees.strategy import FeeStrategy, StrategyChoice
from .opportunities.monitor import HtlcMonitor
from .opportunities.params import AnalyzerParams
from .plugins import call_each, get_plugin_manager
from .storage import Store

__all__ = ["Lens"]

log = logging.getLogger(__name__)


class Lens:
    """Config, store, clock, plugins and (optionally) a backend, wired together.

    :param pm: a plugin manager; built from ``config`` (entry points loaded,
        ``blocked_plugins`` honoured) when omitted.
    """

    def __init__(
        self,
        config: LensConfig,
        *,
        store: Store,
        clock: Clock,
        pm: pluggy.PluginManager | None = None,
        backend: NodeBackend | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.pm = pm if pm is not None else get_plugin_manager(blocked=config.blocked_plugins)
        self.backend = backend
        self.monitor = HtlcMonitor(store, clock, self.emit)

    def plugin_config(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.<name>]`` table of the settings file (empty if none)."""
        return self.config.plugins.get(name, {})

    def startup(self) -> None:
        """Run every ``startup`` hook; a failing one stops lnlens naming the plugin."""
        for plugin, call in call_each(self.pm.hook.startup, lens=self):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - a plugin's failure must name the plugin
                raise PluginError(f"plugin {plugin}: startup failed: {exc!r}") from exc

    def emit(self, events: Sequence[LensEvent]) -> None:
        """Hand a batch to every ``track_event`` implementation, each isolated from the others."""
        if not events:
            return
        for plugin, call in call_each(self.pm.hook.track_event, lens=self, events=events):
            try:
                call()
            except Exception:  # noqa: BLE001 - one observer must not stop the others
                log.exception("plugin %s: track_event failed; other plugins still ran", plugin)

    @cached_property
    def analyzer_params(self) -> AnalyzerParams:
        """Thresholds and weights from the ``[analyzer]`` settings table (defaults when absent)."""
        return AnalyzerParams.from_mapping(self.config.backends.get("analyzer"), name=self.config.name_of)

    @cached_property
    def strategies(self) -> Mapping[str, type[FeeStrategy]]:
        """Every registered fee strategy by name.

        :raises PluginError: two plugins register the same name, or a plugin returns
            something that is not a strategy class.
        """
        found: dict[str, tuple[str, type[FeeStrategy]]] = {}
        for plugin, call in call_each(self.pm.hook.register_fee_strategies, lens=self):
            for cls in call() or ():
                name = getattr(cls, "name", None)
                if (
                    not isinstance(cls, type)
                    or not isinstance(name, str)
                    or not callable(getattr(cls, "propose", None))
                ):
                    raise PluginError(
                        f"plugin {plugin}: register_fee_strategies returned {cls!r}, not a strategy class"
                    )
                if name in found:
                    raise PluginError(f"fee strategy '{name}' is registered twice: by {found[name][0]} and by {plugin}")
                found[name] = (plugin, cls)
        return {name: cls for name, (_, cls) in found.items()}

    def select_strategy(self, channel: Channel, node: NodeInfo) -> StrategyChoice | None:
        """The first plugin's answer to ``select_fee_strategy`` (None: keep the channel)."""
        choice = self.pm.hook.select_fee_strategy(lens=self, channel=channel, node=node)
        if choice is not None and not isinstance(choice, StrategyChoice):
            raise PluginError(f"select_fee_strategy returned {choice!r}, not a StrategyChoice")
        return choice

    def vetoes(self, update: FeeUpdate, channel: Channel) -> list[tuple[str, str]]:
        """``(plugin, reason)`` for every ``check_fee_update`` implementation that vetoes.

        A plugin that raises vetoes too: a safety check that cannot run must not let
        a change through.
        """
        reasons = []
        for plugin, call in call_each(self.pm.hook.check_fee_update, lens=self, update=update, channel=channel):
            try:
                reason = call()
            except Exception as exc:  # noqa: BLE001 - a failing safety check vetoes, naming the plugin
                reason = f"check failed: {exc!r}"
            if reason:
                reasons.append((plugin, str(reason)))
        return reasons
