"""The stream of a server that reads a database another process writes (plain ``lnlens serve``).

No ``track_event`` reaches this process, so a thread polls the store every ``poll_s`` real
seconds and publishes what is new since the last look: forwards received later than the newest
one seen (``forward``), a new analysis run (``opportunities``) and its alerts (``alerts``).
A forward that is stored first as ``offered`` and resolves later is published once, as first seen.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..storage import Store
from .messages import from_events
from .stream import Hub

__all__ = ["StoreWatcher"]

log = logging.getLogger(__name__)

_MAX_PER_POLL = 10_000  # a burst beyond this goes out over the next polls


class StoreWatcher:
    """Polls ``db_path`` on its own thread (its own connection) and publishes to ``hub``."""

    def __init__(self, db_path: Path, hub: Hub, *, poll_s: float = 2.0) -> None:
        self.db_path, self.hub, self.poll_s = db_path, hub, poll_s
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="lnlens-store-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _main(self) -> None:
        store = Store(self.db_path)
        try:
            last_time = store.latest_data_time() or 0.0
            seen_at_last = {e.key for e in store.iter_forwards(since=last_time) if e.received_time == last_time}
            last_run = store.latest_opportunities()[0]
            while not self.stop_event.wait(self.poll_s):
                last_time, seen_at_last = self._forwards(store, last_time, seen_at_last)
                last_run = self._analysis(store, last_run)
                self.polls += 1
        except Exception:  # noqa: BLE001 - the API goes on answering; the stream just has no store events
            log.exception("the store watcher stopped")
        finally:
            store.close()

    def _forwards(self, store: Store, last_time: float, seen: set[str]) -> tuple[float, set[str]]:
        from ..events import ForwardRecorded

        batch = []
        for event in store.iter_forwards(since=last_time):
            if event.received_time == last_time and event.key in seen:
                continue
            batch.append(event)
            if len(batch) >= _MAX_PER_POLL:
                break
        if not batch:
            return last_time, seen
        newest = max(e.received_time for e in batch)
        at_newest = {e.key for e in batch if e.received_time == newest}
        seen = (seen | at_newest) if newest == last_time else at_newest
        self.hub.publish(from_events([ForwardRecorded(e, "store") for e in batch]))
        return newest, seen

    def _analysis(self, store: Store, last_run: float | None) -> float | None:
        run_time, items = store.latest_opportunities()
        if run_time is None or run_time == last_run:
            return last_run
        per_channel = [o for o in items if o.get("in_channel") is None]
        data: dict[str, Any] = {
            "run_time": run_time, "window_s": per_channel[0]["window_s"] if per_channel else None,
            "count": len(per_channel), "missed_revenue_msat": sum(o["missed_revenue_msat"] for o in per_channel),
            "top": per_channel[:10],
        }  # fmt: skip
        alerts = [a for a in store.alerts(since=run_time) if a["run_time"] == run_time]
        self.hub.publish([("opportunities", run_time, data), ("alerts", run_time, {"run_time": run_time,
                         "alerts": alerts})])  # fmt: skip
        return run_time
