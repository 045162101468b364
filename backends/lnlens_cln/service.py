"""The plugin's one background worker and the results it stores for the RPC handlers.

lightningd's I/O thread (pyln's dispatch loop) only converts notifications and
reads :class:`Results`; everything that touches the database or takes time runs
here, in one thread paced by the lens clock: open the store, rebuild the live
windows, backfill ``listforwards`` from the stored cursor, then record live
events, refresh channels and run the analysis every ``lens-interval``. A call
whose stored answer is not current (events arrived since, or a window nobody
stored) is a job the worker runs between backfill pages or ticks: it records
what is queued (:meth:`LensService.catch_up`), then answers the caller. The
liquidity model's run (seconds: learning catches up after a start) has a thread
of its own, with its own store and RPC connections, so that no call waits for it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pluggy

from lnlens_core.clock import Clock
from lnlens_core.config import LensConfig
from lnlens_core.domain import Channel, ChannelId, HtlcEvent
from lnlens_core.errors import BackendError, LnlensError
from lnlens_core.events import LensEvent
from lnlens_core.fees.api import PolicyRunner
from lnlens_core.lens import Lens
from lnlens_core.memory import release_free_memory
from lnlens_core.model.loop import ModelLoop
from lnlens_core.model.registry import ModelRegistry
from lnlens_core.opportunities.failures import refine_temporary_failure
from lnlens_core.opportunities.flows import WINDOWS
from lnlens_core.opportunities.monitor import BackfillProgress
from lnlens_core.opportunities.report import channel_json
from lnlens_core.opportunities.run import run_analysis
from lnlens_core.plugins import list_plugins
from lnlens_core.storage import Store

from .backend import ClnBackend, RpcLike
from .replies import UNAVAILABLE, LensRpcError
from .requests import DEFAULT_WINDOW_S, ServiceRequests
from .results import Results, restored_result

__all__ = ["LensService", "DEFAULT_WINDOW_S"]

log = logging.getLogger(__name__)

TICK_S = 1.0
CHANNEL_REFRESH_S = 60.0
STATS_MIN_S = 2.0  # lens-channels counters are recomputed at most this often under live traffic
PAGE_SIZE = 1000
MODEL_READY_S = 60.0  # the worker waits at most this long for the model's thread to open the model at start


class LensService(ServiceRequests):
    """lnlens inside one lightningd: a worker thread, a thread for the liquidity model's runs, stored results.

    :param rpc_factory: makes the worker's own RPC connection (pyln's is not thread-safe).
    """

    def __init__(
        self,
        config: LensConfig,
        rpc_factory: Callable[[], RpcLike],
        *,
        clock: Clock,
        on_alerts: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._on_alerts = on_alerts
        self._policy: PolicyRunner | None = None
        self._model: ModelLoop | None = None
        self._model_pm: pluggy.PluginManager | None = None
        self._web: Any = None  # the lens-http-port server (lnlens_core.web), when running
        self._raised: set[tuple[str, str]] = set()
        self._rpc_factory = rpc_factory
        self._events: queue.SimpleQueue[HtlcEvent] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[Callable[[Lens | None], None]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.results = Results()
        self._by_id: dict[ChannelId, Channel] = {}
        self._stats_dirty = False
        self._trim_due = False  # a job ran an analysis since the worker last handed freed memory back
        self._channels_stale = False  # events recorded since the last re-read: balances moved
        self._channels_version = 0
        self._live_seen = 0  # live events offered when the worker last emptied the queue
        self._channels_changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lnlens-worker", daemon=True)
        self._model_due = threading.Event()
        self._model_ready = threading.Event()
        self._model_events: queue.SimpleQueue[Sequence[LensEvent]] = queue.SimpleQueue()
        self._model_thread = threading.Thread(target=self._model_worker, name="lnlens-model", daemon=True)

    # -- I/O thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._model_due.set()
        for thread in (self._thread, self._model_thread):
            if thread.is_alive() and threading.current_thread() is not thread:
                thread.join(timeout)

    def offer_live(self, event: HtlcEvent) -> None:
        """Queue one live forward event for the worker (never blocks)."""
        with self._lock:  # counted and queued together: a count read under the lock is all in the queue
            self.results.events_live += 1
            self._events.put(event)

    def channels_changed(self) -> None:
        """A channel opened, closed or changed state: re-read channels at the next tick."""
        self._channels_changed.set()
        self._wake.set()

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self.results, name, value)

    def _check_available(self) -> None:
        with self._lock:
            error = self.results.error
        if error is not None:
            raise LensRpcError(f"lnlens is unavailable: {error}", UNAVAILABLE)

    def _run(self) -> None:
        try:
            store = Store(self.config.db_path)
        except LnlensError as exc:
            self._fail(f"cannot open the database: {exc}")
            return
        try:
            self._work(store)
        except LnlensError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the worker must report, never die silently inside lightningd
            log.exception("lnlens worker stopped")
            self._fail(f"internal error: {exc!r}")
        finally:
            if self._web is not None:
                self._web.stop()
            store.close()

    def _start_web(self, lens: Lens) -> None:
        """``lens-http-port``: the read-only API, stream and dashboard on 127.0.0.1, in this process.

        The server gets its own RPC connection (pyln's is not thread-safe); the stream gets every
        ``track_event`` batch of this worker. A server that cannot start is logged; lnlens carries on.
        """
        try:
            from lnlens_core.web.server import WebServer
            from lnlens_core.web.stream import StreamObserver
            from lnlens_core.web.views import Live

            web = WebServer(self.config, self.clock, port=self.config.http_port or 0,
                            live=Live(backend=ClnBackend(self._rpc_factory())))  # fmt: skip
            web.start()
        except (LnlensError, OSError) as exc:
            log.warning("lnlens: lens-http-port: the web server did not start: %s", exc)
            return
        lens.pm.register(StreamObserver(web.hub), name="lnlens-stream")
        self._web = web
        log.info("lnlens: %s", web.describe())

    def _fail(self, error: str) -> None:
        log.warning("lnlens: %s", error)
        self._publish(worker="failed", error=error)
        self._drain_jobs(None)  # lightningd has no timeout: every waiting caller must get an answer

    def _drain_jobs(self, lens: Lens | None) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job(lens)

    def _work(self, store: Store) -> None:
        backend = ClnBackend(self._rpc_factory())
        lens = Lens(self.config, store=store, clock=self.clock, backend=backend)
        lens.startup()
        if self.config.http_port is not None:
            self._start_web(lens)
        if self.config.policy_path is not None:
            self._policy = PolicyRunner(lens, backend, dry_run=self.config.dry_run, policy_path=self.config.policy_path)
        plugins = [{"name": p.name, "version": p.version, "builtin": p.builtin, "hooks": list(p.hooks)}
                   for p in list_plugins(lens.pm)]  # fmt: skip
        self._publish(worker="running", plugins=plugins)
        self._model_pm = lens.pm
        self._model_thread.start()  # its runs wait for the first analysis (_cycle)
        # It opens the model first, while this process holds little (ModelLoop.prepare), then the history comes.
        self._model_ready.wait(MODEL_READY_S)
        previous = restored_result(store)
        if previous is not None and previous["window_s"] == DEFAULT_WINDOW_S:
            with self._lock:  # until the first analysis of this run replaces it
                self.results.analyses.setdefault(DEFAULT_WINDOW_S, previous)
        lens.monitor.load_history()
        self._publish(history_loaded=True, newest_event_time=lens.monitor.newest_event_time)
        self._refresh_channels(lens, snapshot=False)  # the first analysis run stores the snapshot
        self._backfill(lens)
        release_free_memory()  # the rebuild and the backfill's pages, freed: hand them back (lnlens_core.memory)
        next_analysis = self.clock.now()
        next_channels, next_stats = self.clock.now() + CHANNEL_REFRESH_S, self.clock.now()
        while not self._stop.is_set():
            # Cleared before draining, so a job or event queued from here on wakes the sleep below at once.
            self._wake.clear()
            self._drain(lens)
            if self._trim_due:  # a job analysed a new window: hand its pages back too
                self._release()
            now = self.clock.now()
            try:
                if now >= next_analysis:
                    self._refresh_channels(lens, snapshot=True)
                    self._cycle(lens)
                    self._release()
                    next_analysis = now + self.config.interval_s
                elif now >= next_channels or self._channels_changed.is_set():
                    self._channels_changed.clear()
                    self._refresh_channels(lens, snapshot=False)
                    next_channels = now + min(CHANNEL_REFRESH_S, self.config.interval_s)
            except BackendError as exc:  # lightningd busy or restarting: the next tick tries again
                log.warning("lnlens: %s", exc)
            if self._stats_dirty and now >= next_stats:
                self._publish_channels(lens)
                next_stats = now + STATS_MIN_S
            self.clock.sleep(TICK_S, self._wake)

    def _release(self) -> None:
        """Hand the worker's freed heap pages back to the system (lnlens_core.memory)."""
        self._trim_due = False
        release_free_memory()

    def _backfill(self, lens: Lens) -> None:
        def on_page(progress: BackfillProgress) -> None:
            self._publish_backfill(progress, "running")
            self._publish(events_recorded=lens.monitor.events_seen, newest_event_time=lens.monitor.newest_event_time)
            if self._jobs.empty():
                self._drain(lens)
                return
            with lens.store.own_cache():  # the answers read with the store's page cache, not the backfill's 64 MiB
                self._drain(lens)

        self._publish(backfill={**self.results.backfill, "state": "running"})
        try:
            progress = lens.monitor.backfill(lens.backend, page_size=PAGE_SIZE, on_page=on_page)  # type: ignore[arg-type]
        except LnlensError as exc:
            with self._lock:
                self.results.backfill = {**self.results.backfill, "state": "failed", "error": str(exc)}
            log.warning("lnlens: backfill failed: %s", exc)
            return
        self._publish_backfill(progress, "done")
        self._publish(forwards_stored=lens.store.forward_count(), forwards_version=self.version(lens)[:2])
        self._publish_channels(lens)

    def _publish_backfill(self, progress: BackfillProgress, state: str) -> None:
        with self._lock:
            self.results.backfill = {
                "state": state, "pages": progress.pages, "forwards_read": progress.events_read,
                "forwards_new": progress.events_new, "cursor": progress.cursor, "error": None,
            }  # fmt: skip

    def _drain(self, lens: Lens) -> None:
        """Record queued live events (refined against the channels we know), run queued jobs and pass the
        model thread's events to the plugins (every hook runs on this thread)."""
        self._record_pending(lens)
        self._drain_jobs(lens)
        while True:
            try:
                events = self._model_events.get_nowait()
            except queue.Empty:
                return
            lens.emit(events)

    def version(self, lens: Lens) -> tuple[int, int, int]:
        """What the worker's state includes: (live events offered, events recorded, channels version)."""
        return self._live_seen, lens.monitor.events_seen, self._channels_version

    def catch_up(self, lens: Lens) -> tuple[int, int, int]:
        """Before an answer: record every event offered so far and re-read channels if they moved.

        :returns: the :meth:`version` the answer will include.
        """
        self._record_pending(lens)
        if self._channels_stale or self._channels_changed.is_set():
            self._channels_changed.clear()
            try:
                self._refresh_channels(lens, snapshot=False)
            except BackendError as exc:  # lightningd busy: answer with the channels known
                log.warning("lnlens: %s", exc)
        elif self._stats_dirty:
            self._publish_channels(lens)
        return self.version(lens)

    def _record_pending(self, lens: Lens) -> None:
        with self._lock:
            live = self.results.events_live
        batch: list[HtlcEvent] = []
        while True:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                break
        if batch:
            lens.monitor.record([self._refine(e) for e in batch], source="live")
            lens.monitor.flush()
            with self._lock:
                self.results.events_recorded_live += len(batch)
                self.results.events_recorded = lens.monitor.events_seen
                self.results.newest_event_time = lens.monitor.newest_event_time
            self._stats_dirty = True
            self._channels_stale = True
        self._live_seen = live

    def _refine(self, event: HtlcEvent) -> HtlcEvent:
        # Only live events: the channel's state now says nothing about a forward from last month.
        channel = self._by_id.get(event.out_channel) if event.out_channel is not None else None
        if event.failure_reason is None or channel is None:
            return event
        reason = refine_temporary_failure(
            event.failure_reason, out_msat=event.out_msat, spendable_msat=channel.spendable_msat,
            peer_connected=channel.active,
        )  # fmt: skip
        return event if reason is event.failure_reason else replace(event, failure_reason=reason)

    def _refresh_channels(self, lens: Lens, *, snapshot: bool) -> None:
        """Read our channels; ``snapshot`` also stores them (policy history, once per analysis run)."""
        assert lens.backend is not None
        channels = lens.backend.list_channels()
        self._by_id = {c.channel_id: c for c in channels}
        self._channels_stale = False
        self._channels_version += 1
        self._publish(channels_version=self._channels_version)
        lens.monitor.observe_channels(channels, snapshot=snapshot)
        self._publish_channels(lens)

    def _publish_channels(self, lens: Lens) -> None:
        now = self.clock.now()
        stats = {name: lens.monitor.flows.stats(name, now) for name in WINDOWS}
        rows = [channel_json(c, stats) for c in sorted(self._by_id.values(), key=lambda c: c.channel_id)]
        self._stats_dirty = False
        self._publish(channels=rows, channels_time=now, channels_rows_version=self.version(lens))

    def _analyze(self, lens: Lens, window: int, *, save: bool) -> dict[str, Any]:
        channels: Sequence[Channel] = list(self._by_id.values())
        # The live sliding windows answer their own lengths in milliseconds; other windows read the store.
        from_monitor = window in {length for length, _ in WINDOWS.values()}
        result = run_analysis(lens, since_s=window, channels=channels, save=save, from_monitor=from_monitor).to_json()
        self._trim_due = True
        with self._lock:
            done = self.results.backfill["state"] == "done"
        newest = lens.monitor.newest_event_time
        included = newest if newest is not None and newest >= result["run_time"] - window else None
        return {**result, "newest_event_time": included, "backfill_done": done, "restored": False}

    def _cycle(self, lens: Lens) -> None:
        """The periodic run: the default window, stored; ad-hoc windows computed earlier are dropped."""
        with self._lock:
            retry = self.results.backfill["state"] == "failed"
        if retry:
            self._backfill(lens)
        version = self.catch_up(lens)
        try:
            result = self._analyze(lens, DEFAULT_WINDOW_S, save=True)
        except (LnlensError, ValueError) as exc:
            log.warning("lnlens: analysis failed: %s", exc)
            return
        summary = {"run_time": result["run_time"], "window_s": result["window_s"],
                   "opportunities": len(result["opportunities"]), "channels": result["channels"]}  # fmt: skip
        self._announce(result["alerts"])
        stored = lens.store.forward_count()
        with self._lock:
            self.results.analyses = {DEFAULT_WINDOW_S: result}
            self.results.analysis_versions = {DEFAULT_WINDOW_S: version}
            self.results.last_analysis = summary
            self.results.forwards_stored, self.results.forwards_version = stored, version[:2]
        if self._policy is not None:
            self._run_policy()
        self._model_due.set()

    def _model_worker(self) -> None:
        """The liquidity model's runs, one each time the worker's periodic analysis asks for it, on this thread
        with its own store and RPC connections: a call to the worker (a new window) never waits for a model
        run. Its events go to the worker, which hands them to the plugins. At start it opens the model while
        the worker waits (:meth:`ModelLoop.prepare`), then its runs wait for the first analysis."""
        try:
            store = Store(self.config.db_path)
        except LnlensError as exc:
            log.warning("lnlens: liquidity model: cannot open the database: %s", exc)
            self._model_ready.set()
            return
        try:
            try:
                lens = _ModelLens(self.config, store=store, clock=self.clock, pm=self._model_pm,
                                  backend=ClnBackend(self._rpc_factory()), forward=self._model_events.put)  # fmt: skip
                self._model = ModelLoop(lens, ModelRegistry(store, self.config.data_dir / "models",
                                                            configured=self.config.model_path))  # fmt: skip
                self._model.prepare()
                release_free_memory()
            finally:
                self._model_ready.set()
            self._publish(liquidity_model=self._model.status())
            self._model_due.wait()
            while not self._stop.is_set():
                self._model_due.clear()
                self._run_model()
                release_free_memory()  # the run's pages (the session opened on the first one, its batch), freed
                self._wake.set()  # the worker passes the run's events on
                self._model_due.wait()
        except Exception:  # noqa: BLE001 - the model is optional: analyses and fees go on without it
            log.exception("lnlens: the liquidity model's thread stopped")
        finally:
            store.close()

    def _run_model(self) -> None:
        """The liquidity model's interval (model_loop): learn what matured, predict, suggest, measure drift.

        Rule-based lnlens goes on whatever happens here; the outcome is published for lens-status.
        """
        assert self._model is not None
        try:
            status = self._model.run()
        except Exception as exc:  # noqa: BLE001 - the model is optional: the worker (analysis, fees) must go on
            log.warning("lnlens: liquidity model run failed: %r", exc)
            status = {**self._model.status(), "error": repr(exc)}
        last = status.get("last_run") or {}
        if last.get("unavailable"):
            log.info("lnlens: liquidity model not used: %s", last["unavailable"])
        self._publish(liquidity_model=status)

    def _run_policy(self) -> None:
        """The policy run every lens-interval: plan, or apply when lens-dry-run=false."""
        assert self._policy is not None
        try:
            result = self._policy.tick()
        except LnlensError as exc:
            log.warning("lnlens: policy run failed: %s", exc)
            self._publish(last_policy_run={"error": str(exc)})
            return
        if result is not None:
            summary = {"time": result["plan"]["time"], "applied": result["applied"],
                       "summary": result["plan"]["summary"], "error": None}  # fmt: skip
            self._publish(last_policy_run=summary)

    def _announce(self, alerts: list[dict[str, Any]]) -> None:
        """Tell lightningd about alerts that were not active at the previous run (one notification each)."""
        active = {(a["type"], a["short_channel_id"]) for a in alerts}
        new = [a for a in alerts if (a["type"], a["short_channel_id"]) not in self._raised]
        self._raised = active
        if new and self._on_alerts is not None:
            self._on_alerts(new)


class _ModelLens(Lens):
    """The model thread's Lens: its events are passed to the worker (``forward``), which emits them."""

    def __init__(self, *args: Any, forward: Callable[[Sequence[LensEvent]], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forward = forward

    def emit(self, events: Sequence[LensEvent]) -> None:
        if events:
            self._forward(list(events))


def default_rpc_factory(lightning_dir: str, rpc_file: str) -> Callable[[], RpcLike]:
    """A factory of pyln ``LightningRpc`` connections to lightningd's socket."""
    from pyln.client import LightningRpc

    path = os.path.join(lightning_dir, rpc_file)
    return lambda: LightningRpc(path)
