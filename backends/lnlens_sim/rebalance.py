"""Rebalancing in the simulator: LightningLens's auto-recovery rule as a baseline, and
circular-rebalance candidates over the real graph (SEEDS rows 49 and 75).

Both only ever act through :meth:`SimNode.rebalance`, which moves liquidity along a
real cycle at that route's fee. Real adapters never move funds; these exist so that
fee strategies and models can be compared against a rebalancing baseline whose cost
is counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from lnlens_core.domain import Channel, ChannelId, FailureReason, ForwardStatus, HtlcEvent

from .node import SimNode
from .payments import quote_rebalance

__all__ = [
    "AutoRecoveryConfig",
    "AutoRecoveryRebalancer",
    "RebalanceAction",
    "RebalanceCandidate",
    "candidates",
    "route_costs",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AutoRecoveryConfig:
    """LightningLens's thresholds: act after ``failures`` liquidity failure(s) on a channel
    whose local share is outside [``low``, ``high``], moving ``fraction`` of its capacity."""

    failures: int = 1
    low: float = 0.35
    high: float = 0.65
    fraction: float = 0.20
    max_fee_ppm: int | None = None  # LightningLens set no cap; the cost is counted either way
    partners: int = 3  # other channels tried in turn when a cycle finds no route (the fallback)


@dataclass(frozen=True, slots=True)
class RebalanceAction:
    time: float
    source: ChannelId
    target: ChannelId
    amount_msat: int
    ok: bool
    fee_msat: int
    reason: str


@dataclass(slots=True)
class AutoRecoveryRebalancer:
    """Pass as ``on_tick`` to :meth:`SimNode.run`. A channel that refused HTLCs for lack of
    local balance is refilled from the fullest other channel; one that is too full is
    emptied into the emptiest. Every attempt and its fee is kept in :attr:`actions`."""

    config: AutoRecoveryConfig = field(default_factory=AutoRecoveryConfig)
    actions: list[RebalanceAction] = field(default_factory=list)

    @property
    def fee_msat(self) -> int:
        return sum(a.fee_msat for a in self.actions if a.ok)

    @property
    def volume_msat(self) -> int:
        return sum(a.amount_msat for a in self.actions if a.ok)

    def __call__(self, node: SimNode, batch: list[HtlcEvent]) -> None:
        c = self.config
        failures = Counter(
            e.out_channel
            for e in batch
            if e.status is ForwardStatus.LOCAL_FAILED and e.failure_reason is FailureReason.INSUFFICIENT_BALANCE
        )
        if not failures:
            return
        channels = {ch.channel_id: ch for ch in node.list_channels()}
        for cid, count in sorted(failures.items()):
            ch = channels.get(cid)
            ratio = ch.balance_ratio if ch else None
            if ch is None or ratio is None or count < c.failures or c.low <= ratio <= c.high:
                continue
            others = [o for o in channels.values() if o.channel_id != cid and o.balance_ratio is not None]
            if not others:
                return
            # Partners in order of how much they can give (or take); the next one is the fallback.
            partners = sorted(others, key=_ratio, reverse=ratio < c.low)[: c.partners]
            for partner in partners:
                source, target = (partner, ch) if ratio < c.low else (ch, partner)
                amount = min(int(ch.capacity_msat * c.fraction), source.local_balance_msat, target.remote_balance_msat)
                if amount <= 0:
                    continue
                cap = None if c.max_fee_ppm is None else amount * c.max_fee_ppm // 1_000_000
                result = node.rebalance(source.channel_id, target.channel_id, amount, max_fee_msat=cap)
                self.actions.append(RebalanceAction(node.clock.now(), source.channel_id, target.channel_id, amount,
                                                    result.ok, result.fee_msat, result.reason))  # fmt: skip
                if result.ok:
                    break
            channels = {ch.channel_id: ch for ch in node.list_channels()}


def _ratio(ch: Channel) -> float:
    return ch.balance_ratio or 0.0


@dataclass(frozen=True, slots=True)
class RebalanceCandidate:
    """A circular rebalance worth considering, priced on the route a sender would pick."""

    source: ChannelId
    target: ChannelId
    amount_msat: int
    fee_msat: int
    hops: int
    budget_msat: int
    within_budget: bool

    @property
    def fee_ppm(self) -> int:
        return self.fee_msat * 1_000_000 // self.amount_msat if self.amount_msat else 0


def candidates(
    node: SimNode, *, window_s: float = 7 * 86_400, budget_share: float = 0.5, min_share: float = 0.1, limit: int = 10
) -> list[RebalanceCandidate]:
    """Pair channels with excess local balance (share above 0.5 + ``min_share``) with channels
    short of it, move half of the smaller imbalance, and price the cycle. The budget is
    ``budget_share`` of what the target channel earned as an outgoing channel over the
    last ``window_s``: refilling a channel is worth what it earns.
    """
    since = node.clock.now() - window_s
    earned: Counter[ChannelId] = Counter()
    for e in node.events:
        if e.status is ForwardStatus.SETTLED and e.received_time >= since and e.out_channel is not None:
            earned[e.out_channel] += e.fee_msat or 0
    chans = node.list_channels()
    excess = sorted((c for c in chans if (_ratio(c) - 0.5) > min_share), key=lambda c: -_ratio(c))[:8]
    short = sorted((c for c in chans if (0.5 - _ratio(c)) > min_share), key=_ratio)[:8]
    out = []
    for src in excess:
        for tgt in short:
            give = src.local_balance_msat - src.capacity_msat // 2
            need = tgt.capacity_msat // 2 - tgt.local_balance_msat
            amount = min(give, need) // 2
            if amount <= 0:
                continue
            quote = quote_rebalance(node.network, node.out_edge(src.channel_id), node.out_edge(tgt.channel_id), amount)
            if quote is None:
                continue
            route, fee = quote
            budget = int(earned[tgt.channel_id] * budget_share)
            out.append(
                RebalanceCandidate(src.channel_id, tgt.channel_id, amount, fee, len(route), budget, fee <= budget)
            )
    out.sort(key=lambda c: (not c.within_budget, c.fee_ppm, -c.amount_msat))
    return out[:limit]


NO_ROUTE_PPM = 1_000_000.0
"""The cost rate of a direction no route can take: the whole amount, more than any fee it could earn back."""


def route_costs(node: SimNode, *, partners: int = 3, share: float = 0.1, max_amount_msat: int = 1_000_000_000):
    """Each of our channels' route cost rates (:class:`lnlens_core.model.target.RouteCost`), quoted on the real graph.

    Into a channel: the cheapest quote for moving ``share`` of its capacity (at most ``max_amount_msat``)
    into it from one of the ``partners`` channels holding the most local balance; out of it: into one of
    the ``partners`` holding the least. A channel without any route gets no entry (the defaults apply).
    Quotes read public fees only: nothing is sent and the simulation is unchanged.
    """
    from lnlens_core.model.target import RouteCost

    chans = [c for c in node.list_channels() if c.capacity_msat > 0]
    fullest = sorted(chans, key=lambda c: (-c.local_balance_msat, str(c.channel_id)))
    emptiest = sorted(chans, key=lambda c: (c.local_balance_msat, str(c.channel_id)))
    out = {}
    for ch in chans:
        amount = max(min(int(ch.capacity_msat * share), max_amount_msat), 1_000)
        rates = []
        for pool, into in ((fullest, True), (emptiest, False)):
            best = None
            for other in [o for o in pool if o.channel_id != ch.channel_id][:partners]:
                src, tgt = (other, ch) if into else (ch, other)
                fee = node.quote_rebalance(src.channel_id, tgt.channel_id, amount)
                if fee is not None and (best is None or fee < best):
                    best = fee
            rates.append(None if best is None else best * 1_000_000 / amount)
        into, away = (NO_ROUTE_PPM if r is None else r for r in rates)
        out[ch.channel_id] = RouteCost(into, away)
    return out
