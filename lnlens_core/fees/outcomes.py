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

**Rollback rule** (:func:`judge`; docs/FEES.md states it in full): the change's effect is estimated
against what the channel would have earned without it, and judged against the noise that the same
estimate shows when nothing changed.

- *Expected* revenue after the change: ``E = R_before · g``. ``g`` comes from one of two controls:
  the revenue ratio after/before of the node's other channels that had no change in ``[t - L, t + L)``
  (a difference-in-differences), or the channel's own ratio on the same hours of previous days
  (whose estimation variance is added). When both exist, the one whose prediction the placebo pairs
  show to be less noisy is used.
- A *cut* (:func:`is_cut`) cannot have lost more than what the after window's forwards would have paid
  at the old policy (demand is monotone in the fee), so ``E`` is at most that.
- *Placebo pairs*, where no change happened, all from before the change: every channel with at least
  ``rollback_min_forwards`` forwards on the same hours of previous days, against the control over the
  same past windows. On the log scale ``τ² = max(0, mean(r² − v))`` is the drift Poisson noise does not
  explain (a method-of-moments random effect).
- The rule — all must hold: (1) at least ``rollback_min_forwards`` settled forwards before; (2) a
  material drop, ``R_after < (1 - rollback_drop_share) · E``; (3) ``z = -r / sqrt(v + τ²)`` above the
  larger of Student's ``t(1 - α, k - 1)`` (``k`` past days with placebo pairs) and the ``(1 - α)``
  quantile of the placebo pairs' own standardised drops.
- No control, or no placebo pair: not judged (``Judgement.note`` says why).

Changes on channels with fewer than ``rollback_min_forwards`` forwards in the before window are
not judged: a handful of forwards cannot tell a 30 % drop from chance at any useful error rate.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ..domain import ChannelId, ChannelPolicy, ForwardStatus, HtlcEvent

__all__ = [
    "WindowStats",
    "ChangeOutcome",
    "measure",
    "judge",
    "Judgement",
    "RevenueIndex",
    "is_cut",
    "policy_aggregates",
    "applied_change_times",
    "ROLLBACK_GROUP",
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
    rollback_of: int | None = None
    """The change this one reverted (a rollback), else None."""

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
            "rollback_of": self.rollback_of,
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
    next_change_time: float | None = None,
    rollback_of: int | None = None,
) -> ChangeOutcome:
    """The outcome of one change from forwards covering ``[t - window_s, t + window_s)``.

    ``L`` is cut so that neither window reaches past the channel's previous or next change: what
    follows a later change (a rollback's recovery, say) is that change's outcome, not this one's.
    """
    length = window_s
    for other in (previous_change_time, next_change_time):
        if other is not None:
            length = max(0.0, min(length, abs(change_time - other)))
    chosen = [e for e in events if e.out_channel == channel_id]
    before = _window(chosen, channel_id, change_time - length, change_time)
    after = _window(chosen, channel_id, change_time, change_time + length)
    return ChangeOutcome(
        journal_id, channel_id, policy, change_time, length, now >= change_time + length, before, after, rollback_of
    )


HISTORY_DAYS = 7
"""How many previous days the placebo pairs on the changed channel itself may reach back."""

_DAY = 86_400.0
ROLLBACK_GROUP = "(rollback)"
"""The name rollbacks are summed under in :func:`policy_aggregates`."""


