"""The liquidity model's part of every live interval: the CLN plugin's worker, ``lnlens lnd run``,
``lnlens monitor`` and ``lnlens serve --simulate`` (the simulator), so candidates, gate decisions
and drift can be watched without a node.

Every interval, on the thread that owns the store:

1. the samples that matured since the last run are built from a bounded read of the store
   (:class:`~lnlens_core.model.learning.SampleStream`); with the ``train`` extra the online learner
   learns from them and, when due, offers a candidate to the registry, whose decision is
   stored (``model_runs``) and published (a ``model`` event);
2. the serving model predicts every channel (stored, ``model_predictions``) and its rebalancing
   suggestions are published (``suggestion`` events);
3. its drift indicators are measured on the matured window, stored (``model_drift``) when the
   window has new samples, and published (a ``model`` event).

Without the ``train`` extra step 1 only builds the window for the drift indicators, and the
loop says once, in the log and in its status, that online learning is off and why. Nothing
here raises into the daemon: a model that cannot serve (:class:`~lnlens_core.errors.ModelError`)
is reported and lnlens carries on rule-based.
"""

from __future__ import annotations

import contextlib
import logging
from importlib.util import find_spec
from time import perf_counter  # durations only, never the wall clock
from typing import Any

from ..errors import MissingExtra, ModelError
from ..events import ModelCandidateDecided, ModelDriftMeasured, ModelSuggested
from .inference import OnnxModel
from .learning import OnlineTrainer, PolicyHistory, SampleStream, drift_report, drift_summary
from .learning.child import TRAIN_MODULES, missing_training_module
from .liquidity import liquidity_view

__all__ = ["ModelLoop", "WINDOW_S"]

log = logging.getLogger(__name__)

WINDOW_S = 86_400.0
"""The rolling window of matured samples: the learner's held-out window and the drift indicators' window.
A full day, because traffic follows the time of day."""


def online_learning_problem() -> str | None:
    """Why online learning cannot run in this environment (the ``train`` extra is missing or broken), or None.

    The modules are looked up here and imported only by a child process (:mod:`lnlens_core.model.learning.child`,
    where the training runs), so the daemon never imports scikit-learn (~100 MB for the life of the process)."""
    for module in TRAIN_MODULES:
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return str(MissingExtra("online learning", "train", module))
    broken = missing_training_module()
    return None if broken is None else str(MissingExtra("online learning", "train", broken))


