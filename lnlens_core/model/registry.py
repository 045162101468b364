"""Model versions: files under ``<data-dir>/models``, rows in the store's ``model_runs`` table.

Registering writes the ONNX file atomically (a temporary file, then ``os.replace``) and
adds a row with its metrics; activating flips the ``active`` flag in one transaction, so
readers see the old model or the new one, never neither. Every activation is dated, so
:func:`restore_previous` knows which model was in use before. A candidate from batch
retraining replaces the active model only when it beats it on a held-out recent window
(:func:`consider`, the rule in :class:`Gate`). With nothing active, the shipped default
(``lnlens_models``) serves: it is the permanent fallback (``lnlens model use default``). A manual
choice (``use``, ``use_default``, ``restore_previous`` from the CLI) is pinned: candidates are
still trained, gated and stored, but none replaces the pinned model until :func:`unpin`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..storage import private_dir
from .inference import OnnxModel, shipped_model_file

__all__ = ["ModelRegistry", "Decision", "Gate", "default_model_path", "paired_test", "sample_times"]


def default_model_path() -> Path | None:
    """The shipped default model (None when lnlens_models is absent)."""
    return shipped_model_file("liquidity-default.onnx")


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
        self._served: tuple[tuple[str, int, int, int], OnnxModel] | None = None

    def register(self, payload: bytes, *, name: str, version: str, metrics: dict[str, Any], now: float) -> int:
        """Write the model file atomically and record it (inactive); returns its id."""
        OnnxModel.load(payload).tables_session()  # refuse a model this lnlens cannot serve before it is stored
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
            return self._load(self.configured, threads)
        row = self.active()
        if row is not None:
            return self._load(row["path"], threads)
        default = default_model_path()
        if default is None:
            raise ModelError("no active model and no shipped default (lnlens_models) installed")
        return self._load(default, threads)

    def _load(self, path: str | Path, threads: int) -> OnnxModel:
        """The model in ``path``, loaded once while the file stays the same: a daemon asks every interval, and
        loading costs a session (and, for a batch, opening the lookup tables: ~0.1-0.2 s of CPU)."""
        try:
            st = os.stat(path)
        except OSError:
            return OnnxModel.load(path, threads=threads)  # its own clear error
        key = (str(path), st.st_mtime_ns, st.st_size, threads)
        if self._served is None or self._served[0] != key:
            self._served = (key, OnnxModel.load(path, threads=threads))
        return self._served[1]

    # -- the operator's pin ---------------------------------------------------------------

    def pinned(self) -> dict[str, Any] | None:
        """The operator's manual choice (``{"model": id | "default", "time": ...}``), or None."""
        raw = self.store.get_meta(_PIN_META)
        return json.loads(raw) if raw else None

    def pin(self, model: int | str, *, now: float) -> None:
        self.store.set_meta(_PIN_META, json.dumps({"model": model, "time": now}))

    def unpin(self) -> dict[str, Any] | None:
        """Let candidates compete again; returns the pin that was lifted (None: there was none)."""
        was = self.pinned()
        self.store.set_meta(_PIN_META, "")
        return was

    def use_default(self, *, now: float) -> None:
        """Serve the shipped default: no store model is active (pinned by the caller).

        :raises ModelError: no shipped default is installed, or it does not load.
        """
        default = default_model_path()
        if default is None:
            raise ModelError("no shipped default model (lnlens_models) is installed")
        OnnxModel.load(default)
        self.store.deactivate_models()

    def refusal(self, model_id: int) -> str | None:
        """Why the promotion gate refused ``model_id`` (None: it was promoted, or never offered to the gate)."""
        row = next((r for r in self.list() if r["id"] == model_id), None)
        decision = metrics_json(row).get("decision") if row else None
        if isinstance(decision, dict) and decision.get("promoted") is False:
            return str(decision.get("reason") or "refused")
        return None

    # -- the promotion gate ---------------------------------------------------------------

    def consider(self, payload: bytes, holdout, *, name: str, version: str, metrics: dict[str, Any], now: float,
                 training: tuple[int, int] | None = None, gate: Gate | None = None) -> Decision:  # fmt: skip
        """Register a candidate; activate it only when it passes the gate (:class:`Gate`, the rule
        there) on ``holdout``, a recent window none of its training data came from, and no operator
        pin holds the serving model.

        :param training: (samples, distinct sample times) the candidate learned from, when known.

        The outcome is stored with the candidate (``metrics["decision"]``), refusals included.
        """
        from .learning import evaluate

        gate = gate or Gate()
        cand: dict[str, Any] | None = None
        cur: dict[str, Any] | None = None
        test: dict[str, Any] | None = None
        times = _clusters(holdout)
        n_times = len(set(times))
        why = None
        if training is not None and training[0] < gate.min_train_samples:
            why = f"trained on {training[0]} samples, fewer than {gate.min_train_samples}"
        elif training is not None and training[1] < gate.min_train_times:
            why = f"trained on {training[1]} distinct sample times, fewer than {gate.min_train_times}"
        elif len(holdout) < gate.min_holdout_samples:
            why = f"held-out window has {len(holdout)} samples, fewer than {gate.min_holdout_samples}"
        elif n_times < gate.min_holdout_times:
            why = f"held-out window has {n_times} distinct sample times, fewer than {gate.min_holdout_times}"
        promoted = False
        if why is None:
            cand_pred = OnnxModel.load(payload).predict(holdout.x)
            cand = evaluate(cand_pred, holdout)
            try:
                current_model: OnnxModel | None = self.load_active()
            except ModelError:
                current_model = None
            if current_model is None:
                promoted, why = True, "no model in use"
            else:
                cur_pred = current_model.predict(holdout.x)
                cur = evaluate(cur_pred, holdout)
                test = paired_test(np.abs(holdout.y - cand_pred), np.abs(holdout.y - cur_pred), times)
                margin = gate.z * test["se"]
                if not np.isfinite(test["diff"]) or not test["diff"] < -margin:
                    why = (f"held-out MAE {cand['mae']:.4f} vs {cur['mae']:.4f}: the difference "
                           f"{test['diff']:+.4f} is not below -{gate.z:g} × its standard error "
                           f"{test['se']:.4f} ({n_times} sample times)")  # fmt: skip
                else:
                    promoted, why = True, (f"held-out MAE {cand['mae']:.4f} < {cur['mae']:.4f}: the difference "
                                           f"{test['diff']:+.4f} is below -{gate.z:g} × its standard error "
                                           f"{test['se']:.4f} ({n_times} sample times)")  # fmt: skip
            pin = self.pinned()
            if pin:
                verdict = "would have passed" if promoted else "was refused"
                promoted, why = False, (f"kept: the operator pinned model {pin['model']} (`lnlens model unpin` lets "
                                        f"candidates replace it); the gate alone {verdict}: {why}")  # fmt: skip
        assert why is not None
        decision = {"promoted": promoted, "reason": why, "holdout_samples": len(holdout),
                    "holdout_times": n_times, "current_mae": None if cur is None else cur["mae"],
                    "paired": test, "training": None if training is None else
                    {"samples": training[0], "times": training[1]}}  # fmt: skip
        metrics = {**metrics, "decision": decision, **({"holdout": cand} if cand is not None else {})}
        cid = self.register(payload, name=name, version=version, metrics=metrics, now=now)
        if promoted:
            self.store.activate_model(cid, time=now)
        return Decision(promoted, cid, why, float("nan") if cand is None else cand["mae"],
                        None if cur is None else cur["mae"])  # fmt: skip


