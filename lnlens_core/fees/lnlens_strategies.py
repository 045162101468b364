"""lnlens's own fee strategies, registered through ``register_fee_strategies`` like any plugin's.

Usable from the same INI files as charge-lnd's (``strategy = balance_based`` and the
parameters below as keys). Each strategy proposes; the engine's rails
(:mod:`lnlens_core.fees.rails`) clamp whatever any strategy proposes afterwards.

- ``balance_based``: CLBOSS/feeadjuster-style bins over the local balance ratio.
- ``flow_based``: steps toward more revenue from net flow and the analyzer's verdicts.
- ``inbound_fee``: inbound discounts on channels that drain us, surcharges on ones
  that fill up (positive inbound fees only where the backend accepts them).
- ``model_driven``: follows the liquidity model's fee opinion (cheaper above the predicted optimal
  ratio, dearer below it); no opinion or "no model" keeps the channel.
- ``revenue_max``: bounded search on measured revenue per fee level, static fallback without data.
- ``idle_discount``: cheaper where outbound liquidity sits idle (the current fee earned nothing for
  long enough); never raises a fee, never touches a channel that earns.
- ``zero_revenue``: lnlens's default. Changes only channels whose current fee earned nothing for
  long enough: idle liquidity gets cheaper (as ``idle_discount``, judged every 6 h), a channel
  forwarding for free gets a price, a drained channel stops undercutting its siblings.
"""

from __future__ import annotations

import math
from typing import ClassVar

from ..backend import Capability
from ..domain import Channel, FeeUpdate, RecommendationKind
from ..errors import StrategyError
from .strategy import FeeContext, FeeProposal

__all__ = ["BalanceBased", "FlowBased", "IdleDiscount", "InboundFee", "ModelDriven", "RevenueMax", "ZeroRevenue",
           "LNLENS_STRATEGIES", "balance_curve"]  # fmt: skip


def _ratio(channel: Channel) -> float:
    ratio = channel.balance_ratio
    if ratio is None:
        raise StrategyError(f"channel {channel.channel_id} has no balance on either side")
    return ratio


def balance_curve(fee_ppm: int, min_fee_ppm: int, max_fee_ppm: int, bins: int) -> list[int]:
    """The fee of each bin, from the emptiest (bin 0: we hold little) to the fullest.

    Geometric from ``max_fee_ppm`` through ``fee_ppm`` (the middle) to ``min_fee_ppm``:
    non-increasing, bounded, and exactly ``fee_ppm`` in the middle bin when ``bins`` is odd.
    """
    values = []
    for b in range(bins):
        x = b / (bins - 1) if bins > 1 else 0.5  # the emptiest bin pays the most, the fullest the least
        if x <= 0.5:
            lo, hi, t = fee_ppm, max_fee_ppm, (0.5 - x) / 0.5
        else:
            lo, hi, t = fee_ppm, min_fee_ppm, (x - 0.5) / 0.5
        value = lo * (hi / lo) ** t if lo > 0 and hi > 0 else lo + (hi - lo) * t
        values.append(round(value))
    for i in range(1, bins):  # rounding must not break monotonicity
        values[i] = min(values[i], values[i - 1])
    return values


