"""Online learning benchmark for issue [G]: the model's part of a daemon's interval on a big store.

A store with 1,000,000 forwards over 30 days on 200 channels, and a snapshot of every channel
every 10 minutes (the CLN plugin's default lens-interval: 864,000 snapshot rows) with fee
changes now and then. Measured in the same run, on the same store:

- the baseline: the periodic analysis (``run_analysis`` over the last 24 h, from the store);
- one new sample time built by the incremental dataset (SampleStream), as a running daemon's tick
  does, vs the whole-store build (``dataset_from_store``, what OnlineTrainer.tick did before);
- the online trainer's ticks: the first after a start (warm start: policy seeding, the chain walk,
  ``max_times`` sample times), the catch-up, an idle tick (nothing matured), and whole model
  intervals (``ModelLoop.run``: learn, predict, suggest, drift) while catching up and after.

The CLN worker runs all of it on its one thread; the aim is that no interval blocks it for
more than a few seconds. Run with ``make bench`` or ``.venv/bin/python benchmarks/bench_online.py [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.lens import Lens
from lnlens_core.plugins import get_plugin_manager
from lnlens_core.storage import Store
from lnlens_core.storage.rows import FORWARD_COLUMNS, SNAPSHOT_COLUMNS, forward_row, snapshot_row
from lnlens_core.testing import make_channel

DAY = 86_400
NOW = 1_767_225_600.0 + 30 * DAY


def fill(db: Path, *, channels: int, forwards: int, snapshot_s: int, days: int, seed: int = 1) -> None:
    """Forwards (70 % settled, 20 % failed for liquidity, 10 % downstream) between random channel pairs, and
    every channel's snapshot every ``snapshot_s``, balances drifting with the flow; each channel's fee changes
    about every three days. Written directly (the monitor would take longer than the measurement)."""
    rng = random.Random(seed)
    ids = [ChannelId(800_000 + i, i % 2000, i % 3) for i in range(channels)]
    capacity = {c: rng.choice([2, 5, 10, 20]) * 1_000_000_000 for c in ids}
    local = {c: capacity[c] // 2 for c in ids}
    fee = {c: rng.randrange(10, 800) for c in ids}
    start = NOW - days * DAY
    store = Store(db)
    fwd_sql = f"INSERT INTO forwards ({','.join(FORWARD_COLUMNS)}) VALUES ({','.join('?' * len(FORWARD_COLUMNS))})"
    snap_sql = (f"INSERT INTO channel_snapshots ({','.join(SNAPSHOT_COLUMNS)})"
                f" VALUES ({','.join('?' * len(SNAPSHOT_COLUMNS))})")  # fmt: skip
    step = days * DAY / forwards
    next_snapshot, i, fwd_rows, snap_rows = start, 0, [], []
    while i < forwards:
        t = start + i * step
        while next_snapshot <= t:
            for c in ids:
                if rng.random() < snapshot_s / (3 * DAY):
                    fee[c] = max(1, fee[c] + rng.choice([-50, -20, 20, 50]))
                ch = make_channel(c, capacity_msat=capacity[c], local_ratio=local[c] / capacity[c], fee_ppm=fee[c])
                snap_rows.append(snapshot_row(ch, next_snapshot))
            next_snapshot += snapshot_s
        a, b = rng.sample(ids, 2)
        amount = rng.randrange(10_000, 50_000_000)
        roll = rng.random()
        if roll < 0.7 and local[b] >= amount:
            status, reason = ForwardStatus.SETTLED, None
            local[b] -= amount
            local[a] = min(capacity[a], local[a] + amount)
        elif roll < 0.9:
            status, reason = ForwardStatus.LOCAL_FAILED, FailureReason.INSUFFICIENT_BALANCE
        else:
            status, reason = ForwardStatus.FAILED, FailureReason.DOWNSTREAM
        f = 1_000 + amount * fee[b] // 1_000_000
        fwd_rows.append(forward_row(HtlcEvent(in_channel=a, in_htlc_id=i, out_channel=b, in_msat=amount + f,
                                              out_msat=amount, fee_msat=f, status=status, failure_reason=reason,
                                              received_time=t, resolved_time=t + 1), "backfill"))  # fmt: skip
        i += 1
        if len(fwd_rows) >= 50_000 or i == forwards:
            with store.db.atomic():
                store.db.conn.executemany(fwd_sql, fwd_rows)
                store.db.conn.executemany(snap_sql, snap_rows)
            fwd_rows, snap_rows = [], []
    store.close()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=200)
    p.add_argument("--forwards", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--snapshot-s", type=int, default=600, help="seconds between snapshots (lens-interval)")
    p.add_argument("--no-whole", action="store_true", help="skip the whole-store build (minutes at 1M forwards)")
    p.add_argument("--quick", action="store_true", help="100,000 forwards over 10 days")
    args = p.parse_args()
    if args.quick:
        args.forwards, args.days = 100_000, 10

    from lnlens_core.model.learning import OnlineTrainer, SampleStream, dataset_from_store
    from lnlens_core.model.loop import ModelLoop
    from lnlens_core.model.registry import ModelRegistry
    from lnlens_core.opportunities.run import run_analysis

    with tempfile.TemporaryDirectory(prefix="lnl") as work:
        db = Path(work) / "lnlens.sqlite3"
        t_fill, _ = timed(lambda: fill(db, channels=args.channels, forwards=args.forwards,
                                       snapshot_s=args.snapshot_s, days=args.days))  # fmt: skip
        store = Store(db)
        counts = store.row_counts()
        now = store.latest_data_time() + 60
        lens = Lens(LensConfig(data_dir=Path(work), db_path=db), store=store, clock=ManualClock(now),
                    pm=get_plugin_manager(load_entrypoints=False))  # fmt: skip
        channels = store.latest_channels()[1]
        analysis = [timed(lambda: run_analysis(lens, since_s=DAY, channels=channels, save=False))[0]
                    for _ in range(3)]  # fmt: skip
        base = statistics.median(analysis)

        # One sample time, incremental: a stream started three sample times before the newest matured one.
        # Its first advance also seeds the policy history (a start); the next ones are a running daemon's.
        stream = SampleStream(lookback_s=3 * 3_600)
        t_seed, _ = timed(lambda: stream.advance(store, limit=1))
        per_sample = [timed(lambda: stream.advance(store, limit=1))[0] for _ in range(2)]
        if args.no_whole:
            t_whole, whole_note = float("nan"), "skipped (--no-whole)"
        else:
            t_whole, data = timed(lambda: dataset_from_store(store))
            whole_note = f"{t_whole:.1f} s for {len(data):,} samples of {len(set(data.times.tolist()))} sample times"
        registry = ModelRegistry(store, Path(work) / "models")
        trainer = OnlineTrainer(registry, max_times=6)
        t_first, first = timed(lambda: trainer.tick(now))
        ticks = []
        while not trainer.stream.caught_up and len(ticks) < 200:
            ticks.append(trainer.tick(now))
        t_idle, idle = timed(lambda: trainer.tick(now + 600))
        # Whole intervals of a freshly started daemon (its own trainer): until caught up, then an idle one.
        loop = ModelLoop(lens, registry)
        loop_runs = []
        while True:
            loop_runs.append(timed(loop.run)[0])
            if loop.stream.caught_up or len(loop_runs) > 200:
                break
        t_loop, status = timed(loop.run)
        store.close()

    def ratio(s: float) -> str:
        return f"{s / base:.1f}x the analysis"

    print(f"store       {counts.get('forwards', 0):,} forwards, {counts.get('channel_snapshots', 0):,} snapshot rows "
          f"({args.channels} channels every {args.snapshot_s} s over {args.days} days), written in {t_fill:.0f} s")
    print(f"baseline    periodic analysis (24 h, from the store): median {base * 1000:.0f} ms")
    steady = statistics.median(per_sample)
    print(f"one sample  incremental build of one new sample time (a running daemon's tick): {steady * 1000:.0f} ms "
          f"({ratio(steady)}); the first after a start, seeding the policy history: {t_seed * 1000:.0f} ms")
    print(f"old tick    whole-store build (dataset_from_store, what each tick did before): {whole_note}; "
          f"{ratio(t_whole)}")
    print(f"first tick  after a start (warm start, {first.built} samples of 6 sample times): {t_first:.2f} s "
          f"({ratio(t_first)}); caught up on {trainer.stream.built} sample times in {len(ticks) + 1} ticks, the "
          f"slowest {max([t.seconds for t in ticks] + [t_first]):.2f} s")
    decided = next((t.decision for t in ticks if t.decision is not None), None)
    print(f"candidate   offered once caught up: {'none' if decided is None else decided.reason}")
    print(f"idle tick   nothing matured: {t_idle * 1000:.1f} ms ({ratio(t_idle)}), waiting: {idle.waiting}")
    run = status["last_run"]
    print(f"interval    ModelLoop.run (learn, predict {run['predictions']} channels, suggest, drift): while catching "
          f"up ({len(loop_runs)} intervals) at most {max(loop_runs):.2f} s ({ratio(max(loop_runs))}); once caught up "
          f"{t_loop * 1000:.0f} ms ({ratio(t_loop)}), of which learning {run['learn_seconds'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
