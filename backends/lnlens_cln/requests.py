"""The RPC side of the plugin's service: answers from stored results, or jobs for the worker.

Every method here runs on lightningd's I/O thread and never waits: it reads what the
worker published or queues a job that the worker runs (it owns the Lens, the store
and its own RPC connection) and that answers the caller when done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lnlens_core import __version__
from lnlens_core.backend import NodeBackend
from lnlens_core.domain import ChannelId
from lnlens_core.errors import LnlensError
from lnlens_core.fees.api import history as policy_history
from lnlens_core.fees.api import plan_or_apply, rollback_change
from lnlens_core.lens import Lens
from lnlens_core.liquidity import recommend
from lnlens_core.model_registry import ModelRegistry
from lnlens_core.opportunities import filter_opportunities

from .methods import ANALYSIS_FAILED, POLICY_FAILED, UNAVAILABLE, UNKNOWN_CHANNEL, LensRpcError, Reply

if TYPE_CHECKING:
    pass

__all__ = ["ServiceRequests", "DEFAULT_WINDOW_S"]

DEFAULT_WINDOW_S = 86_400


class ServiceRequests:
    """The lens-* answers of :class:`~lnlens_cln.service.LensService` (mixed into it)."""

    def opportunities(self, since_s: int | None, *, min_urgency: int, limit: int | None, reply: Reply) -> None:
        """Answer from the stored analysis of this window, or have the worker run one."""
        self._check_available()
        window = since_s or DEFAULT_WINDOW_S

        def answer(result: dict[str, Any]) -> None:
            # Pairs take the same filter: on a big node they outnumber channels many times over.
            chosen = {key: filter_opportunities(result[key], min_urgency=min_urgency, limit=limit)
                      for key in ("opportunities", "pairs")}  # fmt: skip
            reply({**result, **chosen})

        with self._lock:
            stored = self.results.analyses.get(window)
        if stored is not None:
            answer(stored)
            return

        def job(lens: Lens | None) -> None:
            if lens is None:  # the worker failed before it got to this
                reply(LensRpcError(f"lnlens is unavailable: {self.results.error}", UNAVAILABLE))
                return
            try:
                result = self._analyze(lens, window, save=False)
            except (LnlensError, ValueError) as exc:
                reply(LensRpcError(f"lens-opportunities: analysis failed: {exc}", ANALYSIS_FAILED))
                return
            with self._lock:  # kept until the next periodic run replaces every stored window
                self.results.analyses[window] = result
            answer(result)

        self._jobs.put(job)
        self._wake.set()
        if self.results.error is not None:  # failed meanwhile: nobody else will run the job
            self._drain_jobs(None)

    def run_job(self, name: str, work: Callable[[Lens], dict[str, Any]], reply: Reply) -> None:
        """Run ``work`` on the worker, which owns the Lens, the store and its own RPC connection."""
        self._check_available()

        def job(lens: Lens | None) -> None:
            if lens is None:
                reply(LensRpcError(f"lnlens is unavailable: {self.results.error}", UNAVAILABLE))
                return
            try:
                reply(work(lens))
            except LnlensError as exc:  # ConfigError (a bad policy file), nothing to roll back, ...
                reply(LensRpcError(f"{name}: {exc}", POLICY_FAILED))

        self._jobs.put(job)
        self._wake.set()
        if self.results.error is not None:
            self._drain_jobs(None)

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

    def channels(self, channel_id: ChannelId | None) -> dict[str, Any]:
        self._check_available()
        with self._lock:
            rows, when = list(self.results.channels), self.results.channels_time
        if channel_id is not None:
            rows = [r for r in rows if r["short_channel_id"] == str(channel_id)]
            if not rows:
                raise LensRpcError(f"lens-channels: {channel_id} is not one of this node's channels", UNKNOWN_CHANNEL)
        return {"time": when, "channels": rows}

    def status(self) -> dict[str, Any]:
        with self._lock:
            r = self.results
            return {
                "version": __version__,
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
