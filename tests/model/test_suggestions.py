"""Suggestions: who gives to whom, how much, with which budget and confidence."""

from __future__ import annotations

import numpy as np

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.model.suggestions import ORIGIN, rebalance_suggestions
from lnlens_core.testing import centring_model, make_channel

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


def _out(t, amount, htlc, fee_msat):
    return HtlcEvent(
        in_channel=S,
        in_msat=amount + fee_msat,
        status=ForwardStatus.SETTLED,
        received_time=t,
        in_htlc_id=htlc,
        out_channel=T,
        out_msat=amount,
        fee_msat=fee_msat,
    )


# T tried to send three 1.5e9-msat payments over the last day, each paying 1000 ppm (1.5e6 msat); from 10 % local
# (1e9 msat) it carried none; from 25 % it carries the first. S brought them in (no fee for S).
RECENT = [_out(NOW - 3_600 * k, 1_500_000_000, k, 1_500_000) for k in range(1, 4)]
PREDICTED = np.array([0.25, 0.5, 0.6, np.nan])


def test_pairs_need_with_spare_when_the_gain_beats_the_estimated_route_cost():
    recs = rebalance_suggestions(_channels(), PREDICTED, RECENT, now=NOW, confidence_table=TABLE, model_version="m-1",
                                 max_amount_msat=CAP, cost_ppm=500)  # fmt: skip
    assert len(recs) == 1
    rec = recs[0]
    assert (rec.source_channel, rec.target_channel, rec.origin) == (S, T, ORIGIN)
    assert rec.amount_msat == int(0.15 * CAP)  # T's need; S can spare 0.4
    assert rec.evidence["confidence"] == 0.8  # gap 0.15 falls in the 0.1-0.2 bin
    assert rec.evidence["expected_gain_msat"] == 1_500_000  # the first payment's fee
    assert rec.evidence["route_cost_msat"] == int(0.15 * CAP) * 500 // 1_000_000  # 750,000
    assert rec.evidence["route_cost"] == "estimated"
    assert rec.evidence["expected_net_msat"] == 750_000
    assert rec.evidence["max_fee_msat"] == 1_500_000  # the budget: break even on the backtest
    assert "pay at most 1,500.000 sats" in rec.reason and "estimated at 500 ppm" in rec.reason


def test_no_suggestion_where_the_route_costs_more_than_it_would_earn():
    # at 2000 ppm moving 1.5e9 msat costs 3e6 msat, twice what it would have earned
    assert rebalance_suggestions(_channels(), PREDICTED, RECENT, now=NOW, max_amount_msat=CAP, cost_ppm=2000) == []


def test_a_quote_prices_the_route_and_no_route_means_no_suggestion():
    asked = []

    def quote(source, target, amount):
        asked.append((source, target, amount))
        return 1_000_000 if source == S else None

    recs = rebalance_suggestions(_channels(), PREDICTED, RECENT, now=NOW, max_amount_msat=CAP, quote=quote)
    assert [(r.source_channel, r.evidence["route_cost_msat"], r.evidence["route_cost"]) for r in recs] == [
        (S, 1_000_000, "quoted")
    ]
    assert asked == [(S, T, int(0.15 * CAP))]
    assert rebalance_suggestions(_channels(), PREDICTED, RECENT, now=NOW, quote=lambda *a: None) == []


def test_amount_is_clamped_and_nothing_without_a_gain():
    # Clamped to 1.2e9 msat: T goes from 10 % to 22 % and still carries the first payment.
    recs = rebalance_suggestions(_channels(), PREDICTED, RECENT, now=NOW, max_amount_msat=1_200_000_000, cost_ppm=1)
    assert [r.amount_msat for r in recs] == [1_200_000_000]
    # Without demand in the last day nothing would have been earned: no suggestion, whatever the model says
    # (it once offered a 1,000,000-sat rebalance with 0 expected gain and a 0 budget).
    assert rebalance_suggestions(_channels(), np.array([0.9, 0.1, 0.6, np.nan]), [], now=NOW, cost_ppm=0) == []
    assert rebalance_suggestions(_channels()[:1], np.array([0.9]), RECENT, now=NOW, cost_ppm=0) == []


def test_on_a_simulated_node_suggestions_pay_for_their_quoted_route_and_run_within_budget():
    from lnlens_sim.scenario import SimSettings, build

    from lnlens_core.model.features import LONG_WINDOW_S, compute_features, windows_from_events
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.opportunities.flows import PolicyBook

    node = build(SimSettings(network="synthetic", nodes=150, seed=5, payments_per_hour=4000))
    node.run(12 * 3600)
    now, channels = node.clock.now(), node.list_channels()
    book = PolicyBook()
    book.observe_channels(channels, now)
    recent = [e for e in node.events if now - LONG_WINDOW_S <= e.received_time < now]
    x = compute_features(channels, windows_from_events(recent, book, now), book=book)
    predicted = OnnxModel.load(centring_model(0.5)).predict(x)  # asks to move every channel to 50 %
    recs = rebalance_suggestions(channels, predicted, recent, now=now, quote=node.quote_rebalance)
    assert recs, "this busy node has moves that pay"
    for rec in recs:
        ev = rec.evidence
        quoted = node.quote_rebalance(rec.source_channel, rec.target_channel, rec.amount_msat)
        assert ev["route_cost"] == "quoted" and ev["route_cost_msat"] == quoted < ev["expected_gain_msat"]
        assert ev["max_fee_msat"] == ev["expected_gain_msat"] == ev["expected_net_msat"] + quoted
        done = node.rebalance(rec.source_channel, rec.target_channel, rec.amount_msat, max_fee_msat=ev["max_fee_msat"])
        # the quote reads public fees only: a hop may lack the balance (then another route, or none, is tried)
        assert done.fee_msat <= ev["max_fee_msat"] if done.ok else done.reason
