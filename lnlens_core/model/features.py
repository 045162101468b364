"""The liquidity model's features: the single definition, shared by training and inference.

One row per channel, in :data:`FEATURE_NAMES` order, computed from the channel as the
node reports it now and from flow counters over two windows (the last hour and the
last 24 hours) — :class:`~lnlens_core.opportunities.flows.FlowStats` from the store
(:class:`~lnlens_core.opportunities.flows.FlowCounter`) or from the live monitor's sliding windows.
Training code (``models/train``) and the store-based learner call the very same
functions, so the features a model was trained on are the features it is served.

**Nothing is invented.** A value the data cannot give is ``NaN``: a success rate
without attempts, an average amount without a settled forward, the peer's fee when
its policy is unknown, any flow rate when the window saw no data at all. Rates
divide by the time actually observed inside the window (never by zero), so a node
that has run for two hours is not mistaken for a quiet one. The model decides what
to do with ``NaN`` (its pipeline imputes with the training medians, see docs/MODEL.md).

Change a feature's meaning or order and :data:`FEATURE_VERSION` must change; the
inference side refuses a model whose metadata names other features or another version.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..domain import Channel, ChannelId, ChannelPolicy
from ..opportunities.flows import Flow, FlowCounter, FlowStats, PolicyBook

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "SHORT_WINDOW_S",
    "LONG_WINDOW_S",
    "FeatureWindows",
    "compute_features",
    "windows_from_events",
]

FEATURE_VERSION = 1
SHORT_WINDOW_S = 3_600
LONG_WINDOW_S = 86_400
_CHUNK = 4_096

FEATURE_NAMES: tuple[str, ...] = (
    "balance_ratio",  # local / (local + remote)
    "capacity_log10_sat",
    "active",  # 1 when the channel is usable now
    "out_volume_rate_1h",  # settled volume leaving per hour, as a share of capacity
    "in_volume_rate_1h",  # settled volume arriving per hour, share of capacity
    "out_volume_rate_24h",
    "in_volume_rate_24h",
    "net_out_rate_24h",  # out - in, per hour, share of capacity
    "net_out_trend",  # net out rate over the last hour minus over the last 24 h
    "out_attempts_log1p_per_h_24h",  # forwards that tried to leave, per hour (log1p)
    "in_settled_log1p_per_h_24h",  # forwards that arrived and settled, per hour (log1p)
    "liquidity_failures_log1p_per_h_24h",
    "liquidity_failure_share_24h",  # of attempts leaving; NaN without attempts
    "fee_failure_share_24h",
    "other_failure_share_24h",
    "missed_volume_rate_24h",  # volume refused here per hour, share of capacity
    "out_success_rate_24h",  # settled / attempts leaving; NaN without attempts
    "avg_out_amount_share_24h",  # mean settled amount leaving / capacity; NaN without a settled forward
    "fee_ppm_log1p",
    "peer_fee_ppm_log1p",  # the peer's fee toward us; NaN when unknown
    "fee_vs_peer_log",  # fee_ppm_log1p - peer_fee_ppm_log1p
    "fee_vs_node_median_log",  # fee_ppm_log1p - log1p(median fee of our channels)
    "hours_since_policy_change",  # NaN when no change was ever seen
    "observed_hours_24h",  # how much of the 24 h window had data: data sufficiency
)
_I = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True, slots=True)
class FeatureWindows:
    """The two windows of flow counters the features read, as of ``now``."""

    now: float
    short: FlowStats  # the last hour
    long: FlowStats  # the last 24 hours


def windows_from_events(events, book: PolicyBook, now: float, *, propagation_s: float = 3_600,
                        pairs: bool = True) -> FeatureWindows:  # fmt: skip
    """Exact counters over the last hour and day from resolved forwards (the store's or a simulation's).

    :param events: any iterable of :class:`~lnlens_core.domain.HtlcEvent`; only those received in
        ``[now - 24 h, now)`` count.
    :param pairs: also count channel pairs; the features read channels only (:func:`compute_features`), so a
        caller that wants only them passes False (a day's pairs on a 1,000-channel node: ~20,000 more keys).
    """
    short = FlowCounter(book, since=now - SHORT_WINDOW_S, until=now, propagation_s=propagation_s, pairs=pairs)
    long = FlowCounter(book, since=now - LONG_WINDOW_S, until=now, propagation_s=propagation_s, pairs=pairs)
    # In chunks: a day of a busy node's forwards counted at once held ~50 MB of per-event rows at its peak
    # (issue 16); the counters are the same, as the live windows are fed in batches too.
    it = iter(events)
    while chunk := list(itertools.islice(it, _CHUNK)):
        short.add(chunk)
        long.add(chunk)
    return FeatureWindows(now, short.stats(), long.stats())


def _hours(stats: FlowStats, length_s: int) -> float:
    """Hours of the window that had data (0 when none)."""
    return min(max(stats.observed_s, 0.0), float(length_s)) / 3_600


def _log1p(value: float) -> float:
    return math.log1p(value) if value >= 0 else math.nan


def compute_features(
    channels: Sequence[Channel],
    windows: FeatureWindows,
    *,
    peer_policies: Mapping[ChannelId, ChannelPolicy | None] | None = None,
    book: PolicyBook | None = None,
) -> np.ndarray:
    """The feature matrix, one row per channel in ``channels`` order, float64, ``NaN`` where unknown.

    :param peer_policies: the peer's policy per channel (``NodeBackend.get_peer_policy``); missing or
        None means unknown (NaN), never a default fee.
    :param book: our policy history, for the time since our last change; None leaves it NaN.
    """
    x = np.full((len(channels), len(FEATURE_NAMES)), np.nan, dtype=np.float64)
    if not channels:
        return x
    h_short, h_long = _hours(windows.short, SHORT_WINDOW_S), _hours(windows.long, LONG_WINDOW_S)
    fees = [ch.local_policy.fee_ppm for ch in channels if ch.local_policy is not None]
    median_log = math.log1p(statistics.median(fees)) if fees else math.nan
    peers = peer_policies or {}
    empty = Flow()
    for row, ch in enumerate(channels):
        v = x[row]
        total = ch.local_balance_msat + ch.remote_balance_msat
        if total > 0:
            v[_I["balance_ratio"]] = ch.local_balance_msat / total
        cap = ch.capacity_msat
        if cap > 0:
            v[_I["capacity_log10_sat"]] = math.log10(cap / 1000) if cap >= 1000 else 0.0
        own = ch.local_policy  # None: the node cannot tell it (its fee features stay NaN)
        v[_I["active"]] = 1.0 if ch.active and not (own is not None and own.disabled) else 0.0
        cid = ch.channel_id
        out_s, in_s = windows.short.out.get(cid, empty), windows.short.inbound.get(cid, empty)
        out_l, in_l = windows.long.out.get(cid, empty), windows.long.inbound.get(cid, empty)
        if cap > 0 and h_short > 0:
            v[_I["out_volume_rate_1h"]] = out_s.volume_msat / cap / h_short
            v[_I["in_volume_rate_1h"]] = in_s.volume_msat / cap / h_short
        if h_long > 0:
            if cap > 0:
                v[_I["out_volume_rate_24h"]] = out_l.volume_msat / cap / h_long
                v[_I["in_volume_rate_24h"]] = in_l.volume_msat / cap / h_long
                v[_I["net_out_rate_24h"]] = (out_l.volume_msat - in_l.volume_msat) / cap / h_long
                v[_I["missed_volume_rate_24h"]] = out_l.missed_volume_msat / cap / h_long
                if h_short > 0:
                    net_short = (out_s.volume_msat - in_s.volume_msat) / cap / h_short
                    v[_I["net_out_trend"]] = net_short - v[_I["net_out_rate_24h"]]
            v[_I["out_attempts_log1p_per_h_24h"]] = math.log1p(out_l.attempts / h_long)
            v[_I["in_settled_log1p_per_h_24h"]] = math.log1p(in_l.settled / h_long)
            v[_I["liquidity_failures_log1p_per_h_24h"]] = math.log1p(out_l.failed_liquidity / h_long)
        if out_l.attempts:
            v[_I["liquidity_failure_share_24h"]] = out_l.failed_liquidity / out_l.attempts
            v[_I["fee_failure_share_24h"]] = out_l.failed_fee / out_l.attempts
            v[_I["other_failure_share_24h"]] = out_l.failed_other / out_l.attempts
            v[_I["out_success_rate_24h"]] = out_l.settled / out_l.attempts
        if out_l.settled and cap > 0:
            v[_I["avg_out_amount_share_24h"]] = out_l.volume_msat / out_l.settled / cap
        ours = _log1p(own.fee_ppm) if own is not None else math.nan
        v[_I["fee_ppm_log1p"]] = ours
        v[_I["fee_vs_node_median_log"]] = ours - median_log
        peer = peers.get(cid)
        if peer is not None:
            theirs = _log1p(peer.fee_ppm)
            v[_I["peer_fee_ppm_log1p"]] = theirs
            v[_I["fee_vs_peer_log"]] = ours - theirs
        if book is not None:
            changed = book.last_change_before(cid, windows.now)
            if changed is not None:
                v[_I["hours_since_policy_change"]] = max(windows.now - changed, 0.0) / 3_600
        v[_I["observed_hours_24h"]] = h_long
    return x
