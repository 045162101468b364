"""``lnlens model info [ID]``: one model version, its promotion decision and its drift indicators.

The drift is measured now, from the samples that matured in the store's last day (a bounded
read), next to the newest report a daemon stored for the version. docs/MODEL.md defines them.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ModelError
from ..model.inference import OnnxModel
from ..model.info import describe, measure_drift, model_name, stored_drift
from ..model.learning import drift_summary
from .context import CliContext

__all__ = ["cmd_info", "drift_cells"]


def cmd_info(args: argparse.Namespace, ctx: CliContext) -> int:
    reg = ctx.model_registry()
    row = None
    if args.id is not None:
        row = next((r for r in reg.list() if r["id"] == args.id), None)
        if row is None:
            raise ModelError(f"no model with id {args.id} (see lnlens model list)")
        model = OnnxModel.load(row["path"])
    else:
        model = reg.load_active()
        active = reg.active()
        row = active if active is not None and reg.configured is None else None
    store = ctx.store()
    now = ctx.lens().clock.now()
    name = model_name(model.name, model.version)
    stored, note = stored_drift(store, name)
    result = {
        "id": None if row is None else row["id"],
        "active": None if row is None else row["active"],
        "decision": None if row is None else row["metrics"].get("decision"),
        "model": describe(model),
        "drift": measure_drift(store, model, now=now),
        "stored_drift": drift_summary(stored),
        "stored_drift_note": note,
    }
    ctx.emit(result, lambda console: _render(console, result))
    return 0


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def drift_cells(summary: dict[str, Any] | None) -> tuple[str, str]:
    """(input drift, live error) as two short table cells: "shifted (PSI 0.41)", "2.1x validation"."""
    if summary is None:
        return "-", "-"
    inputs, error = summary["inputs"], summary["error"]
    left = f"{inputs['status']} (PSI {inputs['max_psi']:.2f})" if inputs["status"] else "n/a"
    right = f"{error['status']} ({error['ratio']:.1f}x val.)" if error["status"] else "n/a"
    return left, right


def _render(console: Console, result: dict[str, Any]) -> None:
    m = result["model"]
    table = Table(show_header=False, title=f"Model {m['name']}-{m['version']}")
    metrics = m["metrics"] or {}
    rows = [
        ("id", _fmt(result["id"])), ("active", _fmt(result["active"])), ("source", m["source"]),
        ("kind", _fmt(m["kind"])), ("trained at", _fmt(m["trained_at"], 0)),
        ("validation MAE", _fmt((metrics.get("model") or {}).get("mae"))),
        ("training statistics", f"{m['training_rows']} rows" if m["feature_stats"] else "none (exported without)"),
    ]  # fmt: skip
    if result["decision"]:
        d = result["decision"]
        rows.append(("decision", f"{'promoted' if d['promoted'] else 'kept inactive'}: {d['reason']}"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    drift = result["drift"]
    inputs, error = drift["inputs"], drift["error"]
    w = drift["window"]
    console.print(f"Drift now, on {w['samples']} samples matured in the last {w['window_s'] / 3600:g} h:")
    if inputs["status"] is None:
        console.print(f"  inputs: no value ({inputs['reason']})")
    else:
        console.print(f"  inputs: {inputs['status']}, max PSI {inputs['max_psi']:.3f} over {inputs['live_rows']} rows")
        top = sorted(inputs["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0))[:5]
        ft = Table("feature", "PSI", "mean shift (sd)", "note")
        for name, f in top:
            ft.add_row(name, _fmt(f["psi"], 3), _fmt(f["mean_shift"], 2), f["reason"] or "")
        console.print(ft)
    if error["status"] is None:
        console.print(f"  live error: no status ({error['reason']}); live MAE {_fmt(error['live_mae'])}")
    else:
        console.print(f"  live error: {error['status']}, MAE {error['live_mae']:.4f} vs validation "
                      f"{error['validation_mae']:.4f} ({error['ratio']:.2f}x); keeping the current ratio: "
                      f"{error['current_ratio_mae']:.4f}")  # fmt: skip
    if result["stored_drift"] is None:
        console.print(f"Stored by a daemon: none ({result['stored_drift_note']})")
    else:
        s = result["stored_drift"]
        left, right = drift_cells(s)
        console.print(f"Stored by a daemon at {s['time']:.0f}: inputs {left}, live error {right}")
