"""The worker in-process: what a restarted plugin answers before its first run; answers while the model runs."""

from __future__ import annotations

import queue
import threading
import time

from lnlens_cln.service import LensService, restored_result
from lnlens_testing.cln.checks import validate
from lnlens_testing.cln.rpc import SimLightningRpc

from lnlens_core.clock import ManualClock, SystemClock
from lnlens_core.config import LensConfig
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.lens import Lens
from lnlens_core.model.loop import ModelLoop
from lnlens_core.opportunities.run import run_analysis
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode, make_channel


def test_a_restart_answers_with_the_last_saved_analysis(tmp_path, config, pm):
    clock = ManualClock()
    channels = [make_channel("800000x1x0", local_ratio=0.01, fee_ppm=2000), make_channel("800000x2x0", local_ratio=0.9)]
    failed = [
        HtlcEvent(channels[1].channel_id, 2_000_000, ForwardStatus.LOCAL_FAILED, clock.now() - 600 + i, in_htlc_id=i,
                  out_channel=channels[0].channel_id, failcode=4103,
                  failure_reason=FailureReason.INSUFFICIENT_BALANCE, resolved_time=clock.now() - 600 + i)
        for i in range(12)
    ]  # fmt: skip
    store = Store(config.db_path)
    assert restored_result(store) is None  # a new database has nothing to restore
    lens = Lens(config, store=store, clock=clock, pm=pm, backend=FakeNode(channels))
    lens.monitor.observe_channels(channels)
    lens.monitor.record(failed)
    saved = run_analysis(lens, since_s=86_400, channels=channels).to_json()
    assert saved["opportunities"], "the premise: a depleted channel with liquidity failures"

    restored = validate("lens-opportunities", restored_result(store))
    assert restored["restored"] is True and restored["backfill_done"] is False
    assert restored["run_time"] == saved["run_time"] and restored["window_s"] == 86_400
    assert restored["opportunities"] == saved["opportunities"] and restored["pairs"] == saved["pairs"]
    assert restored["channels"] == 2
    assert restored["opportunities"][0]["short_channel_id"] == str(ChannelId.parse("800000x1x0"))
    store.close()


class _Rpc:
    """pyln's ``call`` over the stand-in's RPC methods, in-process."""

    def __init__(self, node) -> None:
        self.rpc = SimLightningRpc(node)

    def call(self, method, payload=None):
        return self.rpc.handle(method, payload or {})


def test_a_new_window_is_answered_while_the_model_runs(config, monkeypatch):
    """The first window asked after start does not wait for the liquidity model's run (seconds at start, as
    learning catches up): the run has a thread of its own. Here it never ends until the answer came."""
    running, release = threading.Event(), threading.Event()

    def slow_run(loop):
        running.set()
        release.wait(60)
        return loop.status()

    monkeypatch.setattr(ModelLoop, "run", slow_run)
    node = FakeNode([make_channel("800000x1x0", local_ratio=0.01), make_channel("800000x2x0", local_ratio=0.9)])
    service = LensService(config, lambda: _Rpc(node), clock=SystemClock())
    service.start()
    try:
        assert running.wait(60), "the premise: the first analysis ran and the model run began"
        answers: queue.SimpleQueue = queue.SimpleQueue()
        service.opportunities(7_200, min_urgency=0, limit=None, reply=answers.put)
        answer = answers.get(timeout=30)
        assert answer["window_s"] == 7_200 and not release.is_set()
    finally:
        release.set()
        service.stop()


def test_the_worker_hands_freed_memory_back_after_start_up_and_each_interval(tmp_path, monkeypatch, standin):
    """Issue 16: after the start-up rebuild and backfill, and after each periodic analysis, the worker asks the C
    heap to hand its free pages back (lnlens_core.memory), as the LND sidecar does; so does the model's thread
    after each of its runs (the first opens the model's sessions), and the worker after a job that analysed a
    new window: counted, not measured."""
    import lnlens_cln.service as service

    seen: list[tuple[str, str, float]] = []
    with_2h: list[str] = []  # who released while the 2 h window's answer was stored (a periodic run drops it)
    worker: dict[str, service.LensService] = {}

    def release() -> bool:
        results = worker["lens"].results
        seen.append((threading.current_thread().name, results.backfill["state"],
                     len(results.analyses) and results.last_analysis["run_time"]))  # fmt: skip
        if 7_200 in results.analyses:
            with_2h.append(threading.current_thread().name)
        return True

    def by(thread: str) -> list[tuple[str, float]]:
        return [(state, t) for name, state, t in seen if name == thread]

    monkeypatch.setattr(service, "release_free_memory", release)
    config = LensConfig(data_dir=tmp_path, db_path=tmp_path / "lnlens.sqlite3", interval_s=600)
    clock = ManualClock(SystemClock().now())
    lens = worker["lens"] = service.LensService(
        config, service.default_rpc_factory(str(standin.lightning_dir), "lightning-rpc"), clock=clock)  # fmt: skip
    lens.start()
    try:
        deadline = time.monotonic() + 60
        while (len(by("lnlens-worker")) < 3 or len(by("lnlens-model")) < 2) and time.monotonic() < deadline \
                and lens.results.error is None:  # fmt: skip
            time.sleep(0.05)
        cycles = len(by("lnlens-worker"))
        answers: queue.SimpleQueue = queue.SimpleQueue()
        lens.opportunities(7_200, min_urgency=0, limit=None, reply=answers.put)
        assert answers.get(timeout=30)["window_s"] == 7_200
        while "lnlens-worker" not in with_2h and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        lens.stop()
    assert lens.results.error is None, lens.results.error
    ran = by("lnlens-worker")[:cycles]
    assert len(ran) >= 3, seen
    (state, analysed), *intervals = ran
    assert (state, analysed) == ("done", 0), "first after the backfill, before any analysis"
    times = [t for _, t in intervals]
    assert all(times) and times == sorted(set(times)), "then once after each interval's analysis"
    assert times[1] - times[0] >= config.interval_s
    (_, opened), *runs = by("lnlens-model")
    assert opened == 0 and runs and all(t for _, t in runs), "the model's thread at start, then after its runs"
    assert "lnlens-worker" in with_2h, "and the worker after the job that analysed 2 h"


def test_the_model_is_opened_before_the_worker_rebuilds_the_history(config, monkeypatch):
    """Issue 16: the model's thread opens the model at start (ModelLoop.prepare) while the worker waits, so the
    lookup tables' transient (~60 MB) comes while the plugin holds little, not on top of the rebuilt windows."""
    from lnlens_core.opportunities.monitor import HtlcMonitor

    order: list[str] = []
    real = HtlcMonitor.load_history
    monkeypatch.setattr(ModelLoop, "prepare", lambda self: order.append("model") or time.sleep(0.2))
    monkeypatch.setattr(HtlcMonitor, "load_history", lambda self: order.append("history") or real(self))
    node = FakeNode([make_channel("800000x1x0", local_ratio=0.01), make_channel("800000x2x0", local_ratio=0.9)])
    service = LensService(config, lambda: _Rpc(node), clock=SystemClock())
    service.start()
    try:
        deadline = time.monotonic() + 60
        while not service.results.history_loaded and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        service.stop()
    assert order[:2] == ["model", "history"], order