_PIN_META = "model.pinned"


@dataclass(frozen=True, slots=True)
class Gate:
    """The promotion rule for a candidate against the serving model.

    A candidate is considered only with at least ``min_train_samples`` training samples from
    ``min_train_times`` distinct sample times (when the trainer says), and a held-out window of at
    least ``min_holdout_samples`` samples from ``min_holdout_times`` distinct sample times. It
    replaces the serving model only when its mean absolute error is lower by more than ``z``
    standard errors of the paired difference: for each held-out sample ``d = |error of the
    candidate| − |error of the serving model|``; samples taken at the same time (one node's
    channels at one moment) are not independent, so the standard error is clustered by sample
    time: ``se = sqrt(Σ_t (Σ_{i ∈ t} (d_i − d̄))²) / n``. Promote when ``d̄ < −z · se`` (z = 1.645:
    a one-sided 5 % test that the candidate is no better).
    """

    min_train_samples: int = 200
    min_train_times: int = 12
    min_holdout_samples: int = 30
    min_holdout_times: int = 6
    z: float = 1.645


def _clusters(data) -> list[Any]:
    """One key per sample: its group and sample time (samples at one moment are one cluster)."""
    times = getattr(data, "times", None)
    groups = getattr(data, "groups", None) or [""] * len(data)
    if times is None or len(times) != len(data):
        return list(range(len(data)))
    return [(g, float(t)) for g, t in zip(groups, times, strict=True)]


def sample_times(data) -> int:
    """Distinct sample times in ``data`` (per group: each simulated run's moments are its own)."""
    return len(set(_clusters(data)))


def paired_test(cand_err: np.ndarray, cur_err: np.ndarray, clusters: list[Any]) -> dict[str, Any]:
    """Mean paired difference of absolute errors (candidate − serving) and its cluster-robust standard error."""
    d = np.asarray(cand_err, dtype=float) - np.asarray(cur_err, dtype=float)
    ok = np.isfinite(d)
    d = d[ok]
    keys = [k for k, good in zip(clusters, ok, strict=True) if good]
    n = len(d)
    if n == 0:
        return {"diff": float("nan"), "se": float("nan"), "n": 0, "clusters": 0}
    mean = float(d.mean())
    sums: dict[Any, float] = {}
    for k, v in zip(keys, d - mean, strict=True):
        sums[k] = sums.get(k, 0.0) + float(v)
    se = float(np.sqrt(sum(v * v for v in sums.values()))) / n
    return {"diff": mean, "se": se, "n": n, "clusters": len(sums)}


def metrics_json(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["metrics"]) if isinstance(row.get("metrics"), str) else row.get("metrics") or {}
