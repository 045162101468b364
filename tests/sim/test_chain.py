"""The simulator's chain model: fee estimates per confirmation target, our funding transactions (batches
included), and the fee engine's optional inputs the SimNode derives from them."""

from __future__ import annotations

import math

import pytest
from lnlens_sim.chain import BLOCK_S, FEE_FLOOR_SAT_PER_KW, SimChain
from lnlens_sim.scenario import SimSettings, build

from lnlens_core.domain import ChannelId
from lnlens_core.fees.chargelnd import funding_fee_share_msat


def _channels(n: int, opened_every: int = 1) -> list[tuple[ChannelId, int, bool]]:
    return [(ChannelId(700_000, i, 0), 1_000_000 + 250_000 * i, i % opened_every == 0) for i in range(n)]


def _chain(seed: int = 3, n: int = 40, opened_every: int = 1) -> SimChain:
    return SimChain(seed, _channels(n, opened_every), start_time=1_000_000.0, start_height=934_000)


def test_the_same_seed_gives_the_same_chain_whatever_is_asked_in_whatever_order():
    a, b, other = _chain(), _chain(), _chain(seed=4)
    times = [1_000_000.0 + k * 3_600 for k in range(48)]
    forward = {(now, t): a.fee_rate_sat_per_kw(t, now) for now in times for t in (2, 6, 144)}
    backward = {(now, t): b.fee_rate_sat_per_kw(t, now) for now in reversed(times) for t in (144, 6, 2)}
    assert forward == backward
    assert a.wallet_transactions() == b.wallet_transactions()
    assert a.wallet_transactions() != other.wallet_transactions()
    assert forward != {(now, t): other.fee_rate_sat_per_kw(t, now) for now in times for t in (2, 6, 144)}


def test_estimates_fall_with_the_target_never_below_the_relay_floor_and_move_block_by_block():
    chain = _chain()
    start = chain.start_time
    for k in range(0, 2_000, 37):
        now = start + k * BLOCK_S + 1
        rates = [chain.fee_rate_sat_per_kw(t, now) for t in (1, 2, 3, 6, 12, 144, 1008)]
        assert rates[0] == rates[1], "a target below 2 counts as 2, as lnd's wallet does"
        assert rates == sorted(rates, reverse=True) and rates[-1] >= FEE_FLOOR_SAT_PER_KW
        assert chain.fee_rate_sat_per_vbyte(6, now) == rates[3] * 4 / 1000
        # within one block the estimate does not change
        assert chain.fee_rate_sat_per_kw(2, start + k * BLOCK_S + BLOCK_S - 1) == rates[1]
    two_block = [chain.fee_rate_sat_per_kw(2, start + k * BLOCK_S) for k in range(2_000)]
    assert len(set(two_block)) > 100, "the walk must move"
    median = sorted(two_block)[len(two_block) // 2] * 4 / 1000
    assert 3 < median < 20, median  # around the documented 8 sat/vB centre
    assert chain.height(start + 10 * BLOCK_S + 5) == 934_010 and chain.height(start - 50) == 934_000


def test_every_channel_we_opened_has_one_funding_transaction_and_batches_exist():
    chain = _chain(n=60, opened_every=2)
    txs = chain.wallet_transactions()
    funded = [cid for tx in txs for _, cid, _ in tx.outputs]
    opened = [cid for cid, _, we in _channels(60, 2) if we]
    assert sorted(funded) == sorted(opened) and len(set(funded)) == len(funded)
    assert any(len(tx.outputs) > 1 for tx in txs), "batch opens must exist for the fee-sharing to be exercised"
    assert len({tx.txid for tx in txs}) == len(txs)
    for tx in txs:
        n = len(tx.outputs)
        assert [vout for vout, _, _ in tx.outputs] == list(range(n)) and tx.change_vout == n
        assert tx.vsize == 11 + 68 * max(1, n // 2) + 43 * n + 31
        assert 1.0 <= tx.fee_rate_sat_per_vbyte <= 151 and tx.fee_sat == math.ceil(tx.fee_sat) > 0
        for vout, cid, _ in tx.outputs:
            assert chain.funding_tx(cid) is tx and chain.outpoint(cid) == (tx.txid, vout)
    for cid, _, we in _channels(60, 2):
        if not we:
            assert chain.funding_tx(cid) is None
            assert chain.outpoint(cid) is not None and chain.outpoint(cid)[0] not in {tx.txid for tx in txs}


def _node_with_a_batch():
    for seed in range(1, 60):
        node = build(SimSettings(network="synthetic", nodes=60, seed=seed))
        if any(len(tx.outputs) > 1 for tx in node.chain.wallet_transactions()):
            return node
    raise AssertionError("no seed in 1..59 gives our node a batch open")


def test_the_sim_backend_shares_a_batch_fee_by_capacity_and_charges_nothing_for_peer_opened_channels():
    node = _node_with_a_batch()
    channels = {c.channel_id: c for c in node.list_channels()}
    for c in channels.values():
        assert (c.initiator is True) == (node.chain.funding_tx(c.channel_id) is not None)
        if not c.initiator:
            assert node.funding_fee_msat(c) is None
    batch = next(tx for tx in node.chain.wallet_transactions() if len(tx.outputs) > 1)
    members = [channels[cid] for _, cid, _ in batch.outputs]
    shares = [node.funding_fee_msat(c) for c in members]
    capacities = [c.capacity_msat for c in members]
    assert shares == [funding_fee_share_msat(batch.fee_sat * 1000, cap, capacities) for cap in capacities]
    assert all(s < batch.fee_sat * 1000 for s in shares), "charge-lnd's bug: each channel charged the whole fee"
    assert batch.fee_sat * 1000 - len(shares) < sum(shares) <= batch.fee_sat * 1000


def test_the_sim_backend_reports_estimates_and_sync_from_its_chain():
    node = build(SimSettings(network="synthetic", nodes=60, seed=2))
    now = node.clock.now()
    assert node.onchain_fee_rates([2, 6]) == {t: node.chain.fee_rate_sat_per_kw(t, now) * 4 / 1000 for t in (2, 6)}
    assert node.get_info().block_height == node.chain.height(now)
    assert node.synced_to_chain() is True
    node.chain.synced = False
    assert node.synced_to_chain() is False
    same = build(SimSettings(network="synthetic", nodes=60, seed=2))
    assert same.onchain_fee_rates([6]) == node.onchain_fee_rates([6])


@pytest.mark.parametrize("seed", [5, 6])
def test_the_chain_does_not_change_the_rest_of_the_simulation(seed):
    """The chain draws from its own streams: asking it anything, however far ahead, never changes the traffic."""
    a = build(SimSettings(network="synthetic", nodes=60, seed=seed, payments_per_hour=3000))
    b = build(SimSettings(network="synthetic", nodes=60, seed=seed, payments_per_hour=3000))
    b.chain.fee_rate_sat_per_kw(6, b.clock.now() + 86_400 * 30)  # drive the chain's walk far ahead first
    a.run(3_600)
    b.run(3_600)
    assert [e.key for e in a.events] == [e.key for e in b.events] and a.events
