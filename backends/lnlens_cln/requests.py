"""The RPC side of the plugin's service: answers from stored results while they are current, else jobs for the worker.

Every method here runs on lightningd's I/O thread and never waits: it reads what the
worker published or queues a job that the worker runs (it owns the Lens, the store
and its own RPC connection) and that answers the caller when done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lnlens_core import __version__
from lnlens_core.backend import NodeBackend
from lnlens_core.domain import ChannelId
from lnlens_core.errors import LnlensError
from lnlens_core.fees.api import history as policy_history
from lnlens_core.fees.api import plan_or_apply, rollback_change
from lnlens_core.lens import Lens
from lnlens_core.model.liquidity import recommend
from lnlens_core.model.registry import ModelRegistry
from lnlens_core.opportunities.run import filter_opportunities

from .replies import ANALYSIS_FAILED, POLICY_FAILED, UNAVAILABLE, UNKNOWN_CHANNEL, LensRpcError, Reply

log = logging.getLogger(__name__)

__all__ = ["ServiceRequests", "DEFAULT_WINDOW_S"]

DEFAULT_WINDOW_S = 86_400


class ServiceRequests:
    """The lens-* answers of :class:`~lnlens_cln.service.LensService` (mixed into it).

    Every answer is current: it includes every forward lightningd told the plugin about before
    the call, whatever ``lens-interval`` is. A stored answer is served from lightningd's I/O
    thread only while nothing arrived since it was computed; otherwise the worker records
    what is queued, re-reads the channels if they moved, and computes the answer afresh.
    """

    def _io_version(self) -> tuple[int, int, int]:
        """What a current answer must include (call under ``self._lock``)."""
        r = self.results
        return r.events_live, r.events_recorded, r.channels_version

    def _queue(self, job: Callable[[Lens | None], None]) -> None:
        self._jobs.put(job)
        self._wake.set()
        if self.results.error is not None:  # failed meanwhile: nobody else will run the job
            self._drain_jobs(None)

    def _guarded(self, name: str, reply: Reply, work: Callable[[Lens], None]) -> Callable[[Lens | None], None]:
        """A worker job that always answers: with ``work``'s reply, or an error that names what went wrong."""

        def job(lens: Lens | None) -> None:
            if lens is None:  # the worker failed before it got to this
                reply(LensRpcError(f"lnlens is unavailable: {self.results.error}", UNAVAILABLE))
                return
            try:
                work(lens)
            except LensRpcError as exc:
                reply(exc)
            except LnlensError as exc:  # ConfigError (a bad policy file), nothing to roll back, ...
                reply(LensRpcError(f"{name}: {exc}", POLICY_FAILED))
            except Exception as exc:  # noqa: BLE001 - the caller gets one line; the traceback goes to the log
                log.exception("lnlens: %s failed", name)
                reply(LensRpcError(f"{name}: internal error ({type(exc).__name__}: {exc}); see lightningd's log",
                                   ANALYSIS_FAILED))  # fmt: skip

        return job

    def _freshness(self, lens: Lens, run_time: float | None = None) -> dict[str, Any]:
        now = self.clock.now() if run_time is None else run_time
        return {"run_time": now, "newest_event_time": lens.monitor.newest_event_time}

    def opportunities(self, since_s: int | None, *, min_urgency: int, limit: int | None, reply: Reply) -> None:
        """Answer from the stored analysis of this window when it is current, or have the worker run one."""
        self._check_available()
        window = since_s or DEFAULT_WINDOW_S

        def answer(result: dict[str, Any]) -> None:
            # Pairs take the same filter: on a big node they outnumber channels many times over.
            chosen = {key: filter_opportunities(result[key], min_urgency=min_urgency, limit=limit)
                      for key in ("opportunities", "pairs")}  # fmt: skip
            reply({**result, **chosen})

        with self._lock:
            stored = self.results.analyses.get(window)
            # Before the worker has rebuilt its windows, the last saved analysis is all there is (restored: true).
            current = stored is not None and (not self.results.history_loaded
                                              or self.results.analysis_versions.get(window) == self._io_version())
        if current:
            assert stored is not None
            answer(stored)
            return

        def work(lens: Lens) -> None:
            version = self.catch_up(lens)
            with self._lock:
                stored = self.results.analyses.get(window)
                if stored is not None and self.results.analysis_versions.get(window) == version:
                    answer(stored)  # another call computed it meanwhile
                    return
            try:
                result = self._analyze(lens, window, save=False)
            except (LnlensError, ValueError) as exc:
                raise LensRpcError(f"lens-opportunities: analysis failed: {exc}", ANALYSIS_FAILED) from None
            with self._lock:  # kept while current, or until the next periodic run replaces every stored window
                self.results.analyses[window] = result
                self.results.analysis_versions[window] = version
            answer(result)

        self._queue(self._guarded("lens-opportunities", reply, work))

    def run_job(self, name: str, work: Callable[[Lens], dict[str, Any]], reply: Reply) -> None:
        """Run ``work`` on the worker, which owns the Lens, the store and its own RPC connection,
        after it caught up with every event offered so far."""
        self._check_available()

        def job(lens: Lens) -> None:
            self.catch_up(lens)
            reply({**work(lens), **self._freshness(lens)})

        self._queue(self._guarded(name, reply, job))

    def policy(self, *, apply: bool, reply: Reply) -> None:
        path = self.config.policy_path
        if path is None:
            raise LensRpcError("lens-policy: no policy file: start the plugin with lens-policy=FILE", POLICY_FAILED)
        self.run_job("lens-policy", lambda lens: plan_or_apply(lens, _backend(lens), apply=apply, policy_path=path),
                     reply)  # fmt: skip

    def recommend(self, since_s: int | None, *, min_gap: float, limit: int, reply: Reply) -> None:
        def work(lens: Lens) -> dict[str, Any]:
            models = ModelRegistry(lens.store, self.config.data_dir / "models", configured=self.config.model_path)
            return recommend(lens, models, since_s=since_s or DEFAULT_WINDOW_S, min_gap=min_gap, limit=limit)

        self.run_job("lens-recommend", work, reply)

    def history(self, channel_id: ChannelId | None, *, reply: Reply) -> None:
        self.run_job("lens-history", lambda lens: policy_history(lens, channel=channel_id), reply)

    def rollback(self, change_id: int | None, channel_id: ChannelId | None, *, reply: Reply) -> None:
        self.run_job("lens-rollback",
                     lambda lens: rollback_change(lens, _backend(lens), change_id=change_id, channel=channel_id),
                     reply)  # fmt: skip

    def channels(self, channel_id: ChannelId | None, *, reply: Reply) -> None:
        self._check_available()

        def answer(rows: list[dict[str, Any]], when: float | None, newest: float | None) -> None:
            if channel_id is not None:
                rows = [r for r in rows if r["short_channel_id"] == str(channel_id)]
                if not rows:
                    raise LensRpcError(f"lens-channels: {channel_id} is not one of this node's channels",
                                       UNKNOWN_CHANNEL)  # fmt: skip
            reply({"time": when, "run_time": when, "newest_event_time": newest, "channels": rows})

        with self._lock:
            r = self.results
            if not r.history_loaded or r.channels_rows_version == self._io_version():
                rows, when, newest = list(r.channels), r.channels_time, r.newest_event_time
                current = True
            else:
                current = False
        if current:
            answer(rows, when, newest)
            return

        def work(lens: Lens) -> None:
            self.catch_up(lens)
            with self._lock:
                rows, when = list(self.results.channels), self.results.channels_time
            answer(rows, when, lens.monitor.newest_event_time)

        self._queue(self._guarded("lens-channels", reply, work))

    def status(self, *, reply: Reply) -> None:
        with self._lock:
            r = self.results
            running = r.worker == "running" and r.history_loaded and r.error is None
            current = not running or r.forwards_version == self._io_version()[:2]
        if current:
            reply(self._status_json(self.clock.now()))
            return

        def work(lens: Lens) -> None:
            live, recorded, _ = self.catch_up(lens)
            self._publish(forwards_stored=lens.store.forward_count(), forwards_version=(live, recorded))
            reply(self._status_json(self.clock.now()))

        self._queue(self._guarded("lens-status", reply, work))

    def _status_json(self, now: float) -> dict[str, Any]:
        with self._lock:
            r = self.results
            return {
                "version": __version__,
                "run_time": now,
                "newest_event_time": r.newest_event_time,
                "worker": r.worker,
                "error": r.error,
                "db": {"path": str(self.config.db_path), "forwards": r.forwards_stored},
                "backfill": dict(r.backfill),
                "events": {"live": r.events_live, "recorded": r.events_recorded,
                           "queued": r.events_live - r.events_recorded_live},
                "last_analysis": dict(r.last_analysis) if r.last_analysis else None,
                "last_policy_run": dict(r.last_policy_run) if r.last_policy_run else None,
                "interval_s": self.config.interval_s,
                "dry_run": self.config.dry_run,
                "policy": str(self.config.policy_path) if self.config.policy_path else None,
                "model": str(self.config.model_path) if self.config.model_path else "default",
                "plugins": list(r.plugins),
                "liquidity_model": r.liquidity_model,
            }  # fmt: skip

    # -- worker thread ----------------------------------------------------------------------


def _backend(lens: Lens) -> NodeBackend:
    assert lens.backend is not None  # the worker's Lens always has its ClnBackend
    return lens.backend
