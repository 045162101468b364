"""Optional reactive competitors: other nodes that price their channels by their liquidity.

Off by default (other nodes' fees are static). When on, every ``period_s`` each chosen
node sets the proportional fee of each of its enabled outgoing channels to its
snapshot fee times a factor that falls linearly from ``max_factor`` (channel empty
on its side) to ``min_factor`` (channel full), the shape of charge-lnd's
``proportional`` strategy. Senders hear of it at once: a simplification, since these
nodes never refuse HTLCs for fees in the simulator anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from lnlens_core.domain import HtlcEvent

from .node import SimNode

__all__ = ["ReactiveFees"]


class ReactiveFees:
    """Pass as (part of) ``on_tick`` to :meth:`SimNode.run`.

    :param nodes: the reacting nodes (default: our node's peers).
    """

    def __init__(
        self,
        node: SimNode,
        nodes: Iterable[int] | None = None,
        *,
        period_s: float = 6 * 3600.0,
        min_factor: float = 0.5,
        max_factor: float = 2.0,
    ) -> None:
        if not 0 <= min_factor <= max_factor or period_s <= 0:
            raise ValueError("need 0 <= min_factor <= max_factor and a positive period")
        net = node.network
        chosen = sorted(set(nodes) if nodes is not None else {net.dst[e] for e in net.our_out})
        chosen_set = set(chosen) - {net.us}
        self.edges = [e for e in range(len(net.src)) if net.src[e] in chosen_set and net.view.enabled[e]]
        self.base_ppm = [int(net.graph.fee_ppm[e]) for e in self.edges]
        self.period_s = period_s
        self.min_factor, self.max_factor = min_factor, max_factor
        self.next_time = node.clock.now() + period_s
        self.updates = 0

    def __call__(self, node: SimNode, batch: list[HtlcEvent]) -> None:
        now = node.clock.now()
        if now < self.next_time or not self.edges:
            return
        self.next_time = now + self.period_s
        net = node.network
        span = self.max_factor - self.min_factor
        ppm = []
        for e, base in zip(self.edges, self.base_ppm, strict=True):
            share = net.bal[e] / net.capacity_msat[e >> 1] if net.capacity_msat[e >> 1] else 0.5
            ppm.append(round(base * (self.max_factor - span * share)))
        net.set_public_fee_ppm(self.edges, ppm)
        self.updates += 1
