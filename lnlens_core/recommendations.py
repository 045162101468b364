"""Recommendation rules: what to do about each channel's missed opportunities, and why.

Direction matters (lnflow got it backwards): a forward that fails for liquidity
*leaving* channel X means X lacks local balance, so X needs outbound liquidity —
a rebalance that moves our funds out through a channel with surplus and back in
through X (``rebalance_outbound``, target X). ``rebalance_inbound`` is the mirror:
a channel almost entirely on our side that used to bring traffic in needs room,
so funds move out of it.

Rules that always hold:
- liquidity failures never produce ``lower_fees``;
- a channel that drains quickly at a low fee produces ``raise_fees``;
- fee failures produce ``lower_fees`` only when they are not explained by a recent
  change of ours still propagating (``failed_fee_stale``), and never together with
  ``raise_fees`` or when liquidity failures outnumber them.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .domain import Channel, ChannelId, Recommendation, RecommendationKind
from .flows import NO_FLOW, Flow, FlowStats

if TYPE_CHECKING:
    from .analyzer import AnalyzerParams

__all__ = ["recommend"]

K = RecommendationKind


def _sats(msat: int) -> str:
    return f"{msat // 1000:,}"  # whole sats, as operators count


def _need_msat(ch: Channel, target_ratio: float) -> int:
    return max(int(target_ratio * (ch.local_balance_msat + ch.remote_balance_msat)) - ch.local_balance_msat, 0)


def _demand_msat(flow: Flow, window_s: float, horizon_s: float) -> int:
    """The outbound liquidity the failed demand would use over ``horizon_s``.

    The window's missed volume, its liquidity share estimated by the share of
    liquidity failures among the failures here, scaled from the window to the horizon.
    """
    if flow.failed_here <= 0 or window_s <= 0:
        return 0
    liquidity_volume = flow.missed_volume_msat * flow.failed_liquidity // flow.failed_here
    return int(liquidity_volume * horizon_s / window_s)


def _surplus_msat(ch: Channel, target_ratio: float) -> int:
    return max(ch.local_balance_msat - int(target_ratio * (ch.local_balance_msat + ch.remote_balance_msat)), 0)


class _Sources:
    """Channels with local balance to spare, drawn down as rebalances are proposed.

    For a target, the in-channels whose traffic failed there come first (a rebalance
    through them restores the very circuit that failed), then the largest surplus.
    Both lookups are precomputed, so picking stays cheap on nodes with many channels.
    """

    def __init__(self, channels: Mapping[ChannelId, Channel], stats: FlowStats, params: AnalyzerParams) -> None:
        self.channels = channels
        self.left = {cid: _surplus_msat(ch, params.target_ratio) for cid, ch in channels.items() if ch.active}
        self.used: set[ChannelId] = set()
        self.need_left: dict[ChannelId, int] = {}
        """What starved channels still need after the rebalances proposed into them, in the order proposed."""
        self._needy: list[ChannelId] = []
        self._needy_from = 0
        """How many channels at the front of ``need_left`` have nothing left to need (see :meth:`first_needy`)."""
        self._feeders: dict[ChannelId, list[tuple[int, ChannelId]]] = {}
        for (in_cid, out_cid), flow in stats.pairs.items():
            if flow.missed_liquidity_msat > 0 and in_cid in self.left:
                self._feeders.setdefault(out_cid, []).append((flow.missed_liquidity_msat, in_cid))
        # A max-heap by surplus; entries go stale as surplus is taken and are skipped lazily.
        self._heap = [(-left, str(cid), cid) for cid, left in self.left.items() if left > 0]
        heapq.heapify(self._heap)

    def pick(self, target: ChannelId, at_least: int = 0) -> tuple[ChannelId | None, int]:
        """A source for ``target`` that can spare at least ``at_least`` msat (and anything at all), with what it can
        spare; ``(None, 0)`` when no channel can."""
        left = self.left
        floor = max(at_least, 1)
        feeders = [
            (missed, left[cid], str(cid), cid)
            for missed, cid in self._feeders.get(target, ())
            if left[cid] >= floor and cid != target
        ]
        if feeders:
            best = max(feeders)[3]
            return best, self.left[best]
        skipped = []
        found: tuple[ChannelId | None, int] = (None, 0)
        while self._heap:
            neg_left, _, cid = self._heap[0]
            if -neg_left != self.left[cid] or self.left[cid] <= 0:
                heapq.heappop(self._heap)  # stale entry
                if self.left[cid] > 0:
                    heapq.heappush(self._heap, (-self.left[cid], str(cid), cid))
                continue
            if cid == target:
                skipped.append(heapq.heappop(self._heap))
                continue
            if self.left[cid] >= floor:  # the largest surplus: if it cannot spare enough, none can
                found = (cid, self.left[cid])
            break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        return found

    def take(self, cid: ChannelId, amount_msat: int) -> None:
        self.left[cid] -= amount_msat
        self.used.add(cid)

    def first_needy(self, exclude: ChannelId) -> ChannelId | None:
        """The first starved channel, in the order rebalances were proposed, that still needs liquidity.

        Needs only shrink (a rebalance into a channel never asks for more than it needs),
        so a satisfied channel at the front stays satisfied: skipping it for good keeps the
        lookup cheap when many full channels ask, instead of rescanning every starved one.
        """
        if len(self._needy) != len(self.need_left):
            # need_left is filled before the first lookup; entries only change value, never move.
            self._needy = list(self.need_left)
        order = self._needy
        while self._needy_from < len(order) and self.need_left[order[self._needy_from]] <= 0:
            self._needy_from += 1
        for i in range(self._needy_from, len(order)):
            if self.need_left[order[i]] > 0 and order[i] != exclude:
                return order[i]
        return None


def _carry_limit_msat(ch: Channel) -> int:
    """The largest HTLC the channel could ever send: all of it on our side, less the reserve we must keep
    (and the commitment fee when we opened it)."""
    return max(ch.capacity_msat - ch.local_reserve_msat - ch.commit_fee_msat, 0)


def _shortfall_msat(ch: Channel, amount_msat: int) -> int:
    """How much more local balance the channel needs now to send ``amount_msat``."""
    if ch.spendable_msat is not None:
        return max(amount_msat - ch.spendable_msat, 0)
    return max(amount_msat + ch.local_reserve_msat + ch.commit_fee_msat - ch.local_balance_msat, 0)


@dataclass(frozen=True, slots=True)
class _Refill:
    """What a starved channel needs: ``carry`` to let the largest failed HTLC through, ``need`` in all."""

    largest_msat: int
    carry_limit_msat: int
    carry_msat: int
    ratio_msat: int

    @property
    def fits(self) -> bool:
        return self.largest_msat <= self.carry_limit_msat

    @property
    def need_msat(self) -> int:
        return max(self.carry_msat, self.ratio_msat)


def _refill(ch: Channel, flow: Flow, stats: FlowStats, params: AnalyzerParams) -> _Refill:
    largest, limit = flow.max_failed_liquidity_msat, _carry_limit_msat(ch)
    carry = _shortfall_msat(ch, largest) if largest <= limit else 0
    ratio = 0
    if (ch.balance_ratio or 0.0) < params.target_ratio:
        # Enough for a horizon of the demand that failed, never beyond the target share.
        ratio = min(_need_msat(ch, params.target_ratio), _demand_msat(flow, stats.window_s, params.demand_horizon_s))
    return _Refill(largest, limit, carry, ratio)


def _rebalance_outbound(
    ch: Channel, flow: Flow, stats: FlowStats, sources: _Sources, params: AnalyzerParams, refill: _Refill
) -> Recommendation:
    need = refill.need_msat
    # The source must spare at least what lets the failed HTLCs through; beyond that, what it has.
    source, surplus = sources.pick(ch.channel_id, at_least=refill.carry_msat)
    amount = min(need, surplus)
    sources.need_left[ch.channel_id] = need - amount
    ratio = ch.balance_ratio or 0.0
    fee_ppm = ch.local_policy.fee_ppm
    # Break-even: moving `amount` costs at most what forwarding it once at our fee earns.
    max_cost = ch.local_policy.fee_msat(amount) if amount else 0
    evidence: dict[str, int | float | str] = {
        "failed_liquidity": flow.failed_liquidity,
        "missed_liquidity_msat": flow.missed_liquidity_msat,
        "local_ratio": round(ratio, 4),
        "local_balance_msat": ch.local_balance_msat,
        "capacity_msat": ch.capacity_msat,
        "fee_ppm": fee_ppm,
        "max_rebalance_cost_msat": max_cost,
        "demand_msat": _demand_msat(flow, stats.window_s, params.demand_horizon_s),
        "largest_failed_msat": refill.largest_msat,
        "carry_refill_msat": refill.carry_msat,
    }
    lost = f"{flow.failed_liquidity:,} forwards failed for lack of outbound liquidity ({ratio:.0%} local), losing {_sats(flow.missed_liquidity_msat)} sats"  # noqa: E501
    if refill.carry_msat:
        lost += (f"; the largest, {_sats(refill.largest_msat)} sats, fits the channel once "
                 f"{_sats(refill.carry_msat)} sats more are on our side")  # fmt: skip
    if source is None:
        spare = f" {_sats(refill.carry_msat)} sats" if refill.carry_msat else " local balance"
        reason = f"{lost}; none of our channels can spare{spare}, so only new liquidity would help."
        return Recommendation(K.REBALANCE_OUTBOUND, ch.channel_id, reason, evidence, target_channel=ch.channel_id,
                              amount_msat=need)  # fmt: skip
    sources.take(source, amount)
    src = sources.channels[source]
    evidence["source_local_ratio"] = round(src.balance_ratio or 0.0, 4)
    reason = (
        f"{lost}; move {_sats(amount)} sats into it from {source} ({src.balance_ratio or 0:.0%} local), "
        f"paying at most {_sats(max_cost)} sats in fees."
    )
    return Recommendation(K.REBALANCE_OUTBOUND, ch.channel_id, reason, evidence, source_channel=source,
                          target_channel=ch.channel_id, amount_msat=amount)  # fmt: skip


def _increase_capacity(ch: Channel, flow: Flow, refill: _Refill) -> Recommendation:
    ratio = ch.balance_ratio or 0.0
    avg = flow.missed_volume_msat // max(flow.failed_liquidity, 1)
    size = max(ch.capacity_msat, refill.largest_msat + ch.local_reserve_msat + ch.commit_fee_msat)
    reason = (
        f"{flow.failed_liquidity:,} forwards failed for liquidity, the largest of {_sats(refill.largest_msat)} sats, "
        f"more than this channel could ever send ({_sats(refill.carry_limit_msat)} sats with all of it on our side): "
        f"a larger or second channel to this peer, of at least {_sats(size)} sats, would carry them."
    )
    evidence: dict[str, int | float | str] = {
        "failed_liquidity": flow.failed_liquidity,
        "average_failed_msat": avg,
        "largest_failed_msat": refill.largest_msat,
        "carry_limit_msat": refill.carry_limit_msat,
        "local_ratio": round(ratio, 4),
        "capacity_msat": ch.capacity_msat,
    }
    return Recommendation(K.INCREASE_CAPACITY, ch.channel_id, reason, evidence, amount_msat=size)


def _cheap_liquidity(ch: Channel, flow: Flow, median_ppm: float, params: AnalyzerParams) -> Recommendation:
    """Liquidity failures on a channel too cheap to refill: a rebalance would cost more than it earns."""
    fee_ppm = ch.local_policy.fee_ppm
    new_ppm = max(round(median_ppm), params.min_refill_fee_ppm, fee_ppm + 10)
    earned = "would have earned nothing" if flow.missed_liquidity_msat <= 0 else "earn less than a refill costs"
    reason = (
        f"{flow.failed_liquidity:,} forwards failed for lack of outbound liquidity, but at {fee_ppm} ppm they "
        f"{earned}: charge for the liquidity (raise to {new_ppm} ppm) before paying to refill it."
    )
    evidence: dict[str, int | float | str] = {
        "failed_liquidity": flow.failed_liquidity,
        "missed_liquidity_msat": flow.missed_liquidity_msat,
        "fee_ppm": fee_ppm,
        "median_fee_ppm": median_ppm,
        "min_refill_fee_ppm": params.min_refill_fee_ppm,
    }
    return Recommendation(K.RAISE_FEES, ch.channel_id, reason, evidence, proposed_fee_ppm=new_ppm)


def _drain(ch: Channel, stats: FlowStats, median_ppm: float, params: AnalyzerParams) -> Recommendation | None:
    out = stats.out.get(ch.channel_id, NO_FLOW).volume_msat
    inbound = stats.inbound.get(ch.channel_id, NO_FLOW).volume_msat
    net = out - inbound
    fee_ppm = ch.local_policy.fee_ppm
    if ch.capacity_msat <= 0 or net < params.drain_share * ch.capacity_msat or fee_ppm > median_ppm:
        return None
    new_ppm = max(round(fee_ppm * (1 + params.raise_step)), fee_ppm + 10, round(median_ppm))
    days = stats.window_s / 86_400
    reason = (
        f"It drained {_sats(net)} sats net in {days:.1f} days ({net / ch.capacity_msat:.0%} of capacity) "
        f"at {fee_ppm} ppm, at or below our median of {median_ppm:.0f} ppm; raise to {new_ppm} ppm to slow the drain."
    )
    evidence: dict[str, int | float | str] = {
        "net_outflow_msat": net,
        "capacity_msat": ch.capacity_msat,
        "fee_ppm": fee_ppm,
        "median_fee_ppm": median_ppm,
    }
    return Recommendation(K.RAISE_FEES, ch.channel_id, reason, evidence, proposed_fee_ppm=new_ppm)


def _lower_fees(ch: Channel, flow: Flow, params: AnalyzerParams) -> Recommendation | None:
    real = flow.failed_fee - flow.failed_fee_stale
    if real < params.min_failures or flow.failed_liquidity > real:
        return None
    fee_ppm = ch.local_policy.fee_ppm
    offered = flow.offered_fee_ppm_sum // flow.offered_fee_count if flow.offered_fee_count else None
    new_ppm = offered if offered is not None and offered < fee_ppm else int(fee_ppm * (1 - params.lower_step))
    if new_ppm >= fee_ppm:
        return None
    offered_text = f" (they offered {offered} ppm on average)" if offered is not None else ""
    reason = (
        f"{real:,} forwards failed because senders would not pay our {fee_ppm} ppm{offered_text}, "
        f"and no recent change of ours explains it; lower to {new_ppm} ppm."
    )
    evidence: dict[str, int | float | str] = {
        "failed_fee": flow.failed_fee,
        "failed_fee_while_propagating": flow.failed_fee_stale,
        "fee_ppm": fee_ppm,
    }
    if offered is not None:
        evidence["offered_fee_ppm"] = offered
    return Recommendation(K.LOWER_FEES, ch.channel_id, reason, evidence, proposed_fee_ppm=max(new_ppm, 0))


def _investigate(ch: Channel, flow: Flow, params: AnalyzerParams) -> Recommendation | None:
    if flow.failed_other < params.min_failures or 2 * flow.failed_other < flow.failed_here:
        return None
    reason = (
        f"{flow.failed_other:,} forwards failed here for reasons other than liquidity or fees "
        "(HTLC limits, CLTV, a disabled channel or an offline peer); check the channel and the peer."
    )
    return Recommendation(K.INVESTIGATE, ch.channel_id, reason, {"failed_other": flow.failed_other})


def _rebalance_inbound(
    ch: Channel, stats: FlowStats, sources: _Sources, params: AnalyzerParams
) -> Recommendation | None:
    ratio = ch.balance_ratio or 0.0
    brought_in = stats.inbound.get(ch.channel_id, NO_FLOW).volume_msat
    if ratio < params.full_ratio or brought_in <= 0:
        return None
    target = sources.first_needy(ch.channel_id)
    if target is None:
        return None
    amount = min(_surplus_msat(ch, params.target_ratio), sources.need_left[target])
    if amount <= 0:
        return None
    sources.need_left[target] -= amount
    reason = (
        f"{ratio:.0%} of this channel is local and it brought in {_sats(brought_in)} sats in the window; "
        f"with no inbound room left that flow stops, so move {_sats(amount)} sats out of it into {target}."
    )
    evidence: dict[str, int | float | str] = {"local_ratio": round(ratio, 4), "inbound_volume_msat": brought_in}
    return Recommendation(K.REBALANCE_INBOUND, ch.channel_id, reason, evidence, source_channel=ch.channel_id,
                          target_channel=target, amount_msat=amount)  # fmt: skip


def recommend(
    stats: FlowStats, channels: Mapping[ChannelId, Channel], params: AnalyzerParams
) -> dict[ChannelId, list[Recommendation]]:
    """Recommendations per channel, from its flows and its state now.

    A rule needs at least one failure of its kind even when ``min_failures`` is 0
    (which only widens what is *reported*).
    """
    if params.min_failures < 1:
        params = replace(params, min_failures=1)
    # A channel whose own policy the node cannot tell (missing from its graph) gets no fee-based advice.
    channels = {cid: ch for cid, ch in channels.items() if ch.local_policy is not None}
    out: dict[ChannelId, list[Recommendation]] = {}
    sources = _Sources(channels, stats, params)
    fees = [ch.local_policy.fee_ppm for ch in channels.values()]
    median_ppm = statistics.median(fees) if fees else 0.0
    # Most missed liquidity first, so the best sources go where they earn most.
    starved = sorted(
        (cid for cid, f in stats.out.items() if f.failed_liquidity >= params.min_failures and cid in channels),
        key=lambda cid: (-stats.out[cid].missed_liquidity_msat, str(cid)),
    )
    raised: set[ChannelId] = set()  # channels given raise_fees above, so the drain rule does not raise them twice
    for cid in starved:
        ch, flow = channels[cid], stats.out[cid]
        refill = _refill(ch, flow, stats, params)
        too_cheap = refill.need_msat > 0 and ch.local_policy.fee_ppm < params.min_refill_fee_ppm
        if flow.missed_liquidity_msat <= 0 or too_cheap:
            out.setdefault(cid, []).append(_cheap_liquidity(ch, flow, median_ppm, params))
            raised.add(cid)
            continue
        # HTLCs larger than the channel could ever send need capacity; the rest a refill, when one is missing.
        if not refill.fits:
            out.setdefault(cid, []).append(_increase_capacity(ch, flow, refill))
        if refill.need_msat:
            out.setdefault(cid, []).append(_rebalance_outbound(ch, flow, stats, sources, params, refill))
    for cid, ch in sorted(channels.items(), key=lambda kv: str(kv[0])):
        flow = stats.out.get(cid, NO_FLOW)
        already_raised = cid in raised
        raise_rec = None if already_raised else _drain(ch, stats, median_ppm, params)
        extra = [raise_rec] if raise_rec or already_raised else [_lower_fees(ch, flow, params)]
        extra.append(_investigate(ch, flow, params))
        if cid not in sources.used:
            extra.append(_rebalance_inbound(ch, stats, sources, params))
        for rec in extra:
            if rec is not None:
                out.setdefault(cid, []).append(rec)
    return out