class BalanceBased:
    """Fee rises as our local balance falls, in ``bins`` steps, with hysteresis at bin edges.

    The configured ``fee_ppm`` is the fee at a balanced channel; ``min_fee_ppm`` and
    ``max_fee_ppm`` (default ``fee_ppm / spread`` and ``fee_ppm * spread``) are the fees
    when full and when empty. ``base_fee_msat`` and the inbound values are set as given.
    Hysteresis: a channel whose current fee is that of a neighbouring bin keeps it while
    its ratio is within ``hysteresis`` of the boundary between the two bins.
    """

    name: ClassVar[str] = "balance_based"
    reads_signals: ClassVar[bool] = False

    def __init__(
        self,
        *,
        fee_ppm: int,
        min_fee_ppm: int | None = None,
        max_fee_ppm: int | None = None,
        spread: float = 4.0,
        bins: int = 5,
        hysteresis: float = 0.05,
        base_fee_msat: int | None = None,
        inbound_fee_ppm: int | None = None,
        inbound_base_fee_msat: int | None = None,
    ) -> None:
        if fee_ppm < 0 or bins < 1 or not 0 <= hysteresis < 0.5 or spread < 1:
            raise ValueError("need fee_ppm >= 0, bins >= 1, 0 <= hysteresis < 0.5, spread >= 1")
        self.fee_ppm = fee_ppm
        self.min_fee_ppm = int(fee_ppm / spread) if min_fee_ppm is None else min_fee_ppm
        self.max_fee_ppm = int(math.ceil(fee_ppm * spread)) if max_fee_ppm is None else max_fee_ppm
        if not self.min_fee_ppm <= fee_ppm <= self.max_fee_ppm:
            raise ValueError(
                f"need min_fee_ppm <= fee_ppm <= max_fee_ppm ({self.min_fee_ppm}, {fee_ppm}, {self.max_fee_ppm})"
            )
        self.spread, self.bins, self.hysteresis = spread, bins, hysteresis
        self.base_fee_msat = base_fee_msat
        self.inbound_fee_ppm = inbound_fee_ppm
        self.inbound_base_fee_msat = inbound_base_fee_msat
        self.curve = balance_curve(fee_ppm, self.min_fee_ppm, self.max_fee_ppm, bins)

    def target(self, ratio: float, current_ppm: int | None) -> tuple[int, int]:
        """``(bin, fee_ppm)`` for a local ratio, honouring hysteresis against ``current_ppm``."""
        b = min(self.bins - 1, int(ratio * self.bins))
        if current_ppm is not None and current_ppm != self.curve[b]:
            for other in (b - 1, b + 1):
                if 0 <= other < self.bins and self.curve[other] == current_ppm:
                    edge = max(b, other) / self.bins
                    if abs(ratio - edge) < self.hysteresis:
                        return other, current_ppm
        return b, self.curve[b]

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        ratio = _ratio(channel)
        b, ppm = self.target(ratio, channel.local_policy.fee_ppm)
        update = FeeUpdate(
            base_fee_msat=self.base_fee_msat,
            fee_ppm=ppm,
            inbound_fee_ppm=self.inbound_fee_ppm,
            inbound_base_fee_msat=self.inbound_base_fee_msat,
        )
        return FeeProposal(update, f"local ratio {ratio:.2f}: bin {b + 1}/{self.bins} → {ppm} ppm")


