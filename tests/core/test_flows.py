"""Sliding windows agree with exact counts, stay bounded, and survive a restart without double counting."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

import lnlens_core.opportunities.monitor as monitor_module
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.opportunities.flows import (
    METRICS,
    NO_FLOW,
    WINDOWS,
    Flow,
    FlowCounter,
    FlowTable,
    PolicyBook,
    WindowedFlows,
)
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.storage import Store
from lnlens_core.testing import make_channel

CHANNELS = [make_channel(f"80000{i}x1x0") for i in range(6)]


def random_events(n, *, start, span_s, seed=7):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(CHANNELS, 2)
        t = start + rng.random() * span_s
        if rng.random() < 0.6:
            out.append(
                HtlcEvent(
                    a.channel_id,
                    101_000,
                    ForwardStatus.SETTLED,
                    t,
                    in_htlc_id=i,
                    out_channel=b.channel_id,
                    out_msat=100_000,
                    fee_msat=1000,
                    resolved_time=t + 1,
                )
            )
        else:
            reason = rng.choice(
                [FailureReason.INSUFFICIENT_BALANCE, FailureReason.FEE_INSUFFICIENT, FailureReason.CLTV]
            )
            out.append(
                HtlcEvent(
                    a.channel_id,
                    101_000,
                    ForwardStatus.LOCAL_FAILED,
                    t,
                    in_htlc_id=i,
                    out_channel=b.channel_id,
                    out_msat=100_000,
                    failure_reason=reason,
                    resolved_time=t + 1,
                )
            )
    return sorted(out, key=lambda e: e.received_time)  # fmt: skip


def book():
    b = PolicyBook()
    b.observe_channels(CHANNELS, 0.0)
    return b


def test_windows_match_exact_counts_at_bucket_boundaries():
    now = 40 * 86_400.0  # a bucket boundary for every window
    events = random_events(3_000, start=now - 35 * 86_400, span_s=35 * 86_400)
    windowed = WindowedFlows(book())
    for i in range(0, len(events), 500):
        windowed.add(events[i : i + 500])
    for name, (length, _) in WINDOWS.items():
        exact = FlowCounter(book(), since=now - length, until=now)
        exact.add(events)
        got, want = windowed.stats(name, now), exact.stats()
        assert got.out == want.out and got.inbound == want.inbound and got.pairs == want.pairs, name


def test_memory_is_bounded_by_keys_not_events():
    windowed = WindowedFlows(book())
    windowed.add(random_events(2_000, start=0, span_s=86_400))
    keys, size = windowed.keys, windowed.nbytes()
    windowed.add(random_events(20_000, start=86_400, span_s=86_400, seed=8))
    assert windowed.keys == keys == 6 + 6 + 30  # in + out + pairs of 6 channels
    assert windowed.nbytes() == size


def test_restart_rebuilds_windows_from_the_store_without_double_counting(tmp_path, manual_clock):
    now = manual_clock.now()
    events = random_events(2_000, start=now - 10 * 86_400, span_s=10 * 86_400 - 1)
    store = Store(tmp_path / "db.sqlite3")
    monitor = HtlcMonitor(store, manual_clock, lambda e: None)
    monitor.observe_channels(CHANNELS)
    monitor.record(events[:1500])
    monitor.record(events[1000:])  # an overlapping re-delivery
    before = monitor.flows.stats("7d", now)
    store.close()
    store = Store(tmp_path / "db.sqlite3")
    restarted = HtlcMonitor(store, manual_clock, lambda e: None)
    assert restarted.load_history() == 2_000
    assert restarted.flows.stats("7d", now) == before
    restarted.record(events)  # the same history again changes nothing
    assert restarted.flows.stats("7d", now) == before
    assert restarted.flows.stats("30d", now).out == monitor.flows.stats("30d", now).out
    for name in WINDOWS:  # each window rebuilt from the segments between the windows' oldest slots
        got, want = restarted.flows.stats(name, now), monitor.flows.stats(name, now)
        assert (got.out, got.inbound, got.observed_s) == (want.out, want.inbound, want.observed_s), name
    assert sum(f.attempts for f in before.out.values()) == sum(1 for e in events if e.received_time >= now - 7 * 86_400)


def test_restart_loads_a_bounded_number_of_groups_at_a_time(tmp_path, manual_clock, monkeypatch):
    """The rebuild hands the live windows at most ``_LOAD_ROWS`` groups of stored forwards at once, never a
    month's groups together (issue 16: ~100 MB of a daemon's peak at a million forwards), and gets the same
    windows, their keys in the same order, as in one go."""
    now = manual_clock.now()
    store = Store(tmp_path / "db.sqlite3")
    monitor = HtlcMonitor(store, manual_clock, lambda e: None)
    monitor.observe_channels(CHANNELS)
    monitor.record(random_events(3_000, start=now - 35 * 86_400, span_s=35 * 86_400 - 1))
    whole = HtlcMonitor(store, manual_clock, lambda e: None)
    counted = whole.load_history()
    sizes = []
    real = monitor_module.channel_rows

    def spy(groups):
        sizes.append(len(groups.category))
        return real(groups)

    monkeypatch.setattr(monitor_module, "_LOAD_ROWS", 5)
    monkeypatch.setattr(monitor_module, "channel_rows", spy)
    chunked = HtlcMonitor(store, manual_clock, lambda e: None)
    assert chunked.load_history() == counted > 2_000
    assert max(sizes) == 5 and sum(sizes) > 100
    for name in WINDOWS:
        got, want = chunked.flows.stats(name, now), whole.flows.stats(name, now)
        assert (got.out, got.inbound, got.observed_s) == (want.out, want.inbound, want.observed_s), name
        assert (list(got.out), list(got.inbound)) == (list(want.out), list(want.inbound)), name


def test_restart_sizes_the_rings_for_the_channels_it_knows(tmp_path, manual_clock):
    """The rebuild reserves an in and an out key per channel of the policy history at once: the rings never grow
    by half as keys arrive (each growth held the old and new rings, ~20 MB at 1,000 channels) nor keep a spare
    third (issue 16)."""
    channels = [make_channel(f"80010{i:02d}x1x0") for i in range(20)]
    now = manual_clock.now()
    store = Store(tmp_path / "db.sqlite3")
    monitor = HtlcMonitor(store, manual_clock, lambda e: None)
    monitor.observe_channels(channels)
    monitor.record([HtlcEvent(a.channel_id, 101_000, ForwardStatus.SETTLED, now - 3_600 + i, in_htlc_id=i,
                              out_channel=b.channel_id, out_msat=100_000, fee_msat=1000, resolved_time=now - 3_000)
                    for i, (a, b) in enumerate(zip(channels, channels[1:] + channels[:1], strict=True))])  # fmt: skip
    restarted = HtlcMonitor(store, manual_clock, lambda e: None)
    assert restarted.load_history() == 20
    per_key = sum(length // bucket + 1 for length, bucket in WINDOWS.values()) * len(METRICS) * 8
    assert restarted.flows.keys == 40 and restarted.flows.nbytes() == 40 * per_key
    assert restarted.flows.stats("1h", now).out == monitor.flows.stats("1h", now).out


def test_offered_events_are_not_counted_until_they_resolve(manual_clock, tmp_path):
    store = Store(None)
    monitor = HtlcMonitor(store, manual_clock, lambda e: None)
    monitor.observe_channels(CHANNELS)
    t = manual_clock.now() - 10
    a, b = CHANNELS[0].channel_id, CHANNELS[1].channel_id
    offered = HtlcEvent(a, 101_000, ForwardStatus.OFFERED, t, in_htlc_id=1, out_channel=b, out_msat=100_000)
    monitor.record(offered)
    assert monitor.flows.stats("1h", manual_clock.now()).out == {}
    done = HtlcEvent(a, 101_000, ForwardStatus.SETTLED, t, in_htlc_id=1, out_channel=b, out_msat=100_000,
                     fee_msat=1000, resolved_time=t + 2)  # fmt: skip
    monitor.record([done, done])
    assert monitor.flows.stats("1h", manual_clock.now()).out[b].settled == 1
    assert ChannelId.parse("800000x1x0") == a


def test_analysis_from_the_monitor_matches_analysis_from_the_store(lens):
    from lnlens_core.opportunities.run import run_analysis

    now = lens.clock.now()
    lens.monitor.observe_channels(CHANNELS)
    lens.monitor.record(random_events(1_500, start=now - 86_400, span_s=86_400 - 1))
    from_store = run_analysis(lens, since_s=86_400, channels=CHANNELS, save=False).to_json()
    from_monitor = run_analysis(lens, since_s=86_400, channels=CHANNELS, save=False, from_monitor=True).to_json()
    assert from_store["opportunities"] and from_store == from_monitor


def test_a_flow_table_is_the_mapping_of_its_rows_and_builds_a_flow_only_when_read():
    a, b, c = ChannelId(1, 1, 0), ChannelId(2, 1, 0), ChannelId(3, 1, 0)
    table = np.arange(2 * len(METRICS), dtype=np.int64).reshape(2, len(METRICS))
    flows = FlowTable([a, b], table)
    as_dict = {a: Flow(*table[0].tolist()), b: Flow(*table[1].tolist())}
    assert flows == as_dict and as_dict == flows and dict(flows) == as_dict
    assert list(flows) == [a, b] and len(flows) == 2 and a in flows and c not in flows
    assert flows[b].revenue_msat == table[1, METRICS.index("revenue_msat")]
    assert flows.get(c, NO_FLOW) is NO_FLOW
    assert flows.counters(("settled", "attempts")).tolist() == table[:, [1, 0]].tolist()
    assert flows != {a: as_dict[a]}
    assert pickle.loads(pickle.dumps(flows)) == as_dict
    with pytest.raises(ValueError, match="read-only"):
        flows.counters()[0, 0] = 7
    table[0, 0] = 99  # the table is the caller's: a view, not a copy
    assert flows[a].attempts == 99
    with pytest.raises(ValueError, match="a row of"):
        FlowTable([a], table)


def test_a_windows_flows_are_tables_equal_to_what_each_key_summed():
    book = PolicyBook()
    a, b = ChannelId(1, 1, 0), ChannelId(2, 1, 0)
    counter = FlowCounter(book, since=0, until=100)
    counter.add([HtlcEvent(a, 1_001_000, ForwardStatus.SETTLED, 10, in_htlc_id=1, out_channel=b, out_msat=1_000_000,
                           fee_msat=1000, resolved_time=11)])  # fmt: skip
    stats = counter.stats()
    assert isinstance(stats.out, FlowTable) and isinstance(stats.pairs, FlowTable)
    assert dict(stats.out) == {b: Flow(attempts=1, settled=1, revenue_msat=1000, volume_msat=1_000_000)}
    assert dict(stats.inbound) == {a: Flow(attempts=1, settled=1, revenue_msat=1000, volume_msat=1_000_000)}
    assert list(stats.pairs) == [(a, b)]
