"""Core benchmarks for issue [C]: ingest, backfill, analysis and memory of the monitor.

Every figure is printed with a baseline measured in the same run, so ratios mean
something on any machine:
- ingest: forwards/s through ``HtlcMonitor.record`` (store + sliding windows) against
  a raw ``sqlite_utils`` ``insert_all`` of the same rows into a table of the same shape;
- backfill: 1,000,000 forwards paged from a FakeNode into a file database;
- windows: any window over 1,000,000 stored forwards summed by SQLite (wall and CPU time, best of 3;
  the flow sums and the refused payments' forwards apart), beside a plain SQL count of the same rows;
  four windows in one call beside the same four one by one; the time the m010-m012 indexes and flags take
  on a store that already holds the forwards (an upgrade), beside a count of them;
- analyzer: 1,000 and 10,000 channels, the top opportunities built against every one of them built;
- analysis: 10,000 channels with 30 days of history: the 30 d window by SQLite against the old
  in-memory path over the same store (same numbers, checked), the analyzer, and whole runs;
- memory: RSS growth per million forwards once the channel set is fixed.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_core.py --quick``).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlite_utils import Database

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.lens import Lens
from lnlens_core.opportunities.analyzer import Analysis, analyze
from lnlens_core.opportunities.flows import FlowCounter, FlowStats, PolicyBook
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.opportunities.run import run_analysis, store_window_stats
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.storage.rows import FORWARD_COLUMNS, forward_row
from lnlens_core.storage.schema import FORWARD_INDEXES, MARK_ALL_NEAR, NEAR_GAP_S
from lnlens_core.testing import FakeNode, make_channel

DAY = 86_400
REASONS = [FailureReason.INSUFFICIENT_BALANCE, FailureReason.FEE_INSUFFICIENT, FailureReason.HTLC_LIMIT]


def channels(n: int):
    return [make_channel(ChannelId(700_000 + i, i % 3000, i % 4), local_ratio=(i % 10) / 10) for i in range(n)]


def pair_set(chans, n: int, seed: int = 0) -> list[tuple[ChannelId, ChannelId]]:
    """The channel pairs a node actually routes between (a fixed set, as on a real node)."""
    rng = random.Random(seed)
    ids = [c.channel_id for c in chans]
    return [tuple(rng.sample(ids, 2)) for _ in range(n)]  # type: ignore[misc]


def events(n: int, chans, *, start: float, span_s: float, seed: int = 1, pairs=None):
    """n resolved forwards, 70 % settled, over ``span_s``; ``pairs`` limits which pairs occur."""
    rng = random.Random(seed)
    ids = [c.channel_id for c in chans]
    out = []
    step = span_s / n
    for i in range(n):
        a, b = rng.choice(pairs) if pairs else rng.sample(ids, 2)
        t = start + i * step
        if rng.random() < 0.7:
            out.append(HtlcEvent(a, 1_001_000, ForwardStatus.SETTLED, t, in_htlc_id=i, out_channel=b,
                                 out_msat=1_000_000, fee_msat=1000, resolved_time=t + 1))  # fmt: skip
        else:
            out.append(HtlcEvent(a, 1_001_000, ForwardStatus.LOCAL_FAILED, t, in_htlc_id=i, out_channel=b,
                                 out_msat=1_000_000, failure_reason=rng.choice(REASONS), resolved_time=t))  # fmt: skip
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def bench_ingest(tmp: Path, n: int) -> None:
    chans = channels(200)
    evs = events(n, chans, start=0, span_s=7 * DAY)
    clock = ManualClock(7 * DAY)
    store = Store(tmp / "ingest.sqlite3")
    monitor = HtlcMonitor(store, clock, lambda batch: None)
    monitor.observe_channels(chans)

    def ours():
        for i in range(0, n, 1000):
            monitor.record(evs[i : i + 1000])

    t_ours, _ = timed(ours)
    raw = Database(tmp / "raw.sqlite3")
    raw.enable_wal()
    rows = [dict(zip(FORWARD_COLUMNS, forward_row(e, "live"), strict=True)) for e in evs]
    t_raw, _ = timed(lambda: raw["forwards"].insert_all(rows, pk="key", batch_size=1000))
    print(f"ingest      {n:,} forwards: {n / t_ours:,.0f}/s via monitor.record (store + windows); "
          f"raw insert_all {n / t_raw:,.0f}/s; ratio {t_raw / t_ours:.2f} of raw (aim >= 0.5)")  # fmt: skip


def bench_backfill(tmp: Path, n: int) -> None:
    chans = channels(1000)
    # A node with 1,000 channels routes over some 20,000 distinct channel pairs in a month.
    node = FakeNode(chans, forwards=events(n, chans, start=0, span_s=30 * DAY, pairs=pair_set(chans, 20_000)))
    store = Store(tmp / "backfill.sqlite3")
    monitor = HtlcMonitor(store, ManualClock(30 * DAY), lambda batch: None)
    monitor.observe_channels(chans)
    t, progress = timed(lambda: monitor.backfill(node, page_size=10_000))
    assert progress.events_new == n
    print(f"backfill    {n:,} forwards in {t:.1f} s ({n / t:,.0f}/s; aim: 1,000,000 under 20 s)")


def old_store_path(lens: Lens, chans, since: float, until: float) -> FlowStats:
    """The store's analysis path before issue [M]: every forward read back as an object and counted in Python."""
    book = PolicyBook()
    for t, cid, policy in lens.store.policy_history():
        book.observe(cid, policy, t)
    book.observe_channels(chans, until)
    counter = FlowCounter(book, since=since, until=until)
    batch: list[HtlcEvent] = []
    for event in lens.store.iter_forwards(since=since, until=until):
        batch.append(event)
        if len(batch) >= 10_000:
            counter.add(batch)
            batch = []
    counter.add(batch)
    return counter.stats()


