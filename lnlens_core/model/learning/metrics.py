"""Metrics of a model's ratios on a :class:`~.dataset.Dataset`: error, value against staying, baselines, confidence.

numpy only: the drift indicators (:mod:`.drift`) score a served model's live error with the same
:func:`evaluate` that training (:mod:`.models`) reports, without the ``train`` extra.
"""

from __future__ import annotations

import numpy as np

from ..target import MOVES, candidates
from .dataset import Dataset

__all__ = ["evaluate", "baselines", "confidence_table"]

_GAP_BINS = (0.0, 0.1, 0.2, 0.35, 0.5, 1.01)


def _value(data: Dataset, ratios: np.ndarray) -> np.ndarray:
    """Each sample's net value at the candidate ratio nearest ``ratios`` (staying on a tie)."""
    cand = candidates(data.current)
    dist = np.abs(cand - ratios[:, None])
    dist[:, len(MOVES) // 2] -= 1e-12  # a ratio halfway between staying and a move stays
    return data.curves[np.arange(len(ratios)), dist.argmin(axis=1)]


def evaluate(pred: np.ndarray, data: Dataset) -> dict[str, float]:
    """MAE and R² against the target; and what following the ratios would have earned.

    ``gain_msat``: the mean, per sample, of the net value (replayed fees minus the route cost of
    getting there) at the predicted ratio minus the value of staying; ``captured_share``: the sum
    of those gains over the sum of the gains the targets offered (1 = all of it, 0 = no better than
    staying, negative = worse). ``beats_current``: the share of samples where the predicted ratio
    is worth at least as much as staying.
    """
    y = data.y
    resid = y - pred
    ss_tot = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    got, stay = _value(data, pred), _value(data, data.current)
    best = _value(data, y) - stay
    return {
        "n": int(len(y)),
        "mae": float(np.abs(resid).mean()) if len(y) else float("nan"),
        "r2": 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
        "gain_msat": float((got - stay).mean()) if len(y) else float("nan"),
        "captured_share": float((got - stay).sum() / best.sum()) if best.sum() > 0 else float("nan"),
        "beats_current": float((got >= stay).mean()) if len(y) else float("nan"),
    }


def baselines(data: Dataset) -> dict[str, dict[str, float]]:
    """The naive baselines: always 50/50, and keep the current ratio."""
    return {"half": evaluate(np.full(len(data), 0.5), data), "current": evaluate(data.current.copy(), data)}


def confidence_table(pred: np.ndarray, data: Dataset, *, min_cases: int = 20) -> list[dict[str, float]]:
    """Held-out calibration of suggestions by the size of the proposed move.

    For each bin of ``|predicted - current|``: the share of held-out cases where moving to the
    predicted ratio would have earned strictly more, net of the route cost, than staying (the *confidence* a
    suggestion with that gap gets), and how many cases it rests on. Bins with fewer than
    ``min_cases`` are dropped: no confidence is shown rather than one from a handful of cases.
    """
    gap = np.abs(pred - data.current)
    got, stay = _value(data, pred), _value(data, data.current)
    table = []
    for lo, hi in zip(_GAP_BINS[:-1], _GAP_BINS[1:], strict=True):
        m = (gap >= lo) & (gap < hi)
        if m.sum() >= min_cases:
            win = float((got[m] > stay[m]).mean())
            table.append({"gap_min": lo, "gap_max": hi, "n": int(m.sum()), "win_rate": win})
    return table
