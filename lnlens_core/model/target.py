"""The liquidity model's target: the local balance ratio that pays most, net of reaching it.

For one channel, take the forwards that actually came to it over the *next*
``TARGET_HORIZON_S`` seconds, in arrival order: every HTLC that tried to leave by it
(settled, or refused here for lack of balance) and every HTLC that arrived over it
and settled. Replay that sequence against the channel starting from local balance
``r × (local + remote)``: one leaving needs the local side to hold its amount, moves it
to the remote side and earns its fee; one arriving needs the remote side to hold it and
moves it back. The *revenue* at ``r`` is the fees of the leaving HTLCs that fitted
(:func:`revenue_curve`).

Reaching ``r`` from the current ratio costs a circular rebalance of ``|r − current| ×
(local + remote)``: priced at the channel's route cost rate, in ppm of the amount moved —
into it (refilling) or out of it (draining), quoted on the routes actually available
(the simulator's :meth:`~lnlens_sim.node.SimNode.quote_rebalance`, public fees only) or,
where nothing can quote, :data:`DEFAULT_ROUTE_COST_PPM`. Each move is charged the whole
route as if it were done alone. Staying (the grid point nearest the current ratio) costs
nothing. The *net value* at ``r`` is revenue − cost (:func:`net_value_curve`), and the
target is the ratio on :data:`RATIO_GRID` with the highest net value, the current ratio
when staying is among the best, else the best nearest to it (:func:`optimal_ratio`).

Only the channel's own balance is replayed: the other channel of each forward is
taken as it was. Demand that never reached us (a sender who saw our channel could
not take it, or a peer without the balance to send to us) is not in the sequence.
docs/MODEL.md states these assumptions.

Pure numpy, no model library: the store-based learner and the training code call
the same functions.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent

__all__ = [
    "RATIO_GRID",
    "MOVES",
    "TARGET_HORIZON_S",
    "DEFAULT_ROUTE_COST_PPM",
    "RouteCost",
    "demand",
    "demand_fees",
    "carried_volume",
    "revenue_curve",
    "move_cost",
    "net_value_curve",
    "optimal_ratio",
    "candidates",
    "best_move",
    "score_at",
    "targets",
]

RATIO_GRID = np.linspace(0.0, 1.0, 41)
_STEPS = (0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MOVES = np.array([-s for s in reversed(_STEPS)] + [0.0] + list(_STEPS))
"""The moves (shares of local + remote) a target chooses among: staying, and finer steps near it."""
TARGET_HORIZON_S = 6 * 3_600
DEFAULT_ROUTE_COST_PPM = 200
"""The route cost rate assumed where no route can be quoted (a node's own store): the median of the circular
routes the simulator quoted for ``liquidity-default-2``'s training channels (196 ppm), rounded (docs/MODEL.md)."""


@dataclass(frozen=True, slots=True)
class RouteCost:
    """What moving balance costs on one channel, in ppm of the amount moved: into it, out of it."""

    into_ppm: float = DEFAULT_ROUTE_COST_PPM
    out_ppm: float = DEFAULT_ROUTE_COST_PPM


def _leaving_fee(e: HtlcEvent) -> int:
    if e.fee_msat is not None:
        return max(int(e.fee_msat), 0)
    if e.out_msat is not None:
        return max(e.in_msat - e.out_msat, 0)
    return 0


def demand_fees(
    events: Iterable[HtlcEvent], channels: Iterable[ChannelId], since: float, until: float
) -> dict[ChannelId, tuple[np.ndarray, np.ndarray]]:
    """Per channel, (signed amounts, fees) in arrival order: the sequence :func:`demand` gives, with the fee
    each leaving HTLC paid or offered (0 for arriving ones).

    The entries are gathered in typed arrays (8 bytes a field), not a Python tuple each: a day of a busy node's
    forwards held as tuples was ~30 MB of a daemon's peak, growing with the day's traffic (issue 16). Equal
    arrival times keep the order the events came in (a stable sort)."""
    wanted = set(channels)
    index = {cid: i for i, cid in enumerate(wanted)}
    at, times, amounts, fees = array("q"), array("d"), array("q"), array("q")
    for e in events:
        if not since <= e.received_time < until:
            continue
        settled = e.status is ForwardStatus.SETTLED
        refused_balance = e.failure_reason is FailureReason.INSUFFICIENT_BALANCE
        if e.out_channel in wanted and (settled or refused_balance):
            at.append(index[e.out_channel])
            times.append(e.received_time)
            amounts.append(e.out_msat if e.out_msat is not None else e.in_msat)
            fees.append(_leaving_fee(e))
        if settled and e.in_channel in wanted:
            at.append(index[e.in_channel])
            times.append(e.received_time)
            amounts.append(-e.in_msat)
            fees.append(0)
    channel_of = np.frombuffer(at, dtype=np.int64)  # an empty buffer gives an empty array
    order = np.lexsort((np.frombuffer(times, dtype=np.float64), channel_of))
    signed, paid = np.frombuffer(amounts, dtype=np.int64)[order], np.frombuffer(fees, dtype=np.int64)[order]
    bounds = np.searchsorted(channel_of[order], np.arange(len(index) + 1))
    return {cid: (signed[bounds[i]:bounds[i + 1]], paid[bounds[i]:bounds[i + 1]])
            for cid, i in index.items()}  # fmt: skip


def demand(events: Iterable[HtlcEvent], channels: Iterable[ChannelId], since: float, until: float) -> dict:
    """Signed amounts per channel in arrival order: positive leaves by it, negative arrives over it.

    Counts forwards received in ``[since, until)``: leaving ones that settled or were
    refused here for balance, arriving ones that settled. Downstream failures, fee and
    other refusals say nothing about this channel's balance and are left out.
    """
    return {cid: signed for cid, (signed, _) in demand_fees(events, channels, since, until).items()}


def _replay(signed: np.ndarray, weights: np.ndarray, total_msat: int, grid: np.ndarray) -> np.ndarray:
    local = np.floor(grid * total_msat).astype(np.int64)
    got = np.zeros(len(grid), dtype=np.int64)
    for amount, weight in zip(signed.tolist(), weights.tolist(), strict=True):
        if amount > 0:
            fits = local >= amount
        else:
            fits = (total_msat - local) >= -amount
        local = local - amount * fits
        got += weight * fits
    return got


def carried_volume(signed: np.ndarray, total_msat: int, grid: np.ndarray = RATIO_GRID) -> np.ndarray:
    """The volume (msat) each starting ratio on ``grid`` would have carried through the sequence."""
    return _replay(signed, np.abs(signed), total_msat, grid)


def revenue_curve(signed: np.ndarray, fees: np.ndarray, total_msat: int, grid: np.ndarray = RATIO_GRID) -> np.ndarray:
    """The fees (msat) each starting ratio on ``grid`` would have earned through the sequence."""
    return _replay(signed, np.where(signed > 0, fees, 0), total_msat, grid)


def candidates(current: float | np.ndarray) -> np.ndarray:
    """The ratios a target chooses among: ``current`` moved by each of :data:`MOVES`, clipped to [0, 1]
    (one row per current ratio when given several)."""
    return np.clip(np.asarray(current, dtype=np.float64)[..., None] + MOVES, 0.0, 1.0)


def move_cost(total_msat: int, current: float, cost: RouteCost, grid: np.ndarray) -> np.ndarray:
    """What reaching each ratio on ``grid`` from ``current`` costs (msat); 0 where it is ``current``."""
    delta = (np.asarray(grid, dtype=np.float64) - current) * total_msat
    return np.where(delta > 0, delta * cost.into_ppm, -delta * cost.out_ppm) / 1_000_000


def net_value_curve(
    signed: np.ndarray, fees: np.ndarray, total_msat: int, current: float, cost: RouteCost
) -> np.ndarray:
    """Revenue minus the cost of reaching each of the :func:`candidates` (msat, float)."""
    grid = candidates(current)
    return revenue_curve(signed, fees, total_msat, grid) - move_cost(total_msat, current, cost, grid)


def best_move(curve: np.ndarray) -> int:
    """The index into :data:`MOVES` of the best net value: staying when it is among the best, else the
    smallest best move (the cheaper direction first on a tie)."""
    best = curve.max()
    stay = len(MOVES) // 2
    if curve[stay] >= best:
        return stay
    winners = np.flatnonzero(curve == best)
    return int(winners[np.abs(MOVES[winners]).argmin()])


def optimal_ratio(curve: np.ndarray, current: float, grid: np.ndarray = RATIO_GRID) -> float | None:
    """The best ratio nearest ``current`` (``current`` itself when its grid point is among the best);
    None when nothing would have been carried at any ratio (a curve that is nowhere positive)."""
    best = curve.max()
    if best <= 0:
        return None
    if curve[int(np.abs(grid - current).argmin())] == best:
        return float(current)
    winners = grid[curve == best]
    return float(winners[int(np.abs(winners - current).argmin())])


def score_at(curve: np.ndarray, ratio: float, grid: np.ndarray = RATIO_GRID) -> float:
    """The curve's value at the grid point nearest ``ratio``."""
    return curve[int(np.abs(grid - ratio).argmin())].item()


def targets(
    events: Sequence[HtlcEvent],
    totals: Mapping[ChannelId, tuple[int, float]],
    since: float,
    horizon_s: float = TARGET_HORIZON_S,
    costs: Mapping[ChannelId, RouteCost] | None = None,
) -> dict[ChannelId, tuple[float | None, np.ndarray]]:
    """(target ratio, net-value curve over :func:`candidates`) per channel over ``[since, since + horizon_s)``.

    The target is None for a channel that saw no balance-relevant demand in the window (nothing to learn).

    :param totals: per channel, (local + remote balance in msat, current local ratio).
    :param costs: per channel, its route cost rates; :class:`RouteCost` defaults for channels not in it.
    """
    seqs = demand_fees(events, totals, since, since + horizon_s)
    costs = costs or {}
    out = {}
    for cid, (total, current) in totals.items():
        signed, fees = seqs[cid]
        curve = net_value_curve(signed, fees, total, current, costs.get(cid, RouteCost()))
        target = float(candidates(current)[best_move(curve)]) if len(signed) else None
        out[cid] = (target, curve)
    return out
