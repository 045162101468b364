"""Per-channel signals for lnlens's own strategies: flows, the analyzer's verdict, a model's prediction.

Strategies do no I/O, so the engine computes these once per run from the store
(:func:`compute_signals`) and hands each channel its :class:`ChannelSignals`
through :attr:`FeeContext.signals <lnlens_core.fees.strategy.FeeContext.signals>`.

The model interface is deliberately small: whoever serves a model (``lnlens_core.inference``)
produces a :class:`ModelPrediction` per channel and passes the mapping to the engine
(``FeeEngine(predictions=...)``). Without one, ``signals.model`` is None and the
``model_driven`` strategy keeps the channel, saying "no model".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..analyzer import AnalyzerParams
from ..domain import Channel, ChannelId, HtlcEvent, RecommendationKind
from ..flows import Flow, FlowCounter, PolicyBook
from ..recommendations import recommend

__all__ = ["ChannelSignals", "ModelPrediction", "compute_signals", "SIGNAL_WINDOW_S"]

SIGNAL_WINDOW_S = 7 * 86_400


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
) -> dict[ChannelId, ChannelSignals]:
    """Signals for every channel over ``[now - window_s, now)``.

    :param forwards: stored forwards covering the window (older ones are ignored).
    :param policy_history: ``(time, channel, policy)`` as :meth:`Store.policy_history` yields,
        to price failed forwards at the policy then in force.
    """
    params = params or AnalyzerParams()
    book = PolicyBook()
    for time, cid, policy in policy_history:
        book.observe(cid, policy, time)  # type: ignore[arg-type]
    book.observe_channels(channels, now)
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
        )
    return out