class FlowBased:
    """Steps the outbound fee from what the last ``window`` of forwards says.

    Up by one step when the analyzer says ``raise_fees``, the channel is liquidity-starved
    (``min_liquidity_failures``), or it drains us (net outflow above ``drain_share`` of its
    volume) while holding less than ``1 - idle_ratio`` of the balance; down by one step when
    forwards fail on our fee (``lower_fees``), a channel holding at least ``idle_ratio``
    earned nothing over ``min_idle_s`` of history (no history is not idleness), or it fills
    up (net inflow) while holding more than ``idle_ratio``. Flow-direction rules need
    ``min_forwards`` settled forwards.
    A step is ``max(step_ppm, step_share × current)``, never past the analyzer's
    proposed rate, within ``[min_fee_ppm, max_fee_ppm]``. Flows within the dead band
    (``|net| < drain_share × volume``) change nothing: that is the hysteresis.
    """

    name: ClassVar[str] = "flow_based"

    def __init__(
        self,
        *,
        min_fee_ppm: int = 1,
        max_fee_ppm: int = 3000,
        step_ppm: int = 10,
        step_share: float = 0.15,
        drain_share: float = 0.5,
        min_liquidity_failures: int = 3,
        idle_ratio: float = 0.6,
        min_idle_s: int = 86_400,
        min_forwards: int = 5,
        base_fee_msat: int | None = None,
    ) -> None:
        if not 0 <= min_fee_ppm <= max_fee_ppm or step_ppm < 1 or not 0 <= step_share <= 1 or not 0 < drain_share <= 1:
            raise ValueError(
                "need 0 <= min_fee_ppm <= max_fee_ppm, step_ppm >= 1, 0 <= step_share <= 1, 0 < drain_share <= 1"
            )
        self.min_fee_ppm, self.max_fee_ppm = min_fee_ppm, max_fee_ppm
        self.step_ppm, self.step_share, self.drain_share = step_ppm, step_share, drain_share
        self.min_liquidity_failures, self.idle_ratio, self.min_idle_s = min_liquidity_failures, idle_ratio, min_idle_s
        self.min_forwards = min_forwards
        self.base_fee_msat = base_fee_msat

    def direction(self, channel: Channel, ctx: FeeContext) -> tuple[int, str]:
        sig = ctx.signals
        if sig is None:
            raise StrategyError("flow_based needs flow signals and none were computed")
        out = sig.out_flow
        if sig.recommendation is RecommendationKind.RAISE_FEES:
            return 1, "analyzer: under-priced"
        if sig.recommendation is RecommendationKind.LOWER_FEES or out.failed_fee > out.settled:
            return -1, f"fee failures ({out.failed_fee}) outnumber settled forwards"
        if out.failed_liquidity >= self.min_liquidity_failures:
            return 1, f"liquidity-starved ({out.failed_liquidity} failures)"
        volume, ratio = sig.volume_msat, channel.balance_ratio or 0.0
        enough = out.settled + sig.in_flow.settled >= self.min_forwards
        if enough and sig.net_outflow_msat > self.drain_share * volume and ratio < 1 - self.idle_ratio:
            return (
                1,
                f"drains us: net outflow {sig.net_outflow_msat // 1000:,} sat of {volume // 1000:,}, {ratio:.0%} left",
            )
        if out.settled == 0 and ratio >= self.idle_ratio and sig.history_s >= self.min_idle_s:
            return -1, f"idle with {ratio:.0%} local"
        if enough and -sig.net_outflow_msat > self.drain_share * volume and ratio > self.idle_ratio:
            return -1, f"fills up ({ratio:.0%} local): cheaper to attract outbound use"
        return 0, "flows within the dead band"

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        current = channel.local_policy.fee_ppm
        sign, why = self.direction(channel, ctx)
        if sign == 0:
            return FeeProposal(FeeUpdate(base_fee_msat=self.base_fee_msat), why)
        step = max(self.step_ppm, round(self.step_share * current))
        new = current + sign * step
        proposed = ctx.signals.proposed_fee_ppm if ctx.signals else None
        if proposed is not None and (proposed - current) * sign > 0:
            new = min(new, proposed) if sign > 0 else max(new, proposed)
        new = min(self.max_fee_ppm, max(self.min_fee_ppm, new))
        return FeeProposal(FeeUpdate(base_fee_msat=self.base_fee_msat, fee_ppm=new), f"{why}: {current} → {new} ppm")


