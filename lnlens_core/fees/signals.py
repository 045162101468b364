"""Per-channel signals for lnlens's own strategies: flows, the analyzer's verdict, a model's prediction.

Strategies do no I/O, so the engine computes these once per run from the store
(:func:`compute_signals`) and hands each channel its :class:`ChannelSignals`
through :attr:`FeeContext.signals <lnlens_core.fees.strategy.FeeContext.signals>`.

The model interface is deliberately small: whoever serves a model (``lnlens_core.model.inference``)
produces a :class:`ModelPrediction` per channel and passes the mapping to the engine
(``FeeEngine(predictions=...)``). Without one, ``signals.model`` is None and the
``model_driven`` strategy keeps the channel, saying "no model".
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..domain import Channel, ChannelId, ForwardStatus, HtlcEvent, RecommendationKind
from ..opportunities.flows import Flow, FlowCounter, FlowStats, PolicyBook
from ..opportunities.params import AnalyzerParams
from ..opportunities.recommendations import recommend

__all__ = ["ChannelSignals", "FeeEpoch", "ModelPrediction", "compute_signals", "fee_epochs", "SIGNAL_WINDOW_S",
           "signal_book"]  # fmt: skip

FlowSums = Callable[[PolicyBook, float, float, float], FlowStats]
"""Counters over ``[since, until)`` of the stored forwards given (book, since, until, propagation_s)."""
LevelSums = Callable[[Sequence[tuple[ChannelId, float, float, int]], float, float],
                     Mapping[tuple[ChannelId, int], tuple[int, int]]]  # fmt: skip
"""Settled forwards per (channel, fee level) given the levels' ``(channel, start, end, fee_ppm)``, since, until."""

SIGNAL_WINDOW_S = 7 * 86_400
FEE_HISTORY_S = 30 * 86_400


@dataclass(frozen=True, slots=True)
class FeeEpoch:
    """How one outbound fee level did on a channel: the time it was in force and what it earned.

    Built from persisted data only (policy snapshots and forwards in the store), so the
    history survives restarts. Several stretches at the same level are summed.
    """

    fee_ppm: int
    seconds: float
    forwards: int
    revenue_msat: int

    @property
    def revenue_per_day_msat(self) -> float:
        return self.revenue_msat * 86_400 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ModelPrediction:
    """What a model says about one channel.

    :ivar model: the model's name and version, shown in reasons.
    :ivar fee_ppm: the outbound fee rate the model suggests; None: no fee opinion.
    :ivar depletion_probability: chance (0..1) that the channel's local balance runs
        out over the model's horizon; None when the model does not predict it.
    :ivar confidence: 0..1; the strategy ignores predictions below its threshold.
    """

    model: str
    fee_ppm: int | None = None
    depletion_probability: float | None = None
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class ChannelSignals:
    """One channel's recent history, as the strategies read it. Amounts in msat.

    :ivar window_s: the length of the window the flows cover, ending now.
    :ivar out_flow: forwards that left over this channel (revenue is earned here).
    :ivar in_flow: forwards that arrived over this channel.
    :ivar recommendation: the analyzer's fee verdict (``raise_fees``/``lower_fees``) or
        a liquidity one (``rebalance_inbound``/``rebalance_outbound``), else None.
    :ivar proposed_fee_ppm: the analyzer's proposed rate with a fee verdict.
    :ivar model: a model's prediction, when one is served.
    :ivar observed_s: how much of the window the store has forwards for.
    """

    window_s: int
    out_flow: Flow = Flow()
    in_flow: Flow = Flow()
    recommendation: RecommendationKind | None = None
    proposed_fee_ppm: int | None = None
    model: ModelPrediction | None = None
    observed_s: float | None = None
    """How much of the window had data (since the first forward stored); None: all of it."""
    fee_history: tuple[FeeEpoch, ...] = ()
    """Revenue by fee level over the last 30 days, for strategies with ``reads_fee_history`` (empty otherwise)."""

    @property
    def history_s(self) -> float:
        return self.window_s if self.observed_s is None else min(self.window_s, self.observed_s)

    @property
    def net_outflow_msat(self) -> int:
        """Settled volume that left over the channel minus what arrived over it (> 0: it drains us)."""
        return self.out_flow.volume_msat - self.in_flow.volume_msat

    @property
    def volume_msat(self) -> int:
        return self.out_flow.volume_msat + self.in_flow.volume_msat


_FEE_KINDS = (RecommendationKind.RAISE_FEES, RecommendationKind.LOWER_FEES)


