"""What lnlens says about a model version: its metadata, its decision, its drift (CLI and web API).

Drift reports are measured by the daemons every interval and stored per version
(``model_drift``); :func:`measure_drift` measures one now from the store, for
``lnlens model info``. A version never measured has no drift, and says so.
"""

from __future__ import annotations

from typing import Any

from .inference import OnnxModel
from .learning import SampleStream, drift_report, drift_summary

__all__ = ["NOT_MEASURED", "model_name", "stored_drift", "with_drift", "measure_drift", "describe"]

NOT_MEASURED = ("no drift measured for this version yet: a running daemon (the CLN plugin, lnlens lnd run) measures "
                "the serving model every interval, and lnlens model info measures it now")  # fmt: skip
DRIFT_WINDOW_S = 86_400.0


def model_name(name: str, version: str) -> str:
    """How predictions and drift reports name a version."""
    return f"{name}-{version}"


def stored_drift(store, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the newest stored drift report of version ``name``, None) or (None, why there is none)."""
    report = store.latest_drift(name).get(name)
    return (report, None) if report is not None else (None, NOT_MEASURED)


def with_drift(store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model_runs`` rows with ``drift`` (the newest stored summary, or None) and ``drift_note`` (why None)."""
    latest = store.latest_drift()
    out = []
    for row in rows:
        report = latest.get(model_name(row["name"], row["version"]))
        out.append({**row, "drift": drift_summary(report), "drift_note": None if report else NOT_MEASURED})
    return out


def measure_drift(store, model: OnnxModel, *, now: float) -> dict[str, Any]:
    """The drift report of ``model`` on the samples that matured in the store's last day (a bounded read)."""
    stream = SampleStream(window_s=DRIFT_WINDOW_S, lookback_s=DRIFT_WINDOW_S)
    while len(stream.advance(store, limit=8)):
        pass
    return drift_report(model, stream.window, time=now, window_s=DRIFT_WINDOW_S)


def describe(model: OnnxModel) -> dict[str, Any]:
    """The metadata an operator asks about: kind, training time, feature version, metrics, training statistics."""
    meta = model.metadata
    stats = model.json_meta("feature_stats")
    return {
        "name": model.name, "version": model.version, "source": model.source,
        "kind": meta.get("model_kind"), "trained_at": float(meta["trained_at"]) if "trained_at" in meta else None,
        "feature_version": meta.get("feature_version"), "output": meta.get("output"),
        "metrics": model.json_meta("metrics"), "data": model.json_meta("data"),
        "training_rows": stats["rows"] if stats else None,
        "feature_stats": stats is not None,
    }  # fmt: skip