class RevenueIndex:
    """Settled forwards leaving over each channel, as sorted times and running sums, for window sums."""

    def __init__(self, events: Iterable[HtlcEvent]) -> None:
        acc: dict[ChannelId, list[tuple[float, int, int]]] = {}
        for e in events:
            if e.out_channel is not None and e.status is ForwardStatus.SETTLED:
                acc.setdefault(e.out_channel, []).append((e.received_time, e.fee_msat or 0, e.out_msat or 0))
        self._by: dict[ChannelId, tuple[np.ndarray, ...]] = {}
        for cid, rows in acc.items():
            rows.sort()
            times = np.fromiter((r[0] for r in rows), float, len(rows))
            fees = np.fromiter((r[1] for r in rows), float, len(rows))
            amounts = np.fromiter((r[2] for r in rows), float, len(rows))
            zero = np.zeros(1)
            self._by[cid] = (times, *(np.concatenate([zero, np.cumsum(x)]) for x in (fees, fees**2, amounts)))
        self.first_time = min((float(v[0][0]) for v in self._by.values()), default=math.inf)
        """The earliest forward held: windows starting before it are not fully covered by the data."""

    def channels(self) -> list[ChannelId]:
        return list(self._by)

    def window(self, cid: ChannelId, start: float, end: float) -> tuple[int, float, float]:
        """Forwards, revenue (msat) and ``Σ x²`` of ``cid`` in ``[start, end)``."""
        n, fees, squares, _ = self.sums(cid, start, end)
        return n, fees, squares

    def sums(self, cid: ChannelId, start: float, end: float) -> tuple[int, float, float, float]:
        """Forwards, revenue, ``Σ x²`` and amount forwarded (msat) of ``cid`` in ``[start, end)``."""
        found = self._by.get(cid)
        if found is None:
            return 0, 0.0, 0.0, 0.0
        times, *cums = found
        i, j = np.searchsorted(times, [start, end], side="left")
        return int(j - i), *(float(c[j] - c[i]) for c in cums)


def is_cut(old: ChannelPolicy, new: ChannelPolicy) -> bool:
    """True when ``new`` charges no more than ``old`` on any amount and forwards everything ``old`` did.

    Outbound base fee and ppm not higher, inbound fees not higher, ``min_htlc`` not higher, ``max_htlc``
    not lower, ``cltv_delta`` not higher, not newly disabled: every payment that could take the
    channel before can take it after, at the same or a lower fee.
    """
    never = float("inf")
    return (new.base_fee_msat <= old.base_fee_msat and new.fee_ppm <= old.fee_ppm
            and new.inbound_base_fee_msat <= old.inbound_base_fee_msat and new.inbound_fee_ppm <= old.inbound_fee_ppm
            and new.min_htlc_msat <= old.min_htlc_msat and new.cltv_delta <= old.cltv_delta
            and (new.max_htlc_msat or never) >= (old.max_htlc_msat or never)
            and (old.disabled or not new.disabled))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judgement:
    """The rollback rule's reading of one change (the rule is in the module docstring)."""

    channel_id: ChannelId
    window_s: float
    before_forwards: int
    after_forwards: int
    revenue_before_msat: float
    revenue_after_msat: float
    expected_msat: float
    """What the channel would have earned after, without the change: ``R_before · g``."""
    control: str
    """``"channels"`` (the node's unchanged channels), ``"history"`` (the same hours of previous days),
    ``"none"`` (no control: not judged) or ``"plain"`` (``controlled=False``)."""
    control_channels: int
    growth: float
    placebos: int
    drift_var: float
    """``τ²``: the relative variance the placebo pairs show beyond Poisson noise."""
    z: float
    verdict: str | None
    """Why the change is rolled back, else None."""
    critical: float = math.inf
    """The z the change had to exceed."""
    cut_bound_msat: float | None = None
    """For a cut: what the after window's forwards would have paid at the old policy (the most it could have earned)."""
    note: str | None = None
    """Why the change was not judged (too few forwards, no control), else None."""

    def to_json(self) -> dict[str, Any]:
        return {"short_channel_id": str(self.channel_id), "window_s": self.window_s,
                "before_forwards": self.before_forwards, "after_forwards": self.after_forwards,
                "revenue_before_msat": round(self.revenue_before_msat),
                "revenue_after_msat": round(self.revenue_after_msat), "expected_msat": round(self.expected_msat),
                "control": self.control, "control_channels": self.control_channels,
                "growth": round(self.growth, 4), "placebos": self.placebos, "drift_var": round(self.drift_var, 5),
                "z": round(self.z, 3), "critical": round(self.critical, 3),
                "cut_bound_msat": None if self.cut_bound_msat is None else round(self.cut_bound_msat),
                "verdict": self.verdict, "note": self.note}  # fmt: skip


