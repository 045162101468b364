"""The NodeBackend protocol: what lnlens needs from a node, and nothing more.

Implementations: ``lnlens_cln.backend.ClnBackend``, ``lnlens_lnd.backend.LndBackend``,
``lnlens_sim.node.SimNode`` and :class:`lnlens_core.testing.FakeNode`. The core never
imports an adapter; adapters are found through the ``lnlens.backends`` entry points.

Queries and commands only. Live events differ by backend (CLN pushes notifications,
LND streams, the simulator generates them), so each adapter feeds
``HtlcMonitor.record()`` itself rather than through a method here. There is no
method that moves funds, and there never will be.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .domain import Channel, ChannelId, ChannelPolicy, FeeUpdate, ForwardPage, NodeInfo

__all__ = ["Capability", "NodeBackend", "unsupported_fields"]


class Capability(enum.StrEnum):
    """What a backend can do; the core decides features on these, never on versions."""

    INBOUND_FEES = "inbound_fees"
    """Inbound base/ppm can be set (LND >= 0.18)."""
    POSITIVE_INBOUND_FEES = "positive_inbound_fees"
    """Inbound fees above zero are accepted (LND ``accept-positive-inbound-fees``)."""
    HTLC_LIMITS = "htlc_limits"
    """min/max HTLC can be set together with fees."""
    CLTV_DELTA = "cltv_delta"
    """The CLTV expiry delta can be set per channel (CLN's setchannel cannot)."""
    DISABLE_CHANNEL = "disable_channel"
    """A channel direction can be disabled through the policy update."""
    LIVE_EVENTS = "live_events"
    """Forward events arrive as they happen (notifications, a stream)."""
    FAILED_FORWARD_HISTORY = "failed_forward_history"
    """History includes failed forwards (CLN), not only settled ones (LND)."""


_FIELD_NEEDS = {
    "inbound_base_fee_msat": Capability.INBOUND_FEES,
    "inbound_fee_ppm": Capability.INBOUND_FEES,
    "min_htlc_msat": Capability.HTLC_LIMITS,
    "max_htlc_msat": Capability.HTLC_LIMITS,
    "cltv_delta": Capability.CLTV_DELTA,
    "disabled": Capability.DISABLE_CHANNEL,
}


def unsupported_fields(update: FeeUpdate, capabilities: frozenset[Capability]) -> list[str]:
    """The fields of ``update`` that a backend with ``capabilities`` cannot set."""
    out = [name for name in update.fields_set() if name in _FIELD_NEEDS and _FIELD_NEEDS[name] not in capabilities]
    positive_inbound = (update.inbound_fee_ppm or 0) > 0 or (update.inbound_base_fee_msat or 0) > 0
    if positive_inbound and Capability.POSITIVE_INBOUND_FEES not in capabilities and "inbound_fee_ppm" not in out:
        out.append("positive inbound fee")
    return out


@runtime_checkable
class NodeBackend(Protocol):
    """A Lightning node, seen through the few calls lnlens makes.

    Synchronous by design: adapters own their threads and streams. Static facts
    (identity, network, version, capabilities) are read once at construction.

    Errors: :class:`~lnlens_core.errors.BackendUnavailable` when the node cannot be
    reached now (retry later), :class:`~lnlens_core.errors.BackendRejected` when
    this call is wrong. Nothing else escapes.
    """

    name: str
    """Short backend name: ``cln``, ``lnd``, ``sim``, ``fake``."""
    capabilities: frozenset[Capability]

    def get_info(self) -> NodeInfo:
        """Identity, network, block height and version of the node."""
        ...

    def list_channels(self) -> Sequence[Channel]:
        """Our channels now, with balances and our own policy on each."""
        ...

    def get_peer_policy(self, channel_id: ChannelId) -> ChannelPolicy | None:
        """The peer's policy on this channel (what the peer charges to forward to us).

        :returns: None when the peer has not published one.
        :raises BackendRejected: the channel is not ours.
        """
        ...

    def list_forwards(self, cursor: str | None, *, limit: int = 1000) -> ForwardPage:
        """One page of forwarding history after ``cursor`` (None: from the start).

        Passing back ``next_cursor`` resumes exactly after the last event returned:
        no gap and no duplicate, across restarts, because the store persists it.
        """
        ...

    def set_channel_policy(self, channel_id: ChannelId, update: FeeUpdate) -> ChannelPolicy:
        """Change our policy on one channel; fields left None keep their value.

        :returns: the policy now in force as the node reports it.
        :raises BackendRejected: unknown channel, or a field this backend cannot set
            (see :func:`unsupported_fields`).
        """
        ...
