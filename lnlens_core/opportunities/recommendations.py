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

Every channel's figures are held in numpy arrays (:class:`Frame`) and each rule is decided for all
channels at once (:func:`plan`); only the rebalances, which share the surplus of the same source
channels, are matched one after another. A :class:`Recommendation` (its reason and evidence) is built
only for the channels a caller asks about (:meth:`Plan.recommendations`), so a node with 10,000
channels is analyzed in milliseconds and its top opportunities shown without building the rest.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..domain import Channel, ChannelId, Recommendation, RecommendationKind
from .flows import METRICS, NO_FLOW, Flow, FlowStats, FlowTable
from .params import AnalyzerParams

__all__ = ["recommend", "Frame", "Plan", "plan", "failed_here"]

K = RecommendationKind
C = {name: i for i, name in enumerate(METRICS)}
"""Column of each counter in :attr:`Frame.out`."""
PAIR_COUNTERS = ("attempts", "failed_liquidity", "failed_fee", "failed_other", "failed_downstream",
                 "missed_revenue_msat", "missed_liquidity_msat")  # fmt: skip
"""The counters the analysis reads of a channel pair (its urgency, and which channel fed a starved one)."""
P = {name: i for i, name in enumerate(PAIR_COUNTERS)}
_channel_id = operator.attrgetter("channel_id")
_text = operator.attrgetter("_text")
"""A ChannelId's text, formatted once when it was made (``str()`` costs a Python call per id)."""


def _fields(items: Iterable[Any], count: int, names: Sequence[str]) -> np.ndarray:
    """The named integer attributes of ``count`` objects, a row each in their order."""
    values = map(operator.attrgetter(*names), items)
    if len(names) > 1:
        values = itertools.chain.from_iterable(values)
    return np.fromiter(values, dtype=np.int64, count=count * len(names)).reshape(count, len(names))


def _counters(mapping: Mapping[Any, Flow], names: Sequence[str]) -> np.ndarray:
    """The named counters of each flow in the mapping, one row each in its order."""
    if isinstance(mapping, FlowTable):
        return mapping.counters(names)
    return _fields(mapping.values(), len(mapping), names)


def _rows(row: Mapping[str, int], texts: Iterable[str], count: int | None = None) -> np.ndarray:
    """The row of each text, -1 for one without (looked up without a Python step per text)."""
    if count is None:
        texts = list(texts)
        count = len(texts)
    return np.fromiter(map(row.get, texts, itertools.repeat(-1)), dtype=np.intp, count=count)


def failed_here(table: np.ndarray, columns: Mapping[str, int] = C) -> np.ndarray:
    """:attr:`Flow.failed_here` of each row of a counter table."""
    return table[:, columns["failed_liquidity"]] + table[:, columns["failed_fee"]] + table[:, columns["failed_other"]]


