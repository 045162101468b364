"""The channel graph as flat numpy arrays, and the decoder for CLN's compressed gossip map.

A graph holds *half-channels* (directions): half-channel ``e = 2 * channel + d``
runs from ``src[e]`` to ``dst[e]``; ``d = 0`` is from the channel's first endpoint
to its second. Every policy field is one array over half-channels, so routing can
compute weights for the whole graph in one vectorised expression.

The mainnet snapshot (Core Lightning ``tests/data``, 2026-02-03) ships in
``lnlens_sim/data``; :func:`load_mainnet` reads it or any file of the same format.
"""

from __future__ import annotations

import gzip
import lzma
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from lnlens_core.domain import ChannelId

__all__ = ["Graph", "decode_gossmap", "read_node_map", "load_mainnet", "MAINNET_FILES", "channel_id_of"]

MAINNET_FILES = ("gossip-store-2026-02-03.compressed", "gossip-store-2026-02-03-node-map.xz")
_HEADER = b"GOSSMAP_COMPRESSv1\x00"
# The data has no real short channel ids; the channel's position in the file becomes the
# transaction index under one fixed, plausible block height so ids look like mainnet ones.
SIM_SCID_BLOCK = 700_000


def channel_id_of(channel: int) -> ChannelId:
    """The simulator's short channel id for channel number ``channel``."""
    return ChannelId(SIM_SCID_BLOCK, channel, 0)


def channel_of(channel_id: ChannelId) -> int:
    """Inverse of :func:`channel_id_of`; -1 when the id is not a simulator id."""
    if channel_id.block != SIM_SCID_BLOCK or channel_id.output != 0:
        return -1
    return channel_id.tx


