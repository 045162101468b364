"""Why a forward failed: CLN failcodes and LND failure details mapped to :class:`FailureReason`.

The tables follow shared/REFERENCE.md section C. Each reason belongs to one
category (liquidity, fee, other) that decides what the analyzer recommends. Where
the wire code is ambiguous, the choice and its reason are stated next to it:
a wrong "liquidity" label would send an operator rebalancing for nothing.
"""

from __future__ import annotations

from ..domain import FailureReason, ForwardStatus

__all__ = ["classify_cln", "classify_lnd_link_fail", "CLN_FAILCODES", "CLN_FAILREASONS", "LND_WIRE", "LND_DETAIL"]

R = FailureReason

# BOLT 4 failure codes as CLN reports them in `failcode` (decimal).
CLN_FAILCODES: dict[int, FailureReason] = {
    # temporary_channel_failure: CLN also uses it for HTLC min/max violations, too many HTLCs and a
    # disconnected peer. Adapters that know the channel refine it (see refine_temporary_failure).
    4103: R.INSUFFICIENT_BALANCE,
    4108: R.FEE_INSUFFICIENT,
    4107: R.HTLC_LIMIT,  # amount_below_minimum
    # required_node_feature_missing is CLN's "max HTLC value in flight exceeded": a limit on what may be
    # in flight, not a shortage of balance, so a rebalance would not help.
    16387: R.HTLC_LIMIT,
    4109: R.CLTV,
    4110: R.CLTV,
    21: R.CLTV,
    4116: R.DISABLED,
    16394: R.UNAVAILABLE,  # unknown_next_peer: no such channel, or it cannot take HTLCs now
    8194: R.UNAVAILABLE,  # temporary_node_failure
    16386: R.UNAVAILABLE,  # permanent_node_failure
    16392: R.UNAVAILABLE,  # permanent_channel_failure
    16393: R.UNAVAILABLE,  # required_channel_feature_missing
    49156: R.ONION,
    49157: R.ONION,
    49158: R.ONION,
    16406: R.ONION,
    49176: R.ONION,
}

# CLN's `failreason` names, for events that carry the name but no code.
CLN_FAILREASONS: dict[str, FailureReason] = {
    "WIRE_TEMPORARY_CHANNEL_FAILURE": R.INSUFFICIENT_BALANCE,
    "WIRE_FEE_INSUFFICIENT": R.FEE_INSUFFICIENT,
    "WIRE_AMOUNT_BELOW_MINIMUM": R.HTLC_LIMIT,
    "WIRE_REQUIRED_NODE_FEATURE_MISSING": R.HTLC_LIMIT,
    "WIRE_INCORRECT_CLTV_EXPIRY": R.CLTV,
    "WIRE_EXPIRY_TOO_SOON": R.CLTV,
    "WIRE_EXPIRY_TOO_FAR": R.CLTV,
    "WIRE_CHANNEL_DISABLED": R.DISABLED,
    "WIRE_UNKNOWN_NEXT_PEER": R.UNAVAILABLE,
    "WIRE_TEMPORARY_NODE_FAILURE": R.UNAVAILABLE,
    "WIRE_PERMANENT_NODE_FAILURE": R.UNAVAILABLE,
    "WIRE_PERMANENT_CHANNEL_FAILURE": R.UNAVAILABLE,
    "WIRE_REQUIRED_CHANNEL_FEATURE_MISSING": R.UNAVAILABLE,
    "WIRE_INVALID_ONION_VERSION": R.ONION,
    "WIRE_INVALID_ONION_HMAC": R.ONION,
    "WIRE_INVALID_ONION_KEY": R.ONION,
    "WIRE_INVALID_ONION_PAYLOAD": R.ONION,
    "WIRE_INVALID_ONION_BLINDING": R.ONION,
}


