"""Putting a simulation together from a few settings: graph, managed node, balances, traffic.

Every random choice draws from its own stream spawned from one seed
(``numpy.random.SeedSequence``), so changing, say, the traffic never changes the
initial balances, and the same settings always give the same run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from lnlens_core.clock import ManualClock
from lnlens_core.config import parse_duration
from lnlens_core.errors import ConfigError

from .graph import Graph, load_mainnet
from .network import BALANCE_RULES, SimNetwork, initial_balances
from .node import SimNode
from .topology import largest_scc, lightninglens, load_simln, neighbourhood, synthetic
from .traffic import CapacityWeightedTraffic, LightningLensTraffic, TrafficConfig

__all__ = ["SimSettings", "build", "build_backend", "load_graph", "default_node", "traffic_share", "NETWORKS",
           "MAINNET_DEFAULT_NODE", "SIM_START"]  # fmt: skip

NETWORKS = ("mainnet", "synthetic", "lightninglens")
# c-otto.de: 43 channels enabled both ways, 21.9 BTC, in the snapshot's largest
# strongly connected component - a mid-size, well-run routing node (index 316).
MAINNET_DEFAULT_NODE = "027ce055380348d7812d2ae7745701c9f93e70c1adeb2657f053f91df4f2843c71"
SIM_START = 1_770_076_800.0  # 2026-02-03T00:00:00Z, the snapshot's date


MAX_NODES = 100_000  # several times today's public graph
_NUMBER = (int, float)
_KINDS: dict[str, tuple[type, ...]] = {
    "network": (str,), "node": (str,), "nodes": (int,), "seed": (int,), "balances": (str,),
    "gossip_delay_s": _NUMBER, "payments_per_hour": _NUMBER, "tick_s": _NUMBER, "max_attempts": (int,),
    "hop_latency_s": _NUMBER, "max_trees": (int,),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What a simulation is made of. ``network`` is a preset name or a file path
    (``*.compressed`` gossip map, or sim-ln ``*.json``)."""

    network: str = "mainnet"
    node: str | None = None
    nodes: int | None = None
    seed: int = 0
    balances: str | None = None
    gossip_delay_s: float = 600.0
    payments_per_hour: float | None = None
    tick_s: float = 60.0
    max_attempts: int = 10
    hop_latency_s: float = 0.1
    max_trees: int = 4096

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SimSettings:
        """From a ``[sim]`` TOML table; durations accept ``600``, ``"10m"``.

        :raises ConfigError: listing every unknown key and bad value.
        """
        known = {f.name for f in fields(cls)}
        alias = {"gossip_delay": "gossip_delay_s", "tick": "tick_s"}
        problems, values = [], {}
        for key, raw in table.items():
            name = alias.get(key, key)
            if name not in known:
                problems.append(f"sim.{key}: unknown setting (accepted: {', '.join(sorted(known | set(alias)))})")
                continue
            try:
                values[name] = parse_duration(raw) if key in alias else raw
            except ValueError as exc:
                problems.append(f"sim.{key}: {exc}")
        if problems:
            raise ConfigError(problems)
        settings = cls(**values)
        settings.validate()
        return settings

    def _type_problems(self) -> list[str]:
        """A value of the wrong type (``seed = "x"``, ``nodes = true``), each named by its setting."""
        problems = []
        for f in fields(self):
            value, kinds = getattr(self, f.name), _KINDS[f.name]
            name = f"sim.{f.name.removesuffix('_s')}"
            if value is None and f.default is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                want = {str: "text", int: "a whole number", float: "a number"}[kinds[-1]]
                problems.append(f"{name}: must be {want}, not {value!r}")
            elif isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{name}: must be a finite number, not {value!r}")
        return problems

    def validate(self) -> None:
        problems = self._type_problems()
        if problems:
            raise ConfigError(problems)
        if self.seed < 0:
            problems.append(f"sim.seed: must be 0 or more, not {self.seed}")
        if self.payments_per_hour is not None and not self.payments_per_hour > 0:
            problems.append(f"sim.payments_per_hour: must be more than 0, not {self.payments_per_hour:g}")
        if self.balances is not None and self.balances not in BALANCE_RULES:
            problems.append(f"sim.balances: {self.balances!r} is not one of {', '.join(BALANCE_RULES)}")
        if self.network not in NETWORKS and not Path(self.network).exists():
            problems.append(f"sim.network: {self.network!r} is neither {', '.join(NETWORKS)} nor an existing file")
        if self.nodes is not None and not 3 <= self.nodes <= MAX_NODES:
            problems.append(f"sim.nodes: 3 to {MAX_NODES:,} nodes, not {self.nodes}")
        if self.max_attempts < 1 or self.tick_s <= 0 or self.gossip_delay_s < 0:
            problems.append("sim: max_attempts >= 1, tick > 0 and gossip_delay >= 0 are required")
        if problems:
            raise ConfigError(problems)

    def fingerprint(self) -> dict[str, Any]:
        """What a saved simulation is checked against (lnlens_sim.state): every setting, and for a network
        file also its size and modification time, since a file can change under the same name."""
        settings = asdict(self)
        network = Path(self.network)
        if self.network not in NETWORKS and network.is_file():
            stat = network.stat()
            settings["network_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        return settings


def load_graph(settings: SimSettings) -> Graph:
    """The full graph the settings name (before any neighbourhood cut)."""
    if settings.network == "mainnet":
        return load_mainnet()
    if settings.network == "synthetic":
        return synthetic(settings.nodes or 1000, seed=settings.seed)
    if settings.network == "lightninglens":
        return lightninglens()
    path = Path(settings.network)
    try:
        return load_simln(path) if path.suffix == ".json" else load_mainnet(path)
    except ValueError as exc:  # load_simln names the file, channel and field
        raise ConfigError(f"sim.network: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a decoder makes of a file that is no gossip map
        raise ConfigError(f"sim.network: {path}: not a gossip map (*.compressed) or a sim-ln JSON file "
                          f"({type(exc).__name__}: {exc})") from None  # fmt: skip


def default_node(graph: Graph, network: str) -> int:
    """The managed node when none is named (see docs/SIMULATOR.md)."""
    if network == "mainnet":
        return graph.find_node(MAINNET_DEFAULT_NODE)
    if network == "lightninglens":
        return 0  # alice
    # Elsewhere: the node at the 98th percentile of channel count, a routing node but not the hub.
    order = np.argsort(-graph.degree(), kind="stable")
    return int(order[min(len(order) - 1, max(0, len(order) // 50))])


def _traffic_nodes(g: Graph, us: int, router_nodes: np.ndarray | None = None) -> np.ndarray:
    nodes = largest_scc(g)
    nodes = nodes[nodes != us]
    if len(nodes) < 2 and router_nodes is not None:
        # a graph without a sizeable SCC still gets traffic between routable nodes
        nodes = router_nodes[router_nodes != us]
    return nodes


def traffic_share(full: Graph, center: int, part: Graph) -> float:
    """The share of the whole network's payments that a neighbourhood ``part`` of it carries.

    Senders and receivers are drawn independently by channel capacity, so the payments
    with both ends inside are the square of the neighbourhood's capacity share: the
    capacity of its payment endpoints (over the channels inside it) over that of the
    whole network's. Our node is excluded on both sides, as it never pays.
    """
    whole = full.node_capacity_sat()[_traffic_nodes(full, center)].sum()
    inside = part.node_capacity_sat()[_traffic_nodes(part, 0)].sum()
    return float(min(1.0, inside / whole) ** 2) if whole > 0 else 1.0


def build(settings: SimSettings, *, clock: ManualClock | None = None, graph: Graph | None = None) -> SimNode:
    """A ready SimNode: graph loaded (or ``graph`` reused), node chosen, balances drawn, traffic set.

    :param clock: must be a ManualClock; one starting at 2026-02-03T00:00Z is made if omitted.
    :raises ConfigError: the named node does not exist.
    """
    settings.validate()
    full = graph if graph is not None else load_graph(settings)
    try:
        center = full.find_node(settings.node) if settings.node is not None else default_node(full, settings.network)
    except KeyError as exc:
        raise ConfigError(f"sim.node: {exc.args[0]}") from None
    g, us = full, center
    if settings.nodes is not None and settings.network != "synthetic" and settings.nodes < full.n_nodes:
        g = neighbourhood(full, center, settings.nodes)
        us = 0  # the neighbourhood lists the centre first
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    rule = settings.balances or {"lightninglens": "opener", "synthetic": "uniform"}.get(settings.network, "fees")
    balances = initial_balances(g, rule, np.random.default_rng(seeds[0]))
    net = SimNetwork(g, us, balances, gossip_delay_s=settings.gossip_delay_s, max_trees=settings.max_trees)
    traffic_rng = np.random.default_rng(seeds[1])
    if settings.network == "lightninglens":
        others = np.array([i for i in range(g.n_nodes) if i != us])
        traffic: Any = LightningLensTraffic(others, merchant=int(others[-1]), rng=traffic_rng)
    else:
        nodes = _traffic_nodes(g, us, net.router.nodes)
        config = TrafficConfig()
        if settings.payments_per_hour is not None:
            config = replace(config, payments_per_hour=settings.payments_per_hour)
        elif g is not full:
            # A neighbourhood gets its share of the network's payments, not all of them.
            config = replace(config, payments_per_hour=config.payments_per_hour * traffic_share(full, center, g))
        traffic = CapacityWeightedTraffic(nodes, g.node_capacity_sat(), traffic_rng, config)
    return SimNode(
        net, traffic, clock or ManualClock(SIM_START), max_attempts=settings.max_attempts, tick_s=settings.tick_s,
        hop_latency_s=settings.hop_latency_s, chain_seed=seeds[2],
    )  # fmt: skip


def build_backend(settings: Mapping[str, Any] | None = None, *, clock: ManualClock | None = None) -> SimNode:
    """The ``lnlens.backends`` entry point: a SimNode from the ``[sim]`` settings table."""
    sim = SimSettings.from_mapping(settings or {})
    node = build(sim, clock=clock)
    node.settings = sim  # what saved state is checked against (lnlens_sim.state)
    return node