class ModelLoop:
    """One per daemon, used from the thread that owns ``lens.store``.

    :param registry: the daemon's :class:`~lnlens_core.model.registry.ModelRegistry`.
    :param max_times: sample times built per interval at most, and
    :param budget_s: no new one started after this many seconds: together they bound an interval's
        work while the learner catches up after a start (a sample time costs about a second on a
        node with 30,000 forwards a day, benchmarks/bench_online.py).
    """

    def __init__(self, lens, registry, *, max_times: int = 24, budget_s: float | None = 2.0,
                 every_s: float = 6 * 3_600, warmup_s: float = 7 * 86_400, publish_suggestions: bool = True,
                 backend_lock=None, gate=None) -> None:  # fmt: skip
        """:param publish_suggestions: emit the serving model's suggestions (``ModelSuggested``); a caller
        that offers them itself (``serve --simulate``, with ids) reads :attr:`view` instead.
        :param backend_lock: held only while the backend is read (the channels for predictions), so that
            learning never blocks other users of the backend (``serve --simulate``'s HTTP threads).
        :param gate: the promotion rule (:class:`~lnlens_core.model.registry.Gate`; None: its defaults)."""
        self.backend_lock = backend_lock if backend_lock is not None else contextlib.nullcontext()
        self.lens, self.registry, self.max_times, self.budget_s = lens, registry, max_times, budget_s
        self.publish_suggestions = publish_suggestions
        self.view = None
        """The last run's :class:`~lnlens_core.model.liquidity.LiquidityView` (None before one, or without a model)."""
        self.history = PolicyHistory()
        self.online_off = online_learning_problem()
        self.trainer: OnlineTrainer | None = None
        if self.online_off is None:
            self.trainer = OnlineTrainer(registry, every_s=every_s, holdout_s=WINDOW_S, warmup_s=warmup_s,
                                         max_times=max_times, budget_s=budget_s, history=self.history,
                                         gate=gate)  # fmt: skip
            self.stream = self.trainer.stream
        else:
            log.warning("lnlens: liquidity model: %s; online learning is off, predictions, suggestions and drift "
                        "indicators go on", self.online_off)  # fmt: skip
            self.stream = SampleStream(window_s=WINDOW_S, lookback_s=WINDOW_S, history=self.history)
        self.runs = 0
        self.last_decision: dict[str, Any] | None = None
        self.last_tick: dict[str, Any] | None = None
        self._drift_key: tuple[str, float | None] | None = None
        self.drift: dict[str, Any] | None = None
        self._last_run: dict[str, Any] | None = None

    @classmethod
    def for_lens(cls, lens, **kwargs: Any) -> ModelLoop:
        """A loop over ``lens``'s store, with the registry its configuration names (``<data-dir>/models``,
        the ``model`` setting)."""
        from .registry import ModelRegistry

        config = lens.config
        return cls(lens, ModelRegistry(lens.store, config.data_dir / "models", configured=config.model_path),
                   **kwargs)  # fmt: skip

    def prepare(self) -> None:
        """Open the serving model now, and its lookup tables' session if the store's newest channel snapshot holds
        enough channels for a batch to use them: a daemon calls this at start, before it rebuilds its windows.

        Opening the tables costs a transient ~60 MB (onnxruntime folds them, ~15 MB of it kept): at start it comes
        while the process holds little, instead of on top of the history it rebuilt and its first analysis
        (issue 16). Nothing is raised: a model that cannot serve is reported by :meth:`run`, as before.
        """
        try:
            model = self.registry.load_active()
            _, channels = self.lens.store.latest_channels()
            if model.tables_graph is not None and len(channels) >= model.tables_from:
                model.tables_session()
        except Exception as exc:  # noqa: BLE001 - the model is optional; its run says what is wrong, as before
            log.debug("lnlens: liquidity model not opened at start: %r", exc)

    def run_safely(self) -> dict[str, Any]:
        """:meth:`run`, but a failure is logged and returned in the status (``error``), never raised."""
        try:
            return self.run()
        except Exception as exc:  # noqa: BLE001 - the model is optional: the live loop must go on
            log.warning("lnlens: liquidity model run failed: %r", exc)
            return {**self.status(), "error": repr(exc)}

    def run(self) -> dict[str, Any]:
        """One interval's model work; returns its summary (what the daemons publish as status)."""
        started = perf_counter()
        lens = self.lens
        now = lens.clock.now()
        events: list[Any] = []
        learn_s = self._learn(now, events)
        model: OnnxModel | None = None
        unavailable: str | None = None
        try:
            model = self.registry.load_active()
        except ModelError as exc:
            unavailable = str(exc)
        predictions = suggestions = 0
        self.view = None
        if model is not None:
            name = f"{model.name}-{model.version}"
            try:
                with self.backend_lock:
                    view = liquidity_view(lens.store, model, now=now, backend=lens.backend, save=True,
                                          history=self.history, keep_forwards=False)  # fmt: skip
            except ModelError as exc:
                unavailable = str(exc)
            else:
                # Without its day of forwards (keep_forwards=False): a daemon holds O(channels) between intervals,
                # and never a day of forwards at once (issue 16).
                self.view = view
                predictions, suggestions = len(view.channels), len(view.suggestions)
                if self.publish_suggestions:
                    events.append(ModelSuggested(now, name, tuple(view.suggestions)))
            self._measure_drift(model, name, now, events)
        lens.emit(events)
        self.runs += 1
        return self.status(time=now, model=None if model is None else f"{model.name}-{model.version}",
                           unavailable=unavailable, predictions=predictions, suggestions=suggestions,
                           learn_s=learn_s, seconds=perf_counter() - started)  # fmt: skip

    def _learn(self, now: float, events: list[Any]) -> float:
        """Build what matured (and, with the train extra, learn and offer a candidate); the seconds it took."""
        started = perf_counter()
        if self.trainer is None:
            self.stream.advance(self.lens.store, limit=self.max_times, budget_s=self.budget_s)
            self.stream.pop_expired()  # nobody learns from them
            return perf_counter() - started
        try:
            tick = self.trainer.tick(now)
        except Exception as exc:  # noqa: BLE001 - a learner that fails must not stop the daemon's other work
            log.warning("lnlens: online learning failed this interval: %r", exc)
            self.last_tick = {"time": now, "error": repr(exc)}
            return perf_counter() - started
        self.last_tick = tick.to_json()
        d = tick.decision
        if d is not None:
            row = next((r for r in self.registry.list() if r["id"] == d.candidate_id), None)
            name, version = (row["name"], row["version"]) if row else (self.trainer.name, "?")
            mae = d.candidate_mae if d.candidate_mae == d.candidate_mae else None
            events.append(ModelCandidateDecided(now, d.candidate_id, name, version, d.promoted, d.reason, mae,
                                                d.current_mae, tick.holdout))  # fmt: skip
            self.last_decision = {"time": now, "model_id": d.candidate_id, "model": f"{name}-{version}",
                                  "promoted": d.promoted, "reason": d.reason, "candidate_mae": mae,
                                  "current_mae": d.current_mae, "holdout_samples": tick.holdout}  # fmt: skip
            log.info("lnlens: online model %s-%s %s (%s)", name, version,
                     "promoted" if d.promoted else "kept inactive", d.reason)  # fmt: skip
        return tick.seconds

    def _measure_drift(self, model, name: str, now: float, events: list[Any]) -> None:
        report = drift_report(model, self.stream.window, time=now, window_s=self.stream.window_s)
        self.drift = drift_summary(report)
        span = self.stream.window_span()
        key = (name, None if span is None else span[1])
        if key != self._drift_key:  # store a report when the model or the window changed, not every interval
            self._drift_key = key
            self.lens.store.save_drift(report, time=now)
        assert self.drift is not None
        events.append(ModelDriftMeasured(now, name, self.drift))

    def status(self, **last_run: Any) -> dict[str, Any]:
        """The loop's state for a status answer (CLN ``lens-status``, ``lnlens lnd run --json``).

        :param last_run: what the run that just finished did (kept for later calls without it).
        """
        if last_run:
            learn_s = last_run.pop("learn_s")
            self._last_run = {"runs": self.runs, **last_run, "seconds": round(last_run["seconds"], 4),
                              "learn_seconds": round(learn_s, 4)}  # fmt: skip
        return {
            "online_learning": {"enabled": self.trainer is not None, "reason": self.online_off,
                                "last_tick": self.last_tick, "last_decision": self.last_decision},
            "last_run": self._last_run,
            "drift": self.drift,
        }  # fmt: skip