def classify_cln(status: ForwardStatus, failcode: int | None, failreason: str | None) -> FailureReason | None:
    """The reason for a CLN forward with this status, failcode and failreason.

    ``failed`` means a node downstream failed it (the error is encrypted to the
    sender): not about our channels. Settled and in-flight forwards have no reason.
    """
    if status is ForwardStatus.FAILED:
        return R.DOWNSTREAM
    if status is not ForwardStatus.LOCAL_FAILED:
        return None
    if failcode is not None and failcode in CLN_FAILCODES:
        return CLN_FAILCODES[failcode]
    if failreason:
        return CLN_FAILREASONS.get(failreason.strip().upper(), R.UNKNOWN)
    return R.UNKNOWN


def refine_temporary_failure(
    reason: FailureReason, *, out_msat: int | None, spendable_msat: int | None, peer_connected: bool | None
) -> FailureReason:
    """Correct CLN's ambiguous temporary_channel_failure when the channel's state is known.

    A disconnected peer makes it an availability problem; an amount that fits in
    what the channel could spend means a limit was hit, not a shortage of balance.
    """
    if reason is not R.INSUFFICIENT_BALANCE:
        return reason
    if peer_connected is False:
        return R.UNAVAILABLE
    if out_msat is not None and spendable_msat is not None and out_msat <= spendable_msat:
        return R.HTLC_LIMIT
    return reason


# LND lnrpc.Failure.FailureCode (LND's own numbering, not BOLT 4).
LND_WIRE: dict[int, FailureReason] = {
    7: R.CLTV,  # EXPIRY_TOO_SOON
    8: R.ONION,
    9: R.ONION,
    10: R.ONION,
    11: R.HTLC_LIMIT,  # AMOUNT_BELOW_MINIMUM
    12: R.FEE_INSUFFICIENT,
    13: R.CLTV,  # INCORRECT_CLTV_EXPIRY
    14: R.DISABLED,
    15: R.INSUFFICIENT_BALANCE,  # TEMPORARY_CHANNEL_FAILURE; the detail refines it below
    16: R.UNAVAILABLE,
    17: R.UNAVAILABLE,
    18: R.UNAVAILABLE,  # UNKNOWN_NEXT_PEER
    19: R.UNAVAILABLE,  # TEMPORARY_NODE_FAILURE
    20: R.UNAVAILABLE,
    21: R.UNAVAILABLE,  # PERMANENT_CHANNEL_FAILURE
    22: R.CLTV,  # EXPIRY_TOO_FAR
    24: R.ONION,
    25: R.ONION,
}

# LND routerrpc.FailureDetail; it wins over the wire code when it says more.
LND_DETAIL: dict[int, FailureReason] = {
    2: R.ONION,  # ONION_DECODE
    3: R.UNAVAILABLE,  # LINK_NOT_ELIGIBLE: peer offline or channel flushing
    4: R.UNAVAILABLE,  # ON_CHAIN_TIMEOUT
    5: R.HTLC_LIMIT,  # HTLC_EXCEEDS_MAX
    6: R.INSUFFICIENT_BALANCE,  # the one clean liquidity signal
    7: R.UNAVAILABLE,  # INCOMPLETE_FORWARD
    # HTLC_ADD_FAILED: a state-machine refusal (fee or dust exposure, slot limits), not a lack of balance.
    8: R.HTLC_LIMIT,
    9: R.DISABLED,  # FORWARDS_DISABLED
    22: R.UNKNOWN,  # CIRCULAR_ROUTE
}


def classify_lnd_link_fail(wire_failure: int, failure_detail: int) -> FailureReason:
    """The reason for an LND ``link_fail_event`` (a forward our node refused).

    TEMPORARY_CHANNEL_FAILURE with NO_DETAIL is dust or fee exposure (REFERENCE.md C),
    a limit rather than a balance shortage.
    """
    if failure_detail in LND_DETAIL:
        return LND_DETAIL[failure_detail]
    if wire_failure == 15 and failure_detail == 1:
        return R.HTLC_LIMIT
    return LND_WIRE.get(wire_failure, R.UNKNOWN)
