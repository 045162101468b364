"""ClnBackend: the NodeBackend protocol over lightningd's JSON-RPC socket.

Every call goes through :class:`GuardedRpc`, which refuses any method outside
:data:`READ_ONLY_METHODS` plus ``setchannel``: lnlens reads a node and changes fees,
nothing else, whatever a bug or a plugin asks of it.

History paging (:meth:`ClnBackend.list_forwards`) follows two indexes. Paging by
``created_index`` shows each forward as it is *now*; a forward still ``offered``
when read resolves later and only the ``updated_index`` sees that. The cursor
``cln:c<C>:u<U>`` holds the next created and updated positions, and each row is
delivered by exactly one of the passes in each state:

* created pass (rows with ``created_index >= C``): skip rows whose
  ``updated_index >= U``: the updated pass will deliver them;
* updated pass (rows with ``updated_index >= U``): skip rows whose
  ``created_index >= C``: the created pass will deliver them.

``U`` starts at the ``updated`` index lightningd reports before anything is read
(``wait`` with ``nextvalue`` 0), so no update is missed and none is read twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lnlens_core.backend import Capability, unsupported_fields
from lnlens_core.domain import Channel, ChannelId, ChannelPolicy, FeeUpdate, ForwardPage, NodeInfo
from lnlens_core.errors import BackendRejected, BackendUnavailable
from lnlens_core.fees.chargelnd import funding_fee_share_msat

from .convert import (
    channel_from_cln,
    channel_id_of,
    forward_from_cln,
    local_policy_of,
    policy_from_gossip,
    policy_from_update,
    setchannel_params,
)

__all__ = ["ClnBackend", "GuardedRpc", "READ_ONLY_METHODS", "WRITE_METHODS", "CAPABILITIES", "RpcLike"]

log = logging.getLogger(__name__)

READ_ONLY_METHODS = frozenset(
    {"getinfo", "listpeerchannels", "listchannels", "listforwards", "listnodes", "listpeers", "listfunds",
     "feerates", "listconfigs", "wait", "bkpr-inspect"}
)  # fmt: skip
"""``bkpr-inspect`` is bookkeeper's (a plugin shipped and started with lightningd): the funding fee for ``cost``."""
WRITE_METHODS = frozenset({"setchannel"})
# setchannel has no CLTV delta, no disable flag and no inbound fee (REFERENCE.md A3).
CAPABILITIES = frozenset({Capability.HTLC_LIMITS, Capability.LIVE_EVENTS, Capability.FAILED_FORWARD_HISTORY})
_CURSOR = re.compile(r"^cln:c(\d+):u(\d+)$")


class RpcLike(Protocol):
    """What ClnBackend needs from pyln's ``LightningRpc``: ``call(method, payload)``."""

    def call(self, method: str, payload: Any = None) -> Any: ...


class GuardedRpc:
    """An RPC connection that only lets the allowlisted methods through.

    :param rpc: pyln ``LightningRpc`` (or anything with ``call``).
    :raises BackendRejected: on any other method, before it reaches lightningd.
    """

    allowed = READ_ONLY_METHODS | WRITE_METHODS

    def __init__(self, rpc: RpcLike) -> None:
        self._rpc = rpc

    def call(self, method: str, payload: Mapping[str, Any] | None = None) -> Any:
        if method not in self.allowed:
            raise BackendRejected(f"lnlens never calls '{method}': only {', '.join(sorted(self.allowed))}")
        try:
            return self._rpc.call(method, dict(payload or {}))
        except OSError as exc:
            raise BackendUnavailable(f"lightningd RPC unreachable ({method}): {exc}") from exc
        except ValueError as exc:  # pyln's RpcError is a ValueError carrying lightningd's error object
            error = getattr(exc, "error", None)
            detail = error.get("message", error) if isinstance(error, Mapping) else exc
            raise BackendRejected(f"lightningd refused {method}: {detail}") from exc


def _cursor(created: int, updated: int) -> str:
    return f"cln:c{created}:u{updated}"