@dataclass(frozen=True, slots=True)
class Frame:
    """One analysis's inputs as arrays, a row per channel: the channels given first, in their order, then
    (``counted``) the channels only the counters name. Rows without a channel hold zeros for its state."""

    stats: FlowStats
    ids: list[ChannelId]
    texts: list[str]
    channels: list[Channel | None]
    rank: np.ndarray
    """Each row's place in the order of the ids' text (ties in a ranking are broken by it)."""
    out: np.ndarray
    """(rows, METRICS): the counters of forwards leaving by the row's channel, zeros when none."""
    has_out: np.ndarray
    inbound_volume: np.ndarray
    policy: np.ndarray
    """The channel is given and its own policy is known (only such channels get recommendations)."""
    active: np.ndarray
    local: np.ndarray
    total: np.ndarray
    capacity: np.ndarray
    reserve: np.ndarray
    commit_fee: np.ndarray
    spendable: np.ndarray
    has_spendable: np.ndarray
    fee_ppm: np.ndarray
    row: dict[str, int]
    """The row of each id's text."""
    pair_keys: list[tuple[ChannelId, ChannelId]]
    pairs: np.ndarray
    """(pairs, PAIR_COUNTERS)."""

    @classmethod
    def build(cls, stats: FlowStats, channels: Mapping[ChannelId, Channel] | Sequence[Channel], *,
              counted: bool) -> Frame:  # fmt: skip
        """:param channels: by id, or a list (a channel listed twice counts once, as its last entry)."""
        if isinstance(channels, Mapping):
            ids, given = list(channels), list(channels.values())
            texts = list(map(_text, ids))
        else:
            by_text = dict(zip(map(_text, map(_channel_id, channels)), channels, strict=True))
            texts, given = list(by_text), list(by_text.values())
            ids = list(map(_channel_id, given))
        row = dict(zip(texts, range(len(texts)), strict=True))
        out_texts = list(map(_text, stats.out))
        if counted:
            for cid, t in zip(stats.out, out_texts, strict=True):
                if t not in row:
                    row[t] = len(ids)
                    ids.append(cid)
                    texts.append(t)
        n, listed = len(ids), len(given)
        chans: list[Channel | None] = [*given, *[None] * (n - listed)]
        out = np.zeros((n, len(METRICS)), dtype=np.int64)
        has_out = np.zeros(n, dtype=bool)
        out_rows = _rows(row, out_texts)
        if len(out_rows):
            keep = out_rows >= 0
            out[out_rows[keep]] = _counters(stats.out, METRICS)[keep]
            has_out[out_rows[keep]] = True
        inbound_volume = np.zeros(n, dtype=np.int64)
        in_rows = _rows(row, map(_text, stats.inbound), len(stats.inbound))
        if len(in_rows):
            keep = in_rows >= 0
            inbound_volume[in_rows[keep]] = _counters(stats.inbound, ("volume_msat",))[keep, 0]

        def column(values: Any, dtype: Any = np.int64) -> np.ndarray:
            a = np.zeros(n, dtype=dtype)
            a[:listed] = np.fromiter(values, dtype=dtype, count=listed)
            return a

        state = _fields(given, listed, ("local_balance_msat", "remote_balance_msat", "capacity_msat",
                                        "local_reserve_msat", "commit_fee_msat"))  # fmt: skip
        full = np.zeros((n, 5), dtype=np.int64)
        full[:listed] = state
        spendable = [c.spendable_msat for c in given]
        policies = [c.local_policy for c in given]
        pair_keys = list(stats.pairs)
        return cls(
            stats=stats, ids=ids, texts=texts, channels=chans,
            rank=np.argsort(np.argsort(np.array(texts, dtype=str), kind="stable"), kind="stable"),
            out=out, has_out=has_out, inbound_volume=inbound_volume,
            policy=column((p is not None for p in policies), bool), active=column((c.active for c in given), bool),
            local=full[:, 0], total=full[:, 0] + full[:, 1], capacity=full[:, 2], reserve=full[:, 3],
            commit_fee=full[:, 4], spendable=column(s or 0 for s in spendable),
            has_spendable=column((s is not None for s in spendable), bool),
            fee_ppm=column(p.fee_ppm if p is not None else 0 for p in policies),
            row=row, pair_keys=pair_keys, pairs=_counters(stats.pairs, PAIR_COUNTERS),
        )  # fmt: skip

    def flow(self, row: int) -> Flow:
        """The counters leaving by the row's channel."""
        return Flow(*self.out[row].tolist()) if self.has_out[row] else NO_FLOW

    def pair_rows(self, pairs: np.ndarray, end: int) -> np.ndarray:
        """The row of the in (``end`` 0) or out (1) channel of each pair numbered, -1 for a channel without one."""
        ends = map(operator.itemgetter(end), map(self.pair_keys.__getitem__, pairs.tolist()))
        return _rows(self.row, map(_text, ends), len(pairs))

    def balance_ratio(self) -> np.ndarray:
        """:attr:`Channel.balance_ratio` of each row, 0.0 where it is None (both sides empty)."""
        return np.divide(self.local, self.total, out=np.zeros(len(self.ids)), where=self.total != 0)

    def surplus(self, target_ratio: float) -> np.ndarray:
        """What each channel holds beyond the target share of its balance."""
        return np.maximum(self.local - _int(target_ratio * self.total), 0)


