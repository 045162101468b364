"""Issue [M]: the fee policy's per-channel forward sums come from SQLite with the numbers the Python loops gave.

charge-lnd's activity windows (settled forwards timed by when they settled), revenue per fee level and the
signals' flow counters, each against the Python path it replaced on the same random store: forwards settled
later or never timed, without ``out_msat`` or an outgoing channel, exactly at window edges, policy changes,
several snapshots at one fee.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.fees.assemble import _activity, _flow_sums
from lnlens_core.fees.chargelnd import activity_by_channel
from lnlens_core.fees.signals import compute_signals, fee_epochs
from lnlens_core.storage import Store
from lnlens_core.testing import make_channel

DAY = 86_400.0
NOW = 1_800_000_000.0
IDS = [ChannelId(820_000 + i, i, 1) for i in range(4)]
times = st.one_of(st.sampled_from([NOW - DAY, NOW - 7 * DAY, NOW - 8 * DAY, NOW]),
                  st.floats(NOW - 40 * DAY, NOW + DAY).map(lambda t: round(t, 3)))  # fmt: skip


@st.composite
def stores(draw):
    store = Store(None)
    snapshots = sorted(draw(st.lists(st.floats(NOW - 35 * DAY, NOW - 1).map(lambda t: round(t, 3)), max_size=6)))
    for when in snapshots:
        fees = draw(st.lists(st.sampled_from([10, 100, 300]), min_size=len(IDS), max_size=len(IDS)))
        store.add_snapshots([make_channel(cid, fee_ppm=fee) for cid, fee in zip(IDS, fees, strict=True)], time=when)
    events = []
    for i in range(draw(st.integers(0, 50))):
        status = draw(st.sampled_from([ForwardStatus.SETTLED, ForwardStatus.SETTLED, ForwardStatus.LOCAL_FAILED,
                                       ForwardStatus.FAILED, ForwardStatus.OFFERED]))  # fmt: skip
        received = draw(st.one_of(times, st.sampled_from(snapshots))) if snapshots else draw(times)
        settled = status is ForwardStatus.SETTLED
        events.append(HtlcEvent(
            draw(st.sampled_from(IDS)), draw(st.integers(1_000, 3_000_000)), status, received, in_htlc_id=i,
            out_channel=draw(st.one_of(st.none(), st.sampled_from(IDS))) if not settled else draw(st.sampled_from(IDS)),
            out_msat=draw(st.one_of(st.none(), st.integers(0, 1_000_000))),
            fee_msat=draw(st.one_of(st.none(), st.integers(0, 5_000))) if settled else None,
            failure_reason=FailureReason.INSUFFICIENT_BALANCE if status is ForwardStatus.LOCAL_FAILED else None,
            resolved_time=draw(st.one_of(st.none(), st.floats(received, received + 3 * DAY))),
        ))  # fmt: skip
    store.ingest_forwards(events, source="live")
    return store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), st.sets(st.sampled_from([DAY, 7 * DAY, 30 * DAY, 3_600]), max_size=3),
       st.sampled_from([100, 300]))  # fmt: skip
def test_the_policy_inputs_summed_in_sql_equal_the_python_loops(store, windows, fee_now):
    channels = [make_channel(cid, fee_ppm=fee_now) for cid in IDS[:3]]
    windows = {int(w) for w in windows}
    history = list(store.policy_history())
    forwards = list(store.iter_forwards(since=NOW - 30 * DAY - 3_600, until=NOW))
    epochs = fee_epochs(channels, forwards, history, now=NOW)
    for deferred in (False, True):  # also while a first backfill has not built the settled indexes yet
        if deferred:
            store.db.executescript("DROP INDEX forwards_settled_in; DROP INDEX forwards_settled_out")
        if windows:  # charge-lnd's activity: what assemble read as objects before
            events = list(store.iter_forwards(since=NOW - max(windows) - 86_400, until=NOW))
            by_python = {w: activity_by_channel(events, start_time=NOW - w, end_time=NOW) for w in windows}
            assert _activity(store, windows, NOW) == by_python
        assert fee_epochs(channels, (), history, now=NOW, level_sums=store.settled_by_fee_level) == epochs
    assert compute_signals(channels, (), history, now=NOW, history=epochs, flow_sums=_flow_sums(store)) == \
        compute_signals(channels, forwards, history, now=NOW, history=epochs)
