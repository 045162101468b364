"""Simulator benchmarks for issue [B]: payments/s with routing and retries, graph load, memory.

Every figure comes with a baseline measured in the same run, so ratios mean something
on any machine: one scipy single-source Dijkstra over the same graph's enabled
channels (what a naive simulator would pay per payment, before retries).

- payments/s on (a) the whole mainnet graph and (b) a 1,000-node synthetic graph,
  after a warm-up so the route cache is in its steady state, and cold (from start);
- time to load (decode) the mainnet graph;
- peak RSS of the process, against its RSS with numpy/scipy imported and nothing built;
- where the time goes: the whole-mainnet run continued under cProfile (CPU time), each stage's share.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_sim.py --quick``).
Not collected by pytest; timings are never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import time

import numpy as np
from lnlens_sim.graph import Graph, load_mainnet
from lnlens_sim.scenario import SIM_START, SimSettings, build
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from lnlens_core.clock import ManualClock


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def dijkstra_baseline(graph: Graph, sources: int = 30) -> float:
    """Median seconds of one single-source Dijkstra over the enabled directions (fee at 10k sat)."""
    en = graph.enabled
    weight = graph.base_fee_msat[en] + graph.fee_ppm[en] * 10_000_000 / 1e6 + 1.0
    adj = csr_matrix((weight, (graph.src[en], graph.dst[en])), shape=(graph.n_nodes,) * 2)
    rng = np.random.default_rng(0)
    starts = rng.choice(np.flatnonzero(graph.degree() > 0), sources, replace=False)
    times = []
    for s in starts.tolist():
        t = time.perf_counter()
        dijkstra(adj, indices=s)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# Stages of the payment loop, by the function whose cumulative time is the stage (docs/SIMULATOR.md#performance).
STAGES = [
    ("route trees: compiled Dijkstra per (receiver, amount class), grown per sender", "kernels.py", "grow_tree"),
    ("tree cache: LRU lookup, is the sender settled", "routing.py", "_tree"),
    ("retry searches: compiled A*", "kernels.py", "astar"),
    ("route lookup: the tree's settled check, following it, exact limits, way in / out", "routing.py", "route"),
    ("HTLC walk and settlement", "network.py", "attempt"),
    ("onion amounts", "network.py", "amounts_for"),
    ("paying: retries, exclusions", "payments.py", "pay"),
    ("forward events and counters", "node.py", "_account"),
    ("traffic draw", "traffic.py", "draw"),
    ("gossip: our fee changes reach senders", "network.py", "propagate"),
]


def profile_stages(node, seconds: float) -> tuple[float, int, list[tuple[str, float]]]:
    """Continue ``node`` for ``seconds`` under cProfile (CPU time); each stage's own share of the time.

    A stage's share is its function's cumulative time less that of the stages inside it (route holds
    the tree cache and the searches, the cache the tree growth, pay holds route, attempt and amounts_for).
    """
    before = node.stats.payments
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    node.run(seconds)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    cum = {name: 0.0 for _, _, name in STAGES}
    total = 0.0
    for (path, _, name), (_, _, own_s, cum_s, _) in stats.items():
        total += own_s
        if any(path.endswith("lnlens_sim/" + f) and name == n for _, f, n in STAGES):
            cum[name] += cum_s
    inside = {"route": ("_tree", "astar"), "_tree": ("grow_tree",), "pay": ("route", "attempt", "amounts_for")}
    own = {name: cum[name] - sum(cum[sub] for sub in inside.get(name, ())) for name in cum}
    rows = [(label, own[name] / total) for label, _, name in STAGES]
    rows.append(("everything else (run loop, sink, clock)", 1.0 - sum(share for _, share in rows)))
    return total, node.stats.payments - before, rows


def payments_per_s(settings: SimSettings, graph: Graph | None, warm_s: float, measure_s: float,
                   profile_s: float = 0.0) -> dict:  # fmt: skip
    node = build(settings, clock=ManualClock(SIM_START), graph=graph)
    t = time.perf_counter()
    node.run(warm_s)
    cold_wall = time.perf_counter() - t
    cold_payments = node.stats.payments
    before, attempts_before = node.stats.payments, node.stats.attempts
    t = time.perf_counter()
    node.run(measure_s)
    wall = time.perf_counter() - t
    n = node.stats.payments - before
    out = {
        "cold": cold_payments / cold_wall,
        "warm": n / wall,
        "payments": n,
        "attempts_per_payment": (node.stats.attempts - attempts_before) / n,
        "success_rate": node.stats.success_rate or 0.0,
        "our_forwards": len(node.events),
        **{k: float(v) for k, v in node.network.router.stats.items()},
    }
    if profile_s:
        out["profile"] = profile_stages(node, profile_s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the benchmark)")
    parser.add_argument("--repeats", type=int, default=3, help="whole-mainnet runs, each from scratch (median)")
    args = parser.parse_args()
    warm, measure = (1800.0, 1800.0) if args.quick else (6 * 3600.0, 12 * 3600.0)
    profile = 1800.0 if args.quick else 3 * 3600.0
    base_rss = rss_mb()

    loads = []
    for _ in range(3):
        t = time.perf_counter()
        mainnet = load_mainnet()
        loads.append(time.perf_counter() - t)
    load_s = statistics.median(loads)
    dij_main = dijkstra_baseline(mainnet)
    print(f"mainnet graph: {mainnet.n_nodes:,} nodes, {mainnet.n_channels:,} channels")
    print(f"baseline: one scipy Dijkstra on mainnet = {dij_main * 1e3:.2f} ms")
    print(f"graph load: {load_s:.3f} s = {load_s / dij_main:,.0f} Dijkstras")

    runs, dijs = [], []
    for i in range(max(1, args.repeats)):
        dijs.append(dijkstra_baseline(mainnet, sources=10))  # the baseline again beside each run: load moves
        last = i == max(1, args.repeats) - 1
        runs.append(payments_per_s(SimSettings(network="mainnet", seed=1), mainnet, warm, measure,
                                   profile_s=profile if last else 0.0))  # fmt: skip
    main_run = runs[-1]
    rate = statistics.median(r["warm"] for r in runs)
    cold = statistics.median(r["cold"] for r in runs)
    ratio = statistics.median(r["warm"] * d for r, d in zip(runs, dijs, strict=True))
    print(
        f"(a) whole mainnet: {rate:,.0f} payments/s warm, {cold:,.0f} cold "
        f"({main_run['payments']:,.0f} payments, {main_run['attempts_per_payment']:.2f} attempts each, "
        f"success {main_run['success_rate']:.1%}); {ratio:.1f}x the rate of one Dijkstra per payment "
        f"(each run against a Dijkstra measured just before it)"
    )
    print(f"    median of {len(runs)} run(s) from scratch: warm " + ", ".join(f"{r['warm']:,.0f}" for r in runs)
          + " payments/s beside Dijkstras of " + ", ".join(f"{d * 1e3:.2f}" for d in dijs)
          + f" ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(
        f"    route cache: {main_run['tree_builds']:,.0f} trees built, {main_run['tree_hits']:,.0f} hits, "
        f"{main_run['astar']:,.0f} A* searches"
    )

    cpu, n, rows = main_run["profile"]
    print(f"    where the time goes (the same node {profile / 3600:g} h further under cProfile, CPU time, "
          f"{n:,} payments, {cpu / n * 1e6:,.0f} us each with the profiler's overhead):")
    for label, share in rows:
        print(f"      {share:6.1%}  {label}")

    synth_settings = SimSettings(network="synthetic", nodes=1000, seed=1, payments_per_hour=9000)
    synth = build(synth_settings).network.graph
    dij_syn = dijkstra_baseline(synth)
    syn_run = payments_per_s(synth_settings, synth, warm, measure)
    rate = syn_run["warm"]
    print(f"baseline: one scipy Dijkstra on the 1,000-node synthetic graph = {dij_syn * 1e3:.3f} ms")
    print(
        f"(b) synthetic 1,000 nodes: {rate:,.0f} payments/s warm, {syn_run['cold']:,.0f} cold "
        f"({syn_run['attempts_per_payment']:.2f} attempts each, success {syn_run['success_rate']:.1%}); "
        f"{rate * dij_syn:.1f}x the rate of one Dijkstra per payment"
    )
    peak = rss_mb()
    print(f"peak RSS: {peak:,.0f} MB ({peak / base_rss:.1f}x the {base_rss:,.0f} MB of the interpreter + numpy/scipy)")


if __name__ == "__main__":
    main()