def _int(values: np.ndarray) -> np.ndarray:
    """``int(x)`` of each float: toward zero."""
    return np.trunc(values).astype(np.int64)


def _sats(msat: int) -> str:
    return f"{msat // 1000:,}"  # whole sats, as operators count


def _demand(missed_volume_msat: int, failed_liquidity: int, failed_here: int, window_s: float,
            horizon_s: float) -> int:  # fmt: skip
    """The outbound liquidity the failed demand would use over ``horizon_s``.

    The window's missed volume, its liquidity share estimated by the share of
    liquidity failures among the failures here, scaled from the window to the horizon.
    Python integers: the product can outgrow 64 bits.
    """
    if failed_here <= 0 or window_s <= 0:
        return 0
    liquidity_volume = missed_volume_msat * failed_liquidity // failed_here
    return int(liquidity_volume * horizon_s / window_s)


def _demand_msat(flow: Flow, window_s: float, horizon_s: float) -> int:
    return _demand(flow.missed_volume_msat, flow.failed_liquidity, flow.failed_here, window_s, horizon_s)


class _Sources:
    """Channels with local balance to spare (by row), drawn down as rebalances are proposed.

    For a target, the in-channels whose traffic failed there come first (a rebalance
    through them restores the very circuit that failed), then the largest surplus.
    Both lookups are precomputed, so picking stays cheap on nodes with many channels.
    """

    def __init__(self, left: dict[int, int], texts: Sequence[str], feeders: dict[int, list[tuple[int, int]]]) -> None:
        self.left = left
        """Each active channel's surplus (rows of channels with a known policy)."""
        self.texts = texts
        self.used: set[int] = set()
        self.need_left: dict[Hashable, int] = {}
        """What starved channels still need after the rebalances proposed into them, in the order proposed."""
        self._needy: list[Hashable] = []
        self._needy_from = 0
        """How many channels at the front of ``need_left`` have nothing left to need (see :meth:`first_needy`)."""
        self._feeders = feeders
        """(missed liquidity fees, in row) of the pairs that failed for liquidity into each target row."""
        self._heap: list[tuple[int, str, int]] | None = None

    def pick(self, target: int, at_least: int = 0) -> tuple[int | None, int]:
        """A source for ``target`` that can spare at least ``at_least`` msat (and anything at all), with what it can
        spare; ``(None, 0)`` when no channel can."""
        left, texts = self.left, self.texts
        floor = max(at_least, 1)
        feeders = [(missed, left[r], texts[r], r) for missed, r in self._feeders.get(target, ())
                   if left[r] >= floor and r != target]  # fmt: skip
        if feeders:
            best = max(feeders)[3]
            return best, left[best]
        if self._heap is None:
            # A max-heap by surplus; entries go stale as surplus is taken and are skipped lazily.
            self._heap = [(-surplus, texts[r], r) for r, surplus in left.items() if surplus > 0]
            heapq.heapify(self._heap)
        heap = self._heap
        skipped = []
        found: tuple[int | None, int] = (None, 0)
        while heap:
            neg_left, _, r = heap[0]
            if -neg_left != left[r] or left[r] <= 0:
                heapq.heappop(heap)  # stale entry
                if left[r] > 0:
                    heapq.heappush(heap, (-left[r], texts[r], r))
                continue
            if r == target:
                skipped.append(heapq.heappop(heap))
                continue
            if left[r] >= floor:  # the largest surplus: if it cannot spare enough, none can
                found = (r, left[r])
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def take(self, source: int, amount_msat: int) -> None:
        self.left[source] -= amount_msat
        self.used.add(source)

    def first_needy(self, exclude: Hashable) -> Hashable | None:
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


