"""lnlens_sim: a fast, deterministic Lightning network simulator on the real mainnet graph.

Typical use::

    from lnlens_core.clock import ManualClock
    from lnlens_sim import SIM_START, SimSettings, build

    node = build(SimSettings(network="mainnet", seed=1), clock=ManualClock(SIM_START))
    node.attach(lens.monitor)           # forwards go to HtlcMonitor.record(batch, source="sim")
    node.run(7 * 86_400)                # a simulated week; the clock advances tick by tick
    node.ground_truth(node.events[0]).fee_at_policy_msat

See docs/SIMULATOR.md for every modelling assumption.
"""

from __future__ import annotations

from .graph import Graph, channel_id_of, load_mainnet
from .network import SimNetwork, initial_balances
from .node import CAPABILITIES, GroundTruth, RunStats, SimNode
from .payments import PaymentResult, RebalanceResult, circular_rebalance, pay
from .scenario import MAINNET_DEFAULT_NODE, SIM_START, SimSettings, build, build_backend, load_graph
from .topology import lightninglens, load_simln, neighbourhood, synthetic
from .traffic import CapacityWeightedTraffic, LightningLensTraffic, TrafficConfig

__all__ = [
    "CAPABILITIES",
    "CapacityWeightedTraffic",
    "Graph",
    "GroundTruth",
    "LightningLensTraffic",
    "MAINNET_DEFAULT_NODE",
    "PaymentResult",
    "RebalanceResult",
    "RunStats",
    "SIM_START",
    "SimNetwork",
    "SimNode",
    "SimSettings",
    "TrafficConfig",
    "build",
    "build_backend",
    "channel_id_of",
    "circular_rebalance",
    "initial_balances",
    "lightninglens",
    "load_graph",
    "load_mainnet",
    "load_simln",
    "neighbourhood",
    "pay",
    "synthetic",
]
