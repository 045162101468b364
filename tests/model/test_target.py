"""The replay target: carried volume, the nearest best ratio, what counts as demand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.model.target import (
    MOVES,
    RATIO_GRID,
    RouteCost,
    candidates,
    carried_volume,
    demand,
    demand_fees,
    move_cost,
    optimal_ratio,
    revenue_curve,
    targets,
)

A, B = ChannelId(1, 1, 0), ChannelId(2, 2, 0)


def test_carried_volume_replays_in_order():
    grid = np.array([0.0, 0.5, 1.0])
    # total 100: +60 leaves, then -30 arrives, then +50 leaves
    curve = carried_volume(np.array([60, -30, 50]), 100, grid)
    # r=0: 60 no, -30 needs remote 100 ok (local 30), 50 no -> 30
    # r=0.5: 60 no (50), -30 needs remote 50 ok (local 80), 50 ok -> 80
    # r=1: 60 ok (40), -30 ok (70), 50 ok -> 140
    assert curve.tolist() == [30, 80, 140]


def test_optimal_ratio_is_the_nearest_best_one():
    grid = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    curve = np.array([1, 5, 5, 5, 2])
    assert optimal_ratio(curve, 0.4, grid) == pytest.approx(0.4)  # already among the best: no move
    assert optimal_ratio(curve, 0.05, grid) == pytest.approx(0.25)
    assert optimal_ratio(curve, 0.95, grid) == pytest.approx(0.75)
    assert optimal_ratio(np.zeros(5, dtype=np.int64), 0.3, grid) is None  # no demand: no target


def test_demand_keeps_balance_relevant_forwards_only():
    def ev(t, status, reason=None, htlc=0):
        return HtlcEvent(
            in_channel=B,
            in_msat=1_010,
            status=status,
            received_time=t,
            in_htlc_id=htlc,
            out_channel=A,
            out_msat=1_000,
            fee_msat=10,
            failure_reason=reason,
        )

    events = [
        ev(1, ForwardStatus.SETTLED, htlc=1),
        ev(2, ForwardStatus.LOCAL_FAILED, FailureReason.INSUFFICIENT_BALANCE, htlc=2),
        ev(3, ForwardStatus.FAILED, FailureReason.DOWNSTREAM, htlc=3),
        ev(4, ForwardStatus.LOCAL_FAILED, FailureReason.FEE_INSUFFICIENT, htlc=4),
        ev(99, ForwardStatus.SETTLED, htlc=5),  # outside the window
    ]
    seq = demand(events, [A, B], 0, 50)
    assert seq[A].tolist() == [1_000, 1_000]
    assert seq[B].tolist() == [-1_010]


def _demand_fees_by_tuples(events, channels, since, until):
    """demand_fees as it was written first: a Python list of (time, amount, fee) per channel, sorted by time."""
    seq = {cid: [] for cid in set(channels)}
    for e in events:
        if not since <= e.received_time < until:
            continue
        settled = e.status is ForwardStatus.SETTLED
        if e.out_channel in seq and (settled or e.failure_reason is FailureReason.INSUFFICIENT_BALANCE):
            fee = max(e.fee_msat, 0) if e.fee_msat is not None else max(e.in_msat - e.out_msat, 0)
            seq[e.out_channel].append((e.received_time, e.out_msat, fee))
        if settled and e.in_channel in seq:
            seq[e.in_channel].append((e.received_time, -e.in_msat, 0))
    return {cid: ([a for _, a, _ in sorted(items, key=lambda t: t[0])],
                  [f for _, _, f in sorted(items, key=lambda t: t[0])]) for cid, items in seq.items()}  # fmt: skip


C = ChannelId(3, 3, 0)
_KINDS = [(ForwardStatus.SETTLED, None), (ForwardStatus.LOCAL_FAILED, FailureReason.INSUFFICIENT_BALANCE),
          (ForwardStatus.LOCAL_FAILED, FailureReason.FEE_INSUFFICIENT),
          (ForwardStatus.FAILED, FailureReason.DOWNSTREAM)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B, C]), st.sampled_from([A, B, C]), st.integers(0, 12),
                          st.sampled_from(_KINDS), st.integers(1, 5_000_000),
                          st.one_of(st.none(), st.integers(-5, 900))),
                max_size=40))  # fmt: skip
def test_demand_fees_equal_a_plain_per_channel_sort_with_ties_in_arrival_order(rows):
    # few distinct times: many ties, which must keep the order the events came in
    events = [HtlcEvent(in_channel=i, in_msat=amount + 1_000, status=status, received_time=float(t), in_htlc_id=n,
                        out_channel=o, out_msat=amount, fee_msat=fee, failure_reason=reason)
              for n, (i, o, t, (status, reason), amount, fee) in enumerate(rows)]  # fmt: skip
    got = demand_fees(events, [A, C], 1, 11)
    want = _demand_fees_by_tuples(events, [A, C], 1, 11)
    assert set(got) == set(want) == {A, C}
    for cid, (amounts, fees) in want.items():
        assert got[cid][0].dtype == got[cid][1].dtype == np.int64
        assert got[cid][0].tolist() == amounts and got[cid][1].tolist() == fees


def test_grid_covers_zero_to_one():
    assert RATIO_GRID[0] == 0.0 and RATIO_GRID[-1] == 1.0


def test_revenue_curve_counts_the_fees_of_leaving_htlcs_that_fit():
    grid = np.array([0.0, 0.5, 1.0])
    # total 100: +60 leaves paying 6, -30 arrives (no fee for this channel), +50 leaves paying 5
    earned = revenue_curve(np.array([60, -30, 50]), np.array([6, 0, 5]), 100, grid)
    assert earned.tolist() == [0, 5, 11]


def _ev(t, amount, fee, status=ForwardStatus.SETTLED, reason=None, htlc=0):
    return HtlcEvent(in_channel=B, in_msat=amount + fee, status=status, received_time=t, in_htlc_id=htlc,
                     out_channel=A, out_msat=amount, fee_msat=fee, failure_reason=reason)  # fmt: skip


def test_target_moves_only_where_the_fees_beat_the_route_cost():
    total = 1_000_000_000  # 1M sat, 10 % local: a refused 150k-sat HTLC offering 500 ppm (75,000 msat)
    refused = [_ev(10, 150_000_000, 75_000, ForwardStatus.LOCAL_FAILED, FailureReason.INSUFFICIENT_BALANCE)]
    totals = {A: (total, 0.1)}
    # moving 5 % (50k sat) at 100 ppm costs 5,000 msat and earns 75,000: the smallest move that carries it
    cheap = targets(refused, totals, 0, 100, {A: RouteCost(into_ppm=100, out_ppm=100)})
    assert cheap[A][0] == pytest.approx(0.15)
    # at 2,000 ppm the same move costs 100,000 msat, more than it earns: stay
    dear = targets(refused, totals, 0, 100, {A: RouteCost(into_ppm=2_000, out_ppm=2_000)})
    assert dear[A][0] == pytest.approx(0.1)
    stay = int(np.flatnonzero(MOVES == 0)[0])
    assert dear[A][1][stay] == 0 and dear[A][1].max() == 0
    best = int(np.flatnonzero(np.isclose(candidates(0.1), 0.15))[0])
    assert cheap[A][1][best] == 75_000 - 5_000
    # no demand at all: nothing to learn
    assert targets([], totals, 0, 100)[A][0] is None


def test_move_cost_charges_each_direction_its_own_rate():
    cost = move_cost(1_000, 0.5, RouteCost(into_ppm=1_000_000, out_ppm=500_000), np.array([0.0, 0.5, 1.0]))
    assert cost.tolist() == [250.0, 0.0, 500.0]