def _changed(times: Sequence[float], start: float, end: float) -> bool:
    return any(start <= t < end for t in times)


def _log_residual(n: float, b: float, bs: float, a: float, g: float, gq: float) -> tuple[float, float]:
    """``log((A + h) / (g·B + h))`` and its variance under "no change" (delta method).

    Demand drift is multiplicative, so the effect is read on the log scale; ``h``, the mean fee of
    the ``n`` forwards before (at least 1 msat), keeps a window without revenue finite. Under "no
    change" the after window is the before window's compound-Poisson process at ``g`` times the
    rate, so both windows' variances come from the before window's ``Σ x²``: ``g·Σx²`` and ``g²·Σx²``
    (never from the after window, whose few forwards after a bad change would make it look noisy).
    """
    h = max(1.0, b / n) if n else 1.0
    e = g * b
    return math.log((a + h) / (e + h)), bs * (g + g * g) / (e + h) ** 2 + gq


def judge(
    index: RevenueIndex,
    channel_id: ChannelId,
    change_time: float,
    window_s: float,
    *,
    change_times: Mapping[ChannelId, Sequence[float]],
    drop_share: float,
    min_forwards: int,
    alpha: float,
    history_days: int = HISTORY_DAYS,
    controlled: bool = True,
    old_policy: ChannelPolicy | None = None,
    new_policy: ChannelPolicy | None = None,
) -> Judgement:
    """Judge the change at ``change_time`` on ``channel_id`` over windows of ``window_s`` (its ``L``).

    :param change_times: every channel's applied changes (any channel missing had none); a channel
        changed within ``[t - L, t + L)`` is no control, and no placebo pair crosses a change.
    :param controlled: False gives the rule without control or placebos (``g = 1``, ``τ² = 0``): the plain
        before/after test of earlier versions, kept for ``scripts/rollback_rates.py``'s comparison.
    :param old_policy: the policy before the change and ``new_policy`` the one it set; when the change
        is a cut (:func:`is_cut`) the expected revenue is bounded by what the after window's forwards
        would have paid at the old policy. Without them the change is judged as an increase.
    """
    t, length = change_time, window_s
    nb, rb, sb = index.window(channel_id, t - length, t)
    na, ra, _sa, va = index.sums(channel_id, t, t + length)
    controls = [c for c in index.channels() if controlled and c != channel_id
                and not _changed(change_times.get(c, ()), t - length, t + length)]  # fmt: skip

    def sums_of(c: ChannelId, start: float, mid: float, end: float) -> tuple[float, ...]:
        return (*index.window(c, start, mid), *index.window(c, mid, end))

    def control_sums(start: float, mid: float, end: float) -> list[float]:
        out = [0.0] * 6
        for c in controls:
            for k, v in enumerate(sums_of(c, start, mid, end)):
                out[k] += v
        return out

    def growth_of(sums: list[float]) -> tuple[float, float] | None:
        """The control's after/before ratio and its relative Poisson variance, or None if too thin."""
        n_b, r_b, s_b, _n_a, r_a, s_a = sums
        if n_b < min_forwards or r_b <= 0 or r_a <= 0:
            return None
        return r_a / r_b, s_a / r_a**2 + s_b / r_b**2

    # The control's growth over the change's own windows.
    ctrl = growth_of(control_sums(t - length, t, t + length))
    own_times = change_times.get(channel_id, ())
    shifts = [k * _DAY for k in range(max(1, math.ceil(length / _DAY - 1e-9)), history_days * controlled + 1)
              if t - k * _DAY - length >= index.first_time]  # fmt: skip
    own = [(sums_of(channel_id, t - s - length, t - s, t - s + length)) for s in shifts
           if not _changed(own_times, t - s - length, t - s + length)]  # fmt: skip
    own = [p for p in own if p[0]]
    has_history = bool(own) and sum(p[1] for p in own) > 0 and sum(p[4] for p in own) > 0

    def placebo_pairs(kind: str) -> tuple[list[tuple[float, float]], set[float]]:
        """Placebo pairs, all from before the change (its spill-over onto other channels cannot inflate
        them): every channel with enough forwards on the same hours of previous days, against the
        control over the same past windows (``channels``) or against 1 (``history``). Returns their
        log residuals with Poisson variances, and the past days they come from."""
        found, days = [], set()
        for s in shifts:
            span = (t - s - length, t - s, t - s + length)
            total = control_sums(*span) if kind == "channels" else []
            for c in index.channels():
                if _changed(change_times.get(c, ()), span[0], span[2]):
                    continue
                mine = sums_of(c, *span)
                if mine[0] < min_forwards:
                    continue
                past: tuple[float, float] | None = (1.0, 0.0)
                if kind == "channels":
                    past = growth_of([x - y for x, y in zip(total, mine, strict=True)] if c in controls else total)
                if past is not None:
                    found.append(_log_residual(mine[0], mine[1], mine[2], mine[4], *past))
                    days.add(s)
        return found, days

    options: list[tuple[float, str, float, float, list[tuple[float, float]], set[float], float]] = []
    for kind in ("channels", "history") if controlled else ():
        if kind == "channels" and ctrl is not None:
            growth, q = ctrl
        elif kind == "history" and has_history:
            growth, q = sum(p[4] for p in own) / sum(p[1] for p in own), 0.0
        else:
            continue
        residuals, days_used = placebo_pairs(kind)
        drift = max(0.0, statistics.fmean(r * r - var for r, var in residuals)) if residuals else 0.0
        if kind == "history":
            # g is the mean of the channel's own past ratios, each as noisy as the change's own: its variance adds
            own_v = [_log_residual(p[0], p[1], p[2], p[4], 1.0, 0.0)[1] for p in own]
            q = (drift + statistics.fmean(own_v)) / len(own)
        total_var = sb * (growth + growth * growth) / (rb * growth + (max(1.0, rb / nb) if nb else 1.0)) ** 2
        options.append((total_var + q + drift, kind, growth, q, residuals, days_used, drift))
    # Of the two controls, the one whose prediction the past (placebo pairs) shows to be less noisy: the
    # other channels remove what the whole node shares, but are thin on a node with one busy channel and
    # take on the change's spill-over (a channel made expensive also changes its neighbours' liquidity).
    chosen = min((o for o in options if o[4]), key=lambda o: o[0], default=options[0] if options else None)
    if not controlled:
        kind, growth, q, residuals, days_used, drift = "plain", 1.0, 0.0, [], set(), 0.0
    elif chosen is None:
        kind, growth, q, residuals, days_used, drift = "none", 1.0, 0.0, [], set(), 0.0
    else:
        _, kind, growth, q, residuals, days_used, drift = chosen
    pairs = residuals
    critical = NormalDist().inv_cdf(1 - alpha)
    if kind in ("channels", "history"):
        # The pairs of one past day share that day's drift (and overlap the next day's), so τ² rests on about
        # as many independent draws as there are past days: Student's t with (days - 1) degrees of freedom.
        from scipy.stats import t as student_t  # a core dependency (statistics, the simulator); imported when used

        critical = float(student_t.ppf(1 - alpha, max(1, len(days_used) - 1)))
    expected = rb * growth
    bound = None
    if old_policy is not None and new_policy is not None and is_cut(old_policy, new_policy):
        # demand is monotone in the fee: the old policy would not have drawn more forwards than the new one,
        # so it would have earned at most what the after window's forwards pay at the old policy
        bound = na * old_policy.base_fee_msat + va * old_policy.fee_ppm / 1_000_000
        expected = min(expected, bound)
    h = max(1.0, rb / nb) if nb else 1.0
    d = math.log((ra + h) / (expected + h))
    v = sb * (growth + growth * growth) / (rb * growth + h) ** 2 + q
    z = -d / math.sqrt(v + drift) if v + drift > 0 else 0.0
    # the placebos' own standardised drops: the change's must also lie beyond their (1 - α) quantile
    placebo_z = sorted(-r / math.sqrt(var + drift) for r, var in residuals if var + drift > 0)
    if placebo_z:
        critical = max(critical, placebo_z[max(0, math.ceil((1 - alpha) * len(placebo_z)) - 1)])
    verdict = None
    if kind == "none":
        note = ("not judged: no unchanged channel with enough forwards and no history on the same hours of "
                "previous days to tell the change from demand drift")  # fmt: skip
    elif kind != "plain" and not pairs:
        note = ("not judged: no placebo pair (a channel with enough forwards on the same hours of a previous day) "
                "to measure demand drift with")  # fmt: skip
    elif nb < min_forwards:
        note = f"not judged: {nb} settled forward(s) before, fewer than rollback_min_forwards ({min_forwards})"
    else:
        note = None
        if ra < (1 - drop_share) * expected and z > critical:
            against = {"channels": f"{len(controls)} unchanged channel(s) grew ×{growth:.2f}",
                       "history": f"the same hours of previous days grew ×{growth:.2f}",
                       "plain": "no control (comparison rule)"}[kind]  # fmt: skip
            cap = "" if bound is None else f", at most {bound:.0f} at the old fee"
            verdict = (f"auto: revenue fell from {rb:.0f} to {ra:.0f} msat over {length:.0f} s "
                       f"({nb} → {na} forwards) against {expected:.0f} expected ({against}{cap}; "
                       f"drop > {drop_share:.0%}, {len(pairs)} placebo pair(s), drift τ² = {drift:.3f}, "
                       f"z = {z:.2f} > {critical:.2f})")  # fmt: skip
    return Judgement(channel_id, length, nb, na, rb, ra, expected, kind, len(controls), growth, len(pairs), drift,
                     z, verdict, critical, bound, note)  # fmt: skip


