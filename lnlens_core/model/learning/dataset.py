"""Training data: one row per (channel, sample time) with features, target and the net-value curve."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...domain import Channel, ChannelId, HtlcEvent
from ...opportunities.flows import PolicyBook
from ..features import FEATURE_NAMES, LONG_WINDOW_S, compute_features, windows_from_events
from ..target import MOVES, TARGET_HORIZON_S, RouteCost, targets


@dataclass(slots=True)
class Dataset:
    """Samples: features ``x``, target ``y``, current ratio, net-value curves (msat at each ``candidates``
    ratio), group and time."""

    x: np.ndarray
    y: np.ndarray
    current: np.ndarray
    curves: np.ndarray
    groups: list[str] = field(default_factory=list)
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls) -> Dataset:
        return cls(
            np.zeros((0, len(FEATURE_NAMES))), np.zeros(0), np.zeros(0), np.zeros((0, len(MOVES))), [], np.zeros(0)
        )

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def concat(cls, parts: Sequence[Dataset]) -> Dataset:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.vstack([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.current for p in parts]),
            np.vstack([p.curves for p in parts]),
            [g for p in parts for g in p.groups],
            np.concatenate([p.times for p in parts]),
        )

    def select(self, mask: np.ndarray) -> Dataset:
        idx = np.flatnonzero(mask)
        return Dataset(
            self.x[idx],
            self.y[idx],
            self.current[idx],
            self.curves[idx],
            [self.groups[i] for i in idx],
            self.times[idx],
        )

    def hash(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for a in (self.x, self.y, self.curves):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def samples_at(
    now: float,
    channels: Sequence[Channel],
    events: Sequence[HtlcEvent],
    book: PolicyBook,
    *,
    group: str,
    peer_policies=None,
    horizon_s: float = TARGET_HORIZON_S,
    costs: Mapping[ChannelId, RouteCost] | None = None,
) -> Dataset:
    """Rows for every channel at ``now``: features from the past day, target from the next ``horizon_s``.

    Channels without balance-relevant demand in the future window have no target and are left out.

    :param costs: each channel's route cost rates (quoted where the backend can); defaults otherwise.
    """
    windows = windows_from_events((e for e in events if now - LONG_WINDOW_S <= e.received_time < now), book, now)
    x = compute_features(channels, windows, peer_policies=peer_policies, book=book)
    totals = {
        ch.channel_id: (ch.local_balance_msat + ch.remote_balance_msat, ch.balance_ratio)
        for ch in channels
        if ch.balance_ratio is not None
    }
    future = [e for e in events if now <= e.received_time < now + horizon_s]
    found = targets(future, totals, now, horizon_s, costs)
    keep, ys, curves = [], [], []
    for i, ch in enumerate(channels):
        if ch.channel_id not in found or found[ch.channel_id][0] is None:
            continue
        y, curve = found[ch.channel_id]
        keep.append(i)
        ys.append(y)
        curves.append(curve)
    if not keep:
        return Dataset.empty()
    current = np.array([channels[i].balance_ratio for i in keep], dtype=np.float64)
    return Dataset(
        x[keep], np.array(ys), current, np.array(curves, dtype=np.float64), [group] * len(keep), np.full(len(keep), now)
    )


def dataset_from_store(store, *, every_s: float = 3_600, horizon_s: float = TARGET_HORIZON_S, group: str = "store"):
    """Samples from a node's own history: at each snapshot time (at most one per ``every_s``) whose
    future ``horizon_s`` is fully in the store, the snapshot's channels, the forwards around it."""
    last = store.latest_data_time()
    if last is None:
        return Dataset.empty()
    book = PolicyBook()
    for time, cid, policy in store.policy_history():
        book.observe(cid, policy, time)
    times = sorted({row["time"] for row in store.snapshots()})
    chosen: list[float] = []
    for t in times:
        if t + horizon_s <= last and (not chosen or t - chosen[-1] >= every_s):
            chosen.append(t)
    parts = []
    for t in chosen:
        _, channels = store.latest_channels(at=t)
        events = list(store.iter_forwards(since=t - LONG_WINDOW_S, until=t + horizon_s))
        parts.append(samples_at(t, channels, events, book, group=group, horizon_s=horizon_s))
    return Dataset.concat(parts)


def iter_chunks(data: Dataset, size: int) -> Iterable[Dataset]:
    """The dataset in time order, ``size`` samples at a time (the online learner's stream)."""
    order = np.argsort(data.times, kind="stable")
    for start in range(0, len(order), size):
        mask = np.zeros(len(data), dtype=bool)
        mask[order[start : start + size]] = True
        yield data.select(mask)


def time_split(data: Dataset, holdout_share: float = 0.25) -> tuple[Dataset, Dataset]:
    """(older, most recent): the held-out recent window a candidate must win on."""
    if not len(data):
        return data, data
    cut = np.quantile(data.times, 1.0 - holdout_share)
    return data.select(data.times < cut), data.select(data.times >= cut)
