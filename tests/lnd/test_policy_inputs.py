"""What the fee engine needs beyond the NodeBackend protocol, from lnd through the fake: the peer's size
(GetNodeInfo: node.*), the wallet's fee estimate (WalletKit EstimateFee: onchain.*, onchain_fee), chain sync
(GetInfo) and funding fees (GetTransactions: cost). The fake answers from the simulator's graph and chain model;
a macaroon without the optional permissions makes the run say which uri: to add, never crash it."""

from __future__ import annotations

import logging
import re

import pytest
from lnlens_lnd.rpc import OPTIONAL_METHODS, LndAuthError
from lnlens_testing.lnd import FakeLnd, minimal_ops, sim_node

from lnlens_core.fees.api import plan_or_apply
from lnlens_core.fees.chargelnd import funding_fee_share_msat
from lnlens_core.lens import Lens


def _node_with_a_batch_open():
    """A small simulated node whose wallet opened several channels in one transaction."""
    for seed in range(1, 60):
        node = sim_node(seed=seed)
        if any(len(tx.outputs) > 1 for tx in node.chain.wallet_transactions()):
            return node
    raise AssertionError("no seed in 1..59 gives our node a batch open")


@pytest.fixture
def node():
    return _node_with_a_batch_open()


@pytest.fixture
def full(connect):
    """A backend whose macaroon allows the optional methods too (the bake line with the optional URIs)."""
    return connect("read", ops=minimal_ops("read", optional=OPTIONAL_METHODS))


@pytest.fixture
def plan(config, store, pm, tmp_path):
    """plan(backend, policy text) -> the plan's JSON, made through the public API with the simulation's clock."""

    def run(backend, text: str) -> dict:
        path = tmp_path / "fees.ini"
        path.write_text(text)
        lens = Lens(config, store=store, clock=backend._clock, pm=pm, backend=backend)
        return plan_or_apply(lens, backend, apply=False, policy_path=path)["plan"]

    return run


def _rows(plan: dict) -> dict[str, dict]:
    return {r["short_channel_id"]: r for r in plan["channels"]}


def _ppm(row: dict) -> int:
    """The strategy's fee rate, from its reason: ``proposed`` drops a move smaller than min_fee_ppm_delta."""
    found = re.search(r"-> (\d+) ppm$", row["reason"])
    assert found and row["error"] is None, row
    return int(found.group(1))


def test_the_optional_calls_answer_from_the_simulation(full, node):
    channels = full.list_channels()
    for c in channels:
        assert full.peer_node_stats(c.peer_id) == node.peer_node_stats(c.peer_id)
    assert full.peer_node_stats("02" + "00" * 32) is None  # lnd: NOT_FOUND
    now = node.clock.now()
    assert full.onchain_fee_rates([1, 6, 144]) == {t: node.chain.fee_rate_sat_per_kw(t, now) * 4 / 1000
                                                   for t in (1, 6, 144)}  # fmt: skip
    node.clock.set(now + 86_400)
    assert full.onchain_fee_rates([6]) == {6: node.chain.fee_rate_sat_per_kw(6, now + 86_400) * 4 / 1000}
    assert full.synced_to_chain() is True
    node.chain.synced = False
    assert full.synced_to_chain() is False


