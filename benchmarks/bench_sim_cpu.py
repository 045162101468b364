"""Simulator payments per CPU-second on the whole mainnet graph, this code beside an older commit's, same run.

Each run is a fresh process (``time.process_time``, so the machine's other load counts less than in wall
time): the mainnet graph loaded, ``--warm`` simulated hours from the start (the cold rate, while the
route trees are first built; it includes loading the compiled kernels), then ``--measure`` hours more (the
warm rate). The baseline is the ``lnlens_sim`` package of ``--baseline`` (default d3dce2c, before the
compiled searches), taken with ``git archive`` and put first on ``PYTHONPATH``; old and new runs
alternate, so both see the same load. The same seed gives the same traffic to both; their routes differ
only where the newer code's documented tie rule and the NaN fix change them (docs/SIMULATOR.md).

``.venv/bin/python benchmarks/bench_sim_cpu.py [--repeats 3] [--warm 6] [--measure 3] [--baseline REV]``

``--economics 11-14`` instead compares what the two versions simulate, seed by seed (whole mainnet 3 h, the
default node's 200-node neighbourhood 12 h): payment success, attempts, our forwards and revenue, and
network-wide the forwards and fees per node (docs/SIMULATOR.md, "What changed in the results and why").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(warm_h: float, measure_h: float, seed: int) -> None:
    from lnlens_sim.graph import load_mainnet
    from lnlens_sim.scenario import SIM_START, SimSettings, build

    from lnlens_core.clock import ManualClock

    graph = load_mainnet()
    node = build(SimSettings(network="mainnet", seed=seed), clock=ManualClock(SIM_START), graph=graph)
    t = time.process_time()
    node.run(warm_h * 3600)
    cold_cpu, cold_n = time.process_time() - t, node.stats.payments
    t = time.process_time()
    node.run(measure_h * 3600)
    warm_cpu, warm_n = time.process_time() - t, node.stats.payments - cold_n
    st = node.stats
    print(json.dumps({"cold": cold_n / cold_cpu, "warm": warm_n / warm_cpu, "payments": warm_n,
                      "success": st.settled / st.payments, "attempts": st.attempts / st.payments}))  # fmt: skip


def economics(kind: str, seed: int) -> None:
    """One run's economics as JSON: ``kind`` "mainnet" (whole graph, 3 h) or "n200" (200 nodes, 12 h)."""
    from collections import Counter

    import numpy as np
    from lnlens_sim.graph import load_mainnet
    from lnlens_sim.scenario import SIM_START, SimSettings, build

    from lnlens_core.clock import ManualClock

    nodes, hours = (200, 12.0) if kind == "n200" else (None, 3.0)
    node = build(SimSettings(network="mainnet", seed=seed, nodes=nodes), clock=ManualClock(SIM_START),
                 graph=load_mainnet())  # fmt: skip
    src = node.network.src
    forwards: Counter[int] = Counter()
    fees: Counter[int] = Counter()

    def observe(_pid, _t, result) -> None:
        if result.settled:
            a = result.attempts[-1]
            for i in range(1, len(a.route)):
                forwards[src[a.route[i]]] += 1
                fees[src[a.route[i]]] += a.amounts[i - 1] - a.amounts[i]

    node.payment_observers.append(observe)
    node.run(hours * 3600)
    st = node.stats
    f, c = np.sort(list(forwards.values()))[::-1], np.sort(list(fees.values()))[::-1]
    print(json.dumps({"success": st.settled / st.payments, "attempts": st.attempts / st.payments,
                      "our_settled": st.our_settled, "our_revenue_msat": st.revenue_msat, "forwarding_nodes": len(f),
                      "fwd_top10": float(f[:10].sum() / f.sum()), "fwd_median": float(np.median(f)),
                      "fees_sat": int(c.sum()) / 1000, "fee_top10": float(c[:10].sum() / c.sum())}))  # fmt: skip


ECONOMICS = [("success", "payment success rate", "{:.4f}"), ("attempts", "attempts per payment", "{:.3f}"),
             ("our_settled", "our settled forwards", "{:,}"), ("our_revenue_msat", "our revenue, msat", "{:,}"),
             ("forwarding_nodes", "nodes that forwarded", "{:,}"),
             ("fwd_top10", "forwards: share of the 10 busiest nodes", "{:.3f}"),
             ("fwd_median", "forwards per forwarding node, median", "{:g}"),
             ("fees_sat", "fees paid network-wide, sat", "{:,.0f}"),
             ("fee_top10", "fees: share of the 10 best-earning nodes", "{:.3f}")]  # fmt: skip


def run(pythonpath: str | None, args) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--worker", "--warm", str(args.warm), "--measure", str(args.measure),
           "--seed", str(args.seed), "--kind", args.kind]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm", type=float, default=6.0, help="simulated hours before the warm measurement")
    parser.add_argument("--measure", type=float, default=3.0, help="simulated hours measured warm")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default="d3dce2c", help="the commit whose lnlens_sim is the baseline")
    parser.add_argument("--economics", metavar="SEEDS", help="compare what both simulate on seeds A-B instead")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        economics(args.kind, args.seed) if args.kind else worker(args.warm, args.measure, args.seed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.baseline, "backends/lnlens_sim"], cwd=ROOT,
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old_path = str(Path(tmp) / "backends")
        if args.economics:
            compare_economics(old_path, args)
            return
        olds, news = [], []
        for i in range(args.repeats):
            olds.append(run(old_path, args))
            news.append(run(None, args))
            print(f"run {i + 1}: {args.baseline} warm {olds[-1]['warm']:,.0f} cold {olds[-1]['cold']:,.0f} | "
                  f"now warm {news[-1]['warm']:,.0f} cold {news[-1]['cold']:,.0f} payments per CPU-second",
                  flush=True)  # fmt: skip
    for label, key in (("warm", "warm"), ("cold", "cold")):
        old = statistics.median(r[key] for r in olds)
        new = statistics.median(r[key] for r in news)
        print(f"{label}: {args.baseline} {old:,.0f}, now {new:,.0f} payments per CPU-second ({new / old:.2f}x), "
              f"median of {args.repeats}")  # fmt: skip
    o, n = olds[-1], news[-1]
    print(f"same traffic: success {o['success']:.4f} vs {n['success']:.4f}, attempts per payment "
          f"{o['attempts']:.4f} vs {n['attempts']:.4f}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip


def compare_economics(old_path: str, args) -> None:
    first, _, last = args.economics.partition("-")
    seeds = range(int(first), int(last or first) + 1)
    cols, cells = [], {}
    for kind, label in (("mainnet", "mainnet"), ("n200", "200 nodes")):
        for seed in seeds:
            args.kind, args.seed = kind, seed
            old, new = run(old_path, args), run(None, args)
            cols.append(f"{label} s{seed}")
            for key, _, fmt in ECONOMICS:
                cells.setdefault(key, []).append(f"{fmt.format(old[key])} / {fmt.format(new[key])}")
            print(f"{label} seed {seed} done", file=sys.stderr, flush=True)
    print(f"| measure ({args.baseline} / now) | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for key, label, _ in ECONOMICS:
        print(f"| {label} | " + " | ".join(cells[key]) + " |")


if __name__ == "__main__":
    main()
