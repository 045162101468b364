"""lightningd's JSON-RPC socket for the stand-in, answering from a simulated node.

:class:`SimLightningRpc` answers ``getinfo``, ``listpeerchannels``, ``listchannels``,
``listnodes``, ``listforwards``, ``wait``, ``setchannel``, ``feerates`` and bookkeeper's
``bkpr-inspect`` in CLN's field names from a :class:`~lnlens_sim.node.SimNode` (its chain
model for the last two, :mod:`.chain`) and a :class:`ForwardLedger`; every call is recorded.
:class:`RpcSocketServer` serves it on a unix socket the way lightningd does: one JSON
request per connection read incrementally, the response followed by ``"\\n\\n"``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lnlens_core.clock import SystemClock
from lnlens_core.domain import ChannelId, FeeUpdate
from lnlens_core.errors import BackendRejected

from .chain import bkpr_inspect, feerate_estimates, funding_fields
from .ledger import ForwardLedger

__all__ = ["SimLightningRpc", "RpcSocketServer", "RpcFailure"]

_STANDIN_VERSION = "v26.06-lnlens-standin"
_NOT_SYNCED = "Bitcoind is not up-to-date with network."


class RpcFailure(Exception):
    """A JSON-RPC error answer: ``code`` and ``message`` as lightningd would send them."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class SimLightningRpc:
    """The RPC methods lnlens uses, answered from a node. Thread-safe (one lock).

    :param node: a SimNode, or any NodeBackend (FakeNode for benchmarks): only the
        protocol's methods are used, plus ``stats``/``clock`` when the node has them.
    """

    def __init__(self, node: Any, ledger: ForwardLedger | None = None, *, lightning_dir: str = "") -> None:
        self.node = node
        self.ledger = ledger or ForwardLedger()
        self.lightning_dir = lightning_dir
        self.calls: list[tuple[str, Any]] = []
        self.sync_warning: str | None = None
        """When set, getinfo reports it as ``warning_bitcoind_sync``; else it is reported while the simulated
        chain is not synced (``node.chain.synced``)."""
        self.feerates_perkb: dict[int, int] | None = None
        """``feerates`` estimates by block count, sat per 1000 vB, when a test sets them; else the chain model's."""
        self.lock = threading.RLock()
        self._clock = getattr(node, "clock", None) or SystemClock()
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getinfo": self.getinfo, "listpeerchannels": self.listpeerchannels, "listchannels": self.listchannels,
            "listnodes": self.listnodes, "listforwards": self.ledger_call("listforwards"),
            "wait": self.ledger_call("wait"), "setchannel": self.setchannel, "feerates": self.feerates,
            "bkpr-inspect": self.bkpr_inspect,
        }  # fmt: skip

    def ledger_call(self, name: str) -> Callable[[dict[str, Any]], Any]:
        return lambda params: getattr(self.ledger, name)(params)

    def handle(self, method: str, params: Any) -> Any:
        """Answer one call; raises :class:`RpcFailure` as lightningd would answer an error."""
        with self.lock:
            self.calls.append((method, params))
            if method not in self._methods:
                raise RpcFailure(-32601, f"Unknown command '{method}'")
            if not isinstance(params, dict):
                raise RpcFailure(-32602, "the stand-in takes keyword parameters only")
            try:
                return self._methods[method](params)
            except (ValueError, BackendRejected) as exc:
                raise RpcFailure(-32602, str(exc)) from None

    # -- methods ---------------------------------------------------------------------------

    def getinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.node.get_info()
        channels = self.node.list_channels()
        return {
            "id": info.pubkey, "alias": info.alias, "color": "0a0b0c", "num_peers": len(channels),
            "num_active_channels": len(channels), "num_pending_channels": 0, "num_inactive_channels": 0,
            "version": _STANDIN_VERSION, "blockheight": info.block_height, "network": "regtest",
            "fees_collected_msat": getattr(getattr(self.node, "stats", None), "revenue_msat", 0),
            "lightning-dir": self.lightning_dir,
            "address": [], "binding": [],
        } | self._sync_warning()  # fmt: skip

    def _sync_warning(self) -> dict[str, str]:
        chain = getattr(self.node, "chain", None)
        warning = self.sync_warning or (None if chain is None or chain.synced else _NOT_SYNCED)
        return {"warning_bitcoind_sync": warning} if warning else {}

    def feerates(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("style") != "perkb":
            raise RpcFailure(-32602, "the stand-in answers style=perkb only")
        perkb = self.feerates_perkb if self.feerates_perkb is not None else feerate_estimates(self.node)
        estimates = [{"blockcount": b, "feerate": f, "smoothed_feerate": f} for b, f in sorted(perkb.items())]
        return {"perkb": {"estimates": estimates} if estimates else {}}

    def bkpr_inspect(self, params: dict[str, Any]) -> dict[str, Any]:
        def fail(code: int, message: str) -> None:
            raise RpcFailure(code, message)

        return bkpr_inspect(self.node, params, fail)

    def _peer_channel(self, ch: Any) -> dict[str, Any]:
        # lightningd keeps our policy in the channel itself, not in its gossip: known even off the graph
        p = ch.local_policy if ch.local_policy is not None else self.node.own_policy(ch.channel_id)
        remote = self.node.get_peer_policy(ch.channel_id)
        local_update = {"htlc_minimum_msat": p.min_htlc_msat, "htlc_maximum_msat": p.max_htlc_msat,
                        "cltv_expiry_delta": p.cltv_delta, "fee_base_msat": p.base_fee_msat,
                        "fee_proportional_millionths": p.fee_ppm}  # fmt: skip
        updates: dict[str, Any] = {"local": local_update}
        if remote is not None:
            updates["remote"] = {"htlc_minimum_msat": remote.min_htlc_msat, "htlc_maximum_msat": remote.max_htlc_msat,
                                 "cltv_expiry_delta": remote.cltv_delta, "fee_base_msat": remote.base_fee_msat,
                                 "fee_proportional_millionths": remote.fee_ppm}  # fmt: skip
        return {
            "peer_id": ch.peer_id, "peer_connected": ch.active, "state": "CHANNELD_NORMAL",
            "short_channel_id": str(ch.channel_id), "alias": {"local": f"1x{ch.channel_id.tx}x{ch.channel_id.output}"},
            "channel_id": f"{ch.channel_id.to_int():064x}", "private": ch.private,
            "opener": "local" if ch.initiator else "remote", "total_msat": ch.capacity_msat,
            "to_us_msat": ch.local_balance_msat, "spendable_msat": ch.spendable_msat,
            "receivable_msat": ch.receivable_msat, "our_reserve_msat": ch.local_reserve_msat,
            "their_reserve_msat": ch.remote_reserve_msat,
            "their_max_htlc_value_in_flight_msat": ch.max_htlc_cap_msat or ch.capacity_msat,  # v25.02
            "fee_base_msat": p.base_fee_msat, "fee_proportional_millionths": p.fee_ppm,
            "minimum_htlc_out_msat": p.min_htlc_msat, "maximum_htlc_out_msat": p.max_htlc_msat,
            "updates": updates, "htlcs": [],
        } | funding_fields(self.node, ch.channel_id)  # fmt: skip

    def listpeerchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = self.node.list_channels()
        if params.get("short_channel_id") is not None:
            wanted = ChannelId.parse(params["short_channel_id"])
            channels = [c for c in channels if c.channel_id == wanted]
        if params.get("id") is not None:
            channels = [c for c in channels if c.peer_id == params["id"]]
        return {"channels": [self._peer_channel(c) for c in channels]}

    def listchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        out = []
        me = self.node.get_info().pubkey
        if params.get("source") not in (None, me):
            return {"channels": self._gossip_from(params["source"])}
        for ch in self.node.list_channels():
            if params.get("short_channel_id") not in (None, str(ch.channel_id)):
                continue
            for source, dest, policy in ((me, ch.peer_id, ch.local_policy),
                                         (ch.peer_id, me, self.node.get_peer_policy(ch.channel_id))):  # fmt: skip
                if policy is None or params.get("source") not in (None, source):
                    continue
                out.append({
                    "source": source, "destination": dest, "short_channel_id": str(ch.channel_id),
                    "direction": int(source > dest), "public": True, "amount_msat": ch.capacity_msat,
                    "message_flags": 1, "channel_flags": int(source > dest), "active": not policy.disabled,
                    "last_update": int(self._clock.now()), "base_fee_millisatoshi": policy.base_fee_msat,
                    "fee_per_millionth": policy.fee_ppm, "delay": policy.cltv_delta,
                    "htlc_minimum_msat": policy.min_htlc_msat, "htlc_maximum_msat": policy.max_htlc_msat,
                    "features": "",
                })  # fmt: skip
        return {"channels": out}

    def _gossip_from(self, source: str) -> list[dict[str, Any]]:
        """Another node's half-channels as gossip shows them: from the simulator's graph, when there is one."""
        graph = getattr(getattr(self.node, "network", None), "graph", None)
        if graph is None or source not in graph.pubkeys:
            return []
        from lnlens_sim.graph import channel_id_of

        node, origin = graph.pubkeys.index(source), graph.meta.get("channel_origin")
        src, dst = graph.src, graph.dst
        out = []
        for e in (int(e) for e in ((src == node) & graph.enabled).nonzero()[0]):
            scid = channel_id_of(int(origin[e >> 1]) if origin is not None else e >> 1)
            out.append({
                "source": source, "destination": graph.pubkeys[int(dst[e])], "short_channel_id": str(scid),
                "direction": e & 1, "public": True, "amount_msat": int(graph.capacity_sat[e >> 1]) * 1000,
                "message_flags": 1, "channel_flags": e & 1, "active": True, "last_update": int(self._clock.now()),
                "base_fee_millisatoshi": int(graph.base_fee_msat[e]), "fee_per_millionth": int(graph.fee_ppm[e]),
                "delay": int(graph.cltv_delta[e]), "htlc_minimum_msat": int(graph.htlc_min_msat[e]),
                "htlc_maximum_msat": int(graph.htlc_max_msat[e]) or int(graph.capacity_sat[e >> 1]) * 1000,
                "features": "",
            })  # fmt: skip
        return out

    def listnodes(self, params: dict[str, Any]) -> dict[str, Any]:
        # Our peers are the nodes we know an alias of (gossip beyond them is not needed by lnlens).
        peers = {c.peer_id: c.peer_alias for c in self.node.list_channels()}
        ids = [params["id"]] if params.get("id") else sorted(peers)
        return {"nodes": [{"nodeid": i, "alias": peers[i], "addresses": []} for i in ids if i in peers]}

    def setchannel(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = ChannelId.parse(params["id"])
        update = FeeUpdate(
            base_fee_msat=int(params["feebase"]) if "feebase" in params else None,
            fee_ppm=int(params["feeppm"]) if "feeppm" in params else None,
            min_htlc_msat=int(params["htlcmin"]) if "htlcmin" in params else None,
            max_htlc_msat=int(params["htlcmax"]) if "htlcmax" in params else None,
        )
        policy = self.node.set_channel_policy(cid, update)
        ch = next(c for c in self.node.list_channels() if c.channel_id == cid)
        return {"channels": [{
            "peer_id": ch.peer_id, "channel_id": f"{cid.to_int():064x}", "short_channel_id": str(cid),
            "fee_base_msat": policy.base_fee_msat, "fee_proportional_millionths": policy.fee_ppm,
            "minimum_htlc_out_msat": policy.min_htlc_msat, "maximum_htlc_out_msat": policy.max_htlc_msat,
            "ignore_fee_limits": False,
        }]}  # fmt: skip


class RpcSocketServer:
    """Serve ``handler(method, params)`` on a unix socket at ``path`` in a daemon thread."""

    def __init__(self, path: str | Path, handler: Callable[[str, Any], Any]) -> None:
        self.path = str(path)
        if len(self.path) > 100:
            raise ValueError(f"unix socket path too long ({len(self.path)} > 100): {self.path}")
        self.handler = handler
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock.bind(self.path)
        self._sock.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="standin-rpc", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder, buf = json.JSONDecoder(), ""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:  # the caller went away (a killed plugin): nothing to answer
                    return
                if not chunk:
                    return
                buf += chunk.decode()
                try:
                    request, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    continue  # not a whole object yet
                buf = buf.lstrip()[end:]
                try:
                    conn.sendall(json.dumps(self._answer(request)).encode() + b"\n\n")
                except OSError:
                    return

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self.handler(request["method"], request.get("params", {}))
        except RpcFailure as exc:
            return {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": exc.code, "message": exc.message}}
        return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
