"""Fee engine benchmark for issue [F]: plan time for 10,000 channels with a 20-section policy file.

The baseline, measured in the same run, is building the same 10,000-channel list
alone (what any backend adapter has to do before anything can be decided). The plan
covers everything ``lnlens policy plan`` does after that: peer policies, matching,
strategies, the apply-step diff, rails and ``check_fee_update`` vetoes.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_policy.py --channels 2000``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lnlens_core.clock import ManualClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, ChannelPolicy
from lnlens_core.fees.chargelnd import load_policy_file
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.rails import Rails
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
