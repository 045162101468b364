"""Fee engine benchmark for issue [F]: plan time for 10,000 channels with a 20-section policy file.

The baseline, measured in the same run, is building the same 10,000-channel list
alone (what any backend adapter has to do before anything can be decided). The plan
covers everything ``lnlens policy plan`` does after that: peer policies, matching,
strategies, the apply-step diff, rails and ``check_fee_update`` vetoes.

Issue [M]: the policy's per-channel forward sums (charge-lnd activity windows of 1, 7 and 30 days, revenue
per fee level over 30 days, the signals' 7-day flow counters) over a store of ``--forwards`` forwards on
1,000 channels, summed by SQLite as ``assemble`` does now, beside the Python loops over the same forwards
read as objects (the path before; same numbers, checked) and a plain SQL count of the same rows.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_policy.py --channels 2000``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_core import DAY, channels, events, pair_set

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, ChannelPolicy
from lnlens_core.fees.assemble import _activity, _flow_sums
from lnlens_core.fees.chargelnd import activity_by_channel, load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.rails import Rails
from lnlens_core.fees.signals import compute_signals, fee_epochs
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode, make_channel


def policy_text() -> str:
    """20 sections: 19 with criteria of every cheap kind, then [default]."""
    sections = []
    for i in range(6):
        sections.append(f"[ratio-{i}]\nchan.min_ratio = {0.9 + i / 100}\nchan.min_capacity = {(i + 1) * 10**6}\n"
                        f"strategy = static\nfee_ppm = {1000 + i}\n")  # fmt: skip
    for i in range(5):
        sections.append(f"[peer-fee-{i}]\nchan.min_fee_ppm = {5000 + i * 100}\nstrategy = match_peer\n")
    for i in range(4):
        sections.append(f"[drained-{i}]\nchan.max_ratio = {0.02 + i / 100}\nchan.max_capacity = {10**8 * (i + 1)}\n"
                        f"strategy = balance_based\nfee_ppm = {200 + i}\nbins = 7\n")  # fmt: skip
    sections.append("[tagged]\nchan.min_base_fee_msat = 100000\nstrategy = ignore\n")
    sections.append("[non-final]\nchan.max_ratio = 0.5\nmin_fee_ppm_delta = 5\n")
    sections.append("[mid]\nchan.min_ratio = 0.3\nchan.max_ratio = 0.7\nstrategy = proportional\nmin_fee_ppm = 10\n"
                    "max_fee_ppm = 900\n")  # fmt: skip
    sections.append("[low]\nchan.max_ratio = 0.3\nstrategy = balance_based\nfee_ppm = 300\n")
    sections.append("[default]\nstrategy = proportional\nmin_fee_ppm = 1\nmax_fee_ppm = 500\nbase_fee_msat = 0\n")
    assert len(sections) == 20
    return "\n".join(sections)


def build_channels(n: int):
    return [
        make_channel(ChannelId(700_000 + i // 2, i % 3000, i % 2), local_ratio=(i * 37 % 100) / 100,
                     fee_ppm=(i * 13) % 2000, peer_id=f"02{i // 2:064x}", capacity_msat=(1 + i % 50) * 10**9)
        for i in range(n)
    ]  # fmt: skip


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_inputs(tmp: Path, n: int, repeat: int) -> None:
    """The policy's forward sums over ``n`` stored forwards: SQL (now) against Python loops (before)."""
    chans = channels(1000)
    store = Store(tmp / "inputs.sqlite3")
    pairs = pair_set(chans, 20_000)
    for i, start in enumerate(range(0, n, 50_000)):
        size = min(50_000, n - start)
        if i % 10 == 0:  # a policy change now and then: several fee levels per channel
            store.add_snapshots([make_channel(c.channel_id, fee_ppm=100 + 10 * (i // 10)) for c in chans],
                                time=start / n * 30 * DAY)  # fmt: skip
        store.ingest_forwards(events(size, chans, start=start / n * 30 * DAY, span_s=30 * DAY * size / n, seed=i,
                                     pairs=pairs), source="backfill")  # fmt: skip
    now, windows = 30 * DAY, {DAY, 7 * DAY, 30 * DAY}
    history = list(store.policy_history())

    def sql():
        epochs = fee_epochs(chans, (), history, now=now, level_sums=store.settled_by_fee_level)
        signals = compute_signals(chans, (), history, now=now, history=epochs, flow_sums=_flow_sums(store))
        return _activity(store, windows, now), epochs, signals

    def python():
        read = list(store.iter_forwards(since=now - max(windows) - DAY, until=now))
        activity = {w: activity_by_channel(read, start_time=now - w, end_time=now) for w in windows}
        forwards = list(store.iter_forwards(since=now - 30 * DAY - 3_600, until=now))
        epochs = fee_epochs(chans, forwards, history, now=now)
        return activity, epochs, compute_signals(chans, forwards, history, now=now, history=epochs)

    results = []
    t_sql = best_of(repeat, lambda: results.append(sql()))
    t_py = best_of(1, lambda: results.append(python()))
    assert results[0] == results[-1], "the SQL sums differ from the Python loops"
    t_count = best_of(repeat, lambda: store.db.execute("SELECT count(*), sum(fee_msat) FROM forwards WHERE "
                                                      "received_time >= ?", [now - 31 * DAY]).fetchone())  # fmt: skip
    store.close()
    print(f"policy inputs over {n:,} stored forwards, 1,000 channels (activity 1/7/30 d, revenue per fee level 30 d, "
          f"signals 7 d): SQL {t_sql * 1000:.0f} ms (now) vs Python loops {t_py * 1000:.0f} ms (before; same "
          f"numbers, {t_py / t_sql:.1f}x); plain SQL count+sum of the rows {t_count * 1000:.0f} ms (baseline)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--forwards", type=int, default=300_000, help="stored forwards for the policy inputs' sums")
    args = p.parse_args(argv)
    channels = build_channels(args.channels)
    peers = {c.channel_id: ChannelPolicy(base_fee_msat=1000, fee_ppm=(i * 7) % 6000) for i, c in enumerate(channels)}
    node = FakeNode(channels, peer_policies=peers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.ini"
        path.write_text(policy_text())
        config = LensConfig(data_dir=Path(tmp), db_path=Path(tmp) / "db.sqlite3")
        lens = Lens(config, store=Store(None), clock=ManualClock(), pm=get_plugin_manager(load_entrypoints=False))
        engine = FeeEngine(lens, node, policies=load_policy_file(path, lens.strategies), rails=Rails())
        baseline = best_of(args.repeat, lambda: build_channels(args.channels))
        plans = []
        plan_s = best_of(args.repeat, lambda: plans.append(engine.plan(emit=False)))
        plan = plans[-1]
        policies = statistics.mode(c.policy for c in plan.changes)
    changed = len(plan.to_apply())
    print(f"channels: {args.channels:,}, policy sections: 20, changes planned: {changed:,} (most common: {policies})")
    print(f"build channel list: {baseline * 1000:8.1f} ms  (baseline)")
    print(f"plan:               {plan_s * 1000:8.1f} ms  = {plan_s / baseline:.1f} x baseline "
          f"({plan_s / args.channels * 1e6:.0f} us/channel)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        bench_inputs(Path(tmp), args.forwards, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
