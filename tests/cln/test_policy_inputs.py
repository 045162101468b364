"""What the fee engine needs beyond the NodeBackend protocol, from lightningd: peer size from gossip
(node.* criteria), chain sync (onchain.synced_to_chain), on-chain fee estimates (onchain.*, onchain_fee) and
funding fees from bookkeeper (cost). The stand-in answers from the simulator's graph and chain model."""

from __future__ import annotations

import re

import pytest
from lnlens_testing.cln import StandIn, sim_node

from lnlens_core.fees.api import plan_or_apply
from lnlens_core.fees.chargelnd import funding_fee_share_msat


@pytest.fixture
def standin(tmp_path):
    s = StandIn(tmp_path / "regtest", sim_node(history_s=3600))
    yield s
    s.close()


def test_peer_size_comes_from_gossip_about_the_peer(standin):
    backend = standin.backend()
    graph = standin.node.network.graph
    for channel in backend.list_channels():
        node = graph.pubkeys.index(channel.peer_id)
        announced = [e for e in range(2 * graph.n_channels) if graph.src[e] == node and graph.enabled[e]]
        expected = (len(announced), sum(int(graph.capacity_sat[e >> 1]) * 1000 for e in announced))
        assert backend.peer_node_stats(channel.peer_id) == expected
    assert backend.peer_node_stats("02" + "00" * 32) is None


def test_the_htlc_cap_comes_from_listpeerchannels(standin):
    """Core Lightning's backend reports the largest htlcmax setchannel keeps; the simulator's channels agree."""
    sim = {c.channel_id: c for c in standin.node.list_channels()}
    for channel in standin.backend().list_channels():
        assert channel.max_htlc_cap_msat == sim[channel.channel_id].max_htlc_cap_msat
        assert channel.min_htlc_floor_msat is None  # lightningd raises a too-low htlcmin itself


def test_sync_and_fee_estimates(standin):
    backend = standin.backend()
    node, now = standin.node, standin.node.clock.now()
    assert backend.synced_to_chain() is True
    node.chain.synced = False
    assert backend.synced_to_chain() is False
    node.chain.synced = True
    standin.rpc.sync_warning = "Bitcoind is not up-to-date with network."
    assert backend.synced_to_chain() is False
    # lightningd lists estimates for 2, 6, 12 and 100 blocks; a target takes the nearest at or above it
    kw = {b: node.chain.fee_rate_sat_per_kw(b, now) for b in (2, 6, 12, 100)}
    assert backend.onchain_fee_rates([2, 6, 7, 144]) == {2: kw[2] * 4 / 1000, 6: kw[6] * 4 / 1000,
                                                         7: kw[12] * 4 / 1000, 144: kw[100] * 4 / 1000}  # fmt: skip
    standin.rpc.feerates_perkb = {}
    assert backend.onchain_fee_rates([2, 6]) == {}  # no estimates: those criteria keep their channels
    standin.rpc.feerates_perkb = {2: 25_000, 6: 12_000, 12: 8_000}
    assert backend.onchain_fee_rates([1, 6, 7, 144]) == {1: 25.0, 6: 12.0, 7: 8.0, 144: 8.0}


