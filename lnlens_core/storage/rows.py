"""Conversions between domain records and table rows (the only place that knows column order)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..domain import Channel, ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent

__all__ = ["FORWARD_COLUMNS", "SNAPSHOT_COLUMNS", "forward_from_row", "forward_row", "channel_from_row",
           "policy_from_row", "snapshot_row"]  # fmt: skip

FORWARD_COLUMNS = (
    "key",
    "in_channel",
    "in_htlc_id",
    "out_channel",
    "in_msat",
    "out_msat",
    "fee_msat",
    "status",
    "failure_reason",
    "failcode",
    "failreason",
    "received_time",
    "resolved_time",
    "source",
    "payment_hash",
)
SNAPSHOT_COLUMNS = (
    "time", "channel_id", "peer_id", "capacity_msat", "local_balance_msat", "remote_balance_msat", "active",
    "base_fee_msat", "fee_ppm", "inbound_base_fee_msat", "inbound_fee_ppm", "min_htlc_msat", "max_htlc_msat",
    "cltv_delta", "disabled", "peer_alias",
)  # fmt: skip


_channel_id = lru_cache(maxsize=65_536)(ChannelId.parse)
"""One ChannelId per channel for the forwards read back (a day of a busy node's forwards read at once held two of
its own per forward; ids are immutable)."""


def forward_from_row(row: dict[str, Any]) -> HtlcEvent:
    """Rebuild an :class:`HtlcEvent` from a ``forwards`` row."""
    return HtlcEvent(
        in_channel=_channel_id(row["in_channel"]),
        in_htlc_id=row["in_htlc_id"],
        out_channel=_channel_id(row["out_channel"]) if row["out_channel"] else None,
        in_msat=row["in_msat"],
        out_msat=row["out_msat"],
        fee_msat=row["fee_msat"],
        status=ForwardStatus(row["status"]),
        failure_reason=FailureReason(row["failure_reason"]) if row["failure_reason"] else None,
        failcode=row["failcode"],
        failreason=row["failreason"],
        received_time=row["received_time"],
        resolved_time=row["resolved_time"],
        payment_hash=row.get("payment_hash"),
    )


def policy_from_row(row: dict[str, Any]) -> ChannelPolicy:
    return ChannelPolicy(
        base_fee_msat=row["base_fee_msat"],
        fee_ppm=row["fee_ppm"],
        inbound_base_fee_msat=row["inbound_base_fee_msat"],
        inbound_fee_ppm=row["inbound_fee_ppm"],
        min_htlc_msat=row["min_htlc_msat"],
        max_htlc_msat=row["max_htlc_msat"],
        cltv_delta=row["cltv_delta"],
        disabled=bool(row["disabled"]),
    )


def channel_from_row(row: dict[str, Any]) -> Channel:
    """Rebuild a :class:`Channel` from a ``channel_snapshots`` row."""
    return Channel(
        channel_id=ChannelId.parse(row["channel_id"]),
        peer_id=row["peer_id"],
        capacity_msat=row["capacity_msat"],
        local_balance_msat=row["local_balance_msat"],
        remote_balance_msat=row["remote_balance_msat"],
        local_policy=policy_from_row(row),
        active=bool(row["active"]),
        peer_alias=row.get("peer_alias") or "",
    )


def forward_row(event: HtlcEvent, source: str, key: str | None = None) -> tuple[Any, ...]:
    """The ``forwards`` row of an event; ``key`` is :attr:`HtlcEvent.key` when the caller has it already."""
    return (
        event.key if key is None else key,
        str(event.in_channel),
        event.in_htlc_id,
        str(event.out_channel) if event.out_channel else None,
        event.in_msat,
        event.out_msat,
        event.fee_msat,
        event.status.value,
        event.failure_reason.value if event.failure_reason else None,
        event.failcode,
        event.failreason,
        event.received_time,
        event.resolved_time,
        source,
        event.payment_hash,
    )


def snapshot_row(ch: Channel, time: float) -> tuple[Any, ...]:
    p = ch.local_policy
    if p is None:
        raise ValueError(f"channel {ch.channel_id}: no snapshot without our policy")
    return (time, str(ch.channel_id), ch.peer_id, ch.capacity_msat, ch.local_balance_msat, ch.remote_balance_msat,
            int(ch.active), p.base_fee_msat, p.fee_ppm, p.inbound_base_fee_msat, p.inbound_fee_ppm, p.min_htlc_msat,
            p.max_htlc_msat, p.cltv_delta, int(p.disabled), ch.peer_alias)  # fmt: skip