def policy_aggregates(outcomes: Iterable[ChangeOutcome]) -> dict[str, dict[str, Any]]:
    """Per policy: changes measured, summed revenue and flow deltas and their 95 % bands (independent changes).

    A rollback counts under ``(rollback)``, never under the policy whose change it undid: what the
    channel earned after the revert is the revert's outcome, and a policy that lost money keeps its loss.
    """
    acc: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if not o.complete:
            continue
        empty = {"changes": 0, "revenue_delta_msat": 0, "volume_delta_msat": 0, "_rv": 0.0, "_vv": 0.0}
        key = ROLLBACK_GROUP if o.rollback_of is not None else o.policy or "(plugin)"
        row = acc.setdefault(key, empty)
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
    times = applied_change_times(rows)
    out = []
    for row in _applied(rows):
        cid = ChannelId.parse(row["channel_id"])
        t = row["applied_time"]
        own = times[cid]
        i, j = bisect.bisect_left(own, t), bisect.bisect_right(own, t)
        out.append(measure(row["id"], cid, row["policy"], t, events=events, window_s=window_s, now=now,
                           previous_change_time=own[i - 1] if i else None,
                           next_change_time=own[j] if j < len(own) else None,
                           rollback_of=row.get("rollback_of")))  # fmt: skip
    return out


def _applied(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["state"] in ("applied", "verified", "rolled_back") and r["applied_time"]]


def applied_change_times(rows: Sequence[Mapping[str, Any]]) -> dict[ChannelId, list[float]]:
    """Per channel, the times its changes reached the node (journal rows), sorted."""
    out: dict[ChannelId, list[float]] = {}
    for row in _applied(rows):
        out.setdefault(ChannelId.parse(row["channel_id"]), []).append(row["applied_time"])
    for times in out.values():
        times.sort()
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
    from scipy.stats import t  # a core dependency (statistics, the simulator); imported only here

    half = float(t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, (mean - half, mean + half)