def compute_signals(
    channels: Sequence[Channel],
    forwards: Iterable[HtlcEvent],
    policy_history: Iterable[tuple[float, ChannelId, object]],
    *,
    now: float,
    window_s: int = SIGNAL_WINDOW_S,
    predictions: Mapping[ChannelId, ModelPrediction] | None = None,
    params: AnalyzerParams | None = None,
    history: Mapping[ChannelId, tuple[FeeEpoch, ...]] | None = None,
    flow_sums: FlowSums | None = None,
) -> dict[ChannelId, ChannelSignals]:
    """Signals for every channel over ``[now - window_s, now)``.

    :param forwards: stored forwards covering the window (older ones are ignored).
    :param policy_history: ``(time, channel, policy)`` as :meth:`Store.policy_history` yields,
        to price failed forwards at the policy then in force.
    :param flow_sums: sums the window's counters instead of counting ``forwards`` (the store's
        :meth:`~lnlens_core.storage.Store.flow_stats`: the same numbers, summed by SQLite).
    """
    params = params or AnalyzerParams()
    book = signal_book(channels, policy_history, now)
    if flow_sums is not None:
        stats = flow_sums(book, now - window_s, now, params.propagation_s)
    else:
        counter = FlowCounter(book, since=now - window_s, until=now, propagation_s=params.propagation_s)
        batch: list[HtlcEvent] = []
        for event in forwards:
            batch.append(event)
            if len(batch) >= 10_000:
                counter.add(batch)
                batch = []
        counter.add(batch)
        stats = counter.stats()
    by_id = {c.channel_id: c for c in channels}
    recs = recommend(stats, by_id, params)
    predictions = predictions or {}
    out: dict[ChannelId, ChannelSignals] = {}
    for ch in channels:
        cid = ch.channel_id
        fee_recs = [r for r in recs.get(cid, ()) if r.kind in _FEE_KINDS]
        first = fee_recs[0] if fee_recs else next(iter(recs.get(cid, ())), None)
        out[cid] = ChannelSignals(
            window_s=window_s,
            out_flow=stats.out.get(cid, Flow()),
            in_flow=stats.inbound.get(cid, Flow()),
            recommendation=first.kind if first else None,
            proposed_fee_ppm=first.proposed_fee_ppm if first else None,
            model=predictions.get(cid),
            observed_s=stats.observed_s,
            fee_history=(history or {}).get(cid, ()),
        )
    return out


def signal_book(channels: Sequence[Channel], policy_history: Iterable[tuple[float, ChannelId, object]],
                now: float) -> PolicyBook:  # fmt: skip
    """The policy book the signals price failed forwards with: the history, then the channels as they are now."""
    book = PolicyBook()
    for time, cid, policy in policy_history:
        book.observe(cid, policy, time)  # type: ignore[arg-type]
    book.observe_channels(channels, now)
    return book


def fee_epochs(
    channels: Sequence[Channel],
    forwards: Iterable[HtlcEvent],
    policy_history: Iterable[tuple[float, ChannelId, object]],
    *,
    now: float,
    window_s: int = FEE_HISTORY_S,
    level_sums: LevelSums | None = None,
) -> dict[ChannelId, tuple[FeeEpoch, ...]]:
    """Revenue by outbound fee level per channel over ``[now - window_s, now)``.

    A level is in force from the snapshot that first shows it until the next change;
    time before the first snapshot in the window is not counted. Only settled forwards
    leaving over the channel count, each at the level in force when it arrived.

    :param level_sums: sums the settled forwards per level instead of reading ``forwards`` (the
        store's :meth:`~lnlens_core.storage.Store.settled_by_fee_level`: the same numbers, by SQLite).
    """
    since = now - window_s
    changes: dict[ChannelId, list[tuple[float, int]]] = {}
    for time, cid, policy in policy_history:
        fee = int(policy.fee_ppm)  # type: ignore[attr-defined]
        steps = changes.setdefault(cid, [])
        if not steps or steps[-1][1] != fee:
            steps.append((time, fee))
    for ch in channels:
        steps = changes.setdefault(ch.channel_id, [])
        if ch.local_policy is None:  # the node cannot tell it now: the history stands as it is
            continue
        if not steps or steps[-1][1] != ch.local_policy.fee_ppm:
            steps.append((now, ch.local_policy.fee_ppm))
    acc: dict[ChannelId, dict[int, list[float]]] = {}
    for cid, steps in changes.items():
        levels = acc.setdefault(cid, {})
        for i, (start, fee) in enumerate(steps):
            end = steps[i + 1][0] if i + 1 < len(steps) else now
            seconds = min(end, now) - max(start, since)
            if seconds > 0:
                levels.setdefault(fee, [0.0, 0, 0])[0] += seconds
    if level_sums is not None:
        # level i is in force from its start until the next one's (bisect_right: the last of equal starts wins)
        spans = [(cid, start, steps[i + 1][0] if i + 1 < len(steps) else math.inf, fee)
                 for cid, steps in changes.items() for i, (start, fee) in enumerate(steps)]  # fmt: skip
        for (cid, fee), (n, revenue) in level_sums(spans, since, now).items():
            row = acc[cid].setdefault(fee, [0.0, 0, 0])
            row[1] += n
            row[2] += revenue
        forwards = ()
    times = {cid: [t for t, _ in steps] for cid, steps in changes.items()}
    for e in forwards:
        if e.status is not ForwardStatus.SETTLED or e.out_channel not in changes or not since <= e.received_time < now:
            continue
        steps = changes[e.out_channel]
        i = bisect.bisect_right(times[e.out_channel], e.received_time) - 1
        if i < 0:
            continue
        row = acc[e.out_channel].setdefault(steps[i][1], [0.0, 0, 0])
        row[1] += 1
        row[2] += e.fee_msat or 0
    return {
        cid: tuple(FeeEpoch(fee, secs, int(n), int(rev)) for fee, (secs, n, rev) in sorted(levels.items()))
        for cid, levels in acc.items()
    }