@dataclass(frozen=True, slots=True)
class Plan:
    """Which rules fire on which channel (boolean arrays by row of :attr:`frame`) and the rebalances matched."""

    frame: Frame
    params: AnalyzerParams
    """With ``min_failures`` at least 1: a rule needs a failure of its kind."""
    median_ppm: float
    starved: list[int]
    """Channels with liquidity failures, most missed liquidity fees first: the order rebalances were matched in."""
    cheap: np.ndarray
    capacity: np.ndarray
    outbound: np.ndarray
    drain: np.ndarray
    lower: np.ndarray
    investigate: np.ndarray
    any: np.ndarray
    """The channel has at least one recommendation."""
    largest: np.ndarray
    carry_limit: np.ndarray
    carry: np.ndarray
    ratio_need: np.ndarray
    net: np.ndarray
    offered: np.ndarray
    lower_ppm: np.ndarray
    picked: dict[int, tuple[int | None, int]]
    """Each outbound rebalance's (source row or None, amount)."""
    inbound: dict[int, tuple[int, int]]
    """Each inbound rebalance's (target row, amount)."""

    def refill(self, row: int) -> _Refill:
        return _Refill(int(self.largest[row]), int(self.carry_limit[row]), int(self.carry[row]),
                       int(self.ratio_need[row]))  # fmt: skip

    def recommendations(self, row: int) -> list[Recommendation]:
        """The row's recommendations, in the order the rules give them."""
        if not self.any[row]:
            return []
        f, params = self.frame, self.params
        ch, flow = f.channels[row], f.flow(row)
        assert ch is not None
        found: list[Recommendation] = []
        if self.cheap[row]:
            found.append(_cheap_liquidity(ch, flow, self.median_ppm, params))
        if self.capacity[row]:
            found.append(_increase_capacity(ch, flow, self.refill(row)))
        if self.outbound[row]:
            source, amount = self.picked[row]
            found.append(_rebalance_outbound(ch, flow, f.stats, params, self.refill(row),
                                             None if source is None else f.channels[source], amount))  # fmt: skip
        if self.drain[row]:
            found.append(_drain(ch, int(self.net[row]), f.stats.window_s, self.median_ppm, params))
        if self.lower[row]:
            offered = int(self.offered[row]) if flow.offered_fee_count else None
            found.append(_lower_fees(ch, flow, offered, int(self.lower_ppm[row])))
        if self.investigate[row]:
            found.append(_investigate(ch, flow))
        if row in self.inbound:
            target, amount = self.inbound[row]
            found.append(_rebalance_inbound(ch, int(f.inbound_volume[row]), f.ids[target], amount))
        return found

    def in_order(self) -> list[int]:
        """The rows with recommendations in :func:`recommend`'s order: the starved ones as matched, then the rest
        by id."""
        first = [r for r in self.starved if self.cheap[r] or self.capacity[r] or self.outbound[r]]
        seen = set(first)
        rest = np.flatnonzero(self.any)
        rest = rest[np.argsort(self.frame.rank[rest])].tolist()
        return first + [r for r in rest if r not in seen]


