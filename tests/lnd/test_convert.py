"""convert.py: lnd's HTLC events and history entries in CLN's forward_event vocabulary."""

from __future__ import annotations

import pytest
from lnlens_lnd.convert import HtlcConverter, history_forward, parse_version
from lnlens_lnd.rpc import ln, router

from lnlens_core.domain import ChannelId, FailureCategory, FailureReason, ForwardStatus

IN, OUT = ChannelId(800000, 1, 0), ChannelId(800001, 2, 1)


def msg(kind: str, *, htlc: int = 7, ts: float = 1000.0, event_type: int = 3, **fields):
    m = router.HtlcEvent(incoming_channel_id=IN.to_int(), outgoing_channel_id=OUT.to_int(), incoming_htlc_id=htlc,
                         outgoing_htlc_id=3, timestamp_ns=int(ts * 1e9), event_type=event_type)  # fmt: skip
    getattr(m, kind).CopyFrom(fields.pop("payload"))
    return m


def offered(**kw):
    info = router.HtlcInfo(incoming_amt_msat=101_000, outgoing_amt_msat=100_000)
    return msg("forward_event", payload=router.ForwardEvent(info=info), **kw)


def test_forward_then_settle_is_one_settled_forward():
    c = HtlcConverter()
    assert c.feed(offered(ts=1000.0)) is None and c.in_flight == 1
    e = c.feed(msg("settle_event", ts=1001.5, payload=router.SettleEvent(preimage=b"x" * 32)))
    assert (e.status, e.in_channel, e.out_channel, e.in_msat, e.out_msat, e.fee_msat) == (
        ForwardStatus.SETTLED,
        IN,
        OUT,
        101_000,
        100_000,
        1000,
    )
    assert (e.received_time, e.resolved_time, e.in_htlc_id, e.key) == (1000.0, 1001.5, 7, f"{IN}/7")
    assert c.in_flight == 0
    # lnd then sends final_htlc_event; it changes nothing.
    assert c.feed(msg("final_htlc_event", payload=router.FinalHtlcEvent(settled=True, offchain=True))) is None


def test_forward_fail_is_a_downstream_failure():
    c = HtlcConverter()
    c.feed(offered())
    e = c.feed(msg("forward_fail_event", ts=1002.0, payload=router.ForwardFailEvent()))
    assert e.status is ForwardStatus.FAILED and e.failure_reason is FailureReason.DOWNSTREAM


@pytest.mark.parametrize(
    ("wire", "detail", "reason", "category", "failcode"),
    [
        (15, 6, FailureReason.INSUFFICIENT_BALANCE, FailureCategory.LIQUIDITY, 4103),
        (15, 8, FailureReason.HTLC_LIMIT, FailureCategory.OTHER, 4103),  # HTLC_ADD_FAILED: limits, not balance
        (15, 1, FailureReason.HTLC_LIMIT, FailureCategory.OTHER, 4103),  # dust exposure
        (12, 1, FailureReason.FEE_INSUFFICIENT, FailureCategory.FEE, 4108),
        (15, 5, FailureReason.HTLC_LIMIT, FailureCategory.OTHER, 4103),
        (11, 1, FailureReason.HTLC_LIMIT, FailureCategory.OTHER, 4107),
        (13, 1, FailureReason.CLTV, FailureCategory.OTHER, 4109),
        (18, 3, FailureReason.UNAVAILABLE, FailureCategory.OTHER, 16394),
        (14, 9, FailureReason.DISABLED, FailureCategory.OTHER, 4116),
        (19, 7, FailureReason.UNAVAILABLE, FailureCategory.OTHER, 8194),
        (9, 2, FailureReason.ONION, FailureCategory.OTHER, 49157),
        (21, 4, FailureReason.UNAVAILABLE, FailureCategory.OTHER, 16392),
        (999, 1, FailureReason.UNKNOWN, FailureCategory.OTHER, None),
    ],
)
def test_link_fail_maps_as_reference_c(wire, detail, reason, category, failcode):
    info = router.HtlcInfo(incoming_amt_msat=50_500, outgoing_amt_msat=50_000)
    fail = router.LinkFailEvent(info=info, wire_failure=wire, failure_detail=detail, failure_string="boom")
    e = HtlcConverter().feed(msg("link_fail_event", payload=fail))
    assert e.status is ForwardStatus.LOCAL_FAILED
    assert (e.failure_reason, e.failure_category, e.failcode) == (reason, category, failcode)
    assert e.failreason.startswith("WIRE_") and e.failreason.endswith(": boom")
    assert (e.out_channel, e.out_msat, e.fee_msat) == (OUT, 50_000, 500)


def test_unmatched_resolutions_are_counted_not_invented():
    c = HtlcConverter()
    assert c.feed(msg("settle_event", payload=router.SettleEvent())) is None
    assert c.feed(msg("forward_fail_event", htlc=8, payload=router.ForwardFailEvent())) is None
    assert (c.unmatched_settles, c.unmatched_fails) == (1, 1)


def test_our_own_payments_and_invoices_are_not_forwards():
    c = HtlcConverter()
    for event_type in (0, 1, 2):  # UNKNOWN, SEND, RECEIVE
        assert c.feed(offered(event_type=event_type)) is None
    assert c.in_flight == 0
    assert c.feed(router.HtlcEvent(subscribed_event=router.SubscribedEvent())) is None


def test_history_entry_with_and_without_htlc_ids():
    ev = ln.ForwardingEvent(chan_id_in=IN.to_int(), chan_id_out=OUT.to_int(), amt_in_msat=10_010, amt_out_msat=10_000,
                            fee_msat=10, timestamp_ns=1_770_000_000_123_456_789, timestamp=1_770_000_000)  # fmt: skip
    old = history_forward(ev)
    assert old.in_htlc_id is None and old.key.startswith("h:")
    ev.incoming_htlc_id = 0  # 0 is a real id from lnd 0.20: presence, not value, decides
    new = history_forward(ev)
    assert new.in_htlc_id == 0 and new.key == f"{IN}/0"
    assert new.status is ForwardStatus.SETTLED and new.fee_msat == 10
    assert new.received_time == new.resolved_time == pytest.approx(1_770_000_000.123456789)


@pytest.mark.parametrize(("text", "version"), [("0.21.2-beta commit=v0.21.2", (0, 21, 2)), ("0.18.0-beta", (0, 18, 0)),
                                               ("v0.20.1-beta.rc1", (0, 20, 1)), ("weird", (0, 0, 0))])  # fmt: skip
def test_parse_version(text, version):
    assert parse_version(text) == version


def test_offers_whose_resolution_never_came_are_forgotten():
    c = HtlcConverter()
    c.feed(offered(htlc=1, ts=1000.0))
    c.feed(offered(htlc=2, ts=1000.0 + 20 * 86_400))
    assert c.in_flight == 2 and c.forgotten == 0
    c.feed(offered(htlc=3, ts=1000.0 + 22 * 86_400))  # more than 21 days after the first offer
    assert c.in_flight == 2 and c.forgotten == 1
    assert c.feed(msg("settle_event", htlc=2, payload=router.SettleEvent())).status is ForwardStatus.SETTLED