def test_a_node_criterion_decides_on_lnd(full, node, plan):
    sizes = {str(c.channel_id): node.peer_node_stats(c.peer_id)[0] for c in full.list_channels()}
    threshold = sorted(sizes.values())[len(sizes) // 2]
    rows = _rows(plan(full, f"[big]\nnode.min_channels = {threshold}\nstrategy = static\nfee_ppm = 11\n\n"
                            "[default]\nstrategy = static\nfee_ppm = 5\n"))  # fmt: skip
    assert {r["policy"] for r in rows.values()} == {"big", "default"}, "both branches must be exercised"
    for cid, channels in sizes.items():
        assert rows[cid]["policy"] == ("big" if channels >= threshold else "default"), rows[cid]


def test_an_onchain_criterion_and_the_onchain_fee_strategy_decide_on_lnd(full, node, plan):
    rate = node.chain.fee_rate_sat_per_kw(6, node.clock.now()) * 4 / 1000
    text = ("[cheap-chain]\nonchain.max_fee_rate = {limit}\nstrategy = onchain_fee\n\n"
            "[default]\nstrategy = static\nfee_ppm = 5\n")  # fmt: skip
    above = _rows(plan(full, text.format(limit=rate + 0.01)))
    below = _rows(plan(full, text.format(limit=rate - 0.01)))
    assert {r["policy"] for r in above.values()} == {"cheap-chain"}
    assert {r["policy"] for r in below.values()} == {"default"}
    expected = int((0.01 / 0.1) * (223 * rate))  # charge-lnd's formula at the default 0.1 BTC and 6 blocks
    assert expected > 0
    for row in above.values():
        assert _ppm(row) == expected, row


def test_the_cost_strategy_charges_our_funding_fee_and_shares_a_batch(full, node, plan):
    rows = _rows(plan(full, "[default]\nstrategy = cost\n"))
    channels = {str(c.channel_id): c for c in full.list_channels()}
    txs = node.chain.wallet_transactions()
    batch = next(tx for tx in txs if len(tx.outputs) > 1)
    for cid, channel in channels.items():
        tx = node.chain.funding_tx(channel.channel_id)
        row = rows[cid]
        if tx is None:  # the peer opened it: charge-lnd's 1 ppm
            assert not channel.initiator and _ppm(row) == 1, row
            continue
        capacities = [cap * 1000 for _, _, cap in tx.outputs]
        share = funding_fee_share_msat(tx.fee_sat * 1000, channel.capacity_msat, capacities)
        assert _ppm(row) == int(1_000_000 * share / channel.capacity_msat) > 1, row
    members = [channels[str(cid)] for _, cid, _ in batch.outputs]
    whole = [int(1_000_000 * batch.fee_sat * 1000 / c.capacity_msat) for c in members]
    shared = [_ppm(rows[str(c.channel_id)]) for c in members]
    assert all(s < w for s, w in zip(shared, whole, strict=True)), "charge-lnd 0.3.1 charges each the whole fee"


def test_chain_sync_decides_on_lnd(full, node, plan):
    text = "[synced]\nonchain.synced_to_chain = true\nstrategy = static\nfee_ppm = 9\n\n[default]\nstrategy = ignore\n"
    assert {r["policy"] for r in plan(full, text)["channels"]} == {"synced"}
    node.chain.synced = False
    assert {r["policy"] for r in plan(full, text)["channels"]} == {"default"}


def test_without_the_optional_permissions_the_run_names_what_to_bake(connect, fake, plan, caplog):
    with caplog.at_level(logging.INFO, logger="lnlens_lnd"):
        backend = connect("read")  # the least-privilege macaroon of the docs: no optional URI
    assert set(backend.permissions.optional_missing) == set(OPTIONAL_METHODS)
    assert backend.permissions.scope == "minimal" and not backend.permissions.missing
    started = [r.getMessage() for r in caplog.records if "does not allow" in r.getMessage()]
    assert started and all(r.levelno == logging.INFO for r in caplog.records if r.name.startswith("lnlens_lnd"))
    with pytest.raises(LndAuthError, match="uri:/lnrpc.Lightning/GetNodeInfo"):
        backend.peer_node_stats(backend.list_channels()[0].peer_id)
    text = ("[big]\nnode.min_channels = 2\nstrategy = static\nfee_ppm = 11\n\n"
            "[chain]\nonchain.max_fee_rate = 1000\nstrategy = static\nfee_ppm = 12\n\n"
            "[default]\nstrategy = cost\n")  # fmt: skip
    calls = len(fake.calls)
    result = plan(backend, text)
    notes = " | ".join(result["notes"])
    for uri, keys in (("/lnrpc.Lightning/GetNodeInfo", "node.min_channels"),
                      ("/walletrpc.WalletKit/EstimateFee", "onchain.max_fee_rate"),
                      ("/lnrpc.Lightning/GetTransactions", "strategy = cost")):  # fmt: skip
        assert f"uri:{uri}" in notes and keys in notes, notes
    rows = result["channels"]
    # node.* never matches, and the on-chain criterion keeps every channel with an error, as without an estimate
    assert rows and all(r["status"] == "error" and r["policy"] is None for r in rows), rows
    assert all("no on-chain fee estimate" in r["error"] for r in rows), rows
    # Each optional method was tried once, not once per peer or channel.
    tried = [p for p in fake.calls[calls:] if p.rsplit("/", 1)[1] in OPTIONAL_METHODS]
    assert sorted(tried) == sorted(f"/{s}" for s in ("lnrpc.Lightning/GetNodeInfo", "walletrpc.WalletKit/EstimateFee",
                                                   "lnrpc.Lightning/GetTransactions")), tried  # fmt: skip


def test_cost_without_the_permission_keeps_its_channels_with_the_reason(connect, plan):
    backend = connect("read", ops=minimal_ops("read", optional=["GetNodeInfo", "EstimateFee"]))
    rows = plan(backend, "[default]\nstrategy = cost\n")["channels"]
    assert rows and all(r["status"] == "error" for r in rows), rows
    assert all("uri:/lnrpc.Lightning/GetTransactions" in r["error"] for r in rows), rows


def test_a_peer_opened_channel_costs_nothing_to_look_up(full, node, fake):
    calls = len(fake.calls)
    for channel in full.list_channels():
        if not channel.initiator:
            assert full.funding_fee_msat(channel) is None
    assert "/lnrpc.Lightning/GetTransactions" not in fake.calls[calls:]


def test_channel_points_of_a_batch_share_the_funding_txid(full, node, fake):
    batch = next(tx for tx in node.chain.wallet_transactions() if len(tx.outputs) > 1)
    points = {fake.chan_point(cid) for _, cid, _ in batch.outputs}
    assert points == {(batch.txid, vout) for vout, _, _ in batch.outputs}
    assert isinstance(fake, FakeLnd)
