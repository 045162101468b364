"""A simulated node served live (``lnlens serve --simulate``): the loop of LightningLens, closed.

A thread drives the simulator (any backend with ``run``, ``attach``, ``list_channels`` and
``rebalance``) in steps of ``interval`` simulated seconds, paced to ``speed`` simulated seconds
per real second. Its forwards reach the stream through the monitor and ``track_event``; after
each step the analysis runs from the monitor's windows, and every rebalance it or the liquidity
model suggests is published with an id. A client acknowledges one (``{"type": "ack",
"suggestion_id": n}``); the driver executes it on the simulated node and publishes the outcome.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import LnlensError
from ..lens import Lens
from ..model.loop import ModelLoop
from ..opportunities.report import recommendation_json
from ..opportunities.run import run_analysis
from .stream import Hub, StreamObserver
from .views import Live

__all__ = ["SimDriver"]

log = logging.getLogger(__name__)


class SimDriver:
    """Runs the simulation on its own thread (its Store is opened there: SQLite connections stay put).

    :param make_lens: builds the Lens (store, backend, clock) on the driver's thread.
    :param speed: simulated seconds per real second.
    :param interval_s: simulated seconds between analyses (and the step of the simulation).
    """

    def __init__(self, make_lens: Callable[[], Lens], hub: Hub, live: Live, *, speed: float = 600.0,
                 interval_s: int = 600, window_s: int = 86_400, max_steps: int | None = None) -> None:  # fmt: skip
        self.make_lens, self.hub, self.live = make_lens, hub, live
        self.speed, self.interval_s, self.window_s, self.max_steps = speed, interval_s, window_s, max_steps
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.steps = 0
        self.error: BaseException | None = None
        self._ids = itertools.count(1)
        self._by_id: dict[int, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        self.lens: Lens | None = None
        self.model_loop: ModelLoop | None = None
        self.model_status: dict[str, Any] | None = None
        """The model loop's last status (online learning, its last decision, drift)."""
        hub.on_ack = self.execute

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="lnlens-sim-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _main(self) -> None:
        try:
            self.lens = lens = self.make_lens()
            node: Any = lens.backend
            lens.pm.register(StreamObserver(self.hub), name="lnlens-stream")
            lens.monitor.load_history()
            with self.live.backend_lock:
                lens.monitor.observe_channels(node.list_channels())
                node.attach(lens.monitor)
            self.ready.set()
            while not self.stop_event.is_set() and (self.max_steps is None or self.steps < self.max_steps):
                self.step(lens, node)
                # Pacing in real time: Event.wait, so stop() ends the wait at once.
                self.stop_event.wait(self.interval_s / self.speed)
        except Exception as exc:  # noqa: BLE001 - the server keeps answering; the log and .error say why
            self.error = exc
            log.exception("the simulation stopped")
        finally:
            self.ready.set()

    def step(self, lens: Lens, node: Any) -> None:
        with self.live.backend_lock:
            node.run(self.interval_s)
            lens.monitor.observe_channels(node.list_channels())
            result = run_analysis(lens, since_s=self.window_s, from_monitor=True)
            alerts = result.to_json()["alerts"]
            suggestions = [recommendation_json(r) for o in result.opportunities for r in o.recommendations]
        suggestions += self._model_suggestions(lens)  # takes the backend lock only to read the channels
        self.steps += 1
        now = lens.clock.now()
        self.hub.publish_one("alerts", {"run_time": result.run_time, "alerts": alerts}, time=now)
        self._offer([s for s in suggestions if s["source_channel"] and s["target_channel"] and s["amount_msat"]], now)

    def _model_suggestions(self, lens: Lens) -> list[dict[str, Any]]:
        """The liquidity model's loop (lnlens_core.model.loop: online learning, the gate, predictions,
        drift; its decisions and drift go out as ``model`` messages); its suggestions, to offer with ids."""
        if self.model_loop is None:
            self.model_loop = ModelLoop.for_lens(lens, publish_suggestions=False, backend_lock=self.live.backend_lock)
        status = self.model_loop.run_safely()
        self.model_status = status
        view = self.model_loop.view
        if view is None:
            self.live.model_version = None
            log.info("no model suggestions: %s", (status.get("last_run") or {}).get("unavailable") or
                     status.get("error"))  # fmt: skip
            return []
        self.live.model_version = (status.get("last_run") or {}).get("model")
        return [recommendation_json(r) for r in view.suggestions]

    def _offer(self, recs: list[dict[str, Any]], now: float) -> None:
        """Give new suggestions ids and publish them; ones still suggested keep theirs."""
        open_by_key = {_key(s): s for s in self._by_id.values() if s["status"] == "open"}
        current = []
        for rec in recs:
            known = open_by_key.get(_key(rec))
            if known is None:
                known = {"id": next(self._ids), "status": "open", "time": now, **rec,
                         "max_fee_msat": rec["evidence"].get("max_fee_msat")}  # fmt: skip
                self._by_id[known["id"]] = known
                self.hub.publish_one("suggestion", known, time=now)
            current.append(known)
        for s in open_by_key.values():
            if s not in current:
                s["status"] = "expired"
        self.live.suggestions = current
        self.live.suggestions_time = now

    def execute(self, suggestion_id: int) -> str | None:
        """Carry out an acknowledged suggestion; returns a problem, or None once the outcome is published."""
        s = self._by_id.get(suggestion_id)
        if s is None:
            return f"no suggestion {suggestion_id}"
        if s["status"] != "open":
            return f"suggestion {suggestion_id} is {s['status']}, not open"
        lens = self.lens
        assert lens is not None
        node: Any = lens.backend
        s["status"] = "executing"
        with self.live.backend_lock:
            before = _balances(node, s)
            try:
                result = node.rebalance(s["source_channel"], s["target_channel"], s["amount_msat"],
                                        max_fee_msat=s["max_fee_msat"])  # fmt: skip
            except LnlensError as exc:
                s["status"] = "failed"
                return f"suggestion {suggestion_id}: {exc}"
            after = _balances(node, s)
            now = lens.clock.now()
        s["status"] = "executed" if result.ok else "failed"
        self.hub.publish_one("rebalance_result", {
            "suggestion_id": suggestion_id, "ok": result.ok, "amount_msat": result.amount_msat,
            "fee_msat": result.fee_msat, "attempts": result.attempts, "reason": result.reason,
            "source_channel": s["source_channel"], "target_channel": s["target_channel"],
            "local_balance_before_msat": before, "local_balance_after_msat": after,
        }, time=now)  # fmt: skip
        return None


def _key(s: dict[str, Any]) -> tuple[Any, ...]:
    return (s["origin"], s["type"], s["source_channel"], s["target_channel"])


def _balances(node: Any, s: dict[str, Any]) -> dict[str, int]:
    wanted = {s["source_channel"], s["target_channel"]}
    return {str(c.channel_id): c.local_balance_msat for c in node.list_channels() if str(c.channel_id) in wanted}
