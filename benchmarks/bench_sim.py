"""Simulator benchmarks for issue [B]: payments/s with routing and retries, graph load, memory.

Every figure comes with a baseline measured in the same run, so ratios mean something
on any machine: one scipy single-source Dijkstra over the same graph's enabled
channels (what a naive simulator would pay per payment, before retries).

- payments/s on (a) the whole mainnet graph and (b) a 1,000-node synthetic graph,
  after a warm-up so the route cache is in its steady state, and cold (from start);
- time to load (decode) the mainnet graph;
- peak RSS of the process, against its RSS with numpy/scipy imported and nothing built.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_sim.py --quick``).
Not collected by pytest; timings are never asserted.
"""

from __future__ import annotations

import argparse
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


def payments_per_s(settings: SimSettings, graph: Graph | None, warm_s: float, measure_s: float) -> dict[str, float]:
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
    return {
        "cold": cold_payments / cold_wall,
        "warm": n / wall,
        "payments": n,
        "attempts_per_payment": (node.stats.attempts - attempts_before) / n,
        "success_rate": node.stats.success_rate or 0.0,
        "our_forwards": len(node.events),
        **{k: float(v) for k, v in node.network.router.stats.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the benchmark)")
    args = parser.parse_args()
    warm, measure = (1800.0, 1800.0) if args.quick else (6 * 3600.0, 12 * 3600.0)
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

    main_run = payments_per_s(SimSettings(network="mainnet", seed=1), mainnet, warm, measure)
    rate = main_run["warm"]
    print(
        f"(a) whole mainnet: {rate:,.0f} payments/s warm, {main_run['cold']:,.0f} cold "
        f"({main_run['payments']:,.0f} payments, {main_run['attempts_per_payment']:.2f} attempts each, "
        f"success {main_run['success_rate']:.1%}); one payment = {1 / rate / dij_main:.2f} Dijkstras, "
        f"i.e. {rate * dij_main:.1f}x the rate of one Dijkstra per payment"
    )
    print(
        f"    route cache: {main_run['tree_builds']:,.0f} trees built, {main_run['tree_hits']:,.0f} hits, "
        f"{main_run['astar']:,.0f} A* retries, {main_run['dijkstra']:,.0f} of them finished by scipy"
    )

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
