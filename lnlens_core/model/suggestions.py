"""Rebalancing suggestions from the liquidity model, as recommendations.

A channel whose predicted ratio (the balance that pays most net of reaching it,
:mod:`lnlens_core.model.target`) lies at least ``min_gap`` above its current ratio needs local
balance (a target); one at least ``min_gap`` below has some to spare (a source, down to its
predicted ratio). A channel the model leaves where it is can still give down to the lowest
ratio from which it would have earned all the fees of its last 24 h of demand (replayed).
No source goes below ``min_source_ratio``. The largest needs are served first, each from
the source with the most to spare (the next ones when that pair has no route or does not
pay); the amount is what both sides can use, in msat.

A pair is suggested **only when its expected gain beats the route cost**:

- ``expected_gain_msat``: a backtest, not a promise — the extra fees the two channels would
  have earned through the last 24 h of their realised demand
  (:func:`lnlens_core.model.target.revenue_curve`) had they started at the suggested balances
  instead of the current ones.
- ``route_cost_msat``: what the circular route costs: quoted on the routes actually
  available where the backend can quote (``route_cost`` = ``quoted``; the simulator), else
  estimated at ``cost_ppm`` of the amount (``estimated``; the model's training median).
- ``max_fee_msat``: the fee budget, the expected gain: a rebalance costing more would not
  pay for itself. ``expected_net_msat`` = gain − route cost (> 0 for every suggestion).
- ``confidence``: the share of held-out validation cases, with a similar gap between
  predicted and current ratio, in which moving to the predicted ratio would have earned
  strictly more, net of the route cost, than staying (the model's ``confidence`` metadata,
  see docs/MODEL.md). Absent when that gap had too few held-out cases.

:func:`fee_suggestions` turns the same predictions into fee rates for the ``model_driven``
strategy: moving balance by a rebalance costs routing fees, moving it by price costs
nothing, so a channel holding more local balance than its predicted optimum is offered
``step_share`` cheaper (to draw outbound flow onto the idle side) and one holding less is
made ``step_share`` dearer (to slow the drain and earn more on scarce liquidity). Inside
``min_gap`` of the optimum the model has no fee opinion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import Channel, ChannelId, HtlcEvent, Recommendation, RecommendationKind
from ..fees.signals import ModelPrediction
from .target import DEFAULT_ROUTE_COST_PPM, RATIO_GRID, demand_fees, revenue_curve

__all__ = ["Prediction", "rebalance_suggestions", "fee_suggestions", "ORIGIN", "Quote"]

ORIGIN = "liquidity-model"

Quote = Callable[[ChannelId, ChannelId, int], "int | None"]
"""(source, target, amount msat) -> the route's fee in msat, or None when no route exists."""


@dataclass(frozen=True, slots=True)
class Prediction:
    channel_id: ChannelId
    current_ratio: float | None
    predicted_ratio: float | None


def _confidence(table: Sequence[dict], gap: float) -> float | None:
    for row in table or ():
        if row["gap_min"] <= gap < row["gap_max"]:
            return round(float(row["win_rate"]), 3)
    return None


def _earned_at(seq: tuple[np.ndarray, np.ndarray], total: int, ratio: float) -> int:
    return int(revenue_curve(seq[0], seq[1], total, np.array([ratio]))[0])


def rebalance_suggestions(
    channels: Sequence[Channel],
    predicted: np.ndarray,
    recent: Iterable[HtlcEvent],
    *,
    now: float,
    confidence_table: Sequence[dict] = (),
    model_version: str = "?",
    min_gap: float = 0.1,
    min_source_ratio: float = 0.2,
    max_amount_msat: int = 1_000_000_000,
    limit: int = 10,
    quote: Quote | None = None,
    cost_ppm: float = DEFAULT_ROUTE_COST_PPM,
    sources_tried: int = 3,
) -> list[Recommendation]:
    """Rebalances toward the predicted ratios that pay for their route, biggest need first, at most ``limit``.

    :param recent: forwards of the last 24 h (for the backtest gain), read once.
    :param max_amount_msat: the largest single rebalance (default 1,000,000 sats, LightningLens's upper clamp):
        a larger need is served over several runs, each priced and budgeted on its own.
    :param quote: prices a circular route (the backend's, where it has one); without it the route cost is
        estimated at ``cost_ppm``.
    :param sources_tried: how many sources (most to spare first) a need tries before it is given up.
    """
    totals = {ch.channel_id: ch.local_balance_msat + ch.remote_balance_msat for ch in channels}
    by_id = {ch.channel_id: ch for ch in channels}
    seqs = demand_fees(recent, totals, now - 86_400, now)
    need: list[tuple[int, ChannelId, float]] = []
    spare: dict[ChannelId, int] = {}
    pred_of = {}
    for ch, p in zip(channels, predicted.tolist(), strict=True):
        cur = ch.balance_ratio
        if cur is None or p != p or not ch.active or ch.local_policy is None:  # p != p: NaN, no prediction
            continue
        pred_of[ch.channel_id] = p
        total = totals[ch.channel_id]
        if p - cur >= min_gap:
            need.append((int((p - cur) * total), ch.channel_id, p))
            continue
        curve = revenue_curve(*seqs[ch.channel_id], total)
        # A prediction near the current ratio says "stay", not how low the channel could go without earning
        # less; the last day's replay tells that.
        lowest_best = float(RATIO_GRID[curve == curve.max()].min())
        floor = max(p if cur - p >= min_gap else lowest_best, min_source_ratio)
        if cur - floor >= min_gap:
            spare[ch.channel_id] = int((cur - floor) * total)
    out: list[Recommendation] = []
    for amount_needed, target, p in sorted(need, key=lambda t: (-t[0], str(t[1]))):
        if not spare or len(out) >= limit:
            break
        t_ch = by_id[target]
        for source in sorted(spare, key=lambda c: (-spare[c], str(c)))[:sources_tried]:
            amount = min(amount_needed, spare[source], max_amount_msat)
            if amount <= 0:
                continue
            s_ch = by_id[source]
            gain = 0
            for ch, delta in ((t_ch, amount), (s_ch, -amount)):
                total = totals[ch.channel_id]
                before = ch.local_balance_msat / total
                after = (ch.local_balance_msat + delta) / total
                seq = seqs[ch.channel_id]
                gain += _earned_at(seq, total, after) - _earned_at(seq, total, before)
            if gain <= 0:
                continue  # the source would lose what the target gains: the next source
            cost = quote(source, target, amount) if quote is not None else int(amount * cost_ppm / 1_000_000)
            if cost is None or cost >= gain:
                continue  # no route, or one that costs what it would earn: the next source
            out.append(_suggestion(t_ch, s_ch, amount, p, pred_of[source], gain, cost, quote is not None,
                                   cost_ppm, confidence_table, model_version))  # fmt: skip
            spare[source] -= amount
            if spare[source] <= 0:
                del spare[source]
            break
    return out


