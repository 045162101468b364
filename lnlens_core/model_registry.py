"""Model versions: files under ``<data-dir>/models``, rows in the store's ``model_runs`` table.

Registering writes the ONNX file atomically (a temporary file, then ``os.replace``) and
adds a row with its metrics; activating flips the ``active`` flag in one transaction, so
readers see the old model or the new one, never neither. Every activation is dated, so
:func:`restore_previous` knows which model was in use before. A candidate from batch
retraining replaces the active model only when it beats it on a held-out recent window
(:func:`consider`). With nothing active, the shipped default (``lnlens_models``) serves.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .inference import OnnxModel
from .storage import private_dir

__all__ = ["ModelRegistry", "Decision", "default_model_path"]


def default_model_path() -> Path | None:
    """The shipped default model, through importlib.resources (None when lnlens_models is absent)."""
    from importlib.resources import files

    try:
        root = files("lnlens_models")
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath("liquidity-default.onnx")))
    return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`ModelRegistry.consider`: whether the candidate took over, and why."""

    promoted: bool
    candidate_id: int
    reason: str
    candidate_mae: float
    current_mae: float | None


class ModelRegistry:
    def __init__(self, store, models_dir: str | Path, *, configured: str | Path | None = None) -> None:
        """:param configured: the ``model`` setting: a model file that serves instead of the store's."""
        self.store = store
        self.dir = Path(models_dir)
        self.configured = Path(configured) if configured else None

    def register(self, payload: bytes, *, name: str, version: str, metrics: dict[str, Any], now: float) -> int:
        """Write the model file atomically and record it (inactive); returns its id."""
        OnnxModel.load(payload)  # refuse a model this lnlens cannot serve before it is stored
        private_dir(self.dir)
        path = self.dir / f"{name}-{version}.onnx"
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.store.add_model_run(time=now, name=name, version=version, path=str(path), metrics=metrics)

    def list(self) -> list[dict[str, Any]]:
        return self.store.model_runs()

    def prune(self, cutoff: float) -> tuple[int, int]:
        """Forget inactive models registered before ``cutoff``: their rows, and their files when this
        registry wrote them (under its directory; a configured or shipped model is never touched).

        Returns (rows deleted, files deleted). Rows go first: a file left by a crash in between is an
        orphan nobody serves, never a row pointing at nothing.
        """
        doomed = [Path(r["path"]) for r in self.store.prunable_rows("model_runs", cutoff)]
        rows = self.store.prune("model_runs", cutoff)
        in_use = {Path(r["path"]).resolve() for r in self.list()}  # another row may share a file name
        files = 0
        for path in doomed:
            resolved = path.resolve()
            if resolved.parent == self.dir.resolve() and resolved not in in_use and resolved.is_file():
                resolved.unlink()
                files += 1
        return rows, files

    def active(self) -> dict[str, Any] | None:
        return next((r for r in self.list() if r["active"]), None)

    def use(self, model_id: int, *, now: float) -> dict[str, Any]:
        """Make ``model_id`` the active model (atomic); its file must load and match the schema."""
        row = next((r for r in self.list() if r["id"] == model_id), None)
        if row is None:
            raise ModelError(f"no model with id {model_id}")
        OnnxModel.load(row["path"])
        self.store.activate_model(model_id, time=now)
        return row

    def restore_previous(self, *, now: float) -> dict[str, Any]:
        """Re-activate the model that was active before the current one."""
        current = self.active()
        others = [r for r in self.list() if current is None or r["id"] != current["id"]]
        dated = [r for r in others if r["activation"] is not None]
        if not dated:
            raise ModelError("no previously active model to restore")
        previous = max(dated, key=lambda r: r["activation"])
        return self.use(previous["id"], now=now)

    def load_active(self, *, threads: int = 1) -> OnnxModel:
        """The configured model (the ``model`` setting), else the store's active one, else the shipped default.

        :raises ModelError: none available, or it does not load or match the schema.
        """
        if self.configured is not None:
            return OnnxModel.load(self.configured, threads=threads)
        row = self.active()
        if row is not None:
            return OnnxModel.load(row["path"], threads=threads)
        default = default_model_path()
        if default is None:
            raise ModelError("no active model and no shipped default (lnlens_models) installed")
        return OnnxModel.load(default, threads=threads)

    def consider(self, payload: bytes, holdout, *, name: str, version: str, metrics: dict[str, Any], now: float,
                 min_samples: int = 30) -> Decision:  # fmt: skip
        """Register a candidate; activate it only if its MAE on ``holdout`` (a recent window none of
        the candidate's training data came from) is lower than the active model's on the same window.

        The outcome is stored with the candidate (``metrics["decision"]``), refusals included.
        """
        from .learning import evaluate

        cand: dict[str, Any] | None = None
        cur: dict[str, Any] | None = None
        if len(holdout) < min_samples:
            promoted, why = False, f"held-out window has {len(holdout)} samples, fewer than {min_samples}"
        else:
            cand = evaluate(OnnxModel.load(payload).predict(holdout.x), holdout)
            try:
                current_model: OnnxModel | None = self.load_active()
            except ModelError:
                current_model = None
            cur = evaluate(current_model.predict(holdout.x), holdout) if current_model is not None else None
            if cur is None:
                promoted, why = True, "no model in use"
            elif np.isfinite(cand["mae"]) and cand["mae"] < cur["mae"]:
                promoted, why = True, f"held-out MAE {cand['mae']:.4f} < {cur['mae']:.4f}"
            else:
                promoted, why = False, f"held-out MAE {cand['mae']:.4f} does not beat {cur['mae']:.4f}"
        decision = {"promoted": promoted, "reason": why, "holdout_samples": len(holdout),
                    "current_mae": None if cur is None else cur["mae"]}  # fmt: skip
        metrics = {**metrics, "decision": decision, **({"holdout": cand} if cand is not None else {})}
        cid = self.register(payload, name=name, version=version, metrics=metrics, now=now)
        if promoted:
            self.store.activate_model(cid, time=now)
        return Decision(promoted, cid, why, float("nan") if cand is None else cand["mae"],
                        None if cur is None else cur["mae"])  # fmt: skip


def metrics_json(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["metrics"]) if isinstance(row.get("metrics"), str) else row.get("metrics") or {}
