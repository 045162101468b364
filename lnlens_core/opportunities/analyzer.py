"""The opportunity analyzer: flow statistics and a channel snapshot in, ranked opportunities out.

Pure: no I/O, no clock. The urgency score keeps lnflow's familiar shape and
saturation points as defaults — missed revenue up to 40 points (full at 10,000 sats
missed in the window), failure frequency up to 30 (full at 10 failures here),
failure rate up to 30 (failures here / forwards decided here) — with the inputs
corrected (real missed fees, downstream failures excluded) and the weights and
saturation points configurable. docs/opportunities.md documents every formula.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..domain import Channel, ChannelId, Opportunity, Recommendation
from .flows import Flow, FlowStats
from .params import AnalyzerParams
from .recommendations import C, Frame, P, failed_here, plan

__all__ = ["Analysis", "analyze", "urgency", "project_monthly", "MONTH_S"]

MONTH_S = 30 * 86_400
_Z90 = 1.645  # two-sided 90 % normal quantile


def urgency(flow: Flow, params: AnalyzerParams) -> tuple[int, dict[str, float]]:
    """The 0-100 urgency score and its three components."""
    revenue = params.revenue_weight * min(1.0, flow.missed_revenue_msat / params.revenue_saturation_msat)
    frequency = params.frequency_weight * min(1.0, flow.failed_here / params.frequency_saturation)
    rate = params.rate_weight * (flow.failure_rate_here or 0.0)
    components = {"revenue": round(revenue, 2), "frequency": round(frequency, 2), "rate": round(rate, 2)}
    return min(100, round(revenue + frequency + rate)), components


def project_monthly(missed_msat: int, failures: int, observed_s: float, params: AnalyzerParams) -> tuple[int, int, int]:
    """Missed revenue per 30 days: (point, low, high).

    ``failures`` is the count ``missed_msat`` is made of: payments refused and lost, once per
    payment (:attr:`Flow.missed_payments`), not refused HTLCs, which a retried payment repeats.
    They are treated as a Poisson count: the range is the normal approximation
    of its 90 % interval (n ± 1.645·√n), priced at the mean missed fee per payment.
    When less than ``min_projection_s`` was observed, the low end assumes the
    failures seen are all a ``min_projection_s`` period would bring, so an hour of
    bad luck shows as a wide range rather than a precise monthly loss.
    """
    if failures <= 0 or observed_s <= 0:
        return 0, 0, 0
    per_failure = missed_msat / failures
    scale = MONTH_S / observed_s
    low_scale = MONTH_S / max(observed_s, params.min_projection_s)
    spread = _Z90 * math.sqrt(failures)
    point = round(missed_msat * scale)
    low = round(max(failures - spread, 0.0) * per_failure * low_scale)
    high = round((failures + spread) * per_failure * scale)
    return point, min(low, point), max(high, point)


def _opportunity(
    channel_id: ChannelId,
    in_channel: ChannelId | None,
    flow: Flow,
    stats: FlowStats,
    channel: Channel | None,
    params: AnalyzerParams,
    recommendations: Sequence[Recommendation] = (),
    *,
    window_s: int,
    observed_s: int,
) -> Opportunity:
    # window_s and observed_s are stats' lengths rounded, once per analysis rather than once per opportunity.
    score, components = urgency(flow, params)
    point, low, high = project_monthly(flow.missed_revenue_msat, flow.missed_payments, stats.observed_s, params)
    return Opportunity(
        channel_id=channel_id,
        in_channel=in_channel,
        peer_id=channel.peer_id if channel else "",
        peer_alias=channel.peer_alias if channel else "",
        window_s=window_s,
        observed_s=observed_s,
        attempts=flow.attempts,
        settled=flow.settled,
        failed_liquidity=flow.failed_liquidity,
        failed_fee=flow.failed_fee,
        failed_other=flow.failed_other,
        failed_downstream=flow.failed_downstream,
        revenue_msat=flow.revenue_msat,
        missed_revenue_msat=flow.missed_revenue_msat,
        missed_volume_msat=flow.missed_volume_msat,
        missed_liquidity_msat=flow.missed_liquidity_msat,
        missed_revenue_htlc_msat=flow.missed_revenue_htlc_msat,
        missed_recovered_msat=flow.missed_recovered_msat,
        projected_monthly_missed_msat=point,
        projected_monthly_missed_low_msat=low,
        projected_monthly_missed_high_msat=high,
        urgency=score,
        urgency_components=components,
        recommendations=tuple(recommendations),
    )


def _scores(table: np.ndarray, columns: Mapping[str, int], params: AnalyzerParams) -> np.ndarray:
    """:func:`urgency`'s score of each row of a counter table, by the same float operations in the same order."""
    if len(table) and (params.revenue_saturation_msat == 0 or params.frequency_saturation == 0):
        raise ZeroDivisionError("division by zero")  # as urgency() raises
    here = failed_here(table, columns)
    decided = table[:, columns["attempts"]] - table[:, columns["failed_downstream"]]
    revenue = params.revenue_weight * np.minimum(1.0, table[:, columns["missed_revenue_msat"]]
                                                 / params.revenue_saturation_msat)  # fmt: skip
    frequency = params.frequency_weight * np.minimum(1.0, here / params.frequency_saturation)
    rate = params.rate_weight * np.divide(here, decided, out=np.zeros(len(table)), where=decided != 0)
    return np.minimum(100, np.rint(revenue + frequency + rate)).astype(np.int64)


