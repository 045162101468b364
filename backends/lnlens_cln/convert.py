"""CLN JSON ↔ lnlens domain records. Pure functions: no RPC, no state.

Field names follow shared/REFERENCE.md A3 (``listforwards``/``forward_event``,
``listpeerchannels``, ``listchannels``, ``setchannel``). Amounts may arrive as
ints, pyln ``Millisatoshi`` or ``"123msat"`` strings; the core only ever sees ints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lnlens_core.domain import Channel, ChannelId, ChannelPolicy, FeeUpdate, ForwardStatus, HtlcEvent, PendingHtlc
from lnlens_core.opportunities.failures import classify_cln

__all__ = [
    "msat",
    "forward_from_cln",
    "channel_from_cln",
    "policy_from_gossip",
    "policy_from_update",
    "setchannel_params",
]

# Channels in these states hold funds we can route with; the rest are opening or closing.
OPEN_STATES = frozenset({"CHANNELD_NORMAL", "CHANNELD_AWAITING_SPLICE"})
DEFAULT_CLTV_DELTA = 34  # lightningd's default cltv-delta, used until an update tells us otherwise


def msat(value: Any) -> int:
    """An integer msat amount from an int, a pyln ``Millisatoshi`` or a ``"Nmsat"`` string."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value
    if hasattr(value, "millisatoshis"):
        return int(value.millisatoshis)
    text = str(value)
    if text.endswith("msat"):
        return int(text[:-4])
    if text.endswith("sat"):
        return int(text[:-3]) * 1000
    return int(text)


def _opt_msat(value: Any) -> int | None:
    return None if value is None else msat(value)


def _scid(row: Mapping[str, Any], key: str) -> ChannelId | None:
    value = row.get(key)
    return ChannelId.parse(value) if value else None


def _payment_hash(value: Any) -> str | None:
    """The forward's payment hash (``forward_event`` carries it), lower-case hex; None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"forward with a malformed payment_hash {value!r} (64 hex digits expected)")
    return value.lower()


def forward_from_cln(row: Mapping[str, Any]) -> HtlcEvent:
    """A ``listforwards`` row or a ``forward_event`` payload as an :class:`HtlcEvent`.

    :raises ValueError: a field is missing or malformed (naming it).
    """
    try:
        status = ForwardStatus(row["status"])
        failcode = int(row["failcode"]) if row.get("failcode") is not None else None
        failreason = row.get("failreason")
        in_channel = ChannelId.parse(row["in_channel"])
        return HtlcEvent(
            in_channel=in_channel,
            in_msat=msat(row["in_msat"]),
            status=status,
            received_time=float(row["received_time"]),
            in_htlc_id=int(row["in_htlc_id"]) if row.get("in_htlc_id") is not None else None,
            out_channel=_scid(row, "out_channel"),
            out_msat=_opt_msat(row.get("out_msat")),
            fee_msat=_opt_msat(row.get("fee_msat")),
            resolved_time=float(row["resolved_time"]) if row.get("resolved_time") is not None else None,
            failure_reason=classify_cln(status, failcode, failreason),
            failcode=failcode,
            failreason=failreason,
            payment_hash=_payment_hash(row.get("payment_hash")),
        )
    except KeyError as exc:
        raise ValueError(f"forward without {exc.args[0]!r}: {dict(row)!r}") from None


def policy_from_update(update: Mapping[str, Any], *, disabled: bool = False) -> ChannelPolicy:
    """A policy from a ``listpeerchannels`` ``updates.local``/``updates.remote`` object."""
    return ChannelPolicy(
        base_fee_msat=msat(update.get("fee_base_msat", 0)),
        fee_ppm=int(update.get("fee_proportional_millionths", 0)),
        min_htlc_msat=msat(update.get("htlc_minimum_msat", 0)),
        max_htlc_msat=_opt_msat(update.get("htlc_maximum_msat")),
        cltv_delta=int(update.get("cltv_expiry_delta", DEFAULT_CLTV_DELTA)),
        disabled=disabled,
    )


def policy_from_gossip(entry: Mapping[str, Any]) -> ChannelPolicy:
    """A policy from one ``listchannels`` direction (gossip)."""
    return ChannelPolicy(
        base_fee_msat=int(entry["base_fee_millisatoshi"]),
        fee_ppm=int(entry["fee_per_millionth"]),
        min_htlc_msat=msat(entry.get("htlc_minimum_msat", 0)),
        max_htlc_msat=_opt_msat(entry.get("htlc_maximum_msat")),
        cltv_delta=int(entry.get("delay", DEFAULT_CLTV_DELTA)),
        disabled=not entry.get("active", True),
    )


def local_policy_of(pc: Mapping[str, Any]) -> ChannelPolicy:
    """Our policy on a ``listpeerchannels`` entry."""
    # The top-level fields are what lightningd enforces now; `updates.local` (v24.02) adds the CLTV delta.
    local = (pc.get("updates") or {}).get("local") or {}
    return ChannelPolicy(
        base_fee_msat=msat(pc.get("fee_base_msat", local.get("fee_base_msat", 0))),
        fee_ppm=int(pc.get("fee_proportional_millionths", local.get("fee_proportional_millionths", 0))),
        min_htlc_msat=msat(pc.get("minimum_htlc_out_msat", local.get("htlc_minimum_msat", 0))),
        max_htlc_msat=_opt_msat(pc.get("maximum_htlc_out_msat", local.get("htlc_maximum_msat"))),
        cltv_delta=int(local.get("cltv_expiry_delta", DEFAULT_CLTV_DELTA)),
    )


def channel_id_of(pc: Mapping[str, Any]) -> ChannelId | None:
    """The channel's short id, or our local alias for a channel without one yet."""
    scid = pc.get("short_channel_id") or (pc.get("alias") or {}).get("local")
    return ChannelId.parse(scid) if scid else None