class InboundFee:
    """Inbound fees from the direction of flow (LND >= 0.18 only).

    A channel whose peer drains us (net outflow above ``drain_share`` of its volume,
    or local ratio below ``low_ratio``) gets ``discount_ppm`` off inbound (a negative
    inbound fee), which makes routes *into* it cheaper and refills it. A channel
    filling up (ratio above ``high_ratio``) gets ``surcharge_ppm`` when positive inbound
    fees are accepted (``Capability.POSITIVE_INBOUND_FEES``), else no inbound fee.
    Backends without inbound fees (CLN) fail the strategy: the plan says so and keeps the channel.
    """

    name: ClassVar[str] = "inbound_fee"

    def __init__(
        self,
        *,
        discount_ppm: int = 50,
        surcharge_ppm: int = 0,
        drain_share: float = 0.5,
        low_ratio: float = 0.2,
        high_ratio: float = 0.8,
        fee_ppm: int | None = None,
        base_fee_msat: int | None = None,
    ) -> None:
        if discount_ppm < 0 or surcharge_ppm < 0 or not 0 <= low_ratio <= high_ratio <= 1:
            raise ValueError("need discount_ppm >= 0, surcharge_ppm >= 0, 0 <= low_ratio <= high_ratio <= 1")
        self.discount_ppm, self.surcharge_ppm, self.drain_share = discount_ppm, surcharge_ppm, drain_share
        self.low_ratio, self.high_ratio = low_ratio, high_ratio
        self.fee_ppm, self.base_fee_msat = fee_ppm, base_fee_msat

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        if Capability.INBOUND_FEES not in ctx.capabilities:
            raise StrategyError("inbound fees are not supported by this backend (CLN has none; LND >= 0.18 has)")
        ratio = _ratio(channel)
        sig = ctx.signals
        draining = sig is not None and sig.volume_msat > 0 and sig.net_outflow_msat > self.drain_share * sig.volume_msat
        if draining or ratio < self.low_ratio:
            inbound, why = -self.discount_ppm, f"drained (ratio {ratio:.2f}): inbound discount {self.discount_ppm} ppm"
        elif ratio > self.high_ratio and self.surcharge_ppm:
            if Capability.POSITIVE_INBOUND_FEES in ctx.capabilities:
                inbound, why = self.surcharge_ppm, f"filling up (ratio {ratio:.2f}): inbound surcharge"
            else:
                inbound, why = 0, "filling up, but the node does not accept positive inbound fees"
        else:
            inbound, why = 0, f"ratio {ratio:.2f}: no inbound fee"
        update = FeeUpdate(base_fee_msat=self.base_fee_msat, fee_ppm=self.fee_ppm, inbound_fee_ppm=inbound,
                           inbound_base_fee_msat=0)  # fmt: skip
        return FeeProposal(update, why)


class ModelDriven:
    """Follows a served model's fee suggestion, by at most ``max_step_share`` of the current fee per run.

    Reads :attr:`ChannelSignals.model <lnlens_core.fees.signals.ChannelSignals.model>`, which the
    engine fills from the serving liquidity model (:func:`lnlens_core.model.suggestions.fee_suggestions`)
    because this class declares ``reads_model``. Without a prediction (no model served, or it has
    no opinion on this channel), or below ``min_confidence``, it keeps the channel and says why.
    """

    name: ClassVar[str] = "model_driven"
    reads_model: ClassVar[bool] = True

    def __init__(self, *, min_confidence: float = 0.5, max_step_share: float = 0.25, min_step_ppm: int = 5) -> None:
        if not 0 <= min_confidence <= 1 or not 0 < max_step_share <= 1 or min_step_ppm < 0:
            raise ValueError("need 0 <= min_confidence <= 1, 0 < max_step_share <= 1, min_step_ppm >= 0")
        self.min_confidence, self.max_step_share, self.min_step_ppm = min_confidence, max_step_share, min_step_ppm

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        prediction = ctx.signals.model if ctx.signals is not None else None
        if prediction is None or prediction.fee_ppm is None:
            return FeeProposal(FeeUpdate(), "no model opinion for this channel (none serving, or its balance is near "
                                            "the predicted optimum): fees kept")
        if prediction.confidence < self.min_confidence:
            return FeeProposal(FeeUpdate(), f"{prediction.model}: confidence {prediction.confidence:.2f} too low, kept")
        current = channel.local_policy.fee_ppm
        limit = max(self.min_step_ppm, round(current * self.max_step_share))
        new = max(0, min(current + limit, max(current - limit, prediction.fee_ppm)))
        return FeeProposal(
            FeeUpdate(fee_ppm=new), f"{prediction.model} suggests {prediction.fee_ppm} ppm: {current} → {new}"
        )


