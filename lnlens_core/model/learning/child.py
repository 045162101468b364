"""The online learner's training steps, each run in a short-lived child process.

A daemon (the CLN plugin, ``lnlens lnd run``, ``lnlens monitor``, ``serve --simulate``) serves
with onnxruntime only and never imports scikit-learn itself: importing it costs ~100 MB of RSS
for the life of the process. :class:`ChildLearner` stands in for
:class:`~lnlens_core.model.learning.models.OnlineLearner` there. It keeps the learner as pickled bytes
plus the batches learned since the last run, and replays them, batch by batch and in order,
in a child (``python -m lnlens_core.model.learning.child``: request and answer are pickles on its
stdin and stdout) when a candidate is due or the pending batches grow large. So the learner
sees exactly the same ``update`` calls as in-process, and the candidate, its metrics and the
gate's decision are the same. The child exits when the step ends; a child that fails, is
killed or runs past ``timeout_s`` raises :class:`~lnlens_core.errors.ModelError` here (the
daemon logs it and goes on), and the batches of that step are forgotten.
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import ModelError
from .dataset import Dataset

__all__ = ["ChildLearner", "TRAIN_MODULES", "missing_training_module", "run_step"]

TRAIN_MODULES = ("sklearn", "skl2onnx", "onnx")
"""The ``train`` extra's packages, imported only by the training child."""

FLUSH_ROWS = 20_000
"""Pending rows that start an update-only child run (bounds the daemon's memory while it catches up)."""


def run_step(request: dict[str, Any]) -> dict[str, Any]:
    """One training step (in the child): restore the learner, apply each batch, optionally export a candidate."""
    from .metrics import baselines, evaluate
    from .models import OnlineLearner, export_onnx

    state = request["state"]
    learner = OnlineLearner(seed=request["seed"]) if state is None else pickle.loads(state)
    for batch in request["batches"]:
        learner.update(batch)
    payload = metrics = None
    offer = request["offer"]
    if offer is not None:
        holdout = offer["holdout"]
        metrics = {"model": evaluate(learner.predict(holdout.x), holdout), "baselines": baselines(holdout),
                   "kind": "sgd", "samples_seen": learner.seen, **offer["metrics"]}  # fmt: skip
        payload = export_onnx(learner.pipeline, name=offer["name"], version=offer["version"],
                              trained_at=offer["trained_at"], metrics=metrics, feature_stats=learner.stats)  # fmt: skip
    return {"state": pickle.dumps(learner), "seen": learner.seen, "payload": payload, "metrics": metrics}


class ChildLearner:
    """The daemon's side of the online learner (see the module docstring)."""

    def __init__(self, *, seed: int = 0, timeout_s: float = 3_600.0, flush_rows: int = FLUSH_ROWS) -> None:
        self.seed, self.timeout_s, self.flush_rows = seed, timeout_s, flush_rows
        self.state: bytes | None = None
        self.pending: list[Dataset] = []
        self.seen = 0
        """Samples learned from (those pending included), as :attr:`OnlineLearner.seen`."""
        self._state_seen = 0

    def update(self, data: Dataset) -> int:
        if len(data):
            self.pending.append(data)
            self.seen += len(data)
            if sum(len(b) for b in self.pending) >= self.flush_rows:
                self._run(None)
        return self.seen

    def offer(self, holdout: Dataset, *, name: str, version: str, trained_at: float,
              metrics: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:  # fmt: skip
        """Apply the pending batches, then the candidate's ONNX payload and metrics (``metrics`` added to them)."""
        answer = self._run({"holdout": holdout, "name": name, "version": version, "trained_at": trained_at,
                            "metrics": metrics})  # fmt: skip
        return answer["payload"], answer["metrics"]

    def _run(self, offer: dict[str, Any] | None) -> dict[str, Any]:
        batches, self.pending = self.pending, []
        request = {"state": self.state, "seed": self.seed, "batches": batches, "offer": offer}
        try:
            answer = _call_child(request, timeout_s=self.timeout_s)
        except ModelError:
            self.seen = self._state_seen  # the batches of a failed step are forgotten
            raise
        self.state, self.seen = answer["state"], answer["seen"]
        self._state_seen = self.seen
        return answer


@functools.cache
def missing_training_module() -> str | None:
    """The first of :data:`TRAIN_MODULES` a child process cannot import (missing or broken), or None.

    Asked once per process, of a child, so that this process does not import them."""
    probe = ("import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
             "    except Exception:\n        print(m)\n        break\n")  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-c", probe, *TRAIN_MODULES], capture_output=True, text=True,
                              timeout=300, env=_env(), check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return TRAIN_MODULES[0]
    return done.stdout.strip() or (None if done.returncode == 0 else TRAIN_MODULES[0])


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[3])  # the folder lnlens_core is in
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))


def _command() -> list[str]:
    return [sys.executable, "-m", __name__]


def _call_child(request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
    try:
        done = subprocess.run(_command(), input=pickle.dumps(request), capture_output=True,
                              timeout=timeout_s, env=_env(), check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # run() has killed and reaped the child
        raise ModelError(f"the training process ran past {timeout_s:g} s and was stopped") from exc
    except OSError as exc:
        raise ModelError(f"the training process could not start: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else "no message"
        raise ModelError(f"the training process failed (exit status {done.returncode}): {why}")
    try:
        return pickle.loads(done.stdout)
    except Exception as exc:  # noqa: BLE001 - any undecodable answer is the child's failure
        raise ModelError(f"the training process gave no answer: {exc!r}") from exc


def main() -> None:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # only the answer goes to stdout
    answer = run_step(pickle.loads(sys.stdin.buffer.read()))
    out.write(pickle.dumps(answer))
    out.flush()


if __name__ == "__main__":
    main()
