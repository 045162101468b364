"""Issue [C]'s fast paths against straightforward references, on simulated history.

- A first backfill into an empty store builds the forwards indexes once at the end: the store
  holds the same rows (rowids included) and the same schema as page-by-page ingest with the
  indexes in place all along.
- The sliding windows count with numpy and a per-pair row cache: every window that covers the
  whole run equals, key by key and in the same key order, sums of ``contribution()`` done by hand,
  with a refused payment's HTLCs tied together by a brute-force search (the monitor's windows keep
  channels only; a WindowedFlows with pairs checks those).
- The starved-channel lookup of ``rebalance_inbound`` finds what a scan from the start finds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lnlens_core.clock import ManualClock
from lnlens_core.domain import ChannelId, ForwardStatus
from lnlens_core.opportunities.flows import (
    MATCH_TOLERANCE,
    MATCH_TOLERANCE_MSAT,
    MATCH_WINDOW_S,
    MAXIMA,
    METRICS,
    Flow,
    FlowCounter,
    FlowStats,
    WindowedFlows,
    contribution,
    recovery,
)
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.opportunities.recommendations import _Sources
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode

sim = pytest.importorskip("lnlens_sim.scenario")

HOUR = 3_600


@pytest.fixture(scope="module")
def run():
    """Six simulated hours: the channels, every event as the node delivered it, and the clock."""
    node = sim.build(sim.SimSettings(network="synthetic", nodes=150, seed=5, payments_per_hour=4_000))
    node.set_sink(None)
    node.run(6 * HOUR)
    events = list(node.events)
    assert len(events) > 1_000 and any(e.failure_reason for e in events)
    return node.list_channels(), events, node.clock.now()


def dump(store: Store) -> tuple[list, list]:
    rows = store.db.execute("SELECT rowid, * FROM forwards ORDER BY rowid").fetchall()
    schema = store.db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    return rows, schema


def test_a_first_backfill_stores_what_page_by_page_ingest_stores(run, tmp_path: Path):
    channels, events, now = run
    fast = Store(tmp_path / "fast.sqlite3")
    monitor = HtlcMonitor(fast, ManualClock(now), lambda batch: None)
    progress = monitor.backfill(FakeNode(channels, forwards=events), page_size=300)

    reference = Store(tmp_path / "reference.sqlite3")
    for start in range(0, len(events), 300):
        page = events[start : start + 300]
        reference.ingest_page(page, stream="fake:forwards", cursor=str(start + len(page)), now=now)

    assert progress.events_new == reference.forward_count() > 0
    assert dump(fast) == dump(reference)
    assert fast.get_cursor("fake:forwards") == reference.get_cursor("fake:forwards")
    # The indexes are back, and used.
    plan = fast.db.execute("EXPLAIN QUERY PLAN SELECT * FROM forwards WHERE received_time >= 0").fetchall()
    assert "forwards_received" in str(plan)


def test_a_backfill_into_a_store_with_forwards_keeps_its_indexes(run, tmp_path: Path):
    channels, events, now = run
    store = Store(tmp_path / "db.sqlite3")
    store.ingest_forwards(events[:10], source="live")
    deferred = store.begin_bulk_ingest()
    indexes = {name for (name,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    store.end_bulk_ingest(deferred)
    assert not deferred
    assert {"forwards_received", "forwards_out", "forwards_in"} <= indexes


def same_payment(later, first, last_time: float) -> bool:
    """PaymentMatcher's heuristic, spelled out: same incoming channel, close in time and amount."""
    return (
        later.in_channel == first.in_channel
        and abs(later.received_time - last_time) <= MATCH_WINDOW_S
        and abs(later.in_msat - first.in_msat) <= max(MATCH_TOLERANCE * first.in_msat, MATCH_TOLERANCE_MSAT)
    )


def by_hand(events, book, since: float, until: float) -> FlowStats:
    """Every resolved forward's contribution added to its keys, one Python list per key; a payment refused
    again counts once, and moves to recovered when a later HTLC of it settles (searched by brute force)."""
    sums: list[dict] = [{}, {}, {}]  # out, in, pairs; insertion order = first appearance, as the windows keep it
    refused: list[list] = []  # [first event, its row, last time, recovered]

    def add(event, row):
        keys = [(1, event.in_channel)]
        if event.out_channel is not None:
            keys = [(1, event.in_channel), (0, event.out_channel), (2, (event.in_channel, event.out_channel))]
        for kind, key in keys:
            total = sums[kind].setdefault(key, [0] * len(METRICS))
            for i, value in enumerate(row):
                total[i] = max(total[i], value) if METRICS[i] in MAXIMA else total[i] + value

    for event in events:
        if not event.status.resolved or not since <= event.received_time < until:
            continue
        match = max((p for p in refused if same_payment(event, p[0], p[2])), key=lambda p: p[2], default=None)
        here = event.status is ForwardStatus.LOCAL_FAILED and event.out_channel is not None
        row = contribution(event, book, propagation_s=3_600, first=not (here and match))
        add(event, row)
        if match is not None:
            match[2] = max(match[2], event.received_time)
            if event.status is ForwardStatus.SETTLED and not match[3]:
                match[3] = True
                add(match[0], recovery(match[1]))
        elif here:
            refused.append([event, row, event.received_time, False])
    out, inbound, pairs = ({k: Flow(*v) for k, v in d.items()} for d in sums)
    return FlowStats(since, until, 0.0, out, inbound, pairs)


def test_windows_and_exact_counters_equal_sums_done_by_hand(run, tmp_path: Path):
    channels, events, now = run
    monitor = HtlcMonitor(Store(tmp_path / "db.sqlite3"), ManualClock(now), lambda batch: None)
    monitor.observe_channels(channels, snapshot=False)
    counted = []
    for start in range(0, len(events), 97):  # batches that split pairs and buckets unevenly
        counted += monitor.record(events[start : start + 97])
    expected = by_hand(counted, monitor.book, 0.0, now + 1)
    with_pairs = WindowedFlows(monitor.book, pairs=True)
    for start in range(0, len(counted), 97):
        with_pairs.add(counted[start : start + 97])
    for window in ("24h", "7d", "30d"):  # each covers all six hours
        stats, full = monitor.flows.stats(window, now + 1), with_pairs.stats(window, now + 1)
        assert not stats.pairs  # the monitor keeps channels only: an analysis sums pairs from the store
        for got, want in ((stats.out, expected.out), (stats.inbound, expected.inbound), (full.out, expected.out),
                          (full.inbound, expected.inbound), (full.pairs, expected.pairs)):  # fmt: skip
            assert list(got.items()) == list(want.items())  # same counters, keys in the same order
    counter = FlowCounter(monitor.book, since=0.0, until=now + 1)
    counter.add(counted)
    exact = counter.stats()
    assert list(exact.pairs.items()) == list(expected.pairs.items())
    assert list(exact.out.items()) == list(expected.out.items())
    assert list(exact.inbound.items()) == list(expected.inbound.items())


def test_the_first_channel_still_needing_liquidity_is_the_one_a_scan_finds():
    rng = random.Random(3)
    ids = [ChannelId(800_000 + i, i, 0) for i in range(60)]
    sources = _Sources({}, [], {})
    for cid in ids:
        sources.need_left[cid] = rng.choice([0, 0, 5, 10])
    for _ in range(500):
        exclude = rng.choice(ids)
        scan = next((t for t, left in sources.need_left.items() if left > 0 and t != exclude), None)
        assert sources.first_needy(exclude) == scan
        if scan is not None:
            sources.need_left[scan] -= rng.randint(1, sources.need_left[scan])
