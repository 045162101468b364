"""Our channels, their policies, and the node they belong to."""

from __future__ import annotations

from dataclasses import dataclass

from .ids import ChannelId

__all__ = ["ChannelPolicy", "PendingHtlc", "Channel", "NodeInfo"]


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """One direction's forwarding policy: what a node charges to forward *out* of a channel.

    Inbound fees (LND >= 0.18) are charged by the node on HTLCs arriving over this
    channel; they are usually negative (a discount). ``max_htlc_msat=None`` means
    no limit below the channel capacity.
    """

    base_fee_msat: int
    fee_ppm: int
    inbound_base_fee_msat: int = 0
    inbound_fee_ppm: int = 0
    min_htlc_msat: int = 0
    max_htlc_msat: int | None = None
    cltv_delta: int = 80
    disabled: bool = False

    def fee_msat(self, out_msat: int) -> int:
        """The outbound fee for forwarding ``out_msat`` (BOLT 7: rounded down)."""
        return self.base_fee_msat + out_msat * self.fee_ppm // 1_000_000

    def inbound_fee_msat(self, out_msat: int) -> int:
        """The inbound fee (negative: a discount) on an HTLC that leaves with ``out_msat``.

        LND computes it on the outgoing amount plus the outbound fee; callers pass that sum.
        """
        return self.inbound_base_fee_msat + out_msat * self.inbound_fee_ppm // 1_000_000


@dataclass(frozen=True, slots=True)
class PendingHtlc:
    """An HTLC in flight on one of our channels."""

    incoming: bool
    amount_msat: int
    expiry_height: int


@dataclass(frozen=True, slots=True)
class Channel:
    """One of our channels as the node reports it now, with our local policy.

    Balances are what each side owns (reserves included); ``spendable_msat`` is
    what can leave now, when the backend knows it. ``commit_fee_msat`` is the
    commitment transaction's fee, paid by the opener (``initiator``), whoever that is.
    ``min_htlc_floor_msat`` and ``max_htlc_cap_msat`` are the channel's own limits
    on what ``min_htlc_msat`` / ``max_htlc_msat`` can be set to (LND's local
    constraints ``min_htlc_msat`` and ``max_pending_amt_msat``); None when the
    backend does not report them. ``local_policy`` is None when the node cannot tell
    our own current policy (LND: a channel missing from its graph, which ``GetChanInfo``
    answers "edge not found" and ``FeeReport`` leaves out): never read as zeros, and the
    fee engine plans no change for such a channel.
    """

    channel_id: ChannelId
    peer_id: str
    capacity_msat: int
    local_balance_msat: int
    remote_balance_msat: int
    local_policy: ChannelPolicy | None
    active: bool = True
    private: bool = False
    initiator: bool | None = None
    peer_alias: str = ""
    local_reserve_msat: int = 0
    remote_reserve_msat: int = 0
    commit_fee_msat: int = 0
    pending_htlcs: tuple[PendingHtlc, ...] = ()
    spendable_msat: int | None = None
    receivable_msat: int | None = None
    min_htlc_floor_msat: int | None = None
    max_htlc_cap_msat: int | None = None

    @property
    def balance_ratio(self) -> float | None:
        """Local share of the balance, 0..1; ``None`` when both sides are empty."""
        total = self.local_balance_msat + self.remote_balance_msat
        return self.local_balance_msat / total if total else None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Identity of the node a backend talks to."""

    pubkey: str
    alias: str
    network: str
    block_height: int
    version: str
    backend: str
