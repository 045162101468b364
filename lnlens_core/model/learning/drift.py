"""Drift indicators: how far a served model's live inputs are from its training data, and its live error.

Needs numpy only (and onnxruntime to predict), so a daemon without the ``train`` extra still
watches its model. docs/MODEL.md defines every number and threshold; in short:

- **training statistics** (:class:`FeatureStats`, stored at export in the ONNX metadata as
  ``feature_stats``): per feature, the rows, the missing (NaN) rows, mean and standard deviation,
  and the share of rows in each bin between the training deciles;
- **population stability index** (PSI) of each feature: the live rows' bin shares against the
  training ones, the missing rows being a bin of their own;
- **standardized mean shift**: (live mean − training mean) / training standard deviation;
- **live error**: the model's MAE on the samples that matured in the rolling window, against the
  validation MAE in its metadata.

A number the data cannot give is None, with the reason next to it; nothing is filled in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..features import FEATURE_NAMES, FEATURE_VERSION
from .metrics import evaluate

__all__ = ["FeatureStats", "input_drift", "live_error", "drift_report", "PSI_MODERATE", "PSI_SHIFTED",
           "MIN_LIVE_ROWS", "MIN_ERROR_SAMPLES", "ERROR_RATIO_DEGRADED"]  # fmt: skip

STATS_VERSION = 1
PSI_MODERATE = 0.1
"""PSI below this: no significant shift (the usual reading of PSI in credit scoring, where it comes from)."""
PSI_SHIFTED = 0.25
"""PSI at or above this: the feature's distribution has shifted significantly."""
PSI_FLOOR = 1e-4
"""A bin share below this counts as this much: a bin one side never saw would otherwise make PSI infinite."""
MIN_LIVE_ROWS = 50
"""Fewer live rows than this give no PSI: about five per bin, below which the shares are noise."""
MIN_ERROR_SAMPLES = 30
"""Fewer matured samples than this give no live error (the registry's gate asks the same)."""
ERROR_RATIO_DEGRADED = 1.5
"""Live MAE above this many times the validation MAE: the model does worse on this node than it was measured."""
_DECILES = np.linspace(0.1, 0.9, 9)


class FeatureStats:
    """Training feature statistics, accumulated batch by batch (the online learner's stream, or one batch).

    The bin edges (each feature's distinct training deciles) are fixed by the first batch, as the
    online learner's imputer and scaler are; counts, means and variances merge exactly.
    """

    def __init__(self) -> None:
        width = len(FEATURE_NAMES)
        self.rows = 0
        self.missing = np.zeros(width)
        self.count = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.edges: list[np.ndarray] | None = None
        self.bins: list[np.ndarray] | None = None

    @classmethod
    def of(cls, x: np.ndarray) -> FeatureStats:
        stats = cls()
        stats.update(x)
        return stats

    def update(self, x: np.ndarray) -> None:
        if not len(x):
            return
        if self.edges is None:
            self.edges = []
            for j in range(x.shape[1]):
                col = x[:, j][~np.isnan(x[:, j])]
                self.edges.append(np.unique(np.quantile(col, _DECILES)) if len(col) else np.zeros(0))
            self.bins = [np.zeros(len(e) + 1) for e in self.edges]
        assert self.bins is not None
        self.rows += len(x)
        for j in range(x.shape[1]):
            col = x[:, j]
            known = col[~np.isnan(col)]
            self.missing[j] += len(col) - len(known)
            self.bins[j] += np.bincount(_bin(known, self.edges[j]), minlength=len(self.edges[j]) + 1)
            if len(known):  # Chan et al.'s merge of two (count, mean, M2) summaries
                n_a, n_b = self.count[j], float(len(known))
                mean_b = float(known.mean())
                delta = mean_b - self.mean[j]
                total = n_a + n_b
                self.mean[j] += delta * n_b / total
                self.m2[j] += float(((known - mean_b) ** 2).sum()) + delta**2 * n_a * n_b / total
                self.count[j] = total

    def to_json(self) -> dict[str, Any]:
        features = {}
        for j, name in enumerate(FEATURE_NAMES):
            n = int(self.count[j])
            features[name] = {
                "count": n,
                "missing": int(self.missing[j]),
                "mean": float(self.mean[j]) if n else None,
                "std": math.sqrt(self.m2[j] / n) if n else None,
                "edges": [float(e) for e in self.edges[j]] if self.edges else [],
                "bins": [int(b) for b in self.bins[j]] if self.bins else [0],
            }
        return {"stats_version": STATS_VERSION, "feature_version": FEATURE_VERSION, "rows": self.rows,
                "features": features}  # fmt: skip


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bin i holds edges[i-1] <= v < edges[i]: a feature constant in training (one edge) still splits
    # what is below it from it, so a live change of a flag is seen.
    return np.searchsorted(edges, values, side="right")


def _psi(live: np.ndarray, train: np.ndarray) -> float:
    p, q = np.maximum(live / live.sum(), PSI_FLOOR), np.maximum(train / train.sum(), PSI_FLOOR)
    return float(((p - q) * np.log(p / q)).sum())


def _null(reason: str, **rest: Any) -> dict[str, Any]:
    return {"status": None, "reason": reason, **rest}