class RevenueMax:
    """Bounded hill-climbing on measured revenue per day, from the channel's persisted fee history.

    Reads :attr:`ChannelSignals.fee_history` (the last 30 days: each fee level's time in
    force, forwards and revenue). A level counts once it was in force ``min_level_s`` and
    saw ``min_forwards`` forwards, or ``2 × min_level_s`` (a level that earns nothing for
    long enough is known to be poor). Then, within ``[min_fee_ppm, max_fee_ppm]``:

    - no history at all: fall back to the static ``fee_ppm`` (when given);
    - the current level not yet known: keep it and collect (the minimum sample);
    - a known level earning more per day than the current one: one step toward it;
    - otherwise explore the untried neighbour above, then the one below (exploration);
    - both neighbours known and worse: keep (a local optimum) until they age out of the window.

    A step is ``max(step_ppm, step_share × current)``.
    """

    name: ClassVar[str] = "revenue_max"
    reads_fee_history: ClassVar[bool] = True

    def __init__(
        self,
        *,
        fee_ppm: int | None = None,
        min_fee_ppm: int = 1,
        max_fee_ppm: int = 3000,
        step_ppm: int = 10,
        step_share: float = 0.2,
        min_forwards: int = 10,
        min_level_s: int = 86_400,
    ) -> None:
        if not 0 <= min_fee_ppm <= max_fee_ppm or step_ppm < 1 or not 0 <= step_share <= 1 or min_level_s < 0:
            raise ValueError("need 0 <= min_fee_ppm <= max_fee_ppm, step_ppm >= 1, 0 <= step_share <= 1")
        self.fee_ppm, self.min_fee_ppm, self.max_fee_ppm = fee_ppm, min_fee_ppm, max_fee_ppm
        self.step_ppm, self.step_share = step_ppm, step_share
        self.min_forwards, self.min_level_s = min_forwards, min_level_s

    def _known(self, epoch) -> bool:
        long_enough = epoch.seconds >= self.min_level_s
        return (long_enough and epoch.forwards >= self.min_forwards) or epoch.seconds >= 2 * self.min_level_s

    def _clamp(self, fee: int) -> int:
        return min(self.max_fee_ppm, max(self.min_fee_ppm, fee))

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        current = channel.local_policy.fee_ppm
        history = ctx.signals.fee_history if ctx.signals is not None else ()
        if not history:
            if self.fee_ppm is None:
                return FeeProposal(FeeUpdate(), "no fee history yet and no fallback fee_ppm: kept")
            return FeeProposal(FeeUpdate(fee_ppm=self.fee_ppm), "no fee history yet: static fallback fee_ppm")
        known = {e.fee_ppm: e for e in history if self._known(e)}
        here = known.get(current)
        if here is None:
            return FeeProposal(FeeUpdate(), f"collecting a sample at {current} ppm before judging it")
        rate = here.revenue_per_day_msat
        best = max(known.values(), key=lambda e: (e.revenue_per_day_msat, -abs(e.fee_ppm - current)))
        step = max(self.step_ppm, round(self.step_share * current))
        if best.fee_ppm != current and best.revenue_per_day_msat > rate:
            toward = current + step if best.fee_ppm > current else current - step
            new = min(toward, best.fee_ppm) if best.fee_ppm > current else max(toward, best.fee_ppm)
            why = f"{best.fee_ppm} ppm earned {best.revenue_per_day_msat:.0f} msat/day vs {rate:.0f} here"
            return FeeProposal(FeeUpdate(fee_ppm=self._clamp(new)), why)
        for candidate in (self._clamp(current + step), self._clamp(current - step)):
            if candidate != current and not any(abs(f - candidate) < step / 2 for f in known):
                return FeeProposal(
                    FeeUpdate(fee_ppm=candidate), f"exploring {candidate} ppm ({rate:.0f} msat/day here)"
                )
        return FeeProposal(FeeUpdate(), f"{current} ppm is the best level measured ({rate:.0f} msat/day)")


