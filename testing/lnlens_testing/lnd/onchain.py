"""The fake lnd's answers about the graph beyond our channels and the chain, from the SimNode's graph and chain.

GetNodeInfo counts a node's channels in the simulator's graph; EstimateFee (WalletKit)
reads the chain model's estimate for the target; GetTransactions lists the funding
transactions our wallet paid, filtered by height as lnd filters them. Nothing is canned:
change the simulation (its clock, ``node.chain.synced``) and the answers change.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from lnlens_lnd.rpc import grpc, ln, wallet

if TYPE_CHECKING:
    from .state import FakeLndState


def _block_hash(height: int) -> str:
    return hashlib.sha256(f"block {height}".encode()).hexdigest()


class OnchainLightning:
    """The lnrpc.Lightning methods of the fake that answer from the graph and the chain (a mixin)."""

    fake: FakeLndState

    def GetNodeInfo(self, request, context):  # noqa: N802 - gRPC method names
        with self.fake.lock:
            stats = self.fake.node.peer_node_stats(request.pub_key)
            graph = self.fake.node.network.graph
        if stats is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unable to find node")  # lnd: graph node not found
        alias = graph.aliases[graph.pubkeys.index(request.pub_key)]
        channels, capacity_msat = stats
        return ln.NodeInfo(
            node=ln.LightningNode(pub_key=request.pub_key, alias=alias),
            num_channels=channels,
            total_capacity=capacity_msat // 1000,
        )

    def GetTransactions(self, request, context):  # noqa: N802
        node = self.fake.node
        with self.fake.lock:
            tip = node.chain.height(node.clock.now())
            txs = node.chain.wallet_transactions()
        start, end = request.start_height, request.end_height
        if end <= 0:  # -1, or unset: up to the tip, unconfirmed included (there are none here)
            end = tip
        low, high = min(start, end), max(start, end)  # start above end lists in reverse, the same set
        out = []
        for tx in txs:
            if not low <= tx.block_height <= high:
                continue
            paid_sat = sum(amount for _, _, amount in tx.outputs) + tx.fee_sat  # the change came back
            out.append(
                ln.Transaction(
                    tx_hash=tx.txid,
                    amount=-paid_sat,
                    num_confirmations=tip - tx.block_height + 1,
                    block_hash=_block_hash(tx.block_height),
                    block_height=tx.block_height,
                    time_stamp=int(node.chain.start_time - (node.chain.start_height - tx.block_height) * 600),
                    total_fees=tx.fee_sat,
                )
            )
        if start > end:
            out.reverse()
        return ln.TransactionDetails(transactions=out)


class WalletKit:
    """The fake's walletrpc.WalletKit service: the fee estimate only."""

    def __init__(self, fake: FakeLndState) -> None:
        self.fake = fake

    def EstimateFee(self, request, context):  # noqa: N802
        if request.conf_target < 2:
            context.abort(grpc.StatusCode.UNKNOWN, "confirmation target must be greater than 1")
        node = self.fake.node
        with self.fake.lock:
            sat_per_kw = node.chain.fee_rate_sat_per_kw(request.conf_target, node.clock.now())
        from lnlens_sim.chain import FEE_FLOOR_SAT_PER_KW

        return wallet.EstimateFeeResponse(sat_per_kw=sat_per_kw, min_relay_fee_sat_per_kw=FEE_FLOOR_SAT_PER_KW)