def plan(f: Frame, params: AnalyzerParams) -> Plan:
    """Decide every rule for every channel of the frame, and match the rebalances."""
    if params.min_failures < 1:
        params = replace(params, min_failures=1)
    n, out, mf = len(f.ids), f.out, params.min_failures
    eligible = f.policy  # a channel whose own policy the node cannot tell gets no fee-based advice
    fees = f.fee_ppm[eligible].tolist()
    median_ppm = statistics.median(fees) if fees else 0.0
    ratio = f.balance_ratio()
    surplus = f.surplus(params.target_ratio)
    liquidity = out[:, C["failed_liquidity"]]
    missed_liquidity = out[:, C["missed_liquidity_msat"]]
    here = failed_here(out)

    # Liquidity failures, the most missed fees first, so the best sources go where they earn most.
    starved_mask = eligible & (liquidity >= mf)
    rows = np.flatnonzero(starved_mask)
    starved = rows[np.lexsort((f.rank[rows], -missed_liquidity[rows]))].tolist()
    largest = out[:, C["max_failed_liquidity_msat"]]
    carry_limit = np.maximum(f.capacity - f.reserve - f.commit_fee, 0)
    shortfall = np.where(f.has_spendable, np.maximum(largest - f.spendable, 0),
                         np.maximum(largest + f.reserve + f.commit_fee - f.local, 0))  # fmt: skip
    carry = np.where(largest <= carry_limit, shortfall, 0)
    below = starved_mask & (ratio < params.target_ratio)
    demand = np.zeros(n, dtype=np.int64)
    below_rows = np.flatnonzero(below)
    if len(below_rows):
        window_s, horizon_s = f.stats.window_s, params.demand_horizon_s
        demand[below_rows] = [
            _demand(v, liq, h, window_s, horizon_s)
            for v, liq, h in zip(out[below_rows, C["missed_volume_msat"]].tolist(), liquidity[below_rows].tolist(),
                                 here[below_rows].tolist(), strict=True)
        ]  # fmt: skip
    # Enough for a horizon of the demand that failed, never beyond the target share.
    target_need = np.maximum(_int(params.target_ratio * f.total) - f.local, 0)
    ratio_need = np.where(below, np.minimum(target_need, demand), 0)
    need = np.maximum(carry, ratio_need)
    cheap = starved_mask & ((missed_liquidity <= 0) | ((need > 0) & (f.fee_ppm < params.min_refill_fee_ppm)))
    # HTLCs larger than the channel could ever send need capacity; the rest a refill, when one is missing.
    capacity = starved_mask & ~cheap & (largest > carry_limit)
    outbound = starved_mask & ~cheap & (need > 0)

    sources = _sources(f, params, outbound, surplus)
    picked: dict[int, tuple[int | None, int]] = {}
    targets = [r for r in starved if outbound[r]]
    for r, at_least, wanted in zip(targets, carry[targets].tolist(), need[targets].tolist(), strict=True):
        # The source must spare at least what lets the failed HTLCs through; beyond that, what it has.
        source, spare = sources.pick(r, at_least=at_least)
        amount = min(wanted, spare)
        sources.need_left[r] = wanted - amount
        if source is not None:
            sources.take(source, amount)
        picked[r] = (source, amount)

    net = out[:, C["volume_msat"]] - f.inbound_volume
    drain = (eligible & ~cheap & (f.capacity > 0) & (net >= params.drain_share * f.capacity)
             & (f.fee_ppm <= median_ppm))  # fmt: skip
    real = out[:, C["failed_fee"]] - out[:, C["failed_fee_stale"]]
    count = out[:, C["offered_fee_count"]]
    offered = out[:, C["offered_fee_ppm_sum"]] // np.maximum(count, 1)
    lower_ppm = np.where((count > 0) & (offered < f.fee_ppm), offered, _int(f.fee_ppm * (1 - params.lower_step)))
    lower = eligible & ~cheap & ~drain & (real >= mf) & (liquidity <= real) & (lower_ppm < f.fee_ppm)
    other = out[:, C["failed_other"]]
    investigate = eligible & (other >= mf) & (2 * other >= here)

    inbound: dict[int, tuple[int, int]] = {}
    asks = eligible & (ratio >= params.full_ratio) & (f.inbound_volume > 0)
    asks[list(sources.used)] = False
    ask_rows = np.flatnonzero(asks)
    for r in ask_rows[np.argsort(f.rank[ask_rows])].tolist():
        target = sources.first_needy(r)
        if target is None:
            continue
        amount = min(int(surplus[r]), sources.need_left[target])
        if amount > 0:
            sources.need_left[target] -= amount
            inbound[r] = (target, amount)  # type: ignore[assignment]
    any_ = cheap | capacity | outbound | drain | lower | investigate
    any_[list(inbound)] = True
    return Plan(f, params, median_ppm, starved, cheap, capacity, outbound, drain, lower, investigate, any_, largest,
                carry_limit, carry, ratio_need, net, offered, lower_ppm, picked, inbound)  # fmt: skip


