"""Measured outcomes of fee changes, and the automatic rollback rule.

For a change applied at ``t`` on channel C, with window ``W``: *before* is
``[t - L, t)`` and *after* ``[t, t + L)``, with ``L = min(W, t - previous change on C)``
so the before window never straddles an earlier change. Only settled forwards that
*left* over C count (that is where our outbound fee is earned); each contributes its
fee ``x`` (revenue) and amount ``v`` (flow).

Revenue over a window is modelled as compound Poisson: forwards arrive as a Poisson
process, each paying a fee from some distribution. Under "nothing changed" both windows
have the same rate, so ``D = R_before - R_after`` has mean 0 and variance
``Σ x²`` over both windows (the unbiased estimate for a compound Poisson sum). The
band on a delta is ``±1.96·sqrt(Σ x²)`` (95 %), the same for flow with ``v``.

**Rollback rule** (all three must hold):

1. enough data: at least ``rollback_min_forwards`` settled forwards in the before window;
2. a material drop: ``R_after < (1 - rollback_drop_share) · R_before``;
3. significance: the one-sided test ``D / sqrt(Σ x²) > z(1 - rollback_alpha)`` rejects
   "no change" (1.645 for the default α = 0.05).

On noise alone (no real change) rule 3 fires at most about α of the time and rule 2
cuts that further; a change that really halves revenue on a channel with tens of
forwards per window fires almost always.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from ..domain import ChannelId, ForwardStatus, HtlcEvent

__all__ = [
    "WindowStats",
    "ChangeOutcome",
    "measure",
    "rollback_verdict",
    "policy_aggregates",
    "window_stats_by_channel",
    "mean_band",
    "Z95",
]

Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Forwards leaving over one channel in one window: settled ones (with their fees ``x`` and
    amounts ``v``, and ``Σ x²``, ``Σ v²`` for the bands) and those our node refused there."""

    forwards: int = 0
    revenue_msat: int = 0
    volume_msat: int = 0
    revenue_sq: int = 0
    volume_sq: int = 0
    failed_here: int = 0


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """Before/after measurements of one change, with 95 % bands on the deltas (after − before)."""

    journal_id: int
    channel_id: ChannelId
    policy: str | None
    change_time: float
    window_s: float
    complete: bool
    """True when the after window has fully elapsed."""
    before: WindowStats
    after: WindowStats

    @property
    def revenue_delta_msat(self) -> int:
        return self.after.revenue_msat - self.before.revenue_msat

    @property
    def revenue_band_msat(self) -> float:
        return Z95 * math.sqrt(self.before.revenue_sq + self.after.revenue_sq)

    @property
    def volume_delta_msat(self) -> int:
        return self.after.volume_msat - self.before.volume_msat

    @property
    def volume_band_msat(self) -> float:
        return Z95 * math.sqrt(self.before.volume_sq + self.after.volume_sq)

    def to_json(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id,
            "short_channel_id": str(self.channel_id),
            "policy": self.policy,
            "change_time": self.change_time,
            "window_s": self.window_s,
            "complete": self.complete,
            "before": _stats_json(self.before),
            "after": _stats_json(self.after),
            "revenue_delta_msat": self.revenue_delta_msat,
            "revenue_band_msat": round(self.revenue_band_msat),
            "volume_delta_msat": self.volume_delta_msat,
            "volume_band_msat": round(self.volume_band_msat),
        }


def _stats_json(s: WindowStats) -> dict[str, int]:
    return {"forwards": s.forwards, "revenue_msat": s.revenue_msat, "volume_msat": s.volume_msat}


def window_stats_by_channel(events: Iterable[HtlcEvent], start: float, end: float) -> dict[ChannelId, WindowStats]:
    """Per outgoing channel, the forwards received in ``[start, end)`` (channels without any are absent)."""
    acc: dict[ChannelId, list[int]] = {}
    for e in events:
        if e.out_channel is None or not start <= e.received_time < end:
            continue
        row = acc.setdefault(e.out_channel, [0, 0, 0, 0, 0, 0])
        if e.status is ForwardStatus.SETTLED:
            fee, amount = e.fee_msat or 0, e.out_msat or 0
            row[0] += 1
            row[1] += fee
            row[2] += amount
            row[3] += fee * fee
            row[4] += amount * amount
        elif e.status is ForwardStatus.LOCAL_FAILED:
            row[5] += 1
    return {cid: WindowStats(*row) for cid, row in acc.items()}