class IdleDiscount:
    """Sells idle outbound liquidity: a channel whose current fee earned nothing gets cheaper, step by step.

    Reads the channel's fee history (:attr:`ChannelSignals.fee_history`, as ``revenue_max``
    does). When the channel's current fee level has been in force for at least ``idle_s``
    (summed over the last 30 days) without one settled forward out over the channel, and the
    channel holds at least ``min_ratio`` of its capacity on our side, its fee is cut to
    ``cut`` × the current one (rounded down, not below ``min_fee_ppm``). Everything else keeps
    its fee: a channel that forwarded at its current level, one holding less than
    ``min_ratio`` (its liquidity is not idle), one whose level is younger than ``idle_s``. It
    never raises a fee, so it never prices away a channel's paying traffic.

    Why: in the simulator senders choose routes by fee among routes of similar length
    (docs/FEES.md "What earns in the simulator"): doubling every fee cut the forwards through
    a node by 32-88 % per (node, seed), and a channel that earns nothing loses nothing by a cut. The
    engine's rails bound each step (by default at most ``max(50 ppm, 25 %)`` per change).
    """

    name: ClassVar[str] = "idle_discount"
    reads_fee_history: ClassVar[bool] = True

    def __init__(
        self,
        *,
        cut: float = 0.5,
        min_ratio: float = 0.3,
        idle_s: int = 43_200,
        min_fee_ppm: int = 1,
        base_fee_msat: int | None = None,
    ) -> None:
        if not 0 < cut < 1 or not 0 <= min_ratio <= 1 or idle_s <= 0 or min_fee_ppm < 0:
            raise ValueError("need 0 < cut < 1, 0 <= min_ratio <= 1, idle_s > 0, min_fee_ppm >= 0")
        self.cut, self.min_ratio, self.idle_s, self.min_fee_ppm = cut, min_ratio, idle_s, min_fee_ppm
        self.base_fee_msat = base_fee_msat

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        current = channel.local_policy.fee_ppm
        ratio = _ratio(channel)
        keep = FeeUpdate(base_fee_msat=self.base_fee_msat)
        history = ctx.signals.fee_history if ctx.signals is not None else ()
        here = next((e for e in history if e.fee_ppm == current), None)
        if here is None or here.seconds < self.idle_s:
            held = 0 if here is None else here.seconds
            return FeeProposal(keep, f"{current} ppm in force {held / 3600:.0f} h of the {self.idle_s / 3600:g} h "
                                     "needed to judge it: kept")  # fmt: skip
        if here.forwards:
            return FeeProposal(keep, f"{current} ppm earns ({here.forwards} forwards in {here.seconds / 3600:.0f} h): "
                                     "kept")  # fmt: skip
        if ratio < self.min_ratio:
            return FeeProposal(keep, f"no forwards at {current} ppm, but only {ratio:.0%} local: kept")
        new = max(self.min_fee_ppm, int(current * self.cut))
        if new >= current:
            return FeeProposal(keep, f"no forwards at {current} ppm, already at the floor {self.min_fee_ppm} ppm")
        why = f"idle: no forwards in {here.seconds / 3600:.0f} h at {current} ppm with {ratio:.0%} local"
        return FeeProposal(FeeUpdate(base_fee_msat=self.base_fee_msat, fee_ppm=new), f"{why}: {current} → {new} ppm")


