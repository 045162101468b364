"""FakeLndState: what the fake lnd's services and its auth check share, apart from the gRPC server itself.

The servicers (:mod:`.servicers`, :mod:`.onchain`) and the interceptor (:mod:`.interceptor`)
read and change this state; :class:`~.server.FakeLnd` adds the server, its streams and
restarts on top. Keeping it here lets those modules name the type without importing the server.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

from lnlens_core.domain import ChannelId, HtlcEvent

from .auth import FakeMacaroons


class FakeLndState:
    """The node, the macaroons, the forwarding log, the subscribers and what the server has seen.

    :param node: the simulated node.
    :param version: what GetInfo reports; below 0.18 inbound fees are ignored as lnd
        ignores unknown fields, below 0.20 history entries carry no HTLC ids.
    """

    def __init__(
        self,
        node,
        *,
        version: str,
        network: str,
        accept_positive_inbound_fees: bool,
        frozen: bool,
    ) -> None:
        self.node = node
        self.version = version
        self.network = network
        self.accept_positive_inbound_fees = accept_positive_inbound_fees
        self.frozen = frozen
        """Answer policy and status writes as lnd would but leave the node as it is, so that several clients
        (lnlens, charge-lnd) decide from the same state; :attr:`writes` holds what they sent."""
        self.writes: list[tuple[int | None, str, Any]] = []
        """Every UpdateChannelPolicy and UpdateChanStatus request: (root key id of the caller's macaroon,
        method name, request), in arrival order."""
        self.macaroons = FakeMacaroons()
        self.calls: list[str] = []
        """Every method path that reached the server, allowed or not, in order."""
        self.lock = threading.RLock()
        self.log: list[tuple[int, HtlcEvent]] = []
        """The forwarding log: (timestamp_ns, settled forward), in timestamp order, as lnd keeps it."""
        self.emitted: list[HtlcEvent] = []
        """Every forward delivered to at least one stream subscriber."""
        self._subscribers: list[queue.Queue] = []
        self._failures: list[tuple[str, Any, str]] = []
        self.delivered = 0
        """Stream messages handed to gRPC for a subscriber (after its subscribed_event)."""
        self.permission_checks: list[Any] = []
        """Every CheckMacPermRequest received."""
        self._out_htlc: dict[ChannelId, int] = {}
        self._points: dict[ChannelId, tuple[str, int]] = {}

    def record_write(self, method: str, request: Any, context: Any) -> None:
        """Note a policy or status write with the root key id of the macaroon that made it."""
        key = None
        for k, v in context.invocation_metadata():
            if k == "macaroon":
                key = self.macaroons.root_key_id(bytes.fromhex(v if isinstance(v, str) else v.decode()))
        with self.lock:
            self.writes.append((key, method, request))

    def chan_point(self, channel_id: ChannelId) -> tuple[str, int]:
        """The channel's funding outpoint: the simulator's (batches share a txid), else a stable made-up one."""
        point = self._points.get(channel_id)
        if point is None:
            chain = getattr(self.node, "chain", None)
            point = chain.outpoint(channel_id) if chain is not None else None
        if point is None:
            point = (hashlib.sha256(str(channel_id).encode()).hexdigest(), channel_id.output)
            self._points[channel_id] = point
        return point

    def version_tuple(self) -> tuple[int, int, int]:
        from lnlens_lnd.convert import parse_version

        return parse_version(self.version)