def _window(events: Sequence[HtlcEvent], cid: ChannelId, start: float, end: float) -> WindowStats:
    return window_stats_by_channel(events, start, end).get(cid, WindowStats())


def measure(
    journal_id: int,
    channel_id: ChannelId,
    policy: str | None,
    change_time: float,
    *,
    events: Iterable[HtlcEvent],
    window_s: float,
    now: float,
    previous_change_time: float | None = None,
) -> ChangeOutcome:
    """The outcome of one change from forwards covering ``[t - window_s, t + window_s)``."""
    length = window_s if previous_change_time is None else max(0.0, min(window_s, change_time - previous_change_time))
    chosen = [e for e in events if e.out_channel == channel_id]
    before = _window(chosen, channel_id, change_time - length, change_time)
    after = _window(chosen, channel_id, change_time, change_time + length)
    return ChangeOutcome(
        journal_id, channel_id, policy, change_time, length, now >= change_time + length, before, after
    )


def rollback_verdict(outcome: ChangeOutcome, *, drop_share: float, min_forwards: int, alpha: float) -> str | None:
    """Why ``outcome`` calls for an automatic rollback (the rule in the module docstring), else None."""
    b, a = outcome.before, outcome.after
    if not outcome.complete or outcome.window_s <= 0 or b.forwards < min_forwards:
        return None
    if a.revenue_msat >= (1 - drop_share) * b.revenue_msat:
        return None
    spread = math.sqrt(b.revenue_sq + a.revenue_sq)
    z = (b.revenue_msat - a.revenue_msat) / spread if spread else 0.0
    critical = NormalDist().inv_cdf(1 - alpha)
    if z <= critical:
        return None
    return (
        f"auto: revenue fell from {b.revenue_msat} to {a.revenue_msat} msat over {outcome.window_s:.0f} s "
        f"({b.forwards} → {a.forwards} forwards; drop > {drop_share:.0%}, z = {z:.2f} > {critical:.2f})"
    )


def policy_aggregates(outcomes: Iterable[ChangeOutcome]) -> dict[str, dict[str, Any]]:
    """Per policy: changes measured, summed revenue and flow deltas and their 95 % bands (independent changes)."""
    acc: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if not o.complete:
            continue
        empty = {"changes": 0, "revenue_delta_msat": 0, "volume_delta_msat": 0, "_rv": 0.0, "_vv": 0.0}
        row = acc.setdefault(o.policy or "(plugin/rollback)", empty)
        row["changes"] += 1
        row["revenue_delta_msat"] += o.revenue_delta_msat
        row["volume_delta_msat"] += o.volume_delta_msat
        row["_rv"] += o.before.revenue_sq + o.after.revenue_sq
        row["_vv"] += o.before.volume_sq + o.after.volume_sq
    for row in acc.values():
        row["revenue_band_msat"] = round(Z95 * math.sqrt(row.pop("_rv")))
        row["volume_band_msat"] = round(Z95 * math.sqrt(row.pop("_vv")))
    return acc


def journal_outcomes(
    rows: Sequence[Mapping[str, Any]], events: Sequence[HtlcEvent], *, window_s: float, now: float
) -> list[ChangeOutcome]:
    """Outcomes of every applied change in ``rows`` (journal rows, oldest first)."""
    applied = [r for r in rows if r["state"] in ("applied", "verified", "rolled_back") and r["applied_time"]]
    last: dict[str, float] = {}
    out = []
    for row in applied:
        cid = ChannelId.parse(row["channel_id"])
        t = row["applied_time"]
        out.append(measure(row["id"], cid, row["policy"], t, events=events, window_s=window_s, now=now,
                           previous_change_time=last.get(row["channel_id"])))  # fmt: skip
        last[row["channel_id"]] = t
    return out


def mean_band(values: Sequence[float], *, level: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """The mean of independent measurements and its two-sided ``level`` band (Student's t).

    For per-seed results: each seed is one independent run, so the band is
    ``mean ± t(n − 1) · sd / sqrt(n)``. One value gives no band (None).
    """
    if not values:
        raise ValueError("no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    from scipy.stats import t  # a core dependency already (the simulator's routing); imported only here

    half = float(t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, (mean - half, mean + half)
