"""Suggestions: who gives to whom, how much, with which budget and confidence."""

from __future__ import annotations

import numpy as np

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.suggestions import ORIGIN, rebalance_suggestions
from lnlens_core.testing import make_channel

NOW = 1_770_000_000.0
T, S, Q, N = (ChannelId(i, 1, 0) for i in (1, 2, 3, 4))
CAP = 10_000_000_000
TABLE = [{"gap_min": 0.1, "gap_max": 0.2, "n": 50, "win_rate": 0.8}]


def _channels():
    return [
        make_channel(T, capacity_msat=CAP, local_ratio=0.1, fee_ppm=1000),  # needs local balance
        make_channel(S, capacity_msat=CAP, local_ratio=0.9, fee_ppm=100),  # the model wants it lower
        make_channel(Q, capacity_msat=CAP, local_ratio=0.6, fee_ppm=100),  # left where it is
        make_channel(N, capacity_msat=CAP, local_ratio=0.5, fee_ppm=100),  # no prediction
    ]


def _out(t, amount, htlc):
    return HtlcEvent(
        in_channel=S,
        in_msat=amount + 10,
        status=ForwardStatus.SETTLED,
        received_time=t,
        in_htlc_id=htlc,
        out_channel=T,
        out_msat=amount,
        fee_msat=10,
    )


def test_pairs_need_with_spare_and_prices_the_backtest():
    # T tried to send 1.5 BTC-ish worth over the last day; from 10 % local it carried only part of it.
    recent = [_out(NOW - 3_600 * k, 1_500_000_000, k) for k in range(1, 4)]
    predicted = np.array([0.25, 0.5, 0.6, np.nan])
    recs = rebalance_suggestions(
        _channels(), predicted, recent, now=NOW, confidence_table=TABLE, model_version="m-1", max_amount_msat=CAP
    )
    assert len(recs) == 1
    rec = recs[0]
    assert (rec.source_channel, rec.target_channel, rec.origin) == (S, T, ORIGIN)
    assert rec.amount_msat == int(0.15 * CAP)  # T's need; S can spare 0.4
    assert rec.evidence["confidence"] == 0.8  # gap 0.15 falls in the 0.1-0.2 bin
    # From 10 % (1e9 msat) T carried none of the three 1.5e9 payments; from 25 % it carries the first (at 1000 ppm).
    # S brought them in: at 90 % local its remote side (1e9) could not take one; at 75 % it takes the first (100 ppm).
    assert rec.evidence["expected_gain_msat"] == 1_500_000_000 * 1000 // 1_000_000 + 1_500_000_010 * 100 // 1_000_000
    assert rec.evidence["max_fee_msat"] == rec.evidence["expected_gain_msat"]


def test_amount_is_clamped_and_nothing_without_a_source():
    predicted = np.array([0.9, 0.9, 0.6, np.nan])  # only T needs; S and Q had no demand: they may give down to 20 %
    recs = rebalance_suggestions(_channels(), predicted, [], now=NOW, max_amount_msat=123_000)
    assert [r.amount_msat for r in recs] == [123_000]
    assert recs[0].source_channel == S and "confidence" not in recs[0].evidence  # S has the most to spare
    none = rebalance_suggestions(_channels()[:1], np.array([0.9]), [], now=NOW)
    assert none == []
