"""The liquidity model's target: a channel's optimal local balance ratio, defined by replay.

For one channel, take the forwards that actually came to it over the *next*
``TARGET_HORIZON_S`` seconds, in arrival order: every HTLC that tried to leave by it
(settled, or refused here for lack of balance) and every HTLC that arrived over it
and settled. Replay that sequence against the channel starting from local balance
``r × (local + remote)``: one leaving needs the local side to hold its amount and
moves it to the remote side; one arriving needs the remote side to hold it and moves
it back. The *carried volume* at ``r`` is the total amount that fitted. The optimal
ratio is the one nearest the channel's *current* ratio among those on :data:`RATIO_GRID`
that carry the most (the current ratio itself when it is already among them): the
smallest move that would have made the channel carry all it could, since every
rebalance costs fees.

Only the channel's own balance is replayed: the other channel of each forward is
taken as it was. Demand that never reached us (a sender who saw our channel could
not take it, or a peer without the balance to send to us) is not in the sequence.
docs/MODEL.md states these assumptions and why the target is learnable.

Pure numpy, no model library: the store-based learner and the training code call
the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent

__all__ = ["RATIO_GRID", "TARGET_HORIZON_S", "demand", "carried_volume", "optimal_ratio", "score_at"]

RATIO_GRID = np.linspace(0.0, 1.0, 41)
TARGET_HORIZON_S = 6 * 3_600


def demand(events: Iterable[HtlcEvent], channels: Iterable[ChannelId], since: float, until: float) -> dict:
    """Signed amounts per channel in arrival order: positive leaves by it, negative arrives over it.

    Counts forwards received in ``[since, until)``: leaving ones that settled or were
    refused here for balance, arriving ones that settled. Downstream failures, fee and
    other refusals say nothing about this channel's balance and are left out.
    """
    wanted = set(channels)
    seq: dict[ChannelId, list[tuple[float, int]]] = {cid: [] for cid in wanted}
    for e in events:
        if not since <= e.received_time < until:
            continue
        settled = e.status is ForwardStatus.SETTLED
        refused_balance = e.failure_reason is FailureReason.INSUFFICIENT_BALANCE
        if e.out_channel in wanted and (settled or refused_balance):
            amount = e.out_msat if e.out_msat is not None else e.in_msat
            seq[e.out_channel].append((e.received_time, amount))
        if settled and e.in_channel in wanted:
            seq[e.in_channel].append((e.received_time, -e.in_msat))
    return {
        cid: np.array([a for _, a in sorted(items, key=lambda t: t[0])], dtype=np.int64) for cid, items in seq.items()
    }


def carried_volume(signed: np.ndarray, total_msat: int, grid: np.ndarray = RATIO_GRID) -> np.ndarray:
    """The volume (msat) each starting ratio on ``grid`` would have carried through the sequence."""
    local = np.floor(grid * total_msat).astype(np.int64)
    carried = np.zeros(len(grid), dtype=np.int64)
    for amount in signed.tolist():
        if amount > 0:
            fits = local >= amount
            local = local - amount * fits
        else:
            fits = (total_msat - local) >= -amount
            local = local - amount * fits
        carried += abs(amount) * fits
    return carried


def optimal_ratio(curve: np.ndarray, current: float, grid: np.ndarray = RATIO_GRID) -> float | None:
    """The best ratio nearest ``current`` (``current`` itself when its grid point is among the best);
    None when nothing would have been carried at any ratio."""
    best = curve.max()
    if best <= 0:
        return None
    if curve[int(np.abs(grid - current).argmin())] == best:
        return float(current)
    winners = grid[curve == best]
    return float(winners[int(np.abs(winners - current).argmin())])


def score_at(curve: np.ndarray, ratio: float, grid: np.ndarray = RATIO_GRID) -> int:
    """The carried volume at the grid point nearest ``ratio``."""
    return int(curve[int(np.abs(grid - ratio).argmin())])


def targets(
    events: Sequence[HtlcEvent],
    totals: Mapping[ChannelId, tuple[int, float]],
    since: float,
    horizon_s: float = TARGET_HORIZON_S,
) -> dict[ChannelId, tuple[float | None, np.ndarray]]:
    """(optimal ratio, carried-volume curve) per channel over ``[since, since + horizon_s)``.

    :param totals: per channel, (local + remote balance in msat, current local ratio).
    """
    seqs = demand(events, totals, since, since + horizon_s)
    out = {}
    for cid, (total, current) in totals.items():
        curve = carried_volume(seqs[cid], total)
        out[cid] = (optimal_ratio(curve, current), curve)
    return out
