"""Activity windows over settled forwards: half-open [start, end), each forward counted once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.fees.chargelnd import ActivityStats, activity_by_channel, activity_stats

A = ChannelId.parse("700000x1x0")
B = ChannelId.parse("700000x2x0")


def fwd(t, in_msat=10_000, out_msat=9_000, *, status=ForwardStatus.SETTLED, htlc_id=None, received=None, **kw):
    return HtlcEvent(
        in_channel=A,
        out_channel=B,
        in_msat=in_msat,
        out_msat=out_msat,
        status=status,
        received_time=t - 1 if received is None else received,
        resolved_time=t,
        in_htlc_id=htlc_id,
        **kw,
    )


def test_boundaries_are_half_open():
    events = [fwd(100.0, htlc_id=1), fwd(200.0, htlc_id=2), fwd(199.999, htlc_id=3)]
    stats = activity_by_channel(events, start_time=100.0, end_time=200.0)
    assert stats[A] == ActivityStats(htlcs_in=2, htlcs_out=0, in_msat=20_000, out_msat=0)
    assert stats[B] == ActivityStats(htlcs_in=0, htlcs_out=2, in_msat=0, out_msat=18_000)
    assert activity_by_channel(events, start_time=200.0, end_time=300.0)[A].htlcs_in == 1


def test_only_settled_forwards_count_once_each_by_settle_time():
    events = [
        fwd(150.0, htlc_id=1),
        fwd(150.0, htlc_id=1),  # the same HTLC reported twice (backfill and live)
        fwd(150.0, htlc_id=2, status=ForwardStatus.FAILED),
        fwd(150.0, htlc_id=3, status=ForwardStatus.OFFERED),
        fwd(250.0, htlc_id=4, received=150.0),  # received inside the window, settled after it
    ]
    assert activity_stats(events, A, start_time=100.0, end_time=200.0) == ActivityStats(1, 0, 10_000, 0)
    assert activity_stats(events, ChannelId.parse("1x1x1"), start_time=0, end_time=1e12) == ActivityStats()


def test_received_time_is_used_when_the_settle_time_is_unknown():
    event = HtlcEvent(in_channel=A, in_msat=5, status=ForwardStatus.SETTLED, received_time=120.0, out_channel=B)
    assert activity_stats([event], A, start_time=100.0, end_time=130.0).htlcs_in == 1


TIMES = st.lists(st.integers(0, 1000), max_size=40)


@given(TIMES, st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_adjacent_windows_add_up(times, a, b, c):
    a, b, c = sorted((a, b, c))
    events = [fwd(float(t), htlc_id=i) for i, t in enumerate(times)]
    whole = activity_stats(events, A, start_time=a, end_time=c)
    left = activity_stats(events, A, start_time=a, end_time=b)
    right = activity_stats(events, A, start_time=b, end_time=c)
    assert whole.htlcs_in == left.htlcs_in + right.htlcs_in
    assert whole.in_msat == left.in_msat + right.in_msat
    assert whole.htlcs_in == sum(1 for t in times if a <= t < c)
