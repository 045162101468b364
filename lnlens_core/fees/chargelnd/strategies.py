"""charge-lnd's strategies (0.3.1), as lnlens fee strategies.

``ignore`` and ``static`` live in :mod:`lnlens_core.fees.builtin`; the rest are
here and registered from there through ``register_fee_strategies``. Each takes
explicit keyword parameters and only reads the channel and the
:class:`~lnlens_core.fees.strategy.FeeContext`. The common properties (HTLC
limits, ``time_lock_delta``, ``inbound_level_ppm``, the deltas) are not strategy
parameters: the evaluator applies them for every strategy but ``ignore`` and
``disable``. Class attributes tell the evaluator what charge-lnd does per strategy:
``default_min_fee_ppm_delta`` (the delta when the file sets none),
``uses_inbound_level_ppm`` (whether ``inbound_level_ppm`` applies) and
``applies_common_properties`` (False: HTLC limits and CLTV are kept).
"""

from __future__ import annotations

import math
from typing import ClassVar

from ...domain import Channel, FeeUpdate
from ...errors import StrategyError
from ..strategy import FeeContext, FeeProposal, FeeStrategy, FixedFees
from .inputs import chargelnd_balances_msat

__all__ = ["IgnoreFees", "MatchPeer", "Proportional", "Cost", "OnchainFee", "Disable", "UseConfig", "STRATEGIES"]


def _static_part(
    base_fee_msat: int | None, inbound_base_fee_msat: int | None, inbound_fee_ppm: int | None, *, fee_ppm: int
) -> FeeUpdate:
    """The computed ppm with base and inbound fees as ``static`` sets them."""
    return FeeUpdate(
        base_fee_msat=base_fee_msat,
        fee_ppm=fee_ppm,
        inbound_base_fee_msat=inbound_base_fee_msat,
        inbound_fee_ppm=inbound_fee_ppm,
    )


class IgnoreFees:
    """charge-lnd ``ignore_fees``: keep the fees, apply HTLC limits, CLTV and status."""

    name: ClassVar[str] = "ignore_fees"

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        return FeeProposal(FeeUpdate(), "fees kept; HTLC limits, CLTV and status from the policy")


class MatchPeer(FixedFees):
    """charge-lnd ``match_peer``: charge what the peer charges on this channel; each field overridable."""

    name: ClassVar[str] = "match_peer"

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        peer = ctx.peer_policy
        if peer is None:
            raise StrategyError(f"match_peer: the peer's policy on {channel.channel_id} is unknown")
        return FeeProposal(self.fee_update(peer), f"peer charges {peer.base_fee_msat} msat + {peer.fee_ppm} ppm")


class Proportional:
    """charge-lnd ``proportional``: ``ppm = trunc(min + (1 − ratio) × (max − min))``, at least 0.

    ``ratio`` is the local share of the balance (pending HTLCs and the opener's
    commit fee included); with ``sum_peer_chans`` it is taken over every active
    channel with the peer (all of them when none is active).
    """

    name: ClassVar[str] = "proportional"
    default_min_fee_ppm_delta: ClassVar[int] = 10
    uses_inbound_level_ppm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        min_fee_ppm: int,
        max_fee_ppm: int,
        sum_peer_chans: bool = False,
        base_fee_msat: int | None = None,
        inbound_base_fee_msat: int | None = None,
        inbound_fee_ppm: int | None = None,
    ) -> None:
        self.min_fee_ppm = min_fee_ppm
        self.max_fee_ppm = max_fee_ppm
        self.sum_peer_chans = sum_peer_chans
        self.base_fee_msat = base_fee_msat
        self.inbound_base_fee_msat = inbound_base_fee_msat
        self.inbound_fee_ppm = inbound_fee_ppm

    def _ratio(self, channel: Channel, ctx: FeeContext) -> float:
        chans = [channel]
        if self.sum_peer_chans:
            shared = {c.channel_id: c for c in ctx.peer_channels} | {channel.channel_id: channel}
            active = [c for c in shared.values() if c.active]
            chans = active or list(shared.values())
        balances = [chargelnd_balances_msat(c) for c in chans]
        local = sum(b[0] for b in balances)
        total = local + sum(b[1] for b in balances)
        if total == 0:
            raise StrategyError(f"proportional: {channel.channel_id} has no balance on either side")
        return local / total

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        ratio = self._ratio(channel, ctx)
        ppm = max(0, int(self.min_fee_ppm + (1 - ratio) * (self.max_fee_ppm - self.min_fee_ppm)))
        update = _static_part(self.base_fee_msat, self.inbound_base_fee_msat, self.inbound_fee_ppm, fee_ppm=ppm)
        scope = "peer's channels" if self.sum_peer_chans else "channel"
        return FeeProposal(update, f"local ratio {ratio:.4f} of the {scope} -> {ppm} ppm")


