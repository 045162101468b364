"""What the policy evaluator reads, made explicit: per-channel inputs and per-run environment.

The evaluator does no I/O. Whoever runs it (the fee engine) fills these from the
backend and the store:

- :class:`PolicyInputs` per channel — the channel, the peer's policy, our other
  channels with the peer, the peer node's public size, activity per window, the
  funding fee share, and HTLC limit constraints.
- :class:`PolicyEnvironment` per run — our node (block height), the backend's
  capabilities, the time, on-chain fee estimates and the synced flag.

:func:`fee_context` turns the two into the :class:`FeeContext` a strategy reads.

Which activity windows and confirmation targets a policy file needs is given by
:meth:`PolicySet.activity_windows_s` and :meth:`PolicySet.conf_targets`; compute
activity with :func:`activity_by_channel` over settled forwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...backend import Capability
from ...domain import Channel, ChannelId, ChannelPolicy, ForwardStatus, HtlcEvent, NodeInfo
from ..strategy import FeeContext

__all__ = [
    "ActivityStats",
    "PolicyInputs",
    "PolicyEnvironment",
    "fee_context",
    "activity_stats",
    "activity_by_channel",
    "chargelnd_balances_msat",
    "funding_fee_share_msat",
]


@dataclass(frozen=True, slots=True)
class ActivityStats:
    """Settled forwards over one channel in one window ``[start_time, end_time)``.

    ``*_in`` counts forwards that arrived over the channel (its ``in_msat`` summed),
    ``*_out`` those that left over it (its ``out_msat`` summed).
    """

    htlcs_in: int = 0
    htlcs_out: int = 0
    in_msat: int = 0
    out_msat: int = 0


def _forward_time(event: HtlcEvent) -> float:
    # A forward happens when it settles; LND's forwarding history is stamped then too.
    return event.resolved_time if event.resolved_time is not None else event.received_time


def activity_by_channel(
    events: Iterable[HtlcEvent], *, start_time: float, end_time: float
) -> dict[ChannelId, ActivityStats]:
    """Activity of every channel over the window ``[start_time, end_time)``.

    Only settled forwards count; a forward is timed by its ``resolved_time``
    (``received_time`` when unknown). The window is half-open, so a forward exactly
    at a boundary belongs to one window only (charge-lnd 0.3.1 could count one at
    the start twice). An event repeated with the same :attr:`HtlcEvent.key` counts once.

    :returns: stats by channel; channels without forwards are absent (all zero).
    """
    counts: dict[ChannelId, list[int]] = {}
    seen: set[str] = set()
    for event in events:
        if event.status is not ForwardStatus.SETTLED or not start_time <= _forward_time(event) < end_time:
            continue
        if event.key in seen:
            continue
        seen.add(event.key)
        incoming = counts.setdefault(event.in_channel, [0, 0, 0, 0])
        incoming[0] += 1
        incoming[2] += event.in_msat
        if event.out_channel is not None:
            outgoing = counts.setdefault(event.out_channel, [0, 0, 0, 0])
            outgoing[1] += 1
            outgoing[3] += event.out_msat or 0
    return {cid: ActivityStats(*c) for cid, c in counts.items()}


def activity_stats(
    events: Iterable[HtlcEvent], channel_id: ChannelId, *, start_time: float, end_time: float
) -> ActivityStats:
    """Activity of one channel over ``[start_time, end_time)`` (see :func:`activity_by_channel`)."""
    stats = activity_by_channel(events, start_time=start_time, end_time=end_time)
    return stats.get(channel_id, ActivityStats())


def chargelnd_balances_msat(channel: Channel) -> tuple[int, int]:
    """charge-lnd's ``(local, remote)``: balances plus pending HTLCs each way plus the commit fee of the opener.

    ``local = local_balance + Σ outgoing pending + commit_fee if we opened``;
    ``remote = remote_balance + Σ incoming pending + commit_fee if the peer opened``.
    An unknown opener adds the commit fee to neither side.
    """
    local = channel.local_balance_msat + sum(h.amount_msat for h in channel.pending_htlcs if not h.incoming)
    remote = channel.remote_balance_msat + sum(h.amount_msat for h in channel.pending_htlcs if h.incoming)
    if channel.initiator is True:
        local += channel.commit_fee_msat
    elif channel.initiator is False:
        remote += channel.commit_fee_msat
    return local, remote


def funding_fee_share_msat(tx_fee_msat: int, capacity_msat: int, batch_capacities_msat: Sequence[int]) -> int:
    """This channel's share of a funding transaction fee, by capacity.

    charge-lnd 0.3.1 charges every channel of a batch open the whole fee; lnlens
    splits it in proportion to each channel's capacity among ``batch_capacities_msat``
    (all channels opened by that transaction, this one included).
    """
    total = sum(batch_capacities_msat)
    if total <= 0:
        return tx_fee_msat
    return tx_fee_msat * capacity_msat // total


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """Everything the matchers and strategies read about one channel.

    :ivar channel: the channel, with our current policy.
    :ivar peer_policy: the peer's direction of this channel (what the peer
        charges towards us); None when unknown — then ``chan.*_base_fee_msat``,
        ``chan.*_fee_ppm`` and ``chan.disabled`` do not match and ``match_peer`` fails.
    :ivar peer_channels: all our channels with the same peer, this one included.
    :ivar peer_node_channels: the peer's public channel count; None when the peer is
        unknown to the graph (``node.*_channels`` then does not match).
    :ivar peer_node_capacity_msat: the peer's total public capacity; None when unknown.
    :ivar activity: activity of this channel by window length in seconds, for every
        window in :meth:`PolicySet.activity_windows_s`, each ending now.
    :ivar funding_fee_msat: this channel's share of its funding fee when our wallet
        paid it (:func:`funding_fee_share_msat`); None otherwise (``cost`` then uses 1 ppm).
    :ivar funding_fee_error: why the funding fee could not be found out (the backend
        failed); ``cost`` then keeps the channel with this error instead of using 1 ppm.
    """

    channel: Channel
    peer_policy: ChannelPolicy | None = None
    peer_channels: tuple[Channel, ...] = ()
    peer_node_channels: int | None = None
    peer_node_capacity_msat: int | None = None
    activity: Mapping[int, ActivityStats] = field(default_factory=dict)
    funding_fee_msat: int | None = None
    funding_fee_error: str | None = None
    signals: Any = None
    """:class:`~lnlens_core.fees.signals.ChannelSignals` for lnlens's own strategies (FeeContext.signals)."""

    def shared_channels(self) -> tuple[Channel, ...]:
        """Our channels with the peer, always including this one."""
        if any(c.channel_id == self.channel.channel_id for c in self.peer_channels):
            return self.peer_channels
        return (*self.peer_channels, self.channel)