class ClnBackend:
    """lightningd seen through the few calls lnlens makes.

    :param rpc: a pyln ``LightningRpc`` on lightningd's socket; use one per thread.
    :param on_channels: called with each fresh ``listpeerchannels`` result (the
        plugin keeps it to refine ambiguous failures).
    :raises BackendUnavailable: lightningd cannot be reached to read its identity.
    """

    name = "cln"
    capabilities = CAPABILITIES

    def __init__(self, rpc: RpcLike, *, on_channels: Callable[[Sequence[Mapping[str, Any]]], None] | None = None):
        self.rpc = GuardedRpc(rpc)
        self._on_channels = on_channels
        self._aliases: dict[str, str] = {}
        self._listed: list[dict[str, Any]] = []
        """The last listpeerchannels of list_channels: the fee engine lists channels, then asks for funding fees."""
        info = self.rpc.call("getinfo")
        self.info = NodeInfo(
            pubkey=info["id"], alias=info.get("alias", ""), network=info.get("network", ""),
            block_height=int(info.get("blockheight", 0)), version=info.get("version", ""), backend=self.name,
        )  # fmt: skip

    def get_info(self) -> NodeInfo:
        info = self.rpc.call("getinfo")
        i = self.info
        return NodeInfo(i.pubkey, info.get("alias", i.alias), i.network, int(info.get("blockheight", 0)), i.version,
                        i.backend)  # fmt: skip

    # -- channels -----------------------------------------------------------------------

    def _peer_channels(self, channel_id: ChannelId | None = None) -> list[dict[str, Any]]:
        payload = {"short_channel_id": str(channel_id)} if channel_id is not None else {}
        try:
            found = self.rpc.call("listpeerchannels", payload)["channels"]
        except BackendRejected:
            if channel_id is None:
                raise
            # Before v25.05 listpeerchannels has no short_channel_id filter: list all and pick.
            found = self.rpc.call("listpeerchannels")["channels"]
        if channel_id is not None:
            found = [pc for pc in found if channel_id_of(pc) == channel_id]
        return found

    def _alias(self, peer_id: str) -> str:
        if peer_id not in self._aliases:
            nodes = self.rpc.call("listnodes", {"id": peer_id}).get("nodes") or [{}]
            self._aliases[peer_id] = str(nodes[0].get("alias", ""))
        return self._aliases[peer_id]

    def list_channels(self) -> Sequence[Channel]:
        raw = self._peer_channels()
        self._listed = raw
        if self._on_channels is not None:
            self._on_channels(raw)
        out = [channel_from_cln(pc, peer_alias=self._alias(str(pc["peer_id"]))) for pc in raw]
        return sorted((c for c in out if c is not None), key=lambda c: c.channel_id)

    def _own(self, channel_id: ChannelId) -> dict[str, Any]:
        found = self._peer_channels(channel_id)
        if not found:
            raise BackendRejected(f"channel {channel_id} is not one of ours")
        return found[0]

    def get_peer_policy(self, channel_id: ChannelId) -> ChannelPolicy | None:
        pc = self._own(channel_id)
        remote = (pc.get("updates") or {}).get("remote")
        if remote:
            return policy_from_update(remote)
        # Older lightningd: the peer's side from gossip (public channels only).
        entries = self.rpc.call("listchannels", {"short_channel_id": str(channel_id)}).get("channels", [])
        theirs = [e for e in entries if e.get("source") == pc["peer_id"]]
        return policy_from_gossip(theirs[0]) if theirs else None

    # -- optional inputs of the fee engine (lnlens_core/fees/assemble.py) ------------------

    def peer_node_stats(self, pubkey: str) -> tuple[int, int] | None:
        """A node's public channels and their total capacity from gossip (``listchannels source=``)."""
        entries = self.rpc.call("listchannels", {"source": pubkey}).get("channels", [])
        capacity = {e["short_channel_id"]: int(e["amount_msat"]) for e in entries}
        return (len(capacity), sum(capacity.values())) if capacity else None

    def synced_to_chain(self) -> bool:
        """lightningd reports sync problems as ``warning_*_sync`` fields of getinfo."""
        info = self.rpc.call("getinfo")
        return not any(key in info for key in ("warning_bitcoind_sync", "warning_lightningd_sync"))

    def onchain_fee_rates(self, targets: Sequence[int]) -> dict[int, float]:
        """sat/vB per confirmation target from ``feerates perkb``: the estimate for the nearest
        block count at or above the target (else the slowest one); targets without one are left out."""
        estimates = self.rpc.call("feerates", {"style": "perkb"}).get("perkb", {}).get("estimates", [])
        by_blocks = sorted((int(e["blockcount"]), int(e["feerate"])) for e in estimates)
        rates: dict[int, float] = {}
        for target in targets:
            fit = [perkb for blocks, perkb in by_blocks if blocks >= target]
            chosen = fit[0] if fit else (by_blocks[-1][1] if by_blocks else None)
            if chosen is not None:
                rates[target] = chosen / 1000  # sat per 1000 vB -> sat/vB
        return rates

    def funding_fee_msat(self, channel: Channel) -> int | None:
        """This channel's capacity share of the fee our wallet paid for its funding transaction.

        lightningd's own RPC has no transaction fee (``listtransactions`` lists inputs without their
        amounts); bookkeeper records it and ``bkpr-inspect`` gives each channel account its equal part.
        The parts of the channels opened in that transaction add up to the fee, which lnlens shares by
        capacity instead. None when the peer opened the channel, or bookkeeper has no fee for it (a
        channel opened before bookkeeper kept records): charge-lnd's "not paid by our wallet".
        """
        if channel.initiator is False:
            return None
        listed = self._listed if any(channel_id_of(pc) == channel.channel_id for pc in self._listed) else None
        listed = listed if listed is not None else self._peer_channels()
        pc = next((p for p in listed if channel_id_of(p) == channel.channel_id), None)
        if pc is None:
            raise BackendRejected(f"channel {channel.channel_id} is not one of ours")
        txid = pc.get("funding_txid")
        if not txid:
            return None
        batch = [p for p in listed if p.get("funding_txid") == txid and p.get("opener") == "local"]
        fee_msat = sum(self._fees_paid_msat(p, txid) for p in batch)
        if fee_msat <= 0:
            log.debug("channel %s: bookkeeper has no fee for funding transaction %s", channel.channel_id, txid)
            return None
        return funding_fee_share_msat(fee_msat, channel.capacity_msat, [int(p["total_msat"]) for p in batch])

    def _fees_paid_msat(self, pc: Mapping[str, Any], txid: str) -> int:
        try:
            txs = self.rpc.call("bkpr-inspect", {"account": pc["channel_id"]}).get("txs", [])
        except BackendRejected as exc:
            if "unknown command" in str(exc).lower():
                raise BackendRejected(
                    "lightningd has no bkpr-inspect: the bookkeeper plugin, which records funding fees, is not "
                    "running (remove disable-plugin=bookkeeper from the config)"
                ) from None
            if "not found" in str(exc).lower():
                return 0  # bookkeeper never saw this channel open
            raise
        return sum(int(t.get("fees_paid_msat", 0)) for t in txs if t.get("txid") == txid)

    def set_channel_policy(self, channel_id: ChannelId, update: FeeUpdate) -> ChannelPolicy:
        pc = self._own(channel_id)
        missing = unsupported_fields(update, self.capabilities)
        if missing:
            raise BackendRejected(f"channel {channel_id}: Core Lightning's setchannel cannot set {', '.join(missing)}")
        before = local_policy_of(pc)
        if update.is_empty():
            return before
        result = self.rpc.call("setchannel", setchannel_params(channel_id, update))["channels"]
        now = result[0] if result else {}
        return policy_from_update(
            {
                "fee_base_msat": now.get("fee_base_msat", before.base_fee_msat),
                "fee_proportional_millionths": now.get("fee_proportional_millionths", before.fee_ppm),
                "htlc_minimum_msat": now.get("minimum_htlc_out_msat", before.min_htlc_msat),
                "htlc_maximum_msat": now.get("maximum_htlc_out_msat", before.max_htlc_msat),
                "cltv_expiry_delta": before.cltv_delta,
            }
        )

    # -- history ------------------------------------------------------------------------

    def _parse_cursor(self, cursor: str) -> tuple[int, int]:
        match = _CURSOR.match(cursor)
        if not match:
            raise BackendRejected(f"not a Core Lightning history cursor: {cursor!r}")
        return int(match[1]), int(match[2])

    def list_forwards(self, cursor: str | None, *, limit: int = 1000) -> ForwardPage:
        if limit < 1:
            raise BackendRejected(f"limit must be at least 1, not {limit}")
        if cursor:
            created, updated = self._parse_cursor(cursor)
        else:
            now = self.rpc.call("wait", {"subsystem": "forwards", "indexname": "updated", "nextvalue": 0})
            created, updated = 1, int(now.get("updated") or 0) + 1
        rows = self.rpc.call("listforwards", {"index": "created", "start": created, "limit": limit})["forwards"]
        events = [
            forward_from_cln(r) for r in rows if r.get("updated_index") is None or int(r["updated_index"]) < updated
        ]
        if rows:
            created = int(rows[-1]["created_index"]) + 1
        room = limit - len(events)
        if len(rows) == limit or room == 0:
            return ForwardPage(tuple(events), _cursor(created, updated), False)
        # The created index is read to its end for now: the updates since U come next, in the same page.
        rows = self.rpc.call("listforwards", {"index": "updated", "start": updated, "limit": room})["forwards"]
        events += [forward_from_cln(r) for r in rows if int(r["created_index"]) < created]
        # A forward created after the created-index read is left to that index's next read; until then the
        # page is not the last one, or a caller that stops at the last page would not see it before new events.
        late = any(int(r["created_index"]) >= created for r in rows)
        if rows:
            updated = int(rows[-1]["updated_index"]) + 1
        return ForwardPage(tuple(events), _cursor(created, updated), len(rows) < room and not late)
