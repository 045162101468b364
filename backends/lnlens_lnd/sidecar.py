"""The sidecar daemon: the live forward feed plus an analysis (and a fee policy run) every interval, until stopped.

One thread owns the database: the feed's consumer stores forwards and, between
batches, runs the scheduled work (a channel snapshot and :func:`run_analysis`).
A second thread only reads the gRPC stream. Stopping is a ``threading.Event``
(set by SIGTERM in ``lnlens lnd run``) that every loop checks.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from lnlens_core.clock import Clock
from lnlens_core.errors import BackendError
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.journal import apply_plan, auto_rollback, reconcile
from lnlens_core.lens import Lens
from lnlens_core.memory import release_free_memory, share_one_heap
from lnlens_core.model.loop import ModelLoop
from lnlens_core.model.registry import ModelRegistry
from lnlens_core.opportunities.run import AnalysisResult, run_analysis
from lnlens_core.storage import WriterBusy

from .backend import LndBackend
from .events import LiveForwards

__all__ = ["Sidecar"]

log = logging.getLogger(__name__)


@dataclass
class Sidecar:
    """``lnlens lnd run``: monitor + periodic analysis.

    :param interval_s: seconds between analysis runs (``interval`` setting).
    :param since_s: the analysis window.
    """

    lens: Lens
    backend: LndBackend
    clock: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    interval_s: float = 600.0
    since_s: int = 86_400
    backoff_s: tuple[float, float] = (1.0, 60.0)
    on_result: Callable[[AnalysisResult], object] | None = None
    """Called with each analysis (``lnlens lnd run --json`` prints it)."""
    engine: FeeEngine | None = None
    """The fee engine when a policy is configured: it plans every interval, after the analysis."""
    apply: bool = False
    """Apply the plan (``dry_run = false``); otherwise plan only."""
    on_plan: Callable[[dict], object] | None = None
    models: ModelRegistry | None = None
    """The liquidity model's registry: each run learns what matured (with lnlens[train]), stores predictions,
    publishes suggestions and measures drift (lnlens_core.model.loop)."""
    on_model: Callable[[dict], object] | None = None
    """Called with each model run's status (``lnlens lnd run --json`` prints it as ``{"liquidity_model": ...}``)."""
    policy_runs: int = 0
    refused: list[dict] = field(default_factory=list)
    """Fee changes lnd refused (or the macaroon forbade) during this run, as journal results: each is logged at
    WARNING with its channel and lnd's reason, and ``lnlens lnd run`` exits non-zero naming them."""
    said_notes: set[str] = field(default_factory=set)
    """Plan notes already logged at WARNING: a missing permission would otherwise repeat every interval."""
    runs: int = 0
    last: AnalysisResult | None = None
    _next: float = 0.0

    def __post_init__(self) -> None:
        self.model_loop = ModelLoop(self.lens, self.models) if self.models is not None else None
        self.feed = LiveForwards(
            self.backend, self.lens.monitor, self.clock, self.stop, backoff_s=self.backoff_s, on_tick=self.tick
        )

    def tick(self) -> None:
        """Run the analysis when it is due (called from the feed's thread)."""
        if self.clock.now() < self._next or not self.feed.connected.is_set():
            return
        self._next = self.clock.now() + self.interval_s
        # One interval: one ListChannels and FeeReport, and one GetChanInfo per channel, for all of its reads.
        with self.backend.interval():
            try:
                channels = self.backend.list_channels()
                self.lens.monitor.observe_channels(channels)
                self.last = run_analysis(self.lens, since_s=self.since_s, channels=channels)
            except BackendError as exc:
                log.warning("analysis skipped: %s", exc)
                return
            self.runs += 1
            if self.on_result is not None:
                self.on_result(self.last)
            if self.engine is not None:
                self.policy_run(channels)
            if self.model_loop is not None:
                self.model_run()
            release_free_memory()
            top = max((o.urgency for o in self.last.opportunities), default=0)
            log.info(
                "analysis %d: %d channels, %d opportunities (top urgency %d), %d forwards stored",
                self.runs,
                self.last.channels_seen,
                len(self.last.opportunities),
                top,
                self.feed.stats.recorded + self.feed.stats.backfilled,
            )

    def model_run(self) -> dict:
        """The liquidity model's interval; its status is logged and handed to ``on_model``."""
        assert self.model_loop is not None
        try:
            status = self.model_loop.run()
        except Exception as exc:  # noqa: BLE001 - the model is optional: the feed and the analysis must go on
            log.warning("liquidity model run failed: %r", exc)
            status = {**self.model_loop.status(), "error": repr(exc)}
        last, online = status.get("last_run") or {}, status["online_learning"]
        if last.get("unavailable"):
            log.info("liquidity model not used: %s", last["unavailable"])
        tick = online["last_tick"] or {}
        if not online["enabled"]:
            learning = f"off: {online['reason']}"
        elif tick.get("decision"):
            d = tick["decision"]
            learning = f"model {d['model_id']} {'promoted' if d['promoted'] else 'kept inactive'} ({d['reason']})"
        else:
            learning = tick.get("waiting") or tick.get("error") or "no candidate"
        log.info("model %d: %s, %d predictions, %d suggestions; online learning: %s", self.model_loop.runs,
                 last.get("model") or "none serving", last.get("predictions", 0), last.get("suggestions", 0),
                 learning)  # fmt: skip
        if self.on_model is not None:
            self.on_model({"liquidity_model": status})
        return status

    def policy_run(self, channels) -> dict | None:
        """Plan with the fee engine; apply when allowed (reconciling and auto-rolling back first, as
        ``lnlens policy apply`` does). Backend trouble skips this run; every change is journalled."""
        lens, backend, engine = self.lens, self.backend, self.engine
        assert engine is not None
        try:
            # The database's one writer (storage.lock): a `policy apply` or another daemon on it waits its turn.
            with lens.store.writer_lock() if self.apply else nullcontext():
                reconciled = reconcile(lens, backend) if self.apply else []
                reverted = auto_rollback(lens, backend, engine.rails) if self.apply else []
                plan = engine.plan(channels=channels if not reconciled and not reverted else None,
                                   applying=self.apply)  # fmt: skip
                done = apply_plan(lens, backend, plan) if self.apply else []
        except (BackendError, WriterBusy) as exc:
            log.warning("fee policy run skipped: %s", exc)
            return None
        for d in [*reconciled, *reverted, *done]:
            if d.state == "failed":
                self.refused.append(d.to_json())
                log.warning("fee change on %s refused: %s", d.channel_id, d.detail)
        self.policy_runs += 1
        states = Counter(d.state for d in [*reconciled, *reverted, *done])
        log.info(
            "fee policy %d: %d change(s) planned, %s",
            self.policy_runs,
            len(plan.to_apply()),
            ", ".join(f"{n} {s}" for s, n in sorted(states.items())) if self.apply else "dry run",
        )
        for note in plan.notes:  # e.g. the uri: to add to the macaroon for a node.* criterion
            log.log(logging.DEBUG if note in self.said_notes else logging.WARNING, "fee policy: %s", note)
            self.said_notes.add(note)
        data = {
            "fee_plan": plan.to_json(),
            "applied": self.apply,
            "results": [d.to_json() for d in done],
            "reconciled": [d.to_json() for d in reconciled],
            "auto_rollbacks": [d.to_json() for d in reverted],
        }
        if self.on_plan is not None:
            self.on_plan(data)
        return data

    def run(self) -> None:
        """Until :meth:`shutdown`: feed the store, analyse every interval."""
        share_one_heap()  # before the feed's threads (lnlens_core.memory)
        if self.model_loop is not None:
            self.model_loop.prepare()  # the model opened while the daemon holds little, before the history
        self.lens.monitor.load_history()
        release_free_memory()
        log.info("lnlens lnd sidecar running (analysis every %g s over %d s)", self.interval_s, self.since_s)
        self.feed.run()
        log.info("lnlens lnd sidecar stopped: %s", self.feed.stats)

    def shutdown(self) -> None:
        """Stop from any thread (a signal handler): the feed ends its stream and :meth:`run` returns."""
        self.feed.close()