class ZeroRevenue:
    """Changes a channel only when its current fee level earned nothing: such a channel loses nothing by a change.

    Reads the channel's fee history (:attr:`ChannelSignals.fee_history`) and its siblings
    (:attr:`FeeContext.peer_channels`). A level is judged once it has been in force ``idle_s``
    (summed over the last 30 days) and earned 0 msat there. Then, in this order:

    - **free**: it forwarded at least ``free_forwards`` times out over the channel for nothing
      (0 msat in fees: 0 ppm and no base fee): the fee rate goes up by ``free_step_ppm``;
    - **idle**: it forwarded nothing and holds at least ``min_ratio`` of its capacity on our side:
      the fee is cut to ``cut`` × the current one (rounded down, not below ``min_fee_ppm``);
    - **drained and cheaper than a sibling**: it forwarded nothing, holds less than ``min_ratio``,
      and another of our channels to the same peer charges more: it takes that sibling's fee rate
      (the highest), so senders stop choosing it and failing on its missing balance.

    Every other channel keeps its fee: one that earned anything at its current fee, one whose
    level is younger than ``idle_s``. The engine's rails bound each step (by default at most
    ``max(50 ppm, 25 %)`` per change, two changes a day, no reversal within 24 h).

    Why (docs/FEES.md, "What earns in the simulator"): senders choose among similar routes by
    fee, so demand is very elastic where a channel earns, and a channel that earns nothing has
    nothing to lose: a cut can only win routes, a price on free forwards can only add revenue on
    that channel, and a drained channel priced like its siblings only stops attracting payments
    it refuses.
    """

    name: ClassVar[str] = "zero_revenue"
    reads_fee_history: ClassVar[bool] = True

    def __init__(
        self,
        *,
        cut: float = 0.5,
        min_ratio: float = 0.3,
        idle_s: int = 21_600,
        free_forwards: int = 3,
        free_step_ppm: int = 50,
        min_fee_ppm: int = 1,
        base_fee_msat: int | None = None,
    ) -> None:
        if not 0 < cut < 1 or not 0 <= min_ratio <= 1 or idle_s <= 0 or min_fee_ppm < 0 or free_forwards < 1 \
                or free_step_ppm < 1:  # fmt: skip
            raise ValueError("need 0 < cut < 1, 0 <= min_ratio <= 1, idle_s > 0, min_fee_ppm >= 0, "
                             "free_forwards >= 1, free_step_ppm >= 1")  # fmt: skip
        self.min_ratio, self.idle_s = min_ratio, idle_s
        self.free_forwards, self.free_step_ppm = free_forwards, free_step_ppm
        self.base_fee_msat = base_fee_msat
        self._idle = IdleDiscount(cut=cut, min_ratio=min_ratio, idle_s=idle_s, min_fee_ppm=min_fee_ppm,
                                  base_fee_msat=base_fee_msat)  # fmt: skip

    def propose(self, channel: Channel, ctx: FeeContext) -> FeeProposal | None:
        current = channel.local_policy.fee_ppm
        ratio = _ratio(channel)
        history = ctx.signals.fee_history if ctx.signals is not None else ()
        here = next((e for e in history if e.fee_ppm == current), None)
        if here is not None and here.seconds >= self.idle_s and here.revenue_msat == 0:
            hours = f"{here.seconds / 3600:.0f} h"
            if here.forwards >= self.free_forwards:
                why = f"forwards for free: {here.forwards} forwards earned 0 msat at {current} ppm in {hours}"
                return self._to(current, current + self.free_step_ppm, why)
            if here.forwards:
                return FeeProposal(FeeUpdate(base_fee_msat=self.base_fee_msat),
                                   f"{here.forwards} forward(s) for nothing at {current} ppm in {hours}, fewer than "
                                   f"free_forwards ({self.free_forwards}): kept")  # fmt: skip
            if ratio < self.min_ratio:
                siblings = [c.local_policy.fee_ppm for c in ctx.peer_channels
                            if c.channel_id != channel.channel_id and c.local_policy is not None]  # fmt: skip
                top = max(siblings, default=current)
                if top > current:
                    why = f"drained ({ratio:.0%} local, no forwards in {hours}), cheaper than its sibling to the peer"
                    return self._to(current, top, why)
        return self._idle.propose(channel, ctx)  # the idle cut, and every reason to keep a fee

    def _to(self, current: int, new: int, why: str) -> FeeProposal:
        return FeeProposal(FeeUpdate(base_fee_msat=self.base_fee_msat, fee_ppm=new), f"{why}: {current} → {new} ppm")


LNLENS_STRATEGIES = (BalanceBased, FlowBased, IdleDiscount, InboundFee, ModelDriven, RevenueMax, ZeroRevenue)