def bench_analysis(tmp: Path, n: int) -> None:
    chans = channels(10_000)
    clock = ManualClock(30 * DAY)
    store = Store(tmp / "analysis.sqlite3")
    lens = Lens(LensConfig(data_dir=tmp, db_path=tmp / "analysis.sqlite3"), store=store, clock=clock,
                pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
    lens.monitor.observe_channels(chans)
    pairs = pair_set(chans, 20_000)
    for i, batch_start in enumerate(range(0, n, 50_000)):
        batch = events(50_000, chans, start=batch_start / n * 30 * DAY, span_s=30 * DAY * 50_000 / n, seed=i,
                       pairs=pairs)  # fmt: skip
        lens.monitor.record(batch)
    now = clock.now()
    t_window, stats = timed(lambda: store_window_stats(lens, {"30d": 30 * DAY}, now=now, channels=chans)["30d"])
    t_old, old = timed(lambda: old_store_path(lens, chans, now - 30 * DAY, now))
    assert old == stats, "the SQL counters differ from the in-memory ones"
    t_count, _ = timed(lambda: store.db.execute("SELECT count(*), sum(fee_msat) FROM forwards WHERE received_time >= ?",
                                                [now - 30 * DAY]).fetchone())  # fmt: skip
    t_pure, _ = timed(lambda: Analysis(stats, chans).opportunities(limit=TOP))
    t_all, (opps, _) = timed(lambda: analyze(stats, chans))
    t_live, _ = timed(lambda: run_analysis(lens, since_s=DAY, channels=chans, save=False, from_monitor=True))
    t_store, _ = timed(lambda: run_analysis(lens, since_s=30 * DAY, channels=chans, save=False))
    print(f"analysis    10,000 channels, {len(stats.pairs):,} pairs, {n:,} forwards over 30 d: the 30 d window's "
          f"counters summed by SQLite in {t_window * 1000:.0f} ms (aim < 1 s) against {t_old:.1f} s by the old "
          f"in-memory path (same numbers, {t_old / t_window:.0f}x) and {t_count * 1000:.0f} ms for a plain SQL "
          f"count+sum over the same rows; analyzer {t_pure * 1000:.0f} ms for the top {TOP} (aim < 100 ms), "
          f"{t_all * 1000:.0f} ms with every opportunity built; full run 24 h as a "
          f"running daemon does {t_live * 1000:.0f} ms, 30 d from the store {t_store:.1f} s; "
          f"{len(opps):,} opportunities")  # fmt: skip


def best(fn, reps: int = 3) -> tuple[float, float, object]:
    """(wall s, CPU s, result): the best of ``reps`` runs, CPU time as well since the machine is shared."""
    runs = []
    for _ in range(reps):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        runs.append((time.perf_counter() - w0, time.process_time() - c0))
    return min(r[0] for r in runs), min(r[1] for r in runs), result


def ms(wall: float, cpu: float) -> str:
    return f"{wall * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU)"


TOP = 20
"""Opportunities shown, as ``lnlens opportunities --limit 20`` asks."""


def bench_analyzer(n: int, forwards: int) -> None:
    """The analyzer alone over n channels: its figures in arrays, objects built for the top opportunities only,
    beside building every opportunity (what it did before issue [M]) and counting the window it reads."""
    chans = channels(n)
    book = PolicyBook()
    book.observe_channels(chans, 0)
    pairs = pair_set(chans, 2 * n)

    def count() -> FlowStats:
        counter = FlowCounter(book, since=0, until=30 * DAY)
        for i, start in enumerate(range(0, forwards, 100_000)):
            counter.add(events(100_000, chans, start=start / forwards * 30 * DAY, span_s=30 * DAY * 100_000 / forwards,
                               seed=i, pairs=pairs))  # fmt: skip
        return counter.stats()

    t_count, stats = timed(count)

    top_wall, top_cpu, _ = best(lambda: Analysis(stats, chans).opportunities(limit=TOP))
    all_wall, all_cpu, (opps, _) = best(lambda: analyze(stats, chans))  # type: ignore[misc]
    recs = sum(len(o.recommendations) for o in opps)
    print(f"analyzer    {n:,} channels, {len(stats.pairs):,} pairs: {top_wall * 1000:.1f} ms ({top_cpu * 1000:.1f} ms "
          f"CPU) with the top {TOP} opportunities built (aim < 100 ms at 10,000 channels) against "
          f"{all_wall * 1000:.0f} ms ({all_cpu * 1000:.0f} ms CPU) building all {len(opps):,} opportunities and "
          f"{recs:,} recommendations ({all_wall / top_wall:.1f}x); best of 3; counting the {forwards:,} forwards "
          f"it reads took {t_count:.1f} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def bench_windows(tmp: Path, n: int) -> None:
    """Any window over a store of ``n`` forwards (1,000 channels, 20,000 pairs, 30 days), summed by SQLite:
    each window's counters, the share of its flow sums and of tying refused payments together, beside a
    plain SQL count of the same rows; four windows in one call beside the same four one by one."""
    chans = channels(1000)
    store = Store(tmp / "windows.sqlite3")
    store.add_snapshots(chans, time=0)
    pairs = pair_set(chans, 20_000)
    for i, start in enumerate(range(0, n, 50_000)):
        store.ingest_forwards(events(50_000, chans, start=start / n * 30 * DAY, span_s=30 * DAY * 50_000 / n,
                                     seed=100 + i, pairs=pairs), source="backfill")  # fmt: skip
    book = PolicyBook()
    book.observe_channels(chans, 0)
    now = 30 * DAY
    count = "SELECT count(*) FROM forwards WHERE received_time >= ? AND received_time < ?"
    for name, span in (("2h", 7_200), ("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        wall, cpu, _ = best(lambda span=span: store.flow_stats(book, [now - span], now))
        g_wall, g_cpu, _ = best(lambda span=span: store.flow_groups(book, [now - span], now))
        p_wall, p_cpu, found = best(lambda span=span: list(store.payment_events(now - span, now)))
        c_wall, c_cpu, (rows,) = best(lambda span=span: store.db.execute(count, [now - span, now]).fetchone())
        print(f"window {name:>4} {rows:>9,} forwards: counters {ms(wall, cpu)} (aim < 1 s), of which the flow sums "
              f"{ms(g_wall, g_cpu)} and the {len(found):,} forwards of refused payments {ms(p_wall, p_cpu)}; "
              f"a plain SQL count of the same rows {ms(c_wall, c_cpu)}")  # fmt: skip
    spans = [now - s for s in (7_200, 3_600, DAY, 7 * DAY)]
    all_wall, all_cpu, _ = best(lambda: store.flow_stats(book, spans, now))
    one_wall, one_cpu, _ = best(lambda: [store.flow_stats(book, [s], now) for s in spans])
    # what m010, m011 and m012 build on a store that already holds the forwards (its upgrade: indexes and the
    # neighbour flags), beside a count of them
    names = ("forwards_refused_near", "forwards_refused_hash", "forwards_hash", "forwards_settled_in",
             "forwards_settled_out", "forwards_sums")
    store.db.executescript("; ".join(f"DROP INDEX {name}" for name in names) + "; UPDATE forwards SET near = 0")

    def upgrade() -> None:
        with store.db.atomic():
            store.db.executescript("; ".join(FORWARD_INDEXES[name] for name in names))
            store.db.execute(MARK_ALL_NEAR, {"gap": NEAR_GAP_S})

    t_build, _ = timed(upgrade)
    t_rows, _ = timed(lambda: store.db.execute("SELECT count(*), sum(in_msat) FROM forwards").fetchone())
    print(f"windows     {n:,} forwards, 1,000 channels, best of 3: an ad-hoc 2h analysis's four windows (2h + "
          f"alerts' 1h, 24h, 7d) in one call {ms(all_wall, all_cpu)} beside the same four one by one "
          f"{ms(one_wall, one_cpu)}; upgrading a store of these forwards (m010-m012) {t_build:.1f} s beside "
          f"{t_rows * 1000:.0f} ms for a count+sum of every row; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def bench_memory(tmp: Path, n: int) -> None:
    chans = channels(1000)
    store = Store(tmp / "memory.sqlite3")
    monitor = HtlcMonitor(store, ManualClock(30 * DAY), lambda batch: None)
    monitor.observe_channels(chans)
    pairs = pair_set(chans, 5_000)
    monitor.record(events(100_000, chans, start=0, span_s=DAY, pairs=pairs))
    gc.collect()
    before = rss_mb()
    for i in range(0, n, 100_000):
        monitor.record(events(100_000, chans, start=DAY + i / n * 28 * DAY, span_s=DAY, seed=i + 7, pairs=pairs))
    gc.collect()
    growth = (rss_mb() - before) * 1_000_000 / n
    print(f"memory      {monitor.flows.keys:,} keys use {monitor.flows.nbytes() / 2**20:.1f} MiB of windows; "
          f"peak RSS grew {growth:.1f} MiB per million forwards after warm-up (aim: flat)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, for a smoke run")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    print(f"== lnlens core benchmarks (python {sys.version.split()[0]}) ==")
    with tempfile.TemporaryDirectory() as tmp:
        bench_ingest(Path(tmp), 200_000 // scale)
        bench_backfill(Path(tmp), 1_000_000 // scale)
        bench_windows(Path(tmp), 1_000_000 // scale)
        bench_analyzer(1_000, 1_000_000 // scale)
        bench_analyzer(10_000, 1_000_000 // scale)
        bench_analysis(Path(tmp), 1_000_000 // scale)
        bench_memory(Path(tmp), 1_000_000 // scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