def channel_from_cln(pc: Mapping[str, Any], *, peer_alias: str = "") -> Channel | None:
    """One ``listpeerchannels`` entry as a :class:`Channel`; None unless it is open."""
    cid = channel_id_of(pc)
    if cid is None or pc.get("state") not in OPEN_STATES:
        return None
    total = msat(pc["total_msat"])
    to_us = msat(pc["to_us_msat"])
    htlcs = tuple(
        PendingHtlc(incoming=h.get("direction") == "in", amount_msat=msat(h["amount_msat"]),
                    expiry_height=int(h.get("expiry", 0)))
        for h in pc.get("htlcs") or ()
    )  # fmt: skip
    return Channel(
        channel_id=cid,
        peer_id=str(pc["peer_id"]),
        capacity_msat=total,
        local_balance_msat=to_us,
        remote_balance_msat=total - to_us,
        local_policy=local_policy_of(pc),
        active=bool(pc.get("peer_connected")) and pc.get("state") == "CHANNELD_NORMAL",
        private=bool(pc.get("private", False)),
        initiator=(pc["opener"] == "local") if "opener" in pc else None,
        peer_alias=peer_alias,
        local_reserve_msat=msat(pc.get("our_reserve_msat", 0)),
        remote_reserve_msat=msat(pc.get("their_reserve_msat", 0)),
        pending_htlcs=htlcs,
        spendable_msat=_opt_msat(pc.get("spendable_msat")),
        receivable_msat=_opt_msat(pc.get("receivable_msat")),
        max_htlc_cap_msat=_max_htlc_cap(pc, total),
    )


def _max_htlc_cap(pc: Mapping[str, Any], total_msat: int) -> int | None:
    """The largest htlcmax ``setchannel`` keeps: the capacity less the reserve we must keep, or the peer's
    ``max_htlc_value_in_flight`` when smaller (lightningd lowers a larger one to this). None before v25.02,
    which does not report the peer's in-flight limit.

    There is no floor to report: lightningd raises a too-low htlcmin to the peer's minimum itself, and
    listpeerchannels does not show that minimum.
    """
    in_flight = pc.get("their_max_htlc_value_in_flight_msat")
    if in_flight is None:
        return None
    return min(msat(in_flight), total_msat - msat(pc.get("our_reserve_msat", 0)))


def setchannel_params(channel_id: ChannelId, update: FeeUpdate) -> dict[str, Any]:
    """``setchannel`` parameters for the fields an update sets (unset ones stay unchanged)."""
    params: dict[str, Any] = {"id": str(channel_id)}
    if update.base_fee_msat is not None:
        params["feebase"] = update.base_fee_msat
    if update.fee_ppm is not None:
        params["feeppm"] = update.fee_ppm
    if update.min_htlc_msat is not None:
        params["htlcmin"] = update.min_htlc_msat
    if update.max_htlc_msat is not None:
        params["htlcmax"] = update.max_htlc_msat
    return params
