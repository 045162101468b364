"""Where graphs come from besides the mainnet snapshot.

* :func:`neighbourhood`: the connected N nodes around a node of a larger graph.
* :func:`synthetic`: a seeded scale-free graph with heavy-tailed capacities.
* :func:`lightninglens`: LightningLens's 5-node, 7-channel regtest network (SEEDS row 47).
* :func:`load_simln`: sim-ln's ``sim_network`` JSON, so users can bring their topologies.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .graph import Graph

__all__ = ["neighbourhood", "synthetic", "lightninglens", "load_simln", "largest_scc", "LIGHTNINGLENS_CHANNELS"]

# Mainnet channels with an enabled direction (data README): median 3,000,000 sat, p90 21,000,000 sat.
CAPACITY_MEDIAN_SAT = 3_000_000
CAPACITY_SIGMA = float(np.log(21_000_000 / 3_000_000) / 1.2816)  # log-normal sigma matching that p90


def largest_scc(graph: Graph) -> np.ndarray:
    """Nodes of the largest strongly connected component over enabled directions."""
    en = graph.enabled
    adj = csr_matrix((np.ones(int(en.sum())), (graph.src[en], graph.dst[en])), shape=(graph.n_nodes,) * 2)
    _, labels = connected_components(adj, directed=True, connection="strong")
    return np.flatnonzero(labels == np.bincount(labels).argmax())


def neighbourhood(graph: Graph, center: int, n_nodes: int) -> Graph:
    """The ``n_nodes`` nearest nodes to ``center`` (breadth-first over channels with an enabled
    direction, larger nodes first within a ring), with every channel among them."""
    usable = graph.enabled.reshape(-1, 2).any(axis=1)
    a, b = graph.node1[usable], graph.node2[usable]
    rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
    adj = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(graph.n_nodes,) * 2)
    weight = graph.node_capacity_sat()
    seen, order, queue = {center}, [center], deque([center])
    while queue and len(order) < n_nodes:
        u = queue.popleft()
        nbrs = np.unique(adj.indices[adj.indptr[u] : adj.indptr[u + 1]])
        for v in nbrs[np.argsort(-weight[nbrs], kind="stable")].tolist():
            if v not in seen and len(order) < n_nodes:
                seen.add(v)
                order.append(v)
                queue.append(v)
    return graph.subgraph(np.array(order), name=f"{graph.name}-near-{center}-{len(order)}")


def _pubkey(seed: int, index: int) -> str:
    return "02" + hashlib.sha256(f"lnlens-sim:{seed}:{index}".encode()).hexdigest()


def _policies(rng: np.random.Generator, n_half: int) -> dict[str, np.ndarray]:
    # Shapes follow the mainnet snapshot (data README): a quarter of directions charge
    # 0-1 ppm, the rest spread log-normally (median ~250 ppm); base fees are 0 or 1,000
    # msat for 86% of directions; CLTV deltas cluster at 40, 80 and 144 blocks.
    low = rng.random(n_half) < 0.25
    ppm = np.where(low, rng.integers(0, 2, n_half), np.clip(rng.lognormal(np.log(250), 1.5, n_half), 1, 10_000))
    base = rng.choice(np.array([0, 1000, -1]), n_half, p=[0.45, 0.41, 0.14])
    base = np.where(base < 0, rng.integers(1, 10_001, n_half), base)
    cltv = rng.choice(np.array([40, 80, 144]), n_half, p=[0.3, 0.4, 0.3])
    return {
        "fee_ppm": ppm.astype(np.int64),
        "base_fee_msat": base.astype(np.int64),
        "cltv_delta": cltv.astype(np.int64),
    }


def synthetic(n_nodes: int, *, seed: int, channels_per_node: int = 2) -> Graph:
    """A Barabási-Albert graph: each new node opens ``channels_per_node`` channels to
    existing nodes chosen in proportion to their channel count, which gives the
    heavy-tailed degree distribution of the real network. Capacities are log-normal
    (mainnet median and p90); every direction is enabled."""
    if n_nodes < channels_per_node + 1:
        raise ValueError(f"a synthetic graph needs more than {channels_per_node} nodes")
    rng = np.random.default_rng(seed)
    m = channels_per_node
    ends: list[int] = []  # every channel endpoint so far: sampling from it is preferential attachment
    node1: list[int] = []
    node2: list[int] = []
    for i in range(1, m + 1):  # a small seed clique-ish chain
        node1.append(i - 1)
        node2.append(i)
        ends += [i - 1, i]
    for new in range(m + 1, n_nodes):
        targets: set[int] = set()
        while len(targets) < m:
            targets.add(ends[int(rng.integers(len(ends)))])
        for t in sorted(targets):
            node1.append(new)
            node2.append(t)
            ends += [new, t]
    n_chan = len(node1)
    cap = np.clip(rng.lognormal(np.log(CAPACITY_MEDIAN_SAT), CAPACITY_SIGMA, n_chan), 20_000, 1e9).astype(np.int64)
    cap_half = np.repeat(cap * 1000, 2)
    pol = _policies(rng, 2 * n_chan)
    return Graph(
        pubkeys=[_pubkey(seed, i) for i in range(n_nodes)],
        aliases=[f"synthetic-{i:04d}" for i in range(n_nodes)],
        node1=np.array(node1, dtype=np.int32),
        node2=np.array(node2, dtype=np.int32),
        capacity_sat=cap,
        enabled=np.ones(2 * n_chan, dtype=bool),
        htlc_min_msat=np.full(2 * n_chan, 1000, dtype=np.int64),
        htlc_max_msat=cap_half * 99 // 100,
        name=f"synthetic-{n_nodes}-s{seed}",
        **pol,
    )


# LightningLens's docker network: lnd-alice..lnd-eve, 7 channels of 1,000,000 sat, push 0.
# The seed does not fix which pairs; lnlens uses a ring plus two chords (opener first).
LIGHTNINGLENS_NODES = ("alice", "bob", "carol", "dave", "eve")
LIGHTNINGLENS_CHANNELS = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2), (1, 3))


def lightninglens() -> Graph:
    """The LightningLens preset. LND defaults for policy: base 1,000 msat, 1 ppm, CLTV delta 80,
    htlc_min 1,000 msat, htlc_max 99% of capacity. Use balance rule ``opener`` for push 0."""
    n_chan = len(LIGHTNINGLENS_CHANNELS)
    cap = np.full(n_chan, 1_000_000, dtype=np.int64)
    return Graph(
        pubkeys=[_pubkey(47, i) for i in range(len(LIGHTNINGLENS_NODES))],
        aliases=list(LIGHTNINGLENS_NODES),
        node1=np.array([a for a, _ in LIGHTNINGLENS_CHANNELS], dtype=np.int32),
        node2=np.array([b for _, b in LIGHTNINGLENS_CHANNELS], dtype=np.int32),
        capacity_sat=cap,
        enabled=np.ones(2 * n_chan, dtype=bool),
        htlc_min_msat=np.full(2 * n_chan, 1000, dtype=np.int64),
        htlc_max_msat=np.full(2 * n_chan, 990_000_000, dtype=np.int64),
        base_fee_msat=np.full(2 * n_chan, 1000, dtype=np.int64),
        fee_ppm=np.full(2 * n_chan, 1, dtype=np.int64),
        cltv_delta=np.full(2 * n_chan, 80, dtype=np.int64),
        name="lightninglens",
    )


def load_simln(path: str | Path) -> Graph:
    """Read sim-ln's ``{"sim_network": [...]}`` file. ``node_1``'s policy is for forwarding
    from node_1 to node_2 (sim-ln's convention); channel ids are renumbered by position.

    :raises ValueError: naming the channel and field that is missing or wrong.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        channels = doc["sim_network"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a sim-ln sim_network file ({exc})") from exc
    index: dict[str, int] = {}
    aliases: list[str] = []
    cols: dict[str, list[int]] = {k: [] for k in ("min", "max", "base", "ppm", "cltv")}
    node1, node2, cap = [], [], []
    for i, ch in enumerate(channels):
        try:
            capacity_msat = int(ch["capacity_msat"])
            ends = []
            for side in ("node_1", "node_2"):
                pol = ch[side]
                pubkey = str(pol["pubkey"]).lower()
                if pubkey not in index:
                    index[pubkey] = len(index)
                    aliases.append(str(pol.get("alias") or pubkey[:20]))
                ends.append(index[pubkey])
                cols["min"].append(int(pol.get("min_htlc_size_msat", 1)))
                cols["max"].append(int(pol.get("max_htlc_size_msat", capacity_msat)))
                cols["base"].append(int(pol["base_fee"]))
                cols["ppm"].append(int(pol["fee_rate_prop"]))
                cols["cltv"].append(int(pol["cltv_expiry_delta"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: sim_network[{i}]: missing or bad field {exc}") from exc
        node1.append(ends[0])
        node2.append(ends[1])
        cap.append(capacity_msat // 1000)
    n_half = 2 * len(node1)
    return Graph(
        pubkeys=list(index),
        aliases=aliases,
        node1=np.array(node1, dtype=np.int32),
        node2=np.array(node2, dtype=np.int32),
        capacity_sat=np.array(cap, dtype=np.int64),
        enabled=np.ones(n_half, dtype=bool),
        htlc_min_msat=np.array(cols["min"], dtype=np.int64),
        htlc_max_msat=np.array(cols["max"], dtype=np.int64),
        base_fee_msat=np.array(cols["base"], dtype=np.int64),
        fee_ppm=np.array(cols["ppm"], dtype=np.int64),
        cltv_delta=np.array(cols["cltv"], dtype=np.int64),
        name=path.stem,
    )
