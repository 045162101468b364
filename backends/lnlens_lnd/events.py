"""The live HTLC feed: SubscribeHtlcEvents into the monitor, reconnecting, with no forward lost or counted twice.

On every (re)connect the order is: subscribe, wait for lnd's ``subscribed_event``,
*then* page ForwardingHistory from the stored cursor. A forward settled before the
subscription is in the history; one settled after it arrives on the stream; one in
both is stored once, because both sources give it the same key
(``in_channel/in_htlc_id``) and the store ingests idempotently.

lnd keeps neither its event stream nor failed forwards: failures that happen while
the stream is down are lost (lnd's own limit), settled forwards never are. Before lnd
0.20 the history carries no HTLC ids, so a live settle and its history entry would
not share a key: then settles are taken from the history only (a settle on the
stream triggers a re-sync) and the stream contributes failures. lnd writes its
forwarding log in batches (every 15 s), so the history is also re-read every
``resync_s`` to pick up settles whose offer the stream never saw.

A reader thread moves messages into a queue; the consumer converts and stores
everything queued in one transaction per batch, and flushes the monitor once per
batch (the ``track_event`` hook sees batches, not single HTLCs).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lnlens_core.clock import Clock
from lnlens_core.domain import ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendError, BackendUnavailable
from lnlens_core.opportunities.monitor import HtlcMonitor

from .backend import LndBackend
from .convert import HtlcConverter
from .rpc import HtlcStream, LndAuthError

__all__ = ["LiveForwards", "FeedStats", "history_stream"]

log = logging.getLogger(__name__)


def history_stream(backend: LndBackend) -> str:
    """The name the history cursor is stored under: one per lnd node, so a database pointed at another
    node never resumes from the first node's position."""
    return f"lnd:{backend.info.pubkey}:forwards"


_END = object()


@dataclass
class FeedStats:
    connects: int = 0
    drops: int = 0
    messages: int = 0
    recorded: int = 0
    resyncs: int = 0
    backfilled: int = 0
    last_error: str = ""


