"""The stand-in's answers about the chain, from the simulator's chain model (``node.chain``).

``feerates`` gives the model's estimates per block count as lightningd lists them;
``bkpr-inspect`` answers as Core Lightning's bookkeeper plugin does for a channel
account: the funding transaction with this account's ``fees_paid_msat``, which
bookkeeper gets by splitting the fee our wallet paid equally over the channel accounts
of the transaction (the wallet account takes none when channels are involved; any
remainder msat go one each to the first accounts by name). A node without a chain
model (a benchmark's FakeNode) answers as a lightningd without bookkeeper.
"""

from __future__ import annotations

from typing import Any

from lnlens_core.domain import ChannelId

__all__ = ["BLOCKCOUNTS", "feerate_estimates", "funding_fields", "bkpr_inspect", "account_of"]

BLOCKCOUNTS = (2, 6, 12, 100)
"""The block counts lightningd's ``feerates`` estimates are for."""


def account_of(cid: ChannelId) -> str:
    """The stand-in's channel_id (bookkeeper's account name) for a channel: the scid, zero-padded to 32 bytes."""
    return f"{cid.to_int():064x}"


def feerate_estimates(node: Any) -> dict[int, int]:
    """``{blockcount: sat per 1000 vB}`` now, from the chain model (sat/kw × 4); empty without one."""
    chain = getattr(node, "chain", None)
    if chain is None:
        return {}
    now = node.clock.now()
    return {b: chain.fee_rate_sat_per_kw(b, now) * 4 for b in BLOCKCOUNTS}


def funding_fields(node: Any, cid: ChannelId) -> dict[str, Any]:
    """``funding_txid`` and ``funding_outnum`` of listpeerchannels, when the node has a chain model."""
    chain = getattr(node, "chain", None)
    point = chain.outpoint(cid) if chain is not None else None
    return {"funding_txid": point[0], "funding_outnum": point[1]} if point is not None else {}


def bkpr_inspect(node: Any, params: dict[str, Any], fail: Any) -> dict[str, Any]:
    """bookkeeper's ``bkpr-inspect account=CHANNEL_ID``: the channel's on-chain footprint (its funding transaction).

    :param fail: ``fail(code, message)`` raises the JSON-RPC error lightningd would send.
    """
    chain = getattr(node, "chain", None)
    if chain is None:
        fail(-32601, "Unknown command 'bkpr-inspect'")
    account = params.get("account")
    if not isinstance(account, str):
        fail(-32602, "account: should be a string")
    ours = {account_of(c.channel_id): c for c in node.list_channels()}
    channel = ours.get(account)
    if channel is None:
        fail(-3, f"Account {account} not found")  # bookkeeper's PLUGIN_ERROR
    txid, outnum = chain.outpoint(channel.channel_id)
    tx = chain.funding_tx(channel.channel_id)
    fees_paid = 0
    if tx is not None:
        accounts = sorted(account_of(cid) for _, cid, _ in tx.outputs)
        part, extra = divmod(tx.fee_sat * 1000, len(accounts))
        fees_paid = part + (1 if accounts.index(account) < extra else 0)
    output = {
        "account": account, "outnum": outnum, "output_tag": "channel_open",
        "output_value_msat": channel.capacity_msat, "currency": "bcrt",
        "credit_msat": channel.capacity_msat if channel.initiator else 0,
    }  # fmt: skip
    height = tx.block_height if tx is not None else channel.channel_id.block
    return {"txs": [{"txid": txid, "blockheight": height, "fees_paid_msat": fees_paid, "outputs": [output]}]}
