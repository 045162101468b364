"""Forwards through our node in CLN's ``forward_event`` vocabulary, and why they failed."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from .ids import ChannelId

__all__ = ["ForwardStatus", "FailureCategory", "FailureReason", "HtlcEvent", "Forward", "ForwardPage"]


class ForwardStatus(enum.StrEnum):
    """CLN's forward_event status vocabulary, which every adapter maps onto."""

    OFFERED = "offered"
    SETTLED = "settled"
    LOCAL_FAILED = "local_failed"
    FAILED = "failed"

    @property
    def resolved(self) -> bool:
        return self is not ForwardStatus.OFFERED


class FailureCategory(enum.StrEnum):
    """Why a forward failed, as far as what to do about it goes."""

    LIQUIDITY = "liquidity"
    FEE = "fee"
    OTHER = "other"


class FailureReason(enum.StrEnum):
    """The fine-grained cause of a failed forward; each maps to one category."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    FEE_INSUFFICIENT = "fee_insufficient"
    HTLC_LIMIT = "htlc_limit"
    CLTV = "cltv"
    DISABLED = "disabled"
    UNAVAILABLE = "unavailable"
    ONION = "onion"
    DOWNSTREAM = "downstream"
    UNKNOWN = "unknown"

    @property
    def category(self) -> FailureCategory:
        if self is FailureReason.INSUFFICIENT_BALANCE:
            return FailureCategory.LIQUIDITY
        if self is FailureReason.FEE_INSUFFICIENT:
            return FailureCategory.FEE
        return FailureCategory.OTHER


@dataclass(frozen=True, slots=True)
class HtlcEvent:
    """One forwarded HTLC through our node, in CLN's ``forward_event`` vocabulary.

    CLN uses the same shape for live notifications and for ``listforwards`` rows,
    so lnlens does too: ``Forward`` is the same type. An HTLC is identified by
    :attr:`key`; a later event with the same key updates its status.
    ``out_msat``/``fee_msat`` may be unknown for a ``local_failed`` forward.
    """

    in_channel: ChannelId
    in_msat: int
    status: ForwardStatus
    received_time: float
    in_htlc_id: int | None = None
    out_channel: ChannelId | None = None
    out_msat: int | None = None
    fee_msat: int | None = None
    resolved_time: float | None = None
    failure_reason: FailureReason | None = None
    failcode: int | None = None
    failreason: str | None = None
    payment_hash: str | None = None
    """Hex payment hash, where the backend reports it (CLN's ``forward_event``); it ties together the
    HTLCs one payment sent through us (lnlens_core.opportunities.flows.PaymentMatcher)."""

    def __post_init__(self) -> None:
        if self.in_msat < 0 or (self.out_msat is not None and self.out_msat < 0):
            raise ValueError(f"negative amount in forward on {self.in_channel}")
        if self.status is ForwardStatus.SETTLED and self.failure_reason is not None:
            raise ValueError(f"settled forward on {self.in_channel} carries a failure reason")

    @property
    def key(self) -> str:
        """The identity of the HTLC across status updates and across backfill/live.

        ``in_channel/in_htlc_id`` when the backend reports the HTLC id (CLN always,
        LND >= 0.20); otherwise a digest of the fields both sources share.
        """
        if self.in_htlc_id is not None:
            return f"{self.in_channel}/{self.in_htlc_id}"
        raw = f"{self.in_channel}|{self.out_channel}|{self.received_time:.9f}|{self.in_msat}|{self.out_msat}"
        return "h:" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def failure_category(self) -> FailureCategory | None:
        return self.failure_reason.category if self.failure_reason else None


Forward = HtlcEvent


@dataclass(frozen=True, slots=True)
class ForwardPage:
    """One page of forwarding history.

    ``next_cursor`` is opaque to the core; the store persists it so that the next
    call resumes exactly after the last event of this page. ``done`` is true when
    the backend has nothing more right now.
    """

    events: tuple[HtlcEvent, ...]
    next_cursor: str
    done: bool
