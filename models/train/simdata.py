"""Training data from the simulator: run seeded simulations, sample every channel every hour.

Features at time t come from the forwards of the day before t (``lnlens_core.model.features``),
the target from the forwards of the next six hours and each channel's quoted route costs
(``lnlens_core.model.target``, ``lnlens_sim.rebalance.route_costs``): the same
functions the store-based learner and the inference side use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from lnlens_sim.graph import Graph
from lnlens_sim.rebalance import NO_ROUTE_PPM, route_costs
from lnlens_sim.scenario import MAINNET_DEFAULT_NODE, SimSettings, build, load_graph

from lnlens_core.model.learning import Dataset, samples_at
from lnlens_core.model.target import TARGET_HORIZON_S
from lnlens_core.opportunities.flows import PolicyBook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Run:
    """One simulation to sample: a network (mainnet neighbourhood centre) and a seed."""

    centre: str
    seed: int
    nodes: int = 200
    hours: float = 30.0
    warmup_hours: float = 3.0
    every_s: float = 3_600.0
    payments_per_hour: float | None = None  # None: the neighbourhood's share of the network's payments

    @property
    def group(self) -> str:
        return f"{self.centre[:12]}:{self.seed}"


def mainnet_centres(graph: Graph, count: int) -> list[str]:
    """The default node first, then well-connected nodes at fixed degree ranks (deterministic)."""
    order = np.argsort(-graph.degree(), kind="stable")
    out = [MAINNET_DEFAULT_NODE]
    for rank in range(40, 40 + 40 * count, 40):
        key = graph.pubkeys[int(order[rank])]
        if key not in out:
            out.append(key)
    return out[:count]


def training_centres(graph: Graph, count: int, *, avoid: int = 3) -> list[str]:
    """``count`` mainnet neighbourhood centres that are none of the first ``avoid`` nodes ``lnlens sim sweep``
    measures decisions on (``lnlens_sim.sweep.sized_centres``): a model is judged on nodes it never saw."""
    from lnlens_sim.sweep import sized_centres

    taken = set(sized_centres(graph, avoid))
    order = np.argsort(-graph.degree(), kind="stable")
    out = []
    for rank in range(80, 80 + 40 * (count + avoid + 2), 40):
        key = graph.pubkeys[int(order[rank])]
        if key not in taken and key not in out:
            out.append(key)
    return out[:count]


ROUTE_COSTS: list[float] = []
"""Every finite refill cost rate (ppm) quoted while simulating, in this process: the training median."""


@dataclass(slots=True)
class Simulated:
    """One simulation's raw record: hourly snapshots, every forward, peers' policies and quoted route costs."""

    run: Run
    start: float
    snapshots: list
    events: list
    book: PolicyBook
    peers: dict
    costs: dict

    def samples(self, horizon_s: float = TARGET_HORIZON_S) -> Dataset:
        """Every channel at every snapshot after the warm-up whose next ``horizon_s`` was simulated."""
        run, end = self.run, self.start + self.run.hours * 3_600
        parts = [
            samples_at(t, channels, self.events, self.book, group=run.group, peer_policies=self.peers,
                       costs=self.costs, horizon_s=horizon_s)
            for t, channels in self.snapshots
            if t - self.start >= run.warmup_hours * 3_600 and t + horizon_s <= end
        ]  # fmt: skip
        return Dataset.concat(parts)


def simulate_raw(run: Run, graph: Graph | None = None) -> Simulated:
    """Run one simulation, keeping what sampling needs (any target horizon)."""
    settings = SimSettings(network="mainnet", node=run.centre, nodes=run.nodes, seed=run.seed,
                           payments_per_hour=run.payments_per_hour)
    node = build(settings, graph=graph)
    start = node.clock.now()
    peers = {ch.channel_id: node.get_peer_policy(ch.channel_id) for ch in node.list_channels()}
    costs = route_costs(node)  # public fees are static in the simulator: one quote per channel and direction
    ROUTE_COSTS.extend(c.into_ppm for c in costs.values() if c.into_ppm < NO_ROUTE_PPM)
    book = PolicyBook()
    snapshots = []
    elapsed = 0.0
    total_s = run.hours * 3_600
    while elapsed < total_s:
        channels = node.list_channels()
        book.observe_channels(channels, node.clock.now())
        snapshots.append((node.clock.now(), channels))
        node.run(min(run.every_s, total_s - elapsed))
        elapsed = node.clock.now() - start
    return Simulated(run, start, snapshots, node.events, book, peers, costs)


def simulate(run: Run, graph: Graph | None = None) -> Dataset:
    """Run one simulation and return its samples."""
    sim = simulate_raw(run, graph)
    data = sim.samples()
    log.info("simulated %s: %d events, %d samples", run.group, len(sim.events), len(data))
    return data


def collect(runs: list[Run]) -> Dataset:
    graph = load_graph(SimSettings(network="mainnet"))
    return Dataset.concat([simulate(r, graph) for r in runs])
