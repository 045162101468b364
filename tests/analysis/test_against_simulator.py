"""The analyzer against the simulator's ground truth (issue [C]: these are the acceptance tests).

The simulator knows what no real node can: the fee every forward refused at our
node would have paid. Forwards reach the store exactly as a real adapter delivers
them (``SimNode.attach(lens.monitor)``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from lnlens_core.config import LensConfig
from lnlens_core.domain import FeeUpdate, ForwardStatus, RecommendationKind
from lnlens_core.lens import Lens
from lnlens_core.opportunities.flows import FlowCounter, PolicyBook
from lnlens_core.opportunities.params import AnalyzerParams
from lnlens_core.opportunities.run import run_analysis
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


def payments_truth(node) -> tuple[int, int]:
    """(lost, recovered) msat by the simulator's own record, once per payment refused at our node.

    A payment is priced at its first HTLC refused here; it is lost unless an HTLC of it settled through us.
    """
    first: dict[int, int] = {}
    carried: set[int] = set()
    for event, truth in zip(node.events, node.ground_truths(), strict=True):
        if truth.refused_here:
            first.setdefault(truth.payment_id, truth.fee_at_policy_msat)
        elif event.status is ForwardStatus.SETTLED:
            carried.add(truth.payment_id)
    lost = sum(fee for pid, fee in first.items() if pid not in carried)
    return lost, sum(fee for pid, fee in first.items() if pid in carried)


def test_missed_revenue_matches_the_simulators_ground_truth(tmp_path):
    node, lens = simulated(tmp_path)
    node.run(8 * HOUR)
    everything = AnalyzerParams(min_failures=0, min_missed_msat=0)
    result = run_analysis(lens, since_s=9 * HOUR, params=everything, save=False)
    per_htlc = sum(t.fee_at_policy_msat for t in node.ground_truths() if t.refused_here)
    lost, recovered = payments_truth(node)
    assert lost > 0 and recovered > 0 and per_htlc > lost + recovered, "retries and recoveries must happen here"
    opportunities = result.opportunities
    assert abs(sum(o.missed_revenue_msat for o in opportunities) - lost) <= 0.01 * lost
    assert abs(sum(o.missed_recovered_msat for o in opportunities) - recovered) <= 0.01 * recovered
    assert abs(sum(o.missed_revenue_htlc_msat for o in opportunities) - per_htlc) <= 0.01 * per_htlc
    refused = sum(1 for t in node.ground_truths() if t.refused_here)
    assert sum(o.failed_liquidity + o.failed_fee + o.failed_other for o in opportunities) == refused


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_missed_revenue_per_payment_is_within_ten_percent_on_seeds_never_tuned_on(seed):
    """Seeds 5-7 and 21-23 were used to choose the matching window and tolerance; these were not."""
    node = sim.build(sim.SimSettings(network="synthetic", nodes=150, seed=seed, payments_per_hour=12_000))
    book = PolicyBook()
    book.observe_channels(node.list_channels(), node.clock.now())
    node.run(3 * HOUR)
    counter = FlowCounter(book, since=0.0, until=node.clock.now() + 1)
    counter.add(node.events)
    flows = counter.stats().out.values()
    lost, recovered = payments_truth(node)
    assert lost > 0
    assert abs(sum(f.missed_revenue_msat for f in flows) - lost) <= 0.10 * lost
    assert abs(sum(f.missed_recovered_msat for f in flows) - recovered) <= 0.10 * max(recovered, 1)
    assert sum(f.missed_revenue_htlc_msat for f in flows) == sum(
        t.fee_at_policy_msat for t in node.ground_truths() if t.refused_here
    )


def test_a_payment_hash_ties_a_payments_htlcs_exactly(tmp_path):
    """Where the backend gives the payment hash (CLN's forward_event), matching uses it, not the heuristic."""
    node = sim.build(sim.SimSettings(network="synthetic", nodes=150, seed=5, payments_per_hour=4_000))
    book = PolicyBook()
    book.observe_channels(node.list_channels(), node.clock.now())
    node.run(4 * HOUR)
    hashed = [
        replace(e, payment_hash=hashlib.sha256(str(t.payment_id).encode()).hexdigest())
        for e, t in zip(node.events, node.ground_truths(), strict=True)
    ]
    store = Store(tmp_path / "db.sqlite3")
    store.ingest_forwards(hashed, source="live")  # the hash survives the store
    counter = FlowCounter(book, since=0.0, until=node.clock.now() + 1)
    counter.add(store.iter_forwards())
    flows = counter.stats().out.values()
    assert (sum(f.missed_revenue_msat for f in flows), sum(f.missed_recovered_msat for f in flows)) == payments_truth(
        node
    )


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
