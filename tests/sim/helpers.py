"""Small graphs and scripted traffic for simulator tests."""

from __future__ import annotations

import numpy as np
from lnlens_sim.graph import Graph
from lnlens_sim.network import SimNetwork
from lnlens_sim.node import SimNode
from lnlens_sim.scenario import SIM_START
from lnlens_sim.traffic import Arrivals

from lnlens_core.clock import ManualClock


def make_graph(channels: list[tuple[int, int, int]], *, n_nodes: int, fee_ppm: int = 100, base_fee_msat: int = 1000):
    """A graph from ``(node1, node2, capacity_sat)`` triples, every direction enabled, same policy."""
    n_half = 2 * len(channels)
    cap = np.array([c for _, _, c in channels], dtype=np.int64)
    return Graph(
        pubkeys=[f"02{i:064x}" for i in range(n_nodes)],
        aliases=[f"n{i}" for i in range(n_nodes)],
        node1=np.array([a for a, _, _ in channels], dtype=np.int32),
        node2=np.array([b for _, b, _ in channels], dtype=np.int32),
        capacity_sat=cap,
        enabled=np.ones(n_half, dtype=bool),
        htlc_min_msat=np.full(n_half, 1000, dtype=np.int64),
        htlc_max_msat=np.repeat(cap * 1000, 2),
        base_fee_msat=np.full(n_half, base_fee_msat, dtype=np.int64),
        fee_ppm=np.full(n_half, fee_ppm, dtype=np.int64),
        cltv_delta=np.full(n_half, 40, dtype=np.int64),
        name="test",
    )


class ScriptedTraffic:
    """One payment of ``amount_msat`` from ``sender`` to ``receiver`` every ``every_s`` seconds."""

    def __init__(self, sender: int, receiver: int, amount_msat: int, every_s: float) -> None:
        self.sender, self.receiver, self.amount, self.every = sender, receiver, amount_msat, every_s
        self.next = None

    def draw(self, t0: float, t1: float) -> Arrivals:
        if self.next is None:
            self.next = t0
        times = []
        while self.next < t1:
            times.append(self.next)
            self.next += self.every
        n = len(times)
        return Arrivals(
            np.array(times, dtype=np.float64),
            np.full(n, self.sender, dtype=np.int64),
            np.full(n, self.receiver, dtype=np.int64),
            np.full(n, self.amount, dtype=np.int64),
        )


def line_node(*, local_sat: int = 500_000, gossip_delay_s: float = 600.0, fee_ppm: int = 100) -> SimNode:
    """S(0) - U(1, ours) - R(2): the only route from S to R runs through us.

    Channel 0 is S-U (S holds everything), channel 1 is U-R (we hold ``local_sat``).
    """
    g = make_graph([(0, 1, 1_000_000), (1, 2, 1_000_000)], n_nodes=3, fee_ppm=fee_ppm)
    bal = np.array([1_000_000_000, 0, local_sat * 1000, (1_000_000 - local_sat) * 1000], dtype=np.int64)
    net = SimNetwork(g, 1, bal, gossip_delay_s=gossip_delay_s)
    return SimNode(net, ScriptedTraffic(0, 2, 10_000_000, 30.0), ManualClock(SIM_START), tick_s=60.0)
