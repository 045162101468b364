"""SimNode: the managed node of a :class:`SimNetwork`, behind the NodeBackend protocol.

As in sim-ln, the node the core talks to is a thin view over a separate network,
driven by an injected clock. :meth:`SimNode.run` advances a ManualClock tick by
tick; each tick's forwards at our node go to the attached sink (normally
``HtlcMonitor.record(batch, source="sim")``) as one batch, exactly as a real
adapter delivers them. What a real node cannot know, the fee every failed forward
would have paid, is kept per event in :meth:`SimNode.ground_truth`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from lnlens_core import __version__
from lnlens_core.backend import Capability, unsupported_fields
from lnlens_core.clock import ManualClock
from lnlens_core.domain import (
    Channel,
    ChannelId,
    ChannelPolicy,
    FailureReason,
    FeeUpdate,
    ForwardPage,
    ForwardStatus,
    HtlcEvent,
    NodeInfo,
)
from lnlens_core.errors import BackendRejected
from lnlens_core.fees.chargelnd import funding_fee_share_msat

from .chain import SimChain
from .graph import channel_id_of
from .network import SimNetwork
from .payments import PaymentResult, RebalanceResult, circular_rebalance, pay, quote_rebalance
from .records import GroundTruth, RunStats
from .state import restore_state, save_state

__all__ = ["SimNode", "GroundTruth", "RunStats", "CAPABILITIES"]

log = logging.getLogger(__name__)

CAPABILITIES = frozenset(
    {
        Capability.INBOUND_FEES,
        Capability.HTLC_LIMITS,
        Capability.CLTV_DELTA,
        Capability.DISABLE_CHANNEL,
        Capability.LIVE_EVENTS,
        Capability.FAILED_FORWARD_HISTORY,
    }
)
SNAPSHOT_HEIGHT = 934_000  # about the mainnet height on 2026-02-03, the snapshot's date
_CURSOR_PREFIX = "sim:"


class SimNode:
    """The managed node of a simulated network.

    :param traffic: an object with ``draw(t0, t1) -> Arrivals`` (see :mod:`lnlens_sim.traffic`).
    :param clock: the clock this node advances; it must start at the simulation start.
    :param hop_latency_s: one-way time per hop, which spaces retries and resolutions.
    :param chain_seed: seeds the on-chain model (:attr:`chain`: fee estimates, funding transactions).
    """

    name = "sim"
    capabilities = CAPABILITIES

    def __init__(
        self,
        network: SimNetwork,
        traffic,
        clock: ManualClock,
        *,
        max_attempts: int = 10,
        tick_s: float = 60.0,
        hop_latency_s: float = 0.1,
        chain_seed: np.random.SeedSequence | int = 0,
    ) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.network = network
        self.traffic = traffic
        self.clock = clock
        self.max_attempts = max_attempts
        self.tick_s = tick_s
        self.hop_latency_s = hop_latency_s
        self.start_time = clock.now()
        self.stats = RunStats()
        self.events: list[HtlcEvent] = []
        self._truth: dict[str, GroundTruth] = {}
        self._sink: Callable[[list[HtlcEvent]], object] | None = None
        self.htlc_ids: Counter[int] = Counter()
        """Per incoming half-channel, the id its next HTLC gets (saved between processes: lnlens_sim.state)."""
        self.payment_id = 0
        """The number of the last payment (0: none yet); saved between processes (lnlens_sim.state)."""
        self.settings: Any = None
        """The :class:`~lnlens_sim.scenario.SimSettings` this node was built from, when
        :func:`~lnlens_sim.scenario.build_backend` built it: what a saved state is checked against."""
        self.payment_observers: list[Callable[[int, float, PaymentResult], object]] = []
        """Called with (payment id, arrival time, result) after every payment (see export.AttemptLog)."""
        graph = network.graph
        origin = graph.meta.get("channel_origin")
        self._cid = {e: channel_id_of(int(origin[e >> 1]) if origin is not None else e >> 1) for e in network.our_out}
        self._edge_of = {cid: e for e, cid in self._cid.items()}
        node = network.us
        version = f"lnlens-sim {__version__}"
        self.info = NodeInfo(graph.pubkeys[node], graph.aliases[node], "sim", SNAPSHOT_HEIGHT, version, self.name)
        ours = [(cid, network.capacity_msat[e >> 1] // 1000, (e & 1) == 0) for e, cid in self._cid.items()]
        self.chain = SimChain(chain_seed, ours, start_time=self.start_time, start_height=SNAPSHOT_HEIGHT)
        """The chain as our node sees it: block height, fee estimates, our funding transactions."""
        self.seeded: dict[ChannelId, dict[str, Any]] = {}
        """Per channel, what :meth:`seed_channel` set."""

    def seed_channel(self, channel_id: ChannelId, **facts: Any) -> None:
        """Set facts about one of our channels that the simulation does not model, for node states a test or a
        scenario builds (the differential suite against charge-lnd, the fake lnd):

        - any :class:`~lnlens_core.domain.Channel` field (``active``, ``private``, ``commit_fee_msat``,
          ``pending_htlcs``, reserves, balances, the HTLC constraints ``min_htlc_floor_msat`` and
          ``max_htlc_cap_msat``): reported as given;
        - ``in_graph=False``: the channel is missing from the node's graph (no policy of either side known:
          :meth:`list_channels` reports our ``local_policy`` as None, as lnd does, and
          :meth:`set_channel_policy` refuses it; :meth:`own_policy` still tells what the simulation holds);
        - ``peer_policy=False``: the peer never announced its side (its policy is unknown).

        The routing of payments is not affected: these are what the node reports, not what it does.
        """
        known = {f.name for f in fields(Channel)} | {"in_graph", "peer_policy"}
        unknown = sorted(set(facts) - known)
        if unknown:
            raise ValueError(f"not a channel fact: {', '.join(unknown)}")
        self.out_edge(channel_id)  # one of ours
        self.seeded.setdefault(ChannelId.parse(channel_id), {}).update(facts)

    # -- NodeBackend --------------------------------------------------------------------

    def get_info(self) -> NodeInfo:
        i = self.info
        return NodeInfo(i.pubkey, i.alias, i.network, self.chain.height(self.clock.now()), i.version, i.backend)

    def channel_id(self, out_edge: int) -> ChannelId:
        """The id of the channel whose outgoing half-channel (ours) is ``out_edge``."""
        return self._cid[out_edge]

    def channel_id_of_edge(self, edge: int) -> ChannelId:
        """The id of any half-channel's channel (mainnet numbering survives neighbourhood cuts)."""
        origin = self.network.graph.meta.get("channel_origin")
        return channel_id_of(int(origin[edge >> 1]) if origin is not None else edge >> 1)

    def out_edge(self, channel_id: ChannelId) -> int:
        try:
            return self._edge_of[ChannelId.parse(channel_id)]
        except (KeyError, ValueError):
            raise BackendRejected(f"channel {channel_id} is not one of ours") from None

    def list_channels(self) -> Sequence[Channel]:
        net, graph = self.network, self.network.graph
        out = []
        for e in sorted(net.our_out, key=self._cid.__getitem__):
            peer = net.dst[e]
            out.append(
                Channel(
                    channel_id=self._cid[e], peer_id=graph.pubkeys[peer], capacity_msat=net.capacity_msat[e >> 1],
                    local_balance_msat=net.bal[e], remote_balance_msat=net.bal[e ^ 1], local_policy=net.policy[e],
                    active=True, peer_alias=graph.aliases[peer], initiator=(e & 1) == 0,
                    spendable_msat=net.bal[e], receivable_msat=net.bal[e ^ 1],
                    min_htlc_floor_msat=0, max_htlc_cap_msat=net.capacity_msat[e >> 1],
                )
            )  # fmt: skip
        if self.seeded:
            names = {f.name for f in fields(Channel)}
            for i, ch in enumerate(out):
                facts = self.seeded.get(ch.channel_id)
                if facts:
                    out[i] = replace(ch, **{k: v for k, v in facts.items() if k in names})
                if facts and not facts.get("in_graph", True):
                    out[i] = replace(out[i], local_policy=None)
        return out

    def own_policy(self, channel_id: ChannelId) -> ChannelPolicy:
        """Our policy on the channel as the simulation holds it, even when the node's graph lacks the channel
        (a Core Lightning node keeps it in the channel itself; the fakes of tests read it here)."""
        return self.network.policy[self.out_edge(channel_id)]

    def in_graph(self, channel_id: ChannelId) -> bool:
        """Whether the node's graph has the channel (see :meth:`seed_channel`)."""
        return self.seeded.get(ChannelId.parse(channel_id), {}).get("in_graph", True)

    def get_peer_policy(self, channel_id: ChannelId) -> ChannelPolicy | None:
        e_in = self.out_edge(channel_id) ^ 1
        g = self.network.graph
        facts = self.seeded.get(ChannelId.parse(channel_id), {})
        if not facts.get("in_graph", True) or not facts.get("peer_policy", True):
            return None
        if not g.enabled[e_in]:
            return None  # the snapshot cannot tell "disabled" from "never announced"
        return ChannelPolicy(
            base_fee_msat=int(g.base_fee_msat[e_in]), fee_ppm=int(g.fee_ppm[e_in]),
            min_htlc_msat=int(g.htlc_min_msat[e_in]), max_htlc_msat=int(g.htlc_max_msat[e_in]),
            cltv_delta=int(g.cltv_delta[e_in]),
        )  # fmt: skip

    def list_forwards(self, cursor: str | None, *, limit: int = 1000) -> ForwardPage:
        if limit < 1:
            raise BackendRejected(f"limit must be at least 1, not {limit}")
        start = 0
        if cursor:
            try:
                start = int(cursor.removeprefix(_CURSOR_PREFIX)) if cursor.startswith(_CURSOR_PREFIX) else -1
            except ValueError:
                start = -1
            if not 0 <= start <= len(self.events):
                raise BackendRejected(f"not a cursor of this simulation: {cursor!r}")
        # The history only grows and each HTLC appears once, resolved, so a position is a stable cursor.
        page = tuple(self.events[start : start + limit])
        end = start + len(page)
        return ForwardPage(page, f"{_CURSOR_PREFIX}{end}", end >= len(self.events))

    def set_channel_policy(self, channel_id: ChannelId, update: FeeUpdate) -> ChannelPolicy:
        e = self.out_edge(channel_id)
        if not self.in_graph(channel_id):
            raise BackendRejected(f"channel {channel_id} is not in the node's graph: its current policy is unknown")
        missing = unsupported_fields(update, self.capabilities)
        if missing:
            raise BackendRejected(f"channel {channel_id}: the simulator cannot set {', '.join(missing)}")
        policy = update.apply_to(self.network.policy[e])
        cap = self.network.capacity_msat[e >> 1]
        # Only what the update sets is checked: a value the channel already has (the gossip data holds
        # channels announced with cltv_delta 0) is kept as it is, as a node keeps a field nobody changes.
        problems = []
        if (update.base_fee_msat is not None or update.fee_ppm is not None) and (
            policy.base_fee_msat < 0 or policy.fee_ppm < 0
        ):
            problems.append("outbound fees cannot be negative")
        if update.min_htlc_msat is not None or update.max_htlc_msat is not None:
            if policy.min_htlc_msat < 0 or (policy.max_htlc_msat is not None and policy.max_htlc_msat > cap):
                problems.append(f"htlc limits must lie within 0..{cap} msat")
            if policy.max_htlc_msat is not None and policy.max_htlc_msat < policy.min_htlc_msat:
                problems.append("max_htlc_msat is below min_htlc_msat")
        if update.cltv_delta is not None and not 1 <= policy.cltv_delta <= 2016:
            problems.append("cltv_delta must be 1..2016 blocks")
        if problems:
            raise BackendRejected(f"channel {channel_id}: {'; '.join(problems)}")
        self.network.set_policy(e, policy, self.clock.now())
        return policy

    def peer_node_stats(self, pubkey: str) -> tuple[int, int] | None:
        """A node's public channels and their total capacity, from the graph (charge-lnd's ``node.*``).

        Counts channels with at least one enabled direction, as gossip shows them; None for an unknown node.
        """
        graph = self.network.graph
        try:
            node = graph.pubkeys.index(pubkey)
        except ValueError:
            return None
        mine = (graph.node1 == node) | (graph.node2 == node)
        public = mine & graph.enabled.reshape(-1, 2).any(axis=1)
        return int(public.sum()), int(graph.capacity_sat[public].sum()) * 1000

    def onchain_fee_rates(self, targets: Sequence[int]) -> dict[int, float]:
        """The chain model's estimate in sat/vB for each confirmation target, now."""
        now = self.clock.now()
        return {t: self.chain.fee_rate_sat_per_vbyte(t, now) for t in targets}

    def synced_to_chain(self) -> bool:
        return self.chain.synced

    def funding_fee_msat(self, channel: Channel) -> int | None:
        """This channel's share, by capacity, of the funding transaction fee our wallet paid; None when the
        peer opened the channel (charge-lnd's ``cost`` then uses 1 ppm)."""
        tx = self.chain.funding_tx(channel.channel_id)
        if tx is None:
            return None
        return funding_fee_share_msat(
            tx.fee_sat * 1000, channel.capacity_msat, [cap * 1000 for _, _, cap in tx.outputs]
        )

    # -- simulation ---------------------------------------------------------------------

    def attach(self, monitor, *, flush: bool = True) -> None:
        """Deliver each tick's forwards to ``monitor.record(batch, source="sim")``, then flush it."""

        def sink(batch: list[HtlcEvent]) -> None:
            monitor.record(batch, source="sim")
            if flush:
                monitor.flush()

        self._sink = sink

    def set_sink(self, sink: Callable[[list[HtlcEvent]], object] | None) -> None:
        """Deliver each tick's forwards to any callable (None: keep them only in :attr:`events`)."""
        self._sink = sink

    def run(self, seconds: float, *, on_tick: Callable[[SimNode, list[HtlcEvent]], object] | None = None) -> RunStats:
        """Simulate ``seconds`` of traffic from the clock's current time, advancing it tick by tick."""
        end = self.clock.now() + seconds
        while (t0 := self.clock.now()) < end:
            t1 = min(t0 + self.tick_s, end)
            batch = self.step(t0, t1)
            self.clock.set(t1)
            if self._sink is not None and batch:
                self._sink(batch)
            if on_tick is not None:
                on_tick(self, batch)
        return self.stats

    def step(self, t0: float, t1: float) -> list[HtlcEvent]:
        """Process the payments arriving in ``[t0, t1)``; returns our forwards among them."""
        arrivals = self.traffic.draw(t0, t1)
        net, batch = self.network, []
        gossip_due = net.next_gossip_time()
        for t, s, r, amt in zip(
            arrivals.times.tolist(), arrivals.senders.tolist(), arrivals.receivers.tolist(),
            arrivals.amounts_msat.tolist(), strict=True,
        ):  # fmt: skip
            if gossip_due is not None and gossip_due <= t:
                net.propagate(t)
                gossip_due = net.next_gossip_time()
            result = pay(net, s, r, amt, max_attempts=self.max_attempts)
            self._account(result, t, batch)
        if gossip_due is not None and gossip_due < t1:
            net.propagate(t1)
        return batch

    def _account(self, result: PaymentResult, t: float, batch: list[HtlcEvent]) -> None:
        st = self.stats
        self.payment_id += 1
        st.payments += 1
        st.attempts += len(result.attempts)
        st.no_route += result.no_route
        if result.settled:
            st.settled += 1
            st.network_fees_msat += result.fee_msat
        when = t
        for n, attempt in enumerate(result.attempts):
            hop = attempt.our_hop
            if hop is not None:
                batch.append(self._forward_event(result, n, attempt, hop, when))
            # The sender retries once the failure has travelled back to it.
            failed_at = attempt.failed_at if attempt.failed_at is not None else len(attempt.route)
            when += 2 * self.hop_latency_s * (failed_at + 1)
        for observer in self.payment_observers:
            observer(self.payment_id, t, result)

    def _forward_event(self, result: PaymentResult, n: int, attempt, hop, when: float) -> HtlcEvent:
        lat = self.hop_latency_s
        in_cid, out_cid = self._cid[hop.in_edge ^ 1], self._cid[hop.out_edge]
        htlc_id = self.htlc_ids[hop.in_edge]
        self.htlc_ids[hop.in_edge] += 1
        received = when + lat * hop.index
        fee = hop.in_msat - hop.out_msat
        common = dict(in_channel=in_cid, in_msat=hop.in_msat, received_time=received, in_htlc_id=htlc_id,
                      out_channel=out_cid, out_msat=hop.out_msat, fee_msat=fee)  # fmt: skip
        st = self.stats
        if attempt.failed_at is None:
            resolved = received + 2 * lat * (len(attempt.route) - hop.index)
            event = HtlcEvent(status=ForwardStatus.SETTLED, resolved_time=resolved, **common)
            st.our_settled += 1
            st.revenue_msat += fee
        elif hop.reason is not None:
            event = HtlcEvent(status=ForwardStatus.LOCAL_FAILED, resolved_time=received, failure_reason=hop.reason,
                              failcode=hop.failcode, failreason=hop.failname, **common)  # fmt: skip
            st.our_failed[hop.reason.value] += 1
        else:
            # The downstream error onion is encrypted to the sender: we only know it failed further on.
            resolved = received + 2 * lat * (attempt.failed_at - hop.index)
            event = HtlcEvent(status=ForwardStatus.FAILED, resolved_time=resolved,
                              failure_reason=FailureReason.DOWNSTREAM, **common)  # fmt: skip
            st.our_failed[FailureReason.DOWNSTREAM.value] += 1
        self.events.append(event)
        self._truth[event.key] = GroundTruth(
            key=event.key, payment_id=self.payment_id, attempt=n, route_hops=len(attempt.route), hop_index=hop.index,
            fee_offered_msat=fee, fee_at_policy_msat=hop.fee_at_policy_msat, refused_here=hop.reason is not None,
            downstream_ok=attempt.downstream_ok,
        )  # fmt: skip
        return event

    def ground_truth(self, key: str | HtlcEvent) -> GroundTruth:
        """The simulator's record for a forward (by :attr:`HtlcEvent.key` or the event itself)."""
        return self._truth[key.key if isinstance(key, HtlcEvent) else key]

    def ground_truths(self) -> list[GroundTruth]:
        """Every record, in event order."""
        return [self._truth[e.key] for e in self.events]

    def rebalance(
        self, source: ChannelId, target: ChannelId, amount_msat: int, *, max_fee_msat: int | None = None
    ) -> RebalanceResult:
        """Circular rebalance (simulation only): ``amount_msat`` leaves ``source`` and arrives on ``target``."""
        result = circular_rebalance(
            self.network, self.out_edge(source), self.out_edge(target), amount_msat, max_fee_msat=max_fee_msat
        )
        st = self.stats
        st.rebalances += 1
        if result.ok:
            st.rebalances_ok += 1
            st.rebalance_fee_msat += result.fee_msat
            st.rebalance_volume_msat += result.amount_msat
        log.debug("rebalance %s -> %s %d msat: %s", source, target, amount_msat, result)
        return result

    def quote_rebalance(self, source: ChannelId, target: ChannelId, amount_msat: int) -> int | None:
        """What a circular rebalance of ``amount_msat`` from ``source`` into ``target`` would pay on the route it
        would try first (public fees only, nothing sent, nothing changed); None when no route exists."""
        if source == target:
            return None
        quote = quote_rebalance(self.network, self.out_edge(source), self.out_edge(target), amount_msat)
        return None if quote is None else quote[1]

    # -- state between processes ---------------------------------------------------------

    def continue_after(self, time: float, next_htlc_ids: Mapping[ChannelId, int]) -> None:
        """Continue a database's history: a node whose clock is at or before ``time`` (the newest data
        stored) moves to the next tick after it, and each channel numbers its incoming HTLCs from
        ``next_htlc_ids`` on, so new forwards, snapshots and fee changes never land among, before or on
        top of stored ones (a key is never reused)."""
        if self.clock.now() < time:
            self.clock.set(time + self.tick_s)
        for cid, nxt in next_htlc_ids.items():
            e = self._edge_of.get(cid)
            if e is not None:
                self.htlc_ids[e ^ 1] = max(self.htlc_ids[e ^ 1], int(nxt))

    def save_state(self, path: Path) -> None:
        """Write what this simulation has become (see :mod:`lnlens_sim.state`) to ``path``."""
        save_state(self, path)

    def restore_state(self, path: Path) -> str | None:
        """Continue the simulation saved in ``path``; returns why it was not restored (None: restored or none)."""
        return restore_state(self, path)

