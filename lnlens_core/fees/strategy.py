"""The fee strategy contract, shared by built-in and third-party strategies.

A strategy is a class with a ``name`` and a ``propose`` method. Its constructor
takes explicit keyword parameters (the keys of a policy section), stores them and
does nothing else — scikit-learn's rule — so a config can be checked completely
before anything runs: an unknown key is a :class:`ConfigError` listing the
accepted ones (:func:`build_strategy`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ..backend import Capability
from ..domain import Channel, ChannelPolicy, FeeUpdate, NodeInfo
from ..errors import ConfigError

if TYPE_CHECKING:
    from .signals import ChannelSignals

__all__ = [
    "FeeContext",
    "FeeProposal",
    "FeeStrategy",
    "FixedFees",
    "StrategyChoice",
    "build_strategy",
    "strategy_parameters",
]


@dataclass(frozen=True, slots=True)
class FeeContext:
    """What a strategy may read besides the channel. Strategies do no I/O."""

    now: float
    node: NodeInfo
    capabilities: frozenset[Capability]
    peer_policy: ChannelPolicy | None = None
    peer_channels: tuple[Channel, ...] = ()
    """Every one of our channels with this channel's peer, this one included."""
    funding_fee_msat: int | None = None
    """This channel's share of its funding transaction's fee; None when not paid by our wallet."""
    funding_fee_error: str | None = None
    """Why the funding fee is unknown (the backend failed to tell); None when ``funding_fee_msat`` is the answer."""
    onchain_fee_rates: Mapping[int, float] = field(default_factory=dict)
    """The wallet's fee estimates in sat/vB, by confirmation target in blocks."""
    signals: ChannelSignals | None = None
    """Recent flows, the analyzer's verdict and a model's prediction (:mod:`.signals`); None when not computed."""


@dataclass(frozen=True, slots=True)
class FeeProposal:
    """A strategy's answer: the desired fields (None keeps) and a reason shown to operators."""

    update: FeeUpdate
    reason: str


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """Which strategy runs on a channel, with which parameters, chosen by which policy."""

    policy: str
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class FeeStrategy(Protocol):
    """A fee strategy. ``name`` is the value of ``strategy = ...`` in a policy file."""

    name: ClassVar[str]

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        """The desired policy for ``channel``, or None for no opinion (keep everything).

        :raises StrategyError: the strategy cannot decide for this channel; the
            channel is then kept unchanged and the reason recorded.
        """
        ...


class FixedFees:
    """The base of a strategy given its four fees as parameters (charge-lnd's ``static`` and ``match_peer``).

    Each is None when the policy section leaves it out; :meth:`fee_update` says what that means.
    """

    def __init__(
        self,
        *,
        base_fee_msat: int | None = None,
        fee_ppm: int | None = None,
        inbound_base_fee_msat: int | None = None,
        inbound_fee_ppm: int | None = None,
    ) -> None:
        self.base_fee_msat = base_fee_msat
        self.fee_ppm = fee_ppm
        self.inbound_base_fee_msat = inbound_base_fee_msat
        self.inbound_fee_ppm = inbound_fee_ppm

    def fee_update(self, default: ChannelPolicy | None = None) -> FeeUpdate:
        """The fees given; one left out is ``default``'s, or kept (None) without a default."""
        given = {name: getattr(self, name) for name in _FIXED_FEES}
        if default is not None:
            given = {name: getattr(default, name) if value is None else value for name, value in given.items()}
        return FeeUpdate(**given)


_FIXED_FEES = ("base_fee_msat", "fee_ppm", "inbound_base_fee_msat", "inbound_fee_ppm")


def strategy_parameters(cls: type[FeeStrategy]) -> list[str]:
    """The keyword parameters a strategy class accepts, in declaration order."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def build_strategy(cls: type[FeeStrategy], params: Mapping[str, Any], *, where: str) -> FeeStrategy:
    """Instantiate ``cls(**params)``, turning a wrong parameter into a ConfigError.

    :param where: what to name in the error (file, section), e.g. ``policy.ini [hubs]``.
    """
    accepted = strategy_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{where}: strategy '{cls.name}' does not take {', '.join(unknown)} "
            f"(it accepts: {', '.join(accepted) or 'no parameters'})"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: strategy '{cls.name}': {exc}") from exc