class Analysis:
    """One analysis with its figures in arrays: ranked and filtered there, built as objects only when asked.

    :meth:`opportunities` and :meth:`pairs` give what :func:`analyze` gives, or the part of it a caller
    shows (``min_urgency``, ``channel``, ``limit`` as :func:`~lnlens_core.opportunities.run.filter_opportunities`
    selects), building an :class:`Opportunity` and its recommendations for those rows only.
    """

    def __init__(self, stats: FlowStats, channels: Sequence[Channel], params: AnalyzerParams | None = None) -> None:
        self.stats, self.params = stats, params or AnalyzerParams()
        params = self.params
        self.frame = f = Frame.build(stats, channels, counted=True)
        self.plan = plan(f, params)
        self.lengths = {"window_s": round(stats.window_s), "observed_s": round(stats.observed_s)}
        # A channel is reported when its failures here are significant, or when it has a recommendation
        # (a fast drain, say) however few its failures.
        significant = (failed_here(f.out) >= params.min_failures) & (f.out[:, C["missed_revenue_msat"]]
                                                                      >= params.min_missed_msat)  # fmt: skip
        rows = np.flatnonzero((f.has_out & significant) | self.plan.any)
        score = _scores(f.out[rows], C, params)
        order = np.lexsort((f.rank[rows], -f.out[rows, C["missed_revenue_msat"]], -score))
        self._rows, self._score = rows[order], score[order]
        pairs = f.pairs
        missed = pairs[:, P["missed_revenue_msat"]]
        rows = np.flatnonzero((failed_here(pairs, P) >= params.min_failures) & (missed >= params.min_missed_msat))
        score = _scores(pairs[rows], P, params)
        keys = [f.pair_keys[i] for i in rows.tolist()]
        outs = np.array([str(o) for _, o in keys], dtype=str)
        ins = np.array([str(i) for i, _ in keys], dtype=str)
        order = np.lexsort((ins, outs, -missed[rows], -score))
        self._pair_rows, self._pair_score = rows[order], score[order]
        self._pair_texts = (outs[order], ins[order])

    def _channel(self, cid: ChannelId) -> Channel | None:
        row = self.frame.row.get(str(cid))
        return self.frame.channels[row] if row is not None else None

    def __len__(self) -> int:
        return len(self._rows)

    def opportunities(self, *, min_urgency: int = 0, channel: ChannelId | None = None,
                      limit: int | None = None) -> list[Opportunity]:  # fmt: skip
        """Channel opportunities by urgency, then missed revenue, then id; with their recommendations."""
        rows = self._rows[self._score >= min_urgency]
        if channel is not None:
            rows = rows[[self.frame.texts[r] == str(channel) for r in rows.tolist()]]
        f, plan_ = self.frame, self.plan
        return [
            _opportunity(f.ids[r], None, f.flow(r), self.stats, f.channels[r], self.params, plan_.recommendations(r),
                         **self.lengths)
            for r in rows[:limit].tolist()
        ]  # fmt: skip

    def pairs(self, *, min_urgency: int = 0, channel: ChannelId | None = None,
              limit: int | None = None) -> list[Opportunity]:  # fmt: skip
        """Pair opportunities (no recommendations) in the same order."""
        keep = self._pair_score >= min_urgency
        if channel is not None:
            outs, ins = self._pair_texts
            keep &= (outs == str(channel)) | (ins == str(channel))
        f = self.frame
        found = []
        for i in self._pair_rows[keep][:limit].tolist():
            in_cid, out_cid = f.pair_keys[i]
            found.append(_opportunity(out_cid, in_cid, self.stats.pairs[(in_cid, out_cid)], self.stats,
                                      self._channel(out_cid), self.params, **self.lengths))  # fmt: skip
        return found


def analyze(
    stats: FlowStats, channels: Sequence[Channel], params: AnalyzerParams | None = None
) -> tuple[list[Opportunity], list[Opportunity]]:
    """Rank missed opportunities per channel and per pair.

    :param stats: flow counters over the analysis window.
    :param channels: our channels now (balances, policies, peers).
    :returns: (channel opportunities, pair opportunities), each by urgency, then missed revenue.
        Channel opportunities carry the recommendations; a channel also appears when it
        has a recommendation but too few failures to be significant (a fast drain, say).
        :class:`Analysis` gives a part of them without building the rest.
    """
    found = Analysis(stats, channels, params)
    return found.opportunities(), found.pairs()
