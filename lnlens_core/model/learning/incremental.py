"""The samples of :func:`~lnlens_core.model.learning.dataset.dataset_from_store`, built as they mature.

``dataset_from_store`` reads the whole store and builds every sample each time: fine for a
one-shot ``lnlens model train``, a minute of a daemon's worker at a million forwards. A
:class:`SampleStream` builds each sample once, when its target window has passed, reading
only what that sample needs: the snapshots at its time, the forwards of the day before it
and the hours after it, and our policies over that range (:class:`.PolicyHistory`). The
sample times are the same (snapshot times at least ``every_s`` apart, chained from the
store's first snapshot) and so are the rows (tests/model/test_incremental.py).

The stream keeps the matured samples of the last ``window_s`` (the held-out window of the
online learner and the rolling window of the drift indicators); samples that leave it are
handed out once (:meth:`SampleStream.pop_expired`), for the learner.
"""

from __future__ import annotations

import bisect
from time import perf_counter  # durations only, never the wall clock

import numpy as np

from ...storage.rows import channel_from_row
from ..features import LONG_WINDOW_S
from ..target import TARGET_HORIZON_S
from .dataset import Dataset, samples_at
from .policy_history import PolicyHistory

__all__ = ["SampleStream", "SETTLE_S"]

SETTLE_S = 600.0
"""A sample is built this long after its target window has passed in the store's data, so that
forwards still in flight at the window's end have resolved (a sample is built once, never redone)."""
_TIMES_PAGE = 256


class SampleStream:
    """Matured samples, oldest first, each built once from a bounded read of the store.

    :param lookback_s: the first :meth:`advance` starts this far before the newest matured sample
        time (older history is never read); later calls continue where the last one stopped.
    :param window_s: matured samples kept in :attr:`window` (by sample time, from the newest).
    :param history: our policy history, shared with the process's other model reads.
    """

    def __init__(self, *, every_s: float = 3_600, horizon_s: float = TARGET_HORIZON_S, window_s: float = 86_400,
                 lookback_s: float = 86_400, settle_s: float = SETTLE_S, group: str = "online",
                 history: PolicyHistory | None = None) -> None:  # fmt: skip
        self.every_s, self.horizon_s, self.window_s = every_s, horizon_s, window_s
        self.lookback_s, self.settle_s, self.group = lookback_s, settle_s, group
        self.history = history or PolicyHistory()
        self.last_time: float | None = None
        """The last sample time of the chain that was built or skipped."""
        self.window = Dataset.empty()
        self._expired: list[Dataset] = []
        self.built = 0
        self.forwards_read = 0
        self.caught_up = False
        """No matured sample time was left unbuilt by the last :meth:`advance`."""

    # -- which times ----------------------------------------------------------------

    def matured_until(self, store) -> float | None:
        """The newest sample time whose target window (and settling margin) the store's data has passed."""
        last = store.latest_data_time()
        return None if last is None else last - self.horizon_s - self.settle_s

    def _chain(self, store, after: float | None, until: float, limit: int) -> list[float]:
        """The next chain times after ``after`` (the chain's start when None) up to ``until``, at most ``limit``.

        The chain is dataset_from_store's: the first snapshot time, then each next snapshot time
        at least ``every_s`` after the previous one (compared as it does, ``t - previous >= every_s``).
        """
        out: list[float] = []
        prev = after
        # One second of slack: `prev + every_s` may round above a time with `t - prev == every_s`.
        lo = None if prev is None else prev + self.every_s - 1.0
        while len(out) < limit:
            page = store.snapshot_times_from(lo, limit=_TIMES_PAGE)
            for t in page:
                if t > until or len(out) >= limit:
                    return out
                if prev is None or t - prev >= self.every_s:
                    out.append(t)
                    prev = t
            if len(page) < _TIMES_PAGE:
                return out
            lo = page[-1] if prev is None else max(page[-1], prev + self.every_s - 1.0)
        return out

    def _skip_to(self, store, start: float) -> None:
        """Walk the chain (indexed reads of snapshot times only) up to the last time before ``start``."""
        while True:
            times = self._chain(store, self.last_time, start, _TIMES_PAGE)
            times = [t for t in times if t < start]
            if not times:
                return
            self.last_time = times[-1]

    # -- building -------------------------------------------------------------------

    def advance(self, store, *, limit: int = 6, budget_s: float | None = None) -> Dataset:
        """Build the samples of at most ``limit`` more matured sample times; returns them (also in the window).

        :param budget_s: with a budget the times are built one by one, and no new one is started once
            this many seconds have passed (at least one is built): a bound on a daemon's interval that
            adapts to the node's traffic. Without one they share a single read of the store.
        """
        started = perf_counter()
        until = self.matured_until(store)
        self.caught_up = True
        if until is None:
            return Dataset.empty()
        if self.last_time is None and self.built == 0:
            self._skip_to(store, until - self.lookback_s)
        times = self._chain(store, self.last_time, until, limit)
        if not times:
            return Dataset.empty()
        if budget_s is None:
            new, done = self.build(store, times), len(times)
        else:
            parts, done = [], 0
            while done < len(times) and (not done or perf_counter() - started < budget_s):
                parts.append(self.build(store, times[done : done + 1]))
                done += 1
            new = Dataset.concat(parts)
        self.last_time = times[done - 1]
        self.built += done
        self.caught_up = not self._chain(store, self.last_time, until, 1)
        self._slide(new)
        return new

    def build(self, store, times: list[float]) -> Dataset:
        """The samples at these snapshot times, from one bounded read of snapshots and forwards."""
        lo, hi = min(times) - LONG_WINDOW_S, max(times) + self.horizon_s
        rows = store.snapshots_at(times)
        events = list(store.iter_forwards(since=lo, until=hi))
        self.forwards_read += len(events)
        channels = {e.in_channel for e in events} | {e.out_channel for e in events if e.out_channel is not None}
        book = self.history.cover(store, lo, max(times), channels=channels)
        received = [e.received_time for e in events]
        by_time: dict[float, list] = {}
        for row in rows:
            by_time.setdefault(row["time"], []).append(channel_from_row(row))
        parts = []
        for t in times:
            a, b = bisect.bisect_left(received, t - LONG_WINDOW_S), bisect.bisect_left(received, t + self.horizon_s)
            parts.append(samples_at(t, by_time.get(t, []), events[a:b], book, group=self.group,
                                    horizon_s=self.horizon_s))  # fmt: skip
        return Dataset.concat(parts)

    # -- the rolling window ---------------------------------------------------------

    def _slide(self, new: Dataset) -> None:
        data = Dataset.concat([self.window, new])
        if not len(data):
            return
        cut = float(data.times.max()) - self.window_s
        old = data.times <= cut
        if old.any():
            self._expired.append(data.select(old))
        self.window = data.select(~old)

    def pop_expired(self) -> Dataset:
        """The samples that left the window since the last call, oldest first (each handed out once)."""
        out, self._expired = Dataset.concat(self._expired), []
        return out

    def window_span(self) -> tuple[float, float] | None:
        """(oldest, newest) sample time in the window."""
        if not len(self.window):
            return None
        return float(np.min(self.window.times)), float(np.max(self.window.times))
