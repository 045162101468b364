"""The lnlens hooks: the only place they are declared.

Each hook is public API. Implement one with ``@lnlens_core.hookimpl`` on a function
of the same name taking any subset of the arguments below (pluggy passes only the
ones you name). docs/hooks.md documents every hook; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from .backend import NodeBackend
    from .clock import Clock
    from .domain import Channel, FeeUpdate, NodeInfo, Opportunity, Recommendation
    from .events import LensEvent
    from .fees.strategy import FeeStrategy, StrategyChoice
    from .storage import Store

hookspec = pluggy.HookspecMarker("lnlens")
hookimpl = pluggy.HookimplMarker("lnlens")


@runtime_checkable
class HookLens(Protocol):
    """The ``lens`` every hook receives, as far as a plugin may use it (docs/hooks.md): nothing more.

    :class:`lnlens_core.lens.Lens` is what is passed; the hooks are typed against this contract so
    that declaring them needs nothing of the composition root, which loads the plugins.
    """

    @property
    def clock(self) -> Clock:
        """The time: ``lens.clock.now()``. Never read the wall clock: the simulator runs on a manual clock."""

    @property
    def store(self) -> Store:
        """The database: read it; write only through your own tables."""

    @property
    def backend(self) -> NodeBackend | None:
        """The node; None in offline commands."""

    def plugin_config(self, name: str) -> Mapping[str, Any]:
        """The plugin's ``[plugins.<name>]`` settings table (empty if none)."""


@hookspec
def startup(lens: HookLens) -> None:
    """Called once when lnlens starts, after the store is open and before any event.

    :param lens: the running lnlens; ``lens.plugin_config(name)`` holds your settings.
    :returns: nothing.

    Every implementation is called. An exception stops startup with a
    :class:`~lnlens_core.errors.PluginError` naming the plugin.
    """


@hookspec
def register_fee_strategies(lens: HookLens) -> Sequence[type[FeeStrategy]]:
    """Contribute fee strategy classes, keyed by their ``name`` class attribute.

    :param lens: the running lnlens.
    :returns: a list of classes implementing
        :class:`~lnlens_core.fees.strategy.FeeStrategy`.

    Every implementation is called, the built-in strategies included. Two classes
    with the same name raise :class:`~lnlens_core.errors.PluginError` naming both
    plugins.
    """
    raise AssertionError("hookspec body is never run")


@hookspec(firstresult=True)
def select_fee_strategy(lens: HookLens, channel: Channel, node: NodeInfo) -> StrategyChoice | None:
    """Choose the fee strategy (and its parameters) for one of our channels.

    :param lens: the running lnlens.
    :param channel: the channel as the node reports it now.
    :param node: our own node.
    :returns: a :class:`~lnlens_core.fees.strategy.StrategyChoice`, or None to defer.

    Stops at the first non-None result. The policy-file default is registered with
    ``trylast=True``, so any plugin answering first overrides it.
    """


@hookspec
def check_fee_update(lens: HookLens, update: FeeUpdate, channel: Channel) -> str | None:
    """Veto a planned policy change.

    :param lens: the running lnlens.
    :param update: the fields that would change (None means kept).
    :param channel: the channel with its current policy.
    :returns: a reason to veto, or None to allow.

    Every implementation sees the same update (no chaining); any reason vetoes and
    every reason is recorded in the journal with the plugin's name.
    """


@hookspec
def track_event(lens: HookLens, events: Sequence[LensEvent]) -> None:
    """Observe what lnlens does: forwards recorded, fee changes, opportunities.

    :param lens: the running lnlens.
    :param events: a batch (one monitor tick) of typed records from
        :mod:`lnlens_core.events`; new kinds may appear, so ignore the ones you do
        not know.
    :returns: ignored.

    Implementations run one at a time and in isolation: an exception in one is
    logged with the plugin's name and the others still run.
    """


@hookspec
def check_recommendation(lens: HookLens, recommendation: Recommendation, opportunity: Opportunity) -> str | None:
    """Veto a recommendation before operators see it.

    :param lens: the running lnlens.
    :param recommendation: what lnlens (or another plugin) recommends.
    :param opportunity: the channel's opportunity, with the numbers behind it.
    :returns: a reason to veto, or None to keep it.

    Every implementation sees the same recommendation; any reason drops it, and the
    reason is reported (``lnlens opportunities --json`` lists vetoes with the plugin's name).
    """


@hookspec
def add_recommendations(lens: HookLens, opportunity: Opportunity) -> Sequence[Recommendation] | None:
    """Add recommendations of your own to a channel's opportunity.

    :param lens: the running lnlens.
    :param opportunity: one channel's opportunity, with lnlens's recommendations.
    :returns: extra recommendations (their ``origin`` is set to your plugin's name), or None.

    Every implementation is called; additions pass through ``check_recommendation`` too.
    """
