"""lnd's wire messages as lnlens domain records (and back, for policy updates).

HTLC events follow CLN's ``forward_event`` vocabulary (DESIGN.md 5.4):

- ``forward_event`` (sent out) is remembered until the HTLC resolves;
- ``settle_event`` -> ``settled``; ``forward_fail_event`` -> ``failed`` (downstream);
- ``link_fail_event`` -> ``local_failed``, its reason from the wire failure and
  FailureDetail (:func:`lnlens_core.opportunities.failures.classify_lnd_link_fail`). ``failcode``
  holds the BOLT 4 code of lnd's wire failure (lnd numbers them its own way) and
  ``failreason`` its name with the detail.

Only ``event_type`` FORWARD counts: our own payments and invoices are not forwards.
A ForwardingHistory entry is a settled forward; lnd records one time for it, the
settlement, so ``received_time`` equals ``resolved_time`` there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lnlens_core.domain import Channel, ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent, PendingHtlc
from lnlens_core.opportunities.failures import classify_lnd_link_fail

__all__ = [
    "parse_version",
    "channel",
    "policy",
    "history_forward",
    "HtlcConverter",
    "BOLT_CODE",
    "WIRE_NAMES",
    "DETAIL_NAMES",
    "EVENT_FORWARD",
]

EVENT_FORWARD = 3
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")

# lnrpc.Failure.FailureCode -> (BOLT 4 failure code, name)
_WIRE: dict[int, tuple[int | None, str]] = {
    1: (16399, "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"),
    7: (4110, "EXPIRY_TOO_SOON"),
    8: (49156, "INVALID_ONION_VERSION"),
    9: (49157, "INVALID_ONION_HMAC"),
    10: (49158, "INVALID_ONION_KEY"),
    11: (4107, "AMOUNT_BELOW_MINIMUM"),
    12: (4108, "FEE_INSUFFICIENT"),
    13: (4109, "INCORRECT_CLTV_EXPIRY"),
    14: (4116, "CHANNEL_DISABLED"),
    15: (4103, "TEMPORARY_CHANNEL_FAILURE"),
    16: (24579, "REQUIRED_NODE_FEATURE_MISSING"),
    17: (16393, "REQUIRED_CHANNEL_FEATURE_MISSING"),
    18: (16394, "UNKNOWN_NEXT_PEER"),
    19: (8194, "TEMPORARY_NODE_FAILURE"),
    20: (24578, "PERMANENT_NODE_FAILURE"),
    21: (16392, "PERMANENT_CHANNEL_FAILURE"),
    22: (21, "EXPIRY_TOO_FAR"),
    23: (23, "MPP_TIMEOUT"),
    24: (16406, "INVALID_ONION_PAYLOAD"),
    25: (49176, "INVALID_ONION_BLINDING"),
    997: (None, "INTERNAL_FAILURE"),
    998: (None, "UNKNOWN_FAILURE"),
    999: (None, "UNREADABLE_FAILURE"),
}
BOLT_CODE = {k: v[0] for k, v in _WIRE.items() if v[0] is not None}
WIRE_NAMES = {k: v[1] for k, v in _WIRE.items()}
DETAIL_NAMES = {
    0: "UNKNOWN",
    1: "NO_DETAIL",
    2: "ONION_DECODE",
    3: "LINK_NOT_ELIGIBLE",
    4: "ON_CHAIN_TIMEOUT",
    5: "HTLC_EXCEEDS_MAX",
    6: "INSUFFICIENT_BALANCE",
    7: "INCOMPLETE_FORWARD",
    8: "HTLC_ADD_FAILED",
    9: "FORWARDS_DISABLED",
    22: "CIRCULAR_ROUTE",
}


def parse_version(text: str) -> tuple[int, int, int]:
    """``"0.21.2-beta commit=v0.21.2"`` -> ``(0, 21, 2)``; unreadable -> ``(0, 0, 0)``."""
    match = _VERSION.match(text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)


def policy(routing, fee_report=None) -> ChannelPolicy:
    """Our (or a peer's) policy from a RoutingPolicy; FeeReport's figures win for our own fees."""
    base, ppm = routing.fee_base_msat, routing.fee_rate_milli_msat
    in_base, in_ppm = routing.inbound_fee_base_msat, routing.inbound_fee_rate_milli_msat
    if fee_report is not None:
        base, ppm = fee_report.base_fee_msat, fee_report.fee_per_mil
        in_base, in_ppm = fee_report.inbound_base_fee_msat, fee_report.inbound_fee_per_mil
    return ChannelPolicy(
        base_fee_msat=int(base),
        fee_ppm=int(ppm),
        inbound_base_fee_msat=int(in_base),
        inbound_fee_ppm=int(in_ppm),
        min_htlc_msat=int(routing.min_htlc),
        max_htlc_msat=int(routing.max_htlc_msat) or None,
        cltv_delta=int(routing.time_lock_delta),
        disabled=bool(routing.disabled),
    )


def channel(ch, own_policy: ChannelPolicy | None) -> Channel:
    """A ListChannels entry (amounts in sat) with our policy on it.

    ``commit_fee`` is reported whoever opened the channel and kept as is (charge-lnd
    counts it on the opener's side). The local constraints bound the HTLC limits we
    can set: ``min_htlc_msat`` and ``max_pending_amt_msat``.
    """
    local = ch.local_constraints if ch.HasField("local_constraints") else None
    return Channel(
        channel_id=ChannelId.from_int(ch.chan_id),
        peer_id=ch.remote_pubkey,
        capacity_msat=ch.capacity * 1000,
        local_balance_msat=ch.local_balance * 1000,
        remote_balance_msat=ch.remote_balance * 1000,
        local_policy=own_policy,
        active=ch.active,
        private=ch.private,
        initiator=ch.initiator,
        peer_alias=ch.peer_alias,
        local_reserve_msat=ch.local_constraints.chan_reserve_sat * 1000,
        remote_reserve_msat=ch.remote_constraints.chan_reserve_sat * 1000,
        commit_fee_msat=ch.commit_fee * 1000,
        pending_htlcs=tuple(PendingHtlc(h.incoming, h.amount * 1000, h.expiration_height) for h in ch.pending_htlcs),
        min_htlc_floor_msat=int(local.min_htlc_msat) if local is not None else None,
        max_htlc_cap_msat=int(local.max_pending_amt_msat) if local is not None else None,
    )


def history_forward(ev) -> HtlcEvent:
    """A ForwardingHistory entry: a settled forward. HTLC ids only from lnd 0.20."""
    when = ev.timestamp_ns / 1e9 if ev.timestamp_ns else float(ev.timestamp)
    in_msat = ev.amt_in_msat or ev.amt_in * 1000
    out_msat = ev.amt_out_msat or ev.amt_out * 1000
    return HtlcEvent(
        in_channel=ChannelId.from_int(ev.chan_id_in),
        in_msat=in_msat,
        status=ForwardStatus.SETTLED,
        received_time=when,
        in_htlc_id=ev.incoming_htlc_id if ev.HasField("incoming_htlc_id") else None,
        out_channel=ChannelId.from_int(ev.chan_id_out),
        out_msat=out_msat,
        fee_msat=in_msat - out_msat,
        resolved_time=when,
    )


@dataclass(slots=True)
class _Offered:
    out_channel: ChannelId | None
    in_msat: int
    out_msat: int
    time: float


class HtlcConverter:
    """Turns the SubscribeHtlcEvents stream into resolved :class:`HtlcEvent` records.

    Stateful: a settle or downstream failure carries only ids, so the amounts come
    from the ``forward_event`` seen earlier. A resolution whose offer was not seen
    (the stream started while the HTLC was in flight) is counted in ``unmatched``;
    settled ones come back through ForwardingHistory.
    """

    #: An offer whose resolution never arrived (it happened while the stream was down) is forgotten after
    #: this long past the newest event seen: longer than any HTLC can stay in flight (CLTV deltas of ~2 weeks).
    FORGET_AFTER_S = 21 * 86_400

    def __init__(self) -> None:
        self._offered: dict[tuple[int, int], _Offered] = {}
        self.unmatched_settles = 0
        self.unmatched_fails = 0
        self.forgotten = 0
        self._newest = 0.0
        self._ids: dict[int, ChannelId] = {}
        """Channel ids by lnd's uint64: a busy stream names the same few channels in every message."""

    def _channel(self, value: int) -> ChannelId:
        cid = self._ids.get(value)
        if cid is None:
            if len(self._ids) >= 100_000:  # closed channels' ids never come back: start over rather than grow
                self._ids.clear()
            cid = self._ids[value] = ChannelId.from_int(value)
        return cid

    def feed(self, msg) -> HtlcEvent | None:
        """The resolved forward this message completes, if any."""
        if msg.event_type != EVENT_FORWARD:
            return None
        kind = msg.WhichOneof("event")
        key = (msg.incoming_channel_id, msg.incoming_htlc_id)
        when = msg.timestamp_ns / 1e9
        if kind == "forward_event":
            info = msg.forward_event.info
            out = self._channel(msg.outgoing_channel_id) if msg.outgoing_channel_id else None
            self._offered[key] = _Offered(out, info.incoming_amt_msat, info.outgoing_amt_msat, when)
            if when > self._newest + 86_400:  # once a day (event time) at most
                self._newest = when
                self._forget(when - self.FORGET_AFTER_S)
            return None
        if kind == "link_fail_event":
            self._offered.pop(key, None)
            return self._link_fail(msg, when)
        if kind not in ("settle_event", "forward_fail_event"):
            return None  # subscribed_event, final_htlc_event
        offered = self._offered.pop(key, None)
        if offered is None:
            if kind == "settle_event":
                self.unmatched_settles += 1
            else:
                self.unmatched_fails += 1
            return None
        settled = kind == "settle_event"
        return HtlcEvent(
            in_channel=self._channel(msg.incoming_channel_id),
            in_msat=offered.in_msat,
            status=ForwardStatus.SETTLED if settled else ForwardStatus.FAILED,
            received_time=offered.time,
            in_htlc_id=msg.incoming_htlc_id,
            out_channel=offered.out_channel,
            out_msat=offered.out_msat,
            fee_msat=offered.in_msat - offered.out_msat,
            resolved_time=when,
            failure_reason=None if settled else FailureReason.DOWNSTREAM,
        )

    def _link_fail(self, msg, when: float) -> HtlcEvent:
        fail = msg.link_fail_event
        info = fail.info
        out_known = bool(msg.outgoing_channel_id) and info.outgoing_amt_msat > 0
        out_msat = info.outgoing_amt_msat if out_known else None
        name = f"WIRE_{WIRE_NAMES.get(fail.wire_failure, str(fail.wire_failure))}"
        detail = DETAIL_NAMES.get(fail.failure_detail, str(fail.failure_detail))
        text = f"{name} ({detail})" + (f": {fail.failure_string}" if fail.failure_string else "")
        return HtlcEvent(
            in_channel=self._channel(msg.incoming_channel_id),
            in_msat=info.incoming_amt_msat,
            status=ForwardStatus.LOCAL_FAILED,
            received_time=when,
            in_htlc_id=msg.incoming_htlc_id,
            out_channel=self._channel(msg.outgoing_channel_id) if msg.outgoing_channel_id else None,
            out_msat=out_msat,
            fee_msat=info.incoming_amt_msat - out_msat if out_msat is not None else None,
            resolved_time=when,
            failure_reason=classify_lnd_link_fail(fail.wire_failure, fail.failure_detail),
            failcode=BOLT_CODE.get(fail.wire_failure),
            failreason=text,
        )

    def _forget(self, before: float) -> None:
        stale = [k for k, o in self._offered.items() if o.time < before]
        for k in stale:
            del self._offered[k]
        self.forgotten += len(stale)

    @property
    def in_flight(self) -> int:
        return len(self._offered)