@dataclass(frozen=True, slots=True)
class PolicyEnvironment:
    """Facts shared by every channel of one run.

    :ivar node: our node; its ``block_height`` gives channel ages and HTLC expiries.
    :ivar capabilities: what the backend can set (inbound fees only with
        ``Capability.INBOUND_FEES``).
    :ivar now: epoch seconds of the run.
    :ivar onchain_fee_rates: the wallet's estimates in sat/vB by confirmation target,
        for every target in :meth:`PolicySet.conf_targets`.
    :ivar synced_to_chain: whether the node reports being synced; None when unknown
        (``onchain.synced_to_chain`` then does not match).
    """

    node: NodeInfo
    capabilities: frozenset[Capability]
    now: float
    onchain_fee_rates: Mapping[int, float] = field(default_factory=dict)
    synced_to_chain: bool | None = None

    @property
    def block_height(self) -> int:
        return self.node.block_height


def fee_context(inputs: PolicyInputs, env: PolicyEnvironment) -> FeeContext:
    """What a strategy reads besides the channel, for one channel of one run.

    The one place a :class:`~lnlens_core.fees.strategy.FeeContext` is built from the
    evaluator's inputs, so a strategy chosen by the policy file and one chosen by a
    plugin's ``select_fee_strategy`` see exactly the same facts.
    """
    return FeeContext(
        now=env.now,
        node=env.node,
        capabilities=env.capabilities,
        peer_policy=inputs.peer_policy,
        peer_channels=inputs.shared_channels(),
        funding_fee_msat=inputs.funding_fee_msat,
        funding_fee_error=inputs.funding_fee_error,
        onchain_fee_rates=env.onchain_fee_rates,
        signals=inputs.signals,
    )