@dataclass(slots=True)
class Graph:
    """A Lightning channel graph: nodes, channels and per-direction policies.

    Arrays over channels have length ``C``; arrays over half-channels have ``2C``.
    Amounts are integer msat except ``capacity_sat`` (the funding output).
    """

    pubkeys: list[str]
    aliases: list[str]
    node1: np.ndarray  # int32 [C]
    node2: np.ndarray  # int32 [C]
    capacity_sat: np.ndarray  # int64 [C]
    enabled: np.ndarray  # bool [2C]
    htlc_min_msat: np.ndarray  # int64 [2C]
    htlc_max_msat: np.ndarray  # int64 [2C]
    base_fee_msat: np.ndarray  # int64 [2C]
    fee_ppm: np.ndarray  # int64 [2C]
    cltv_delta: np.ndarray  # int64 [2C]
    name: str = "graph"
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.pubkeys)

    @property
    def n_channels(self) -> int:
        return len(self.node1)

    @property
    def src(self) -> np.ndarray:
        """Sending node of each half-channel."""
        out = np.empty(2 * self.n_channels, dtype=np.int32)
        out[0::2], out[1::2] = self.node1, self.node2
        return out

    @property
    def dst(self) -> np.ndarray:
        """Receiving node of each half-channel."""
        out = np.empty(2 * self.n_channels, dtype=np.int32)
        out[0::2], out[1::2] = self.node2, self.node1
        return out

    @property
    def capacity_msat(self) -> np.ndarray:
        """Capacity of each channel in msat."""
        return self.capacity_sat * 1000

    def node_capacity_sat(self) -> np.ndarray:
        """Total capacity of each node's channels (all of them, enabled or not)."""
        total = np.zeros(self.n_nodes, dtype=np.int64)
        np.add.at(total, self.node1, self.capacity_sat)
        np.add.at(total, self.node2, self.capacity_sat)
        return total

    def degree(self, *, enabled_only: bool = True) -> np.ndarray:
        """Channels per node; with ``enabled_only``, channels with at least one enabled direction."""
        keep = self.enabled.reshape(-1, 2).any(axis=1) if enabled_only else np.ones(self.n_channels, bool)
        deg = np.zeros(self.n_nodes, dtype=np.int64)
        np.add.at(deg, self.node1[keep], 1)
        np.add.at(deg, self.node2[keep], 1)
        return deg

    def find_node(self, key: str | int) -> int:
        """A node by index, pubkey or alias (case-insensitive, exact).

        :raises KeyError: naming the key when no node or several nodes match.
        """
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            if 0 <= index < self.n_nodes:
                return index
            raise KeyError(f"node index {index} out of range (0..{self.n_nodes - 1})")
        text = str(key).strip()
        if len(text) == 66:
            try:
                return self.pubkeys.index(text.lower())
            except ValueError:
                pass
        matches = [i for i, alias in enumerate(self.aliases) if alias.lower() == text.lower()]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise KeyError(f"alias {text!r} names {len(matches)} nodes; use the index or pubkey")
        raise KeyError(f"no node with index, pubkey or alias {text!r}")

    def subgraph(self, nodes: np.ndarray, *, name: str | None = None) -> Graph:
        """The graph induced by ``nodes`` (indices), renumbered in the given order.

        Channels keep their policies and capacities; ``meta['channel_origin']`` maps
        new channel numbers to the original ones so ids stay traceable.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        remap = np.full(self.n_nodes, -1, dtype=np.int64)
        remap[nodes] = np.arange(len(nodes))
        keep = (remap[self.node1] >= 0) & (remap[self.node2] >= 0)
        chans = np.flatnonzero(keep)
        halves = np.stack([2 * chans, 2 * chans + 1], axis=1).ravel()
        origin = self.meta.get("channel_origin")
        origin_arr = np.asarray(origin)[chans] if origin is not None else chans
        return Graph(
            pubkeys=[self.pubkeys[i] for i in nodes],
            aliases=[self.aliases[i] for i in nodes],
            node1=remap[self.node1[chans]].astype(np.int32),
            node2=remap[self.node2[chans]].astype(np.int32),
            capacity_sat=self.capacity_sat[chans].copy(),
            enabled=self.enabled[halves].copy(),
            htlc_min_msat=self.htlc_min_msat[halves].copy(),
            htlc_max_msat=self.htlc_max_msat[halves].copy(),
            base_fee_msat=self.base_fee_msat[halves].copy(),
            fee_ppm=self.fee_ppm[halves].copy(),
            cltv_delta=self.cltv_delta[halves].copy(),
            name=name or f"{self.name}[{len(nodes)}]",
            meta={"channel_origin": origin_arr, "node_origin": nodes},
        )


class _Reader:
    """Sequential reader of BOLT bigsize integers over a byte string."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def one(self) -> int:
        data, pos = self.data, self.pos
        first = data[pos]
        if first < 0xFD:
            self.pos = pos + 1
            return first
        width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        self.pos = pos + 1 + width
        if self.pos > len(data):
            raise ValueError(f"gossip map truncated at byte {pos}")
        return int.from_bytes(data[pos + 1 : self.pos], "big")

    def many(self, count: int) -> np.ndarray:
        # A plain loop with the one-byte case inlined: the format is sequential, and this
        # reads the whole mainnet file (~700k values) in well under a second.
        data, pos = self.data, self.pos
        out = np.empty(count, dtype=np.int64)
        for i in range(count):
            first = data[pos]
            if first < 0xFD:
                out[i] = first
                pos += 1
            elif first == 0xFD:
                out[i] = (data[pos + 1] << 8) | data[pos + 2]
                pos += 3
            elif first == 0xFE:
                out[i] = int.from_bytes(data[pos + 1 : pos + 5], "big")
                pos += 5
            else:
                out[i] = int.from_bytes(data[pos + 1 : pos + 9], "big")
                pos += 9
        if pos > len(data):
            raise ValueError("gossip map truncated")
        self.pos = pos
        return out

    def template(self, count: int) -> np.ndarray:
        """A template block: k distinct values, then ``count`` indices into them."""
        k = self.one()
        values = self.many(k)
        index = self.many(count)
        if count and (index.max() >= k):
            raise ValueError(f"template index {int(index.max())} out of range ({k} values)")
        return values[index]


