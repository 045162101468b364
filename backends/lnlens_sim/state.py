"""A simulation saved between processes, so that separate CLI commands see one node.

Every ``lnlens`` command builds its simulator afresh from the ``[sim]`` settings; the
CLI then restores the state saved next to the database (``<db>.sim-state``) and saves
it again when the command ends (``lnlens_core.cli.node``). The graph, our node and the
traffic's shape are rebuilt from the settings; what commands can change is saved:

- the clock;
- each of our channels' policy in force, the policy senders have heard (their routing
  view) and any announcement still travelling through gossip, with its due time;
- every balance;
- the traffic generator's position (its random stream and drift walk), HTLC and
  payment counters (so new forwards never reuse a stored forward's key) and the run's
  counters.

The forward history (``list_forwards``) and ground truth of earlier commands are not
saved: their forwards are in the database already.

The file names the settings it was made with and our channels; a file made with other
settings, or for another network, is not restored, and the caller says so.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lnlens_core.clock import ManualClock
from lnlens_core.domain import Channel, ChannelId, ChannelPolicy
from lnlens_core.errors import LnlensError

from .network import SimNetwork
from .records import RunStats

__all__ = ["save_state", "restore_state", "StatefulNode", "Fingerprinted", "STATE_VERSION"]

STATE_VERSION = 1


class Fingerprinted(Protocol):
    """Settings a saved state is checked against (:class:`lnlens_sim.scenario.SimSettings`)."""

    def fingerprint(self) -> dict[str, Any]: ...


class StatefulNode(Protocol):
    """What saving and restoring read and set of a node: :class:`lnlens_sim.node.SimNode` is one."""

    settings: Fingerprinted | None
    """The settings it was built from, or None (then its state cannot be saved)."""
    network: SimNetwork
    traffic: Any
    """The traffic generator: ``get_state()`` and ``set_state(state)``."""
    clock: ManualClock
    stats: RunStats
    htlc_ids: Counter[int]
    payment_id: int

    def channel_id(self, out_edge: int) -> ChannelId: ...

    def out_edge(self, channel_id: ChannelId) -> int: ...

    def list_channels(self) -> Sequence[Channel]: ...


def _fingerprint(node: StatefulNode) -> dict[str, Any]:
    if node.settings is None:
        raise ValueError("this SimNode was not built from SimSettings (lnlens_sim.build): its state cannot be saved")
    return node.settings.fingerprint()


def _heard(node: StatefulNode, e: int) -> ChannelPolicy:
    """Our half-channel ``e``'s policy as senders last heard it (their routing view)."""
    v = node.network.view
    return ChannelPolicy(
        base_fee_msat=int(v.base[e]), fee_ppm=int(v.ppm[e]), inbound_base_fee_msat=int(v.in_base[e ^ 1]),
        inbound_fee_ppm=int(v.in_ppm[e ^ 1]), min_htlc_msat=int(v.htlc_min[e]), max_htlc_msat=int(v.htlc_max[e]),
        cltv_delta=int(v.cltv[e]), disabled=not bool(v.enabled[e]),
    )  # fmt: skip


def _policies(node: StatefulNode) -> dict[str, dict[str, Any]]:
    net = node.network
    # The gossip queue is the network's own; read here so that saving needs no hook in the hot path.
    pending = sorted((seq, due, e, p) for due, seq, e, p in net._gossip)
    out = {}
    for e in net.our_out:
        mine = [[due, asdict(p)] for _, due, x, p in pending if x == e]
        out[str(node.channel_id(e))] = {"in_force": asdict(net.policy[e]), "heard": asdict(_heard(node, e)),
                                        "announcing": mine}  # fmt: skip
    return out


def save_state(node: StatefulNode, path: Path) -> None:
    """Write the node's state to ``path`` (atomically: a reader sees the old file or the new one)."""
    balances = np.asarray(node.network.bal, dtype="<i8").tobytes()
    state = {
        "version": STATE_VERSION,
        "settings": _fingerprint(node),
        "channels": {str(c.channel_id): c.capacity_msat for c in node.list_channels()},
        "half_channels": len(node.network.bal),
        "time": node.clock.now(),
        "policies": _policies(node),
        "balances": base64.b64encode(zlib.compress(balances)).decode(),
        "traffic": node.traffic.get_state(),
        "htlc_ids": {str(k): v for k, v in node.htlc_ids.items()},
        "payment_id": node.payment_id,
        "stats": {f.name: getattr(node.stats, f.name) for f in fields(RunStats)},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, separators=(",", ":")))
    os.replace(tmp, path)


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> str:
    keys = sorted(set(saved) | set(now))
    return ", ".join(f"{k} {saved.get(k)!r} → {now.get(k)!r}" for k in keys if saved.get(k) != now.get(k))


def restore_state(node: StatefulNode, path: Path) -> str | None:
    """Continue the simulation saved in ``path`` on ``node``, freshly built from the same settings.

    :returns: None when restored or when there is no file; otherwise why the file was not
        used (other settings, another network, unreadable), in a sentence to show the user.
        The node is then left as built.
    :raises LnlensError: the file fits these settings but its contents are damaged.
    """
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} simulator state")
    except (OSError, ValueError) as exc:
        return f"{path}: not restored ({exc}); this command starts the simulation from its settings"
    fresh = "; this command starts a new simulation from the settings and saves it over that file"
    changed = _differences(state.get("settings", {}), _fingerprint(node))
    if changed:
        return f"{path} was saved with other [sim] settings ({changed}): not restored{fresh}"
    ours = {str(c.channel_id): c.capacity_msat for c in node.list_channels()}
    if state.get("channels") != ours or state.get("half_channels") != len(node.network.bal):
        return f"{path}: the saved channels do not match the network these settings build: not restored{fresh}"
    try:
        _apply(node, state)
    except (KeyError, TypeError, ValueError, IndexError, AssertionError, zlib.error, LnlensError) as exc:
        raise LnlensError(f"{path}: damaged simulator state ({exc}); delete the file to start over") from exc
    return None


def _apply(node: StatefulNode, state: dict[str, Any]) -> None:
    net = node.network
    now = float(state["time"])
    delay = net.gossip_delay_s
    node.clock.set(now)
    saved = {node.out_edge(cid): p for cid, p in state["policies"].items()}
    for e, p in saved.items():  # what senders had heard by then: announced so that it is due now
        heard = ChannelPolicy(**p["heard"])
        if heard != _heard(node, e):
            net.set_policy(e, heard, now - delay)
    net.propagate(now)
    # By due time; the sort is stable, so two announcements of one channel due together keep their order.
    announcing = sorted(((due, e, p) for e, s in saved.items() for due, p in s["announcing"]), key=lambda a: a[0])
    for due, e, p in announcing:  # still on their way to senders, due when they were
        net.set_policy(e, ChannelPolicy(**p), due - delay)
    for e, p in saved.items():
        net.policy[e] = ChannelPolicy(**p["in_force"])
    raw = zlib.decompress(base64.b64decode(state["balances"]))
    balances = np.frombuffer(raw, dtype="<i8")
    if len(balances) != len(net.bal):
        raise ValueError("balances for another network")
    net.bal[:] = balances.tolist()
    net.check_conservation()
    node.traffic.set_state(state["traffic"])
    node.htlc_ids = Counter({int(k): int(v) for k, v in state["htlc_ids"].items()})
    node.payment_id = int(state["payment_id"])
    stats = dict(state["stats"])
    stats["our_failed"] = Counter(stats["our_failed"])
    node.stats = RunStats(**stats)
