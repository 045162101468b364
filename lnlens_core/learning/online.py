"""Online learning: an incremental learner, exported to ONNX, offered as gated candidates."""

from __future__ import annotations

from ..target import TARGET_HORIZON_S
from .dataset import Dataset, dataset_from_store, time_split
from .models import OnlineLearner, baselines, evaluate, export_onnx


class OnlineSession:
    """The online mode over a store: as forwards arrive, samples whose target horizon has passed
    become known, and :meth:`step` feeds each new one to the incremental learner exactly once."""

    def __init__(self, *, seed: int = 0, horizon_s: float = TARGET_HORIZON_S, every_s: float = 3_600) -> None:
        self.learner = OnlineLearner(seed=seed)
        self.horizon_s, self.every_s = horizon_s, every_s
        self.last_time: float | None = None

    def step(self, store, *, data: Dataset | None = None, before: float | None = None) -> int:
        """Learn from the samples that matured since the last step (those before ``before`` only, if given);
        returns how many were new."""
        if data is None:
            data = dataset_from_store(store, every_s=self.every_s, horizon_s=self.horizon_s, group="online")
        if before is not None:
            data = data.select(data.times < before)
        if self.last_time is not None:
            data = data.select(data.times > self.last_time)
        if not len(data):
            return 0
        self.learner.update(data)
        self.last_time = float(data.times.max())
        return len(data)


class OnlineTrainer:
    """The online mode in a running process: call :meth:`tick` on the process's schedule.

    At most every ``every_s`` seconds it feeds the incremental learner the samples that matured
    (all but the newest quarter of the history, which it has not seen yet and which serves as the
    held-out recent window), exports the learner to ONNX and offers it to the registry, which
    promotes it only if it beats the serving model on that window. Needs the ``train`` extra.
    """

    def __init__(self, registry, *, every_s: float = 6 * 3_600, seed: int = 0, name: str = "online") -> None:
        self.registry, self.every_s, self.name = registry, every_s, name
        self.session = OnlineSession(seed=seed)
        self.last_tick: float | None = None
        self.versions = 0

    def tick(self, now: float):
        """Learn and offer a candidate when due; returns the registry's Decision, or None (not due, nothing new)."""
        if self.last_tick is not None and now - self.last_tick < self.every_s:
            return None
        self.last_tick = now
        data = dataset_from_store(self.registry.store, group="online")
        if not len(data):
            return None
        older, recent = time_split(data)
        if not self.session.step(self.registry.store, data=older):
            return None
        self.versions += 1
        metrics = {
            "model": evaluate(self.session.learner.predict(recent.x), recent),
            "baselines": baselines(recent),
            "kind": "sgd",
            "samples_seen": self.session.learner.seen,
        }
        payload = export_onnx(
            self.session.learner.pipeline,
            name=self.name,
            version=f"{now:.0f}-{self.versions}",
            trained_at=now,
            metrics=metrics,
        )
        return self.registry.consider(
            payload, recent, name=self.name, version=f"{now:.0f}-{self.versions}", metrics=metrics, now=now
        )
