"""The HTLC monitor: the single sink every adapter feeds forwards into.

``record()`` stores events idempotently and queues what is new for the
``track_event`` hook; ``flush()`` hands the queue over as one batch per tick, so a
busy node costs one hook call per tick, not one per HTLC. ``backfill()`` pages a
backend's history from the stored cursor, storing each page with its cursor in one
transaction, so a restart resumes with no gap and no duplicate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .backend import NodeBackend
from .clock import Clock
from .domain import HtlcEvent
from .events import ForwardRecorded, LensEvent
from .storage import Store

__all__ = ["HtlcMonitor", "BackfillProgress"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """Where a backfill stands: pages and events read so far, and whether it finished."""

    stream: str
    pages: int
    events_read: int
    events_new: int
    cursor: str | None
    done: bool


class HtlcMonitor:
    """Persist forwards and pass the new ones on to observers.

    Thread-safe: adapters may call :meth:`record` from their event thread while a
    scheduler calls :meth:`flush`.

    :param emit: receives each batch of events (``Lens.emit``).
    """

    def __init__(self, store: Store, clock: Clock, emit: Callable[[Sequence[LensEvent]], None]) -> None:
        self.store = store
        self.clock = clock
        self._emit = emit
        self._lock = threading.RLock()
        self._pending: list[LensEvent] = []
        self.events_seen = 0

    def record(self, events: HtlcEvent | Iterable[HtlcEvent], *, source: str = "live") -> list[HtlcEvent]:
        """Store forwards (one or many) and queue the new ones for ``track_event``.

        :returns: the events that were new or newly resolved (already-known ones are skipped).
        """
        batch = [events] if isinstance(events, HtlcEvent) else list(events)
        with self._lock:
            new = self.store.ingest_forwards(batch, source=source)
            self._accept(new, source)
        return new

    def _accept(self, new: Sequence[HtlcEvent], source: str) -> None:
        self.events_seen += len(new)
        self._pending.extend(ForwardRecorded(event, source) for event in new)

    def flush(self) -> int:
        """Hand everything queued since the last flush to ``track_event`` as one batch."""
        with self._lock:
            batch, self._pending = self._pending, []
        self._emit(batch)
        return len(batch)

    def backfill(
        self,
        backend: NodeBackend,
        *,
        stream: str | None = None,
        page_size: int = 1000,
        on_page: Callable[[BackfillProgress], None] | None = None,
    ) -> BackfillProgress:
        """Read the backend's history from the stored cursor until it reports done.

        :param stream: the cursor's name in the store; defaults to ``<backend>:forwards``.
        :param on_page: called after each stored page (progress bars, lens-status).
        """
        stream = stream or f"{backend.name}:forwards"
        cursor = self.store.get_cursor(stream)
        pages = read = new_total = 0
        while True:
            page = backend.list_forwards(cursor, limit=page_size)
            with self._lock:
                new = self.store.ingest_page(page.events, stream=stream, cursor=page.next_cursor, now=self.clock.now())
                self._accept(new, "backfill")
            cursor = page.next_cursor
            pages, read, new_total = pages + 1, read + len(page.events), new_total + len(new)
            progress = BackfillProgress(stream, pages, read, new_total, cursor, page.done)
            if on_page is not None:
                on_page(progress)
            if page.done:
                log.info("backfill %s done: %d pages, %d events, %d new", stream, pages, read, new_total)
                return progress
