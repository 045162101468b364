"""Seeded node states for the differential suite: a simulated routing node, served by the fake lnd.

Every state starts from one simulation: the simulator's c-otto.de neighbourhood of the mainnet graph
(47 channels, 41 peers, several peers with more than one channel, batch-opened channels) after a simulated
day of traffic ending at the wall clock's now (charge-lnd reads ``time.time()`` for its activity windows).
Each state then redraws, from its own seed, half of the balances and what the simulation does not model,
per channel (:meth:`SimNode.seed_channel`):

- pending HTLCs both ways with their expiries, commit fees (taken from the opener's balance), reserves, the
  channel's local HTLC constraints (minimum HTLC, ``max_pending_amt``);
- inactive and private channels; our own current policy (disabled flags to re-enable, inbound discounts,
  HTLC limits, CLTV deltas);
- a channel missing from the node's graph, peers that never announced their side, an empty channel;
- young channels (a chain tip a few dozen blocks past the funding block) in some states.

Forwards that settled within a few minutes after a window's start are left out of the history, so that the
seconds between lnlens's plan and charge-lnd's run cannot move a forward across a window boundary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
from lnlens_sim.node import SNAPSHOT_HEIGHT

from lnlens_core.clock import ManualClock
from lnlens_core.domain import Channel, ChannelPolicy, PendingHtlc

WINDOWS_S = (3_600, 6 * 3_600, 86_400, 3_000 * 86_400)
"""Every ``chan.activity_period`` of the corpus, in seconds (tests/differential/test_corpus.py checks it)."""
MARGIN_S = 240
"""Forwards settled in ``[now - window - 5, now - window + MARGIN_S]`` are left out (see the module docstring)."""
HISTORY_S = 86_400


@dataclass(frozen=True)
class StateSpec:
    seed: int
    young: bool = False
    """The chain tip 40 blocks past the funding blocks: every channel is younger than a 6 h window."""
    fee_floor: bool = False
    """A chain whose fee estimate is at lnd's relay floor (1.012 sat/vB)."""


SPECS = (StateSpec(1), StateSpec(2, young=True), StateSpec(3), StateSpec(4, fee_floor=True), StateSpec(5))


def simulate():
    """The simulation every state starts from: ``(node, its forwards, its policies, its fee walk)``."""
    from lnlens_sim.scenario import SimSettings, build

    start = time.time() - HISTORY_S
    node = build(
        SimSettings(network="mainnet", nodes=100, seed=1, payments_per_hour=5_000), clock=ManualClock(start)
    )
    node.run(HISTORY_S)
    node.chain.fee_rate_sat_per_kw(2, time.time() + 3_600)  # the fee walk, drawn to beyond the suite's end
    return node, list(node.events), dict(node.network.policy), list(node.chain._log_rates)


def build_state(base, spec: StateSpec):
    """Put the simulated node of :func:`simulate` in the state ``spec`` describes, its clock at the wall
    clock's now; returns the node."""
    node, events, policies, rates = base
    now = time.time()
    node.clock.set(max(now, node.clock.now()))
    node.network.policy.update(policies)
    node.seeded.clear()
    node.events[:] = [e for e in events if not _near_a_window_start(e, now)]
    node.chain.synced = True
    node.chain.start_height = SNAPSHOT_HEIGHT
    _seed(node, np.random.default_rng(1000 + spec.seed))
    if spec.young:
        node.chain.start_height = node.list_channels()[0].channel_id.block + 40 - node.chain.block_index(now)
    node.chain._log_rates[:] = rates
    if spec.fee_floor:  # a calm chain: every estimate at the relay floor
        node.chain._log_rates[:] = [math.log(0.5)] * len(node.chain._log_rates)
    return node


def _near_a_window_start(event, now: float) -> bool:
    t = event.resolved_time or event.received_time
    return any(now - w - 5 <= t <= now - w + MARGIN_S for w in WINDOWS_S)


def _policy(rng: np.random.Generator, current: ChannelPolicy, capacity_msat: int) -> ChannelPolicy:
    disabled = rng.random() < 0.2
    inbound = rng.random() < 0.3
    return replace(
        current,
        disabled=bool(disabled),
        inbound_base_fee_msat=-int(rng.choice([0, 100, 1000])) if inbound else 0,
        inbound_fee_ppm=-int(rng.integers(0, 300)) if inbound else 0,
        min_htlc_msat=int(rng.choice([1, 1000, 5000])),
        max_htlc_msat=int(capacity_msat * rng.choice([0.5, 0.9, 0.99])) // 1000 * 1000,
        cltv_delta=int(rng.choice([40, 80, 144])),
    )


def _seed(node, rng: np.random.Generator) -> None:
    channels: list[Channel] = list(node.list_channels())
    height = node.get_info().block_height
    net = node.network
    for n, ch in enumerate(channels):
        e = node.out_edge(ch.channel_id)
        net.policy[e] = _policy(rng, net.policy[e], ch.capacity_msat)
        cap = ch.capacity_msat
        commit = int(rng.choice([0, 2_000_000, 9_000_000]))
        local, remote = ch.local_balance_msat, ch.remote_balance_msat
        if rng.random() < 0.5:
            local = int(cap * rng.random())
            remote = cap - local
        pending: list[PendingHtlc] = []
        if rng.random() < 0.3:
            for _ in range(int(rng.integers(1, 4))):
                incoming = bool(rng.random() < 0.5)
                side = remote if incoming else local
                amount = min(int(rng.integers(10_000, 5_000_000)) * 1000, side // 4) // 1000 * 1000
                if amount <= 0:
                    continue
                pending.append(PendingHtlc(incoming, amount, height + int(rng.integers(10, 300))))
                if incoming:
                    remote -= amount
                else:
                    local -= amount
        if ch.initiator:
            local = max(0, local - commit)
        else:
            remote = max(0, remote - commit)
        facts = dict(
            local_balance_msat=local // 1000 * 1000,
            remote_balance_msat=remote // 1000 * 1000,
            commit_fee_msat=commit,
            pending_htlcs=tuple(pending),
            local_reserve_msat=cap // 100 // 1000 * 1000,
            remote_reserve_msat=cap // 100 // 1000 * 1000,
            active=bool(rng.random() > 0.15),
            private=bool(rng.random() < 0.1),
            min_htlc_floor_msat=int(rng.choice([1, 1, 1000, 20_000])),
            max_htlc_cap_msat=int(cap * rng.choice([0.99, 0.99, 0.6])) // 1000 * 1000,
        )
        if n == 5:  # one channel whose balances are all gone (charge-lnd divides by zero on it)
            facts.update(local_balance_msat=0, remote_balance_msat=0, commit_fee_msat=0, pending_htlcs=())
        if n in (3, 20):
            facts["peer_policy"] = False  # the peer never announced its side
        node.seed_channel(ch.channel_id, **facts)
    # The last channel (never the first charge-lnd meets: a channel missing from FeeReport first crashes it)
    node.seed_channel(channels[-1].channel_id, in_graph=False)

