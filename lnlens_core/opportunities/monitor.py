"""The HTLC monitor: the single sink every adapter feeds forwards into.

``record()`` stores events idempotently, counts what is new in the sliding windows
(:class:`~lnlens_core.opportunities.flows.WindowedFlows`) and queues it for the ``track_event``
hook; ``flush()`` hands the queue over as one batch per tick, so a busy node costs
one hook call per tick, not one per HTLC. ``backfill()`` pages a backend's history
from the stored cursor, storing each page with its cursor in one transaction, so a
restart resumes with no gap and no duplicate. ``load_history()`` rebuilds the
windows from the store after a restart; since only events new to the store are
ever counted, nothing is counted twice.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..backend import NodeBackend
from ..clock import Clock
from ..domain import Channel, HtlcEvent
from ..events import ForwardRecorded, LensEvent
from ..storage import Store
from ..storage.flowsql import FlowGroups, channel_rows
from .flows import IN, OUT, WINDOWS, PolicyBook, WindowedFlows, payment_corrections

__all__ = ["HtlcMonitor", "BackfillProgress"]

log = logging.getLogger(__name__)

_LOAD_ROWS = 8_192
"""Groups of stored forwards loaded into the live windows at a time by :meth:`HtlcMonitor.load_history`."""


def _group_rows(groups: FlowGroups, start: int, stop: int) -> FlowGroups:
    """Rows ``[start, stop)`` of ``groups`` (numpy views, list slices)."""
    return FlowGroups(groups.category[start:stop], groups.out_channel[start:stop], groups.in_channel[start:stop],
                      None if groups.bucket is None else groups.bucket[start:stop], groups.sums[start:stop],
                      groups.first[start:stop])  # fmt: skip


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

    def __init__(
        self,
        store: Store,
        clock: Clock,
        emit: Callable[[Sequence[LensEvent]], None],
        *,
        propagation_s: float = 3_600,
    ) -> None:
        self.store = store
        self.clock = clock
        self._emit = emit
        self._lock = threading.RLock()
        self._pending: list[LensEvent] = []
        self.events_seen = 0
        self.newest_event_time: float | None = None
        """The received time of the newest forward stored (None: none yet); answers say what they include."""
        self.book = PolicyBook()
        self.flows = WindowedFlows(self.book, propagation_s=propagation_s, pairs=False)
        self.history_loaded = False
        """Whether :meth:`load_history` ran: then ``book`` holds the store's policy history too."""

    def load_history(self) -> int:
        """Rebuild the policy book and the sliding windows from the store; returns the forwards counted.

        SQLite sums the stored forwards per channel and bucket of each window's ring
        (:meth:`~lnlens_core.storage.Store.flow_groups`): no object per forward, so a restart over
        a million forwards takes seconds and little memory.
        """
        with self._lock:
            for time, channel_id, policy in self.store.policy_changes():
                self.book.observe(channel_id, policy, time)
            self.flows = WindowedFlows(self.book, propagation_s=self.flows.propagation_s, pairs=False)
            self.flows.reserve(2 * self.book.channel_count())  # an in and an out key per channel we had
            newest = self.store.latest_forward_time()
            if newest is not None and (self.newest_event_time is None or newest > self.newest_event_time):
                self.newest_event_time = newest
            now = self.clock.now()
            counted = 0
            slots = {name: (now // bucket_s - length_s // bucket_s) * bucket_s  # each ring's oldest slot
                     for name, (length_s, bucket_s) in WINDOWS.items()}  # fmt: skip
            # Refused payments tied together as the live windows tie them, from the longest window's start.
            corrections = payment_corrections(self.store.payment_events(min(slots.values()), math.inf), self.book,
                                              propagation_s=self.flows.propagation_s)  # fmt: skip
            # The windows' oldest slots cut the time into segments, each summed once per side at the finest
            # bucket of the windows that hold it; a window adds its segments' buckets up into its own (the sizes
            # divide, and every slot starts on its window's grid): one pass over the month, not one per window.
            # Each segment's groups go into its windows' rings _LOAD_ROWS at a time and are dropped before the next
            # segment's are read, so the rebuild's memory does not grow with the groups a busy month has (issue
            # 16). Newest segment first, and a window's corrections once its oldest segment is in: the keys get
            # their rows in the order a window-by-window load gives them.
            starts = sorted(set(slots.values()))
            segments = list(zip(starts, [*starts[1:], math.inf], strict=True))[::-1]
            for by in ("out", "in"):  # a few rows per channel and bucket, never one per pair
                for lo, hi in segments:
                    windows = [(name, bucket_s) for name, (_, bucket_s) in WINDOWS.items() if slots[name] <= lo]
                    fine = math.gcd(*(bucket_s for _, bucket_s in windows))
                    groups = self.store.flow_groups(self.book, [lo], hi, bucket_s=fine, by=by,
                                                    propagation_s=self.flows.propagation_s)  # fmt: skip
                    if by == "in":
                        counted += int(groups.sums[:, 0, 0].sum())  # every forward has an in channel
                    first = float(groups.first.min(initial=math.inf))
                    for rows in range(0, len(groups.category), _LOAD_ROWS):
                        keys, buckets, counters = channel_rows(_group_rows(groups, rows, rows + _LOAD_ROWS))
                        for name, bucket_s in windows:
                            self.flows.load(name, keys, buckets * fine // bucket_s, counters,
                                            first if math.isfinite(first) else None)  # fmt: skip
                    del groups
                    for name, _ in windows:
                        if slots[name] == lo:
                            self._load_corrections(name, by, corrections, lo)
            self.history_loaded = True
            return counted

    def _load_corrections(self, name: str, by: str, corrections: list[tuple[HtlcEvent, list[int]]],
                          oldest: float) -> None:  # fmt: skip
        """A window's share of the refused payments' corrections (received from its oldest slot), on one side."""
        fixes = [(e, row) for e, row in corrections if e.received_time >= oldest
                 and (by == "in" or e.out_channel is not None)]  # fmt: skip
        if fixes:
            bucket_s = WINDOWS[name][1]
            at = [(OUT, e.out_channel, None) if by == "out" else (IN, e.in_channel, None) for e, _ in fixes]
            buckets = np.array([e.received_time // bucket_s for e, _ in fixes], dtype=np.int64)
            self.flows.load(name, at, buckets, np.array([r for _, r in fixes], dtype=np.int64), None)

    def observe_channels(self, channels: Sequence[Channel], *, snapshot: bool = True) -> None:
        """Note our channels' state now: policies for pricing missed forwards, and a snapshot in the store."""
        now = self.clock.now()
        with self._lock:
            self.book.observe_channels(channels, now)
            if snapshot:
                self.store.add_snapshots(channels, time=now)

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
        if new:
            newest = max(e.received_time for e in new)
            if self.newest_event_time is None or newest > self.newest_event_time:
                self.newest_event_time = newest
        self.flows.add(new)
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
        with self._lock:
            # A first backfill into an empty store builds the forwards indexes once, at the end.
            deferred = self.store.begin_bulk_ingest()
        try:
            while True:
                page = backend.list_forwards(cursor, limit=page_size)
                with self._lock:
                    now = self.clock.now()
                    new = self.store.ingest_page(page.events, stream=stream, cursor=page.next_cursor, now=now)
                    self._accept(new, "backfill")
                cursor = page.next_cursor
                pages, read, new_total = pages + 1, read + len(page.events), new_total + len(new)
                progress = BackfillProgress(stream, pages, read, new_total, cursor, page.done)
                if on_page is not None:
                    on_page(progress)
                if page.done:
                    log.info("backfill %s done: %d pages, %d events, %d new", stream, pages, read, new_total)
                    return progress
        finally:
            with self._lock:
                self.store.end_bulk_ingest(deferred)
