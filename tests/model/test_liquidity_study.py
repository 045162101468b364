"""models/train/liquidity_study.py's demand-optimal target (issue 15, item 4): the ratio that would have carried the
most of the realised demand, with no route cost, row for row beside the shipped target's samples."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.opportunities.flows import PolicyBook
from lnlens_core.testing import make_channel

pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "train"))

from liquidity_study import demand_samples  # noqa: E402
from simdata import Run, Simulated  # noqa: E402

NOW = 1_770_000_000.0
EMPTY, FULL, IDLE, CALM = (ChannelId(i, 1, 0) for i in (1, 2, 3, 4))
CAP = 10_000_000_000


def _forward(t, out, amount, *, fee, refused=False, htlc=0):
    return HtlcEvent(
        in_channel=FULL,
        in_msat=amount + fee,
        status=ForwardStatus.LOCAL_FAILED if refused else ForwardStatus.SETTLED,
        received_time=t,
        in_htlc_id=htlc,
        out_channel=out,
        out_msat=amount,
        fee_msat=fee,
        failure_reason=FailureReason.INSUFFICIENT_BALANCE if refused else None,
    )


def _sim(fee: int) -> Simulated:
    channels = [
        make_channel(EMPTY, capacity_msat=CAP, local_ratio=0.0),  # refuses two 20,000-sat HTLCs: 0.2 % of it
        make_channel(FULL, capacity_msat=CAP, local_ratio=0.9),  # brings them in and settles the third
        make_channel(IDLE, capacity_msat=CAP, local_ratio=0.4),  # no demand: no sample
        make_channel(CALM, capacity_msat=CAP, local_ratio=0.5),  # carries all its demand where it is
    ]
    events = [
        _forward(NOW + 60, EMPTY, 20_000_000, fee=fee, refused=True, htlc=1),
        _forward(NOW + 120, EMPTY, 20_000_000, fee=fee, refused=True, htlc=2),
        _forward(NOW + 180, CALM, 30_000_000, fee=fee, htlc=3),
    ]
    book = PolicyBook()
    book.observe_channels(channels, NOW)
    run = Run("0" * 66, 1, hours=7.0, warmup_hours=0.0)
    return Simulated(run, NOW, [(NOW, channels)], events, book, {}, {})


def test_the_demand_target_moves_where_the_channel_refused_even_for_no_fee():
    sim = _sim(fee=0)
    net, dem = sim.samples(6 * 3_600), demand_samples(sim, 6 * 3_600)
    assert len(net) == len(dem) == 3  # EMPTY, FULL, CALM; IDLE had no demand
    np.testing.assert_array_equal(net.x, dem.x)
    np.testing.assert_array_equal(net.curves, dem.curves)  # the money view (route costs) is kept for the metrics
    assert net.y.tolist() == net.current.tolist()  # no fee at stake: the shipped target stays everywhere
    # The smallest candidate move that carries both HTLCs: +0.5 % of 10,000,000 sats holds 2 × 20,000 sats.
    assert dem.y.tolist() == pytest.approx([0.005, 0.9, 0.5])


def test_the_demand_target_stays_where_everything_fitted():
    sim = _sim(fee=5_000)
    sim.events[:] = [e for e in sim.events if e.out_channel == CALM]
    dem = demand_samples(sim, 6 * 3_600)
    assert dem.y.tolist() == dem.current.tolist()