def decode_gossmap(data: bytes, pubkeys: list[str], aliases: list[str], *, name: str = "mainnet") -> Graph:
    """Decode an uncompressed ``GOSSMAP_COMPRESSv1`` stream (see data/README in the docs).

    :raises ValueError: bad header, truncated data, trailing bytes or an unknown node.
    """
    if not data.startswith(_HEADER):
        raise ValueError("not a GOSSMAP_COMPRESSv1 stream (bad header)")
    reader = _Reader(data, len(_HEADER))
    n_chan = reader.one()
    node1 = reader.many(n_chan)
    node2 = reader.many(n_chan)
    enabled = np.ones(2 * n_chan, dtype=bool)
    while (value := reader.one()) != 2 * n_chan:
        if value > 2 * n_chan:
            raise ValueError(f"disabled half-channel {value} out of range")
        enabled[value] = False
    capacity = reader.template(n_chan)
    htlc_min = reader.template(2 * n_chan)
    htlc_max_raw = reader.template(2 * n_chan)
    base = reader.template(2 * n_chan)
    ppm = reader.template(2 * n_chan)
    cltv = reader.template(2 * n_chan)
    if reader.pos != len(data):
        raise ValueError(f"{len(data) - reader.pos} trailing bytes after the gossip map")
    top = int(max(node1.max(initial=0), node2.max(initial=0)))
    if top >= len(pubkeys):
        raise ValueError(f"node index {top} has no entry in the node map ({len(pubkeys)} nodes)")
    cap_msat = np.repeat(capacity * 1000, 2)
    # 0 and 1 are codes, not amounts: "the capacity" and "99% of the capacity".
    htlc_max = np.where(htlc_max_raw == 0, cap_msat, np.where(htlc_max_raw == 1, cap_msat * 99 // 100, htlc_max_raw))
    return Graph(
        pubkeys=pubkeys,
        aliases=aliases,
        node1=node1.astype(np.int32),
        node2=node2.astype(np.int32),
        capacity_sat=capacity,
        enabled=enabled,
        htlc_min_msat=htlc_min,
        htlc_max_msat=htlc_max.astype(np.int64),
        base_fee_msat=base,
        fee_ppm=ppm,
        cltv_delta=cltv,
        name=name,
        meta={"htlc_max_code": htlc_max_raw},
    )


def read_node_map(path: Path) -> tuple[list[str], list[str]]:
    """Pubkeys and aliases from an ``index:pubkey:alias`` xz file, by index."""
    pubkeys: list[str] = []
    aliases: list[str] = []
    text = lzma.decompress(path.read_bytes()).decode("utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        index, pubkey, alias = line.split(":", 2)  # aliases may contain colons
        if int(index) != len(pubkeys):
            raise ValueError(f"{path}:{lineno}: node index {index} out of order")
        pubkeys.append(pubkey)
        aliases.append(alias)
    return pubkeys, aliases


def load_mainnet(gossip: str | Path | None = None, node_map: str | Path | None = None) -> Graph:
    """Load a gossip map and its node map; by default the snapshot shipped in this package."""
    data_dir = resources.files("lnlens_sim") / "data"
    gossip_path = Path(gossip) if gossip else Path(str(data_dir / MAINNET_FILES[0]))
    if node_map is None:
        sibling = gossip_path.with_name(gossip_path.name.replace(".compressed", "-node-map.xz"))
        node_map = sibling if sibling.exists() else Path(str(data_dir / MAINNET_FILES[1]))
    pubkeys, aliases = read_node_map(Path(node_map))
    raw = gzip.decompress(gossip_path.read_bytes())
    return decode_gossmap(raw, pubkeys, aliases, name=gossip_path.name.split(".")[0])
