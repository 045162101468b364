"""The analyzer against the simulator's ground truth (issue [C]: these are the acceptance tests).

The simulator knows what no real node can: the fee every forward refused at our
node would have paid. Forwards reach the store exactly as a real adapter delivers
them (``SimNode.attach(lens.monitor)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lnlens_core.analyzer import AnalyzerParams
from lnlens_core.config import LensConfig
from lnlens_core.domain import FeeUpdate, ForwardStatus, RecommendationKind
from lnlens_core.lens import Lens
from lnlens_core.opportunities import run_analysis
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store

sim = pytest.importorskip("lnlens_sim.scenario")

HOUR = 3_600


def simulated(tmp_path: Path, **settings):
    node = sim.build(sim.SimSettings(network="synthetic", nodes=150, seed=5, payments_per_hour=4_000, **settings))
    lens = Lens(LensConfig(data_dir=tmp_path, db_path=tmp_path / "db.sqlite3"), store=Store(tmp_path / "db.sqlite3"),
                clock=node.clock, pm=get_plugin_manager(load_entrypoints=False), backend=node)  # fmt: skip
    lens.monitor.observe_channels(node.list_channels())
    node.attach(lens.monitor)
    return node, lens


def top_earning_out_channel(node):
    """The channel whose outgoing forwards earned the most so far."""
    fees = {}
    for e in node.events:
        if e.status is ForwardStatus.SETTLED and e.out_channel is not None:
            fees[e.out_channel] = fees.get(e.out_channel, 0) + (e.fee_msat or 0)
    return max(fees, key=lambda c: (fees[c], str(c)))


def test_missed_revenue_matches_the_simulators_ground_truth(tmp_path):
    node, lens = simulated(tmp_path)
    node.run(8 * HOUR)
    everything = AnalyzerParams(min_failures=0, min_missed_msat=0)
    result = run_analysis(lens, since_s=9 * HOUR, params=everything, save=False)
    truth = sum(t.fee_at_policy_msat for t in node.ground_truths() if t.refused_here)
    missed = sum(o.missed_revenue_msat for o in result.opportunities)
    assert truth > 0, "the scenario must refuse some forwards at our node"
    assert abs(missed - truth) <= 0.01 * truth
    refused = sum(1 for t in node.ground_truths() if t.refused_here)
    assert sum(o.failed_liquidity + o.failed_fee + o.failed_other for o in result.opportunities) == refused


def test_a_channel_drained_by_design_is_the_top_rebalance_opportunity(tmp_path):
    node, lens = simulated(tmp_path)
    node.run(4 * HOUR)
    target = top_earning_out_channel(node)
    e = node.out_edge(target)
    net = node.network
    net.bal[e ^ 1] += net.bal[e]  # push all our balance to the peer's side: the channel is drained
    net.bal[e] = 0
    lens.monitor.observe_channels(node.list_channels())
    node.run(8 * HOUR)
    result = run_analysis(lens, since_s=8 * HOUR, save=False)
    top = result.opportunities[0]
    assert top.channel_id == target and top.failed_liquidity > 0 and top.cause == "liquidity"
    (rec,) = [r for r in top.recommendations if r.kind is RecommendationKind.REBALANCE_OUTBOUND]
    channel = next(c for c in node.list_channels() if c.channel_id == target)
    source = next(c for c in node.list_channels() if c.channel_id == rec.source_channel)
    # sensible: something, no more than the target needs to reach half, no more than the source can spare
    assert 0 < rec.amount_msat <= channel.capacity_msat // 2 - channel.local_balance_msat
    assert rec.amount_msat <= source.local_balance_msat - source.capacity_msat // 2
    assert rec.target_channel == target and rec.source_channel != target


def test_a_fee_raised_far_above_the_neighbours_shows_fee_failures_and_lower_fees(tmp_path):
    # Gossip about our change takes 6 h to reach senders (rate-limited updates, infrequent syncs);
    # the analyzer blames the first hour of fee failures on propagation and the rest on the fee.
    node, lens = simulated(tmp_path, gossip_delay_s=6 * HOUR)
    node.run(4 * HOUR)
    target = top_earning_out_channel(node)
    old = next(c for c in node.list_channels() if c.channel_id == target).local_policy
    node.set_channel_policy(target, FeeUpdate(fee_ppm=old.fee_ppm * 20 + 5_000))
    lens.monitor.observe_channels(node.list_channels())
    node.run(5 * HOUR)
    result = run_analysis(lens, since_s=5 * HOUR, save=False)
    opp = next(o for o in result.opportunities if o.channel_id == target)
    assert opp.failed_fee >= 3
    (rec,) = [r for r in opp.recommendations if r.kind is RecommendationKind.LOWER_FEES]
    assert rec.proposed_fee_ppm < old.fee_ppm * 20 + 5_000
    assert rec.evidence["failed_fee_while_propagating"] < opp.failed_fee