def test_a_node_criterion_and_onchain_fee_decide_on_core_lightning(standin, tmp_path, lens_on):
    backend = standin.backend()
    peers = {c.channel_id: backend.peer_node_stats(c.peer_id)[0] for c in backend.list_channels()}
    threshold = sorted(peers.values())[len(peers) // 2]
    standin.rpc.feerates_perkb = {6: 10_000}
    policy = tmp_path / "fees.ini"
    policy.write_text(
        f"[big-peers]\nnode.min_channels = {threshold}\nstrategy = onchain_fee\n\n"
        "[default]\nstrategy = static\nfee_ppm = 5\n"
    )
    plan = plan_or_apply(lens_on(backend), backend, apply=False, policy_path=policy)["plan"]
    rows = {r["short_channel_id"]: r for r in plan["channels"]}
    assert {r["policy"] for r in rows.values()} == {"big-peers", "default"}, "both branches must be exercised"
    for cid, channels in peers.items():
        row = rows[str(cid)]
        assert row["policy"] == ("big-peers" if channels >= threshold else "default"), row
        if row["policy"] == "big-peers":
            # charge-lnd's formula at 10 sat/vB and the default 0.1 BTC: trunc(0.01 / 0.1 * 223 * 10) = 222 ppm
            assert row["error"] is None and row["proposed"]["fee_ppm"] == 222


def _batch_seed() -> int:
    for seed in range(1, 60):
        if any(len(tx.outputs) > 1 for tx in sim_node(history_s=3600, seed=seed).chain.wallet_transactions()):
            return seed
    raise AssertionError("no seed in 1..59 gives our node a batch open")


def test_cost_charges_the_funding_fee_bookkeeper_recorded_and_shares_a_batch(tmp_path, lens_on):
    standin = StandIn(tmp_path / "batch", sim_node(history_s=3600, seed=_batch_seed()))
    try:
        backend, chain = standin.backend(), standin.node.chain
        policy = tmp_path / "cost.ini"
        policy.write_text("[default]\nstrategy = cost\n")
        plan = plan_or_apply(lens_on(backend), backend, apply=False, policy_path=policy)["plan"]
        rows = {r["short_channel_id"]: r for r in plan["channels"]}
        inspected = [params["account"] for method, params in standin.rpc.calls if method == "bkpr-inspect"]
        channels = {str(c.channel_id): c for c in backend.list_channels()}
        for cid, channel in channels.items():
            ppm = int(re.search(r"-> (\d+) ppm$", rows[cid]["reason"])[1])
            tx = chain.funding_tx(channel.channel_id)
            if tx is None:
                assert not channel.initiator and ppm == 1
                continue
            share = funding_fee_share_msat(tx.fee_sat * 1000, channel.capacity_msat,
                                           [cap * 1000 for _, _, cap in tx.outputs])  # fmt: skip
            assert ppm == int(1_000_000 * share / channel.capacity_msat), rows[cid]
        batch = next(tx for tx in chain.wallet_transactions() if len(tx.outputs) > 1)
        members = [channels[str(cid)] for _, cid, _ in batch.outputs]
        # bookkeeper splits the fee equally per account; lnlens adds the parts back up and shares by capacity
        parts = [standin.rpc.handle("bkpr-inspect", {"account": f"{c.channel_id.to_int():064x}"})["txs"][0]
                 ["fees_paid_msat"] for c in members]  # fmt: skip
        assert sum(parts) == batch.fee_sat * 1000 and len(set(inspected)) >= len(members)
        assert all(backend.funding_fee_msat(c) < batch.fee_sat * 1000 for c in members)
        assert all(backend.funding_fee_msat(c) is None for c in channels.values() if not c.initiator)
    finally:
        standin.close()


def test_without_bookkeeper_cost_keeps_its_channels_with_the_reason(standin, tmp_path, lens_on):
    backend = standin.backend()
    standin.rpc._methods.pop("bkpr-inspect")  # a lightningd started with disable-plugin=bookkeeper
    assert any(c.initiator for c in backend.list_channels()), "the premise: our node opened a channel"
    policy = tmp_path / "cost.ini"
    policy.write_text("[default]\nstrategy = cost\n")
    plan = plan_or_apply(lens_on(backend), backend, apply=False, policy_path=policy)["plan"]
    assert any("bookkeeper plugin" in n and "is not running" in n for n in plan["notes"]), plan["notes"]
    assert any(r["status"] == "error" and "bookkeeper" in r["error"] for r in plan["channels"]), plan["channels"]


@pytest.fixture
def lens_on(config, store, pm):
    """A Lens on the given backend, timed by the wall clock like the plugin."""
    from lnlens_core.clock import SystemClock
    from lnlens_core.lens import Lens

    return lambda backend: Lens(config, store=store, clock=SystemClock(), pm=pm, backend=backend)