def _sources(f: Frame, params: AnalyzerParams, targets: np.ndarray, surplus: np.ndarray) -> _Sources:
    """Active channels with their surplus, and the pairs that failed for liquidity into each target."""
    is_source = f.policy & f.active
    rows = np.flatnonzero(is_source)
    left = dict(zip(rows.tolist(), surplus[rows].tolist(), strict=True))
    feeders: dict[int, list[tuple[int, int]]] = {}
    missed = f.pairs[:, P["missed_liquidity_msat"]]
    fed = np.flatnonzero(missed > 0)
    out_rows = f.pair_rows(fed, 1)
    into = out_rows >= 0
    into[into] = targets[out_rows[into]]
    fed, out_rows = fed[into], out_rows[into]
    in_rows = f.pair_rows(fed, 0)
    by_source = in_rows >= 0
    by_source[by_source] = is_source[in_rows[by_source]]
    for m, i, o in zip(missed[fed[by_source]].tolist(), in_rows[by_source].tolist(), out_rows[by_source].tolist(),
                       strict=True):  # fmt: skip
        feeders.setdefault(o, []).append((m, i))
    return _Sources(left, f.texts, feeders)


def _rebalance_outbound(ch: Channel, flow: Flow, stats: FlowStats, params: AnalyzerParams, refill: _Refill,
                        src: Channel | None, amount: int) -> Recommendation:  # fmt: skip
    """``src`` and ``amount``: the source matched (None when no channel could spare enough) and what it moves."""
    need = refill.need_msat
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
    if src is None:
        spare = f" {_sats(refill.carry_msat)} sats" if refill.carry_msat else " local balance"
        reason = f"{lost}; none of our channels can spare{spare}, so only new liquidity would help."
        return Recommendation(K.REBALANCE_OUTBOUND, ch.channel_id, reason, evidence, target_channel=ch.channel_id,
                              amount_msat=need)  # fmt: skip
    source = src.channel_id
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


def _drain(ch: Channel, net: int, window_s: float, median_ppm: float, params: AnalyzerParams) -> Recommendation:
    """A channel whose net outflow ``net`` (msat) in the window passed ``drain_share`` of its capacity."""
    fee_ppm = ch.local_policy.fee_ppm
    new_ppm = max(round(fee_ppm * (1 + params.raise_step)), fee_ppm + 10, round(median_ppm))
    days = window_s / 86_400
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


def _lower_fees(ch: Channel, flow: Flow, offered: int | None, new_ppm: int) -> Recommendation:
    """Fee failures not explained by a change of ours: lower to ``new_ppm`` (what senders offered, or a step)."""
    real = flow.failed_fee - flow.failed_fee_stale
    fee_ppm = ch.local_policy.fee_ppm
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


def _investigate(ch: Channel, flow: Flow) -> Recommendation:
    reason = (
        f"{flow.failed_other:,} forwards failed here for reasons other than liquidity or fees "
        "(HTLC limits, CLTV, a disabled channel or an offline peer); check the channel and the peer."
    )
    return Recommendation(K.INVESTIGATE, ch.channel_id, reason, {"failed_other": flow.failed_other})


def _rebalance_inbound(ch: Channel, brought_in: int, target: ChannelId, amount: int) -> Recommendation:
    """A full channel that brought traffic in: move ``amount`` of its surplus out into ``target``, still starved."""
    ratio = ch.balance_ratio or 0.0
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
    found = plan(Frame.build(stats, channels, counted=False), params)
    return {found.frame.ids[row]: found.recommendations(row) for row in found.in_order()}