def _suggestion(t_ch, s_ch, amount, p, source_p, gain, cost, quoted, cost_ppm, table, model_version) -> Recommendation:
    cur = t_ch.balance_ratio or 0.0
    conf = _confidence(table, abs(p - cur))
    evidence: dict[str, int | float | str] = {
        "current_ratio": round(cur, 4), "predicted_ratio": round(p, 4),
        "source_current_ratio": round(s_ch.balance_ratio or 0.0, 4), "source_predicted_ratio": round(source_p, 4),
        "expected_gain_msat": gain, "route_cost_msat": cost, "route_cost": "quoted" if quoted else "estimated",
        "expected_net_msat": gain - cost, "max_fee_msat": gain, "model_version": model_version,
    }  # fmt: skip
    if conf is not None:
        evidence["confidence"] = conf
    conf_text = f", confidence {conf:.0%}" if conf is not None else ", no confidence (too few held-out cases)"
    how = "quoted" if quoted else f"estimated at {cost_ppm:,.0f} ppm"
    reason = (
        f"The liquidity model puts this channel's best local share at {p:.0%} (now {cur:.0%}); move "
        f"{amount // 1000:,} sats into it from {s_ch.channel_id} ({s_ch.balance_ratio or 0:.0%} local, best "
        f"{source_p:.0%}). Over the last 24 h that would have earned {gain / 1000:,.3f} sats more in fees; the "
        f"route costs {cost / 1000:,.3f} sats ({how}). Budget: pay at most {gain / 1000:,.3f} sats{conf_text}."
    )
    return Recommendation(RecommendationKind.REBALANCE_OUTBOUND, t_ch.channel_id, reason, evidence,
                          source_channel=s_ch.channel_id, target_channel=t_ch.channel_id, amount_msat=amount,
                          origin=ORIGIN)  # fmt: skip


def fee_suggestions(
    channels: Sequence[Channel],
    predicted: np.ndarray,
    *,
    confidence_table: Sequence[dict] = (),
    model_version: str = "?",
    min_gap: float = 0.1,
    step_share: float = 0.2,
) -> dict[ChannelId, ModelPrediction]:
    """A fee opinion per channel whose balance is at least ``min_gap`` from its predicted optimal ratio.

    Above the optimum: ``fee × (1 − step_share)`` (at least 1 ppm lower, never below 0); below it:
    ``fee × (1 + step_share)`` (at least 1 ppm higher). ``confidence`` is the held-out win rate for
    that gap (module docstring); 0.0 when the gap had too few held-out cases, so a strategy with a
    confidence threshold keeps the channel. Channels without a ratio or a prediction are left out.
    """
    out: dict[ChannelId, ModelPrediction] = {}
    for ch, p in zip(channels, predicted.tolist(), strict=True):
        cur = ch.balance_ratio
        if cur is None or p != p or not ch.active:  # p != p: NaN, no prediction
            continue
        fee = ch.local_policy.fee_ppm
        if cur - p >= min_gap:
            new = max(0, min(fee - 1, round(fee * (1 - step_share))))
        elif p - cur >= min_gap:
            new = max(fee + 1, round(fee * (1 + step_share)))
        else:
            continue
        conf = _confidence(confidence_table, abs(p - cur))
        out[ch.channel_id] = ModelPrediction(model=model_version, fee_ppm=new, confidence=conf or 0.0)
    return out
