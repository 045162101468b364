"""One analysis run: the store's forwards over a window → ranked opportunities, through the hooks.

This is the composition the CLI, the CLN plugin and the LND sidecar all call; the
formulas live in :mod:`analyzer` and :mod:`recommendations`, the counting in :mod:`flows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..domain import Channel, ChannelId, Opportunity, Recommendation
from ..events import OpportunitiesFound
from ..plugins import call_each
from .alerts import Alert, AlertParams, find_alerts
from .analyzer import analyze
from .flows import WINDOWS, FlowStats, PolicyBook
from .params import AnalyzerParams
from .report import SCHEMA_VERSION, opportunity_json, recommendation_json

if TYPE_CHECKING:
    from ..lens import Lens

__all__ = ["AnalysisResult", "run_analysis", "filter_opportunities"]


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    run_time: float
    since: float
    channels_seen: int
    opportunities: tuple[Opportunity, ...]
    pairs: tuple[Opportunity, ...]
    vetoed: tuple[tuple[str, Recommendation, str], ...]
    """(plugin, recommendation, reason) for every recommendation a plugin vetoed."""
    alerts: tuple[Alert, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_time": self.run_time,
            "window_s": round(self.run_time - self.since),
            "channels": self.channels_seen,
            "opportunities": [opportunity_json(o) for o in self.opportunities],
            "pairs": [opportunity_json(o) for o in self.pairs],
            "vetoed": [
                {"plugin": plugin, "reason": reason, "recommendation": recommendation_json(rec)}
                for plugin, rec, reason in self.vetoed
            ],
            "alerts": [
                {"type": a.kind.value, "short_channel_id": str(a.channel_id), "message": a.message,
                 "evidence": dict(a.evidence)}
                for a in self.alerts
            ],
        }  # fmt: skip


def _review(lens: Lens, opp: Opportunity, vetoed: list[tuple[str, Recommendation, str]]) -> Opportunity:
    """Let plugins add recommendations, then veto any of them."""
    recs = list(opp.recommendations)
    for plugin, call in call_each(lens.pm.hook.add_recommendations, lens=lens, opportunity=opp):
        recs.extend(replace(r, origin=plugin) for r in call() or ())
    kept = []
    for rec in recs:
        reasons = [
            (plugin, str(reason))
            for plugin, call in call_each(
                lens.pm.hook.check_recommendation, lens=lens, recommendation=rec, opportunity=opp
            )
            if (reason := call())
        ]
        if reasons:
            vetoed.extend((plugin, rec, reason) for plugin, reason in reasons)
        else:
            kept.append(rec)
    return replace(opp, recommendations=tuple(kept))


def run_analysis(
    lens: Lens,
    *,
    since_s: int,
    params: AnalyzerParams | None = None,
    channels: Sequence[Channel] | None = None,
    save: bool = True,
    from_monitor: bool = False,
) -> AnalysisResult:
    """Analyze the forwards received in the last ``since_s`` seconds.

    :param params: thresholds and weights; default: the ``[analyzer]`` settings.
    :param channels: our channels now; default: the backend's, else the newest snapshot.
    :param save: store the run (``opportunities`` table) and tell ``track_event``.
    :param from_monitor: take the alerts' last hour, day and week from the live monitor's sliding
        windows, as always once the monitor loaded the history (a running plugin or daemon); the
        analysis window is always summed from the store by SQLite (exact, per channel and per
        pair, in well under a second for a million forwards). One-shot commands sum the alerts'
        windows from the store too.
    """
    now = lens.clock.now()
    params = params or lens.analyzer_params
    if channels is None:
        channels = lens.backend.list_channels() if lens.backend is not None else lens.store.latest_channels()[1]
    if from_monitor or lens.monitor.history_loaded:
        # A running plugin or daemon: its live windows answer the alerts, SQLite sums only the analysis window.
        stats = store_window_stats(lens, {"analysis": since_s}, now=now, channels=channels,
                                   propagation_s=params.propagation_s)["analysis"]  # fmt: skip
        windows = _monitor_windows(lens, now)
    else:
        stats, windows = _store_stats(lens, since_s, now, channels, params)
    found, pairs = analyze(stats, channels, params)
    vetoed: list[tuple[str, Recommendation, str]] = []
    found = [_review(lens, opp, vetoed) for opp in found]
    alerts = find_alerts(*windows, channels, AlertParams())
    result = AnalysisResult(now, now - since_s, len(channels), tuple(found), tuple(pairs), tuple(vetoed), tuple(alerts))
    if save:
        lens.store.save_opportunities([opportunity_json(o) for o in (*found, *pairs)], run_time=now)
        lens.store.save_alerts(result.to_json()["alerts"], run_time=now)
        lens.emit([OpportunitiesFound(now, since_s, tuple(found))])
    return result


_ALERT_SPANS = (3_600, 86_400, 7 * 86_400)


def _monitor_windows(lens: Lens, now: float) -> list[FlowStats]:
    by_length = {length: name for name, (length, _) in WINDOWS.items()}
    return [lens.monitor.flows.stats(by_length[span], now) for span in _ALERT_SPANS]


def store_window_stats(
    lens: Lens, spans: Mapping[str, int], *, now: float, channels: Sequence[Channel], propagation_s: float = 3_600
) -> dict[str, FlowStats]:
    """Exact counters over several windows ending ``now``, summed by SQLite in one pass over the store."""
    book = policy_book(lens, channels, now)
    stats = lens.store.flow_stats(book, [now - span for span in spans.values()], now, propagation_s=propagation_s)
    return dict(zip(spans, stats, strict=True))


def policy_book(lens: Lens, channels: Sequence[Channel], now: float) -> PolicyBook:
    """Our policy history (the monitor's once it loaded the store's, else the store's) and the channels' now."""
    if lens.monitor.history_loaded:
        book = lens.monitor.book.copy()
    else:
        book = PolicyBook()
        for time, channel_id, policy in lens.store.policy_changes():
            book.observe(channel_id, policy, time)
    book.observe_channels(channels, now)
    return book


def _store_stats(
    lens: Lens, since_s: int, now: float, channels: Sequence[Channel], params: AnalyzerParams
) -> tuple[FlowStats, list[FlowStats]]:
    # Alerts look at the last hour, day and week; one pass over the store feeds every counter.
    spans = {"analysis": since_s, **{str(span): span for span in _ALERT_SPANS}}
    stats = store_window_stats(lens, spans, now=now, channels=channels, propagation_s=params.propagation_s)
    return stats["analysis"], [stats[str(span)] for span in _ALERT_SPANS]


def filter_opportunities(
    items: Sequence[dict[str, Any]], *, min_urgency: int = 0, channel: ChannelId | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Select from JSON opportunities as the CLI and RPC arguments ask."""
    chosen = [
        o
        for o in items
        if o["urgency"] >= min_urgency and (channel is None or str(channel) in (o["short_channel_id"], o["in_channel"]))
    ]
    return chosen[:limit] if limit is not None else chosen