def input_drift(stats: dict[str, Any] | None, x: np.ndarray) -> dict[str, Any]:
    """Per-feature PSI and standardized mean shift of the live rows ``x`` against the training ``stats``."""
    if not stats:
        return _null("the model's metadata has no training feature statistics (exported before lnlens stored "
                     "them); retrain it to get input drift", features={}, live_rows=len(x))  # fmt: skip
    if stats.get("feature_version") != FEATURE_VERSION or set(stats.get("features", {})) != set(FEATURE_NAMES):
        return _null("the training statistics describe other features", features={}, live_rows=len(x))
    if len(x) < MIN_LIVE_ROWS:
        return _null(f"{len(x)} live rows in the window; PSI needs at least {MIN_LIVE_ROWS}", features={},
                     live_rows=len(x))  # fmt: skip
    features: dict[str, Any] = {}
    for j, name in enumerate(FEATURE_NAMES):
        s = stats["features"][name]
        col = x[:, j]
        known = col[~np.isnan(col)]
        edges = np.asarray(s["edges"], dtype=np.float64)
        train = np.append(np.asarray(s["bins"], dtype=np.float64), s["missing"])
        live = np.append(np.bincount(_bin(known, edges), minlength=len(edges) + 1), len(col) - len(known))
        row: dict[str, Any] = {
            "psi": _psi(live.astype(np.float64), train) if train.sum() > 0 else None,
            "mean_shift": None,
            "live_mean": float(known.mean()) if len(known) else None,
            "train_mean": s["mean"],
            "live_missing_share": (len(col) - len(known)) / len(col),
            "train_missing_share": s["missing"] / (s["count"] + s["missing"]) if s["count"] + s["missing"] else None,
            "reason": None,
        }
        if not len(known):
            row["reason"] = "no live value (all missing)"
        elif not s["count"]:
            row["reason"] = "no training value (all missing)"
        elif not s["std"]:
            row["reason"] = "constant in training: no standard deviation to scale the shift"
        else:
            row["mean_shift"] = (row["live_mean"] - s["mean"]) / s["std"]
        features[name] = row
    psis = {n: f["psi"] for n, f in features.items() if f["psi"] is not None}
    top = max(psis.values(), default=0.0)
    status = "shifted" if top >= PSI_SHIFTED else "moderate" if top >= PSI_MODERATE else "stable"
    return {"status": status, "reason": None, "live_rows": len(x), "max_psi": top,
            "shifted": sorted((n for n, v in psis.items() if v >= PSI_SHIFTED), key=lambda n: -psis[n]),
            "moderate": sorted((n for n, v in psis.items() if PSI_MODERATE <= v < PSI_SHIFTED), key=lambda n: -psis[n]),
            "features": features}  # fmt: skip


def live_error(pred: np.ndarray, window, *, validation_mae: float | None) -> dict[str, Any]:
    """The model's MAE on the matured samples of the window (predictions ``pred``), against its validation MAE."""
    n = len(window)
    if n < MIN_ERROR_SAMPLES:
        return _null(f"{n} matured samples in the window; the live error needs at least {MIN_ERROR_SAMPLES}",
                     samples=n, live_mae=None, validation_mae=validation_mae, ratio=None,
                     current_ratio_mae=None)  # fmt: skip
    mae = evaluate(pred, window)["mae"]
    stay = evaluate(window.current.copy(), window)["mae"]
    out: dict[str, Any] = {"status": None, "reason": None, "samples": n, "live_mae": mae,
                           "validation_mae": validation_mae, "ratio": None, "current_ratio_mae": stay}  # fmt: skip
    if validation_mae is None or not math.isfinite(validation_mae):
        out["reason"] = "the model's metadata has no validation MAE to compare with"
    elif validation_mae <= 0:
        out["reason"] = "the model's validation MAE is 0: no ratio"
    else:
        ratio = mae / validation_mae
        out["ratio"], out["status"] = ratio, "degraded" if ratio > ERROR_RATIO_DEGRADED else "ok"
    return out


def drift_report(model, window, *, time: float, window_s: float) -> dict[str, Any]:
    """Both indicators for ``model`` (an :class:`~lnlens_core.model.inference.OnnxModel`) on the matured ``window``."""
    metrics = model.json_meta("metrics") or {}
    val = (metrics.get("model") or {}).get("mae")
    val = float(val) if isinstance(val, (int, float)) else None
    span = (float(window.times.min()), float(window.times.max())) if len(window) else (None, None)
    pred = model.predict(window.x) if len(window) else np.zeros(0)
    return {
        "model": f"{model.name}-{model.version}",
        "time": time,
        "window": {"window_s": window_s, "samples": len(window), "from": span[0], "to": span[1]},
        "inputs": input_drift(model.json_meta("feature_stats"), window.x),
        "error": live_error(pred, window, validation_mae=val),
    }


def drift_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The few numbers a status line or a table shows (the report's ``features`` left out)."""
    if report is None:
        return None
    inputs, error = report["inputs"], report["error"]
    return {
        "model": report["model"], "time": report["time"], "samples": report["window"]["samples"],
        "inputs": {k: inputs.get(k) for k in ("status", "reason", "max_psi", "shifted", "moderate", "live_rows")},
        "error": {k: error.get(k) for k in ("status", "reason", "live_mae", "validation_mae", "ratio",
                                            "current_ratio_mae")},
    }  # fmt: skip