class LiveForwards:
    """Keep the store in step with lnd until ``stop`` is set.

    :param backoff_s: first and longest wait between reconnects (doubling in between).
    :param resync_s: re-read the history this often even when nothing asks for it.
    :param batch: most messages stored in one transaction.
    :param linger_s: store at most once per this many seconds: a message arriving sooner after the last store
        waits for the rest of that time, so a busy stream is stored in a few large transactions rather than many
        small ones (each commit costs a disk sync); one arriving after a quiet spell is stored at once, and a
        stream that keeps the consumer busy longer than this is never held back.
    """

    def __init__(
        self,
        backend: LndBackend,
        monitor: HtlcMonitor,
        clock: Clock,
        stop: threading.Event,
        *,
        backoff_s: tuple[float, float] = (1.0, 60.0),
        resync_s: float = 300.0,
        page_size: int = 1000,
        batch: int = 5000,
        linger_s: float = 0.05,
        on_tick: Callable[[], object] | None = None,
    ) -> None:
        self.backend = backend
        self.monitor = monitor
        self.clock = clock
        self.stop = stop
        self.backoff_s = backoff_s
        self.resync_s = resync_s
        self.page_size = page_size
        self.batch = batch
        self.linger_s = linger_s
        self.on_tick = on_tick
        """Called between batches and before each reconnect wait, on the thread that stores (the daemon's
        scheduler runs here, so one thread owns the database)."""
        self.converter = HtlcConverter()
        self.stats = FeedStats()
        self.connected = threading.Event()
        self._stream: HtlcStream | None = None
        self._lock = threading.RLock()  # close() may run in a signal handler on the thread that holds it

    def close(self) -> None:
        """Set the stop event and end the open stream, so :meth:`run` returns promptly."""
        self.stop.set()
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()

    def resync(self) -> int:
        """Page ForwardingHistory from the stored cursor into the store; returns forwards new to it."""
        progress = self.monitor.backfill(self.backend, stream=history_stream(self.backend), page_size=self.page_size)
        self.monitor.flush()
        self.stats.resyncs += 1
        self.stats.backfilled += progress.events_new
        return progress.events_new

    def run(self) -> None:
        """Subscribe, re-sync, consume; on a drop wait (backoff) and start over, until stopped.

        :raises LndAuthError: lnd stopped accepting the macaroon (revoked, expired): retrying cannot help.
        """
        delay = self.backoff_s[0]
        while not self.stop.is_set():
            try:
                self._session()
                reason = "stream ended"
            except LndAuthError:
                raise
            except BackendError as exc:
                reason = str(exc)
            if self.connected.is_set():
                # A session that got going (subscribed and caught up with the history) resets the backoff; one
                # whose subscription worked but whose history read failed keeps growing it.
                delay = self.backoff_s[0]
            self.connected.clear()
            if self.stop.is_set():
                break
            self.stats.drops += 1
            self.stats.last_error = reason
            log.warning("lnd HTLC stream: %s; reconnecting in %g s", reason, delay)
            self._tick()
            if self.clock.sleep(delay, self.stop):
                break
            delay = min(delay * 2, self.backoff_s[1])

    def _session(self) -> None:
        stream = self.backend.subscribe_htlc_events()
        with self._lock:
            if self.stop.is_set():
                stream.cancel()
                return
            self._stream = stream
        q: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read, args=(stream, q), name="lnd-htlc-reader", daemon=True)
        reader.start()
        try:
            first = q.get()
            if first is _END:
                return
            if isinstance(first, BaseException):
                raise first
            if first.WhichOneof("event") != "subscribed_event":
                q.put(first)  # an lnd that does not announce the subscription: treat it as a message
            self.stats.connects += 1
            self.resync()
            self.connected.set()
            self._consume(q)
        finally:
            stream.cancel()
            reader.join(timeout=5)
            with self._lock:
                self._stream = None

    def _consume(self, q: queue.Queue) -> None:
        live_settles = self.backend.history_has_htlc_ids
        next_sync = self.clock.now() + self.resync_s
        next_store = 0.0  # time.monotonic(): the earliest the next batch is stored
        while not self.stop.is_set():
            try:
                items = [q.get(timeout=0.2)]
            except queue.Empty:
                self._tick()
                if self.clock.now() >= next_sync:
                    self.resync()
                    next_sync = self.clock.now() + self.resync_s
                continue
            wait = next_store - time.monotonic()
            if wait > 0 and q.qsize() < self.batch:
                self.stop.wait(wait)
            next_store = time.monotonic() + self.linger_s
            while len(items) < self.batch:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            events: list[HtlcEvent] = []
            ended, error, need_sync = False, None, False
            for item in items:
                if item is _END:
                    ended = True
                    break
                if isinstance(item, BaseException):
                    error = item
                    break
                self.stats.messages += 1
                unmatched = self.converter.unmatched_settles
                event = self.converter.feed(item)
                need_sync = need_sync or self.converter.unmatched_settles != unmatched
                if event is None:
                    continue
                if event.status is ForwardStatus.SETTLED and not live_settles:
                    need_sync = True
                else:
                    events.append(event)
            if events:
                self.stats.recorded += len(self.monitor.record(events, source="live"))
                self.monitor.flush()
            if need_sync or self.clock.now() >= next_sync:
                self.resync()
                next_sync = self.clock.now() + self.resync_s
            self._tick()
            if error is not None:
                raise error
            if ended:
                return

    def _tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()


def _read(stream, q: queue.Queue) -> None:
    try:
        for msg in stream:
            q.put(msg)
        q.put(_END)
    except BackendError as exc:
        q.put(exc)
    except Exception as exc:  # noqa: BLE001 - the consumer thread reports it; a reader must never die silently
        q.put(BackendUnavailable(f"lnd HTLC stream failed: {exc!r}"))
