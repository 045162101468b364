"""Online learning: an incremental learner, exported to ONNX, offered as gated candidates."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter  # durations only, never the wall clock
from typing import Any

from ..target import TARGET_HORIZON_S
from .dataset import Dataset, dataset_from_store
from .incremental import SampleStream
from .models import OnlineLearner
from .policy_history import PolicyHistory

__all__ = ["OnlineSession", "OnlineTrainer", "TickResult"]


class OnlineSession:
    """The online mode over a store: as forwards arrive, samples whose target horizon has passed
    become known, and :meth:`step` feeds each new one to the incremental learner exactly once.

    It rebuilds the whole store's samples each step (``lnlens model train --kind sgd`` uses it once);
    a running process uses :class:`OnlineTrainer`, which reads only what matured.
    """

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


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one :meth:`OnlineTrainer.tick` did."""

    time: float
    built: int
    """Samples that matured and were built this tick."""
    learned: int
    """Samples fed to the learner this tick (those that left the held-out window)."""
    seen: int
    """Samples the learner has learned from since the process started."""
    holdout: int
    """Samples in the held-out window now."""
    decision: Any
    """The registry's :class:`~lnlens_core.model.registry.Decision` when a candidate was offered, else None."""
    waiting: str | None
    """Why no candidate was offered (None when one was)."""
    seconds: float
    """How long the tick took (read, build, learn, export, gate)."""

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        decision = None if d is None else {
            "model_id": d.candidate_id, "promoted": d.promoted, "reason": d.reason,
            "candidate_mae": d.candidate_mae if d.candidate_mae == d.candidate_mae else None,
            "current_mae": d.current_mae,
        }  # fmt: skip
        return {"time": self.time, "built": self.built, "learned": self.learned, "seen": self.seen,
                "holdout": self.holdout, "decision": decision, "waiting": self.waiting,
                "seconds": round(self.seconds, 4)}  # fmt: skip


class OnlineTrainer:
    """The online mode in a running process: call :meth:`tick` on the process's schedule.

    Each tick builds at most ``max_times`` newly matured sample times, and no new one once
    ``budget_s`` has passed (:class:`SampleStream`, a bounded read of the store), and feeds the
    learner the samples that left the held-out window, the newest ``holdout_s`` of matured
    samples. After a (re)start the learner begins empty and catches up on the last ``warmup_s``
    of history, a few sample times per tick. Once it
    has caught up, at most every ``every_s`` and only when it learned something new, it exports
    the learner to ONNX and offers it to the registry, which promotes it only if it beats the
    serving model on the held-out window. Needs the ``train`` extra, in a child process only: the
    learner lives in short-lived children (:class:`~lnlens_core.model.learning.child.ChildLearner`), so
    this process never imports scikit-learn.
    """

    def __init__(self, registry, *, every_s: float = 6 * 3_600, seed: int = 0, name: str = "online",
                 holdout_s: float = 86_400, warmup_s: float = 7 * 86_400, max_times: int = 6,
                 budget_s: float | None = None, history: PolicyHistory | None = None, gate=None,
                 timeout_s: float = 3_600.0) -> None:  # fmt: skip
        """:param gate: the promotion rule (:class:`~lnlens_core.model.registry.Gate`; None: its defaults).
        :param timeout_s: a training child running longer is stopped (the tick fails)."""
        self.registry, self.every_s, self.name, self.max_times = registry, every_s, name, max_times
        self.gate = gate
        self.budget_s = budget_s
        from .child import ChildLearner  # here: `python -m lnlens_core.model.learning.child` runs it as __main__

        self.learner = ChildLearner(seed=seed, timeout_s=timeout_s)
        self.stream = SampleStream(window_s=holdout_s, lookback_s=warmup_s + holdout_s, history=history)
        self.last_offer: float | None = None
        self.new_since_offer = 0
        self.versions = 0
        self.train_times: set[float] = set()
        """The distinct sample times the learner has learned from (the gate's minimum)."""

    @property
    def store(self):
        return self.registry.store

    def tick(self, now: float) -> TickResult:
        """Build what matured, learn what left the held-out window, offer a candidate when due."""
        started = perf_counter()
        built = len(self.stream.advance(self.store, limit=self.max_times, budget_s=self.budget_s))
        learn = self.stream.pop_expired()
        self.learner.update(learn)
        self.train_times.update(float(t) for t in learn.times)
        self.new_since_offer += len(learn)
        holdout = self.stream.window
        decision, waiting = None, self._waiting(now)
        if waiting is None:
            decision = self._offer(now, holdout)
            self.last_offer, self.new_since_offer = now, 0
        return TickResult(now, built, len(learn), self.learner.seen, len(holdout), decision, waiting,
                          perf_counter() - started)  # fmt: skip

    def _waiting(self, now: float) -> str | None:
        if not self.stream.caught_up:
            return "catching up on the history (a few sample times each interval)"
        if not len(self.stream.window):
            return "no sample has matured yet (a sample needs its 6 h target window in the store)"
        if not self.learner.seen:
            return (f"nothing to learn from yet: the {len(self.stream.window)} matured samples are all in the "
                    f"held-out window (the newest {self.stream.window_s / 3_600:g} h)")  # fmt: skip
        if not self.new_since_offer:
            return "no new sample left the held-out window since the last candidate"
        if self.last_offer is not None and now - self.last_offer < self.every_s:
            return f"the next candidate is due {self.every_s / 3_600:g} h after the last one"
        return None

    def _offer(self, now: float, holdout: Dataset):
        self.versions += 1
        version = f"{now:.0f}-{self.versions}"
        payload, metrics = self.learner.offer(holdout, name=self.name, version=version, trained_at=now,
                                              metrics={"sample_times_seen": len(self.train_times)})  # fmt: skip
        return self.registry.consider(payload, holdout, name=self.name, version=version, metrics=metrics, now=now,
                                      training=(self.learner.seen, len(self.train_times)), gate=self.gate)  # fmt: skip