class Cost:
    """charge-lnd ``cost``: ``ppm = trunc(cost_factor × 10⁶ × funding fee / capacity)``; 1 when we did not pay it."""

    name: ClassVar[str] = "cost"
    uses_inbound_level_ppm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        cost_factor: float = 1.0,
        base_fee_msat: int | None = None,
        inbound_base_fee_msat: int | None = None,
        inbound_fee_ppm: int | None = None,
    ) -> None:
        self.cost_factor = cost_factor
        self.base_fee_msat = base_fee_msat
        self.inbound_base_fee_msat = inbound_base_fee_msat
        self.inbound_fee_ppm = inbound_fee_ppm

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        if ctx.funding_fee_error is not None:
            # Unknown is not "the peer paid": charge-lnd's 1 ppm here would cut a channel's fee to nothing.
            raise StrategyError(f"cost: {ctx.funding_fee_error}")
        if ctx.funding_fee_msat is None:
            ppm, why = 1, "funding transaction not paid by our wallet -> 1 ppm"
        else:
            ppm = int(self.cost_factor * 1_000_000 * ctx.funding_fee_msat / channel.capacity_msat)
            why = f"funding fee {ctx.funding_fee_msat} msat x {self.cost_factor} over capacity -> {ppm} ppm"
        update = _static_part(self.base_fee_msat, self.inbound_base_fee_msat, self.inbound_fee_ppm, fee_ppm=ppm)
        return FeeProposal(update, why)


class OnchainFee:
    """charge-lnd ``onchain_fee``: ``ppm = trunc((0.01 / onchain_fee_btc) × 223 × sat_per_vB)``."""

    name: ClassVar[str] = "onchain_fee"
    default_min_fee_ppm_delta: ClassVar[int] = 10
    uses_inbound_level_ppm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        onchain_fee_btc: float = 0.1,
        onchain_fee_numblocks: int = 6,
        base_fee_msat: int | None = None,
        inbound_base_fee_msat: int | None = None,
        inbound_fee_ppm: int | None = None,
    ) -> None:
        self.onchain_fee_btc = onchain_fee_btc
        self.onchain_fee_numblocks = onchain_fee_numblocks
        self.base_fee_msat = base_fee_msat
        self.inbound_base_fee_msat = inbound_base_fee_msat
        self.inbound_fee_ppm = inbound_fee_ppm

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        target = max(2, self.onchain_fee_numblocks)
        rate = ctx.onchain_fee_rates.get(target)
        if rate is None:
            raise StrategyError(f"onchain_fee: no fee estimate for a {target}-block target")
        if rate < 1:
            # charge-lnd 0.3.1 returns a malformed result here and ends up disabling the channel (quirk 3)
            return FeeProposal(FeeUpdate(), f"on-chain fee estimate {rate} sat/vB is below 1: fees kept")
        if self.onchain_fee_btc == 0 or not math.isfinite(rate):
            raise StrategyError(f"onchain_fee: cannot compute with onchain_fee_btc={self.onchain_fee_btc}, {rate=}")
        ppm = int((0.01 / self.onchain_fee_btc) * (223 * rate))
        update = _static_part(self.base_fee_msat, self.inbound_base_fee_msat, self.inbound_fee_ppm, fee_ppm=ppm)
        return FeeProposal(update, f"on-chain fee {rate} sat/vB at {target} blocks -> {ppm} ppm")


class Disable:
    """charge-lnd ``disable``: disable our direction of the channel; fees, HTLC limits and CLTV kept."""

    name: ClassVar[str] = "disable"
    applies_common_properties: ClassVar[bool] = False

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        return FeeProposal(FeeUpdate(disabled=True), "disabled by the policy")


class UseConfig:
    """charge-lnd ``use_config``: decide with another policy file.

    The policy evaluator runs the other file itself (it was loaded and checked with
    this one); this class declares the parameter so files can be checked, and
    answers only when asked outside a policy file, where there is nothing to read.
    """

    name: ClassVar[str] = "use_config"

    def __init__(self, *, config_file: str) -> None:
        self.config_file = config_file

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        raise StrategyError(f"use_config ({self.config_file}) is only meaningful inside a policy file")


STRATEGIES: tuple[type[FeeStrategy], ...] = (IgnoreFees, MatchPeer, Proportional, Cost, OnchainFee, Disable, UseConfig)
