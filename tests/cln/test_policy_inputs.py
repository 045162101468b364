"""What the fee engine needs beyond the NodeBackend protocol, from lightningd: peer size from gossip
(node.* criteria), chain sync (onchain.synced_to_chain) and on-chain fee estimates (onchain.*, onchain_fee)."""

from __future__ import annotations

import pytest
from lnlens_cln.standin import StandIn, sim_node

from lnlens_core.fees.api import plan_or_apply


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


def test_sync_and_fee_estimates(standin):
    backend = standin.backend()
    assert backend.synced_to_chain() is True
    standin.rpc.sync_warning = "Bitcoind is not up-to-date with network."
    assert backend.synced_to_chain() is False
    assert backend.onchain_fee_rates([2, 6]) == {}  # no estimates yet: those criteria keep their channels
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


@pytest.fixture
def lens_on(config, store, pm):
    """A Lens on the given backend, timed by the wall clock like the plugin."""
    from lnlens_core.clock import SystemClock
    from lnlens_core.lens import Lens

    return lambda backend: Lens(config, store=store, clock=SystemClock(), pm=pm, backend=backend)
