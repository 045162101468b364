"""Alerts: conditions an operator should hear about now, not at the next report.

Pure, like the analyzer: windowed flow statistics and channels in, alerts out.

- ``depleted``: local balance below ``depleted_ratio`` of the channel while forwards
  failed on it for liquidity in the last 24 h — it is turning traffic away now;
- ``stuck``: an active channel with no settled forward either way in 7 days although
  both sides hold at least ``stuck_min_ratio`` of it — capital that earns nothing;
- ``failure_spike``: failures at our node in the last hour are at least
  ``spike_factor`` times the channel's hourly average over 24 h, and at least
  ``spike_min_failures``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain import Channel, ChannelId
from .flows import Flow, FlowStats

__all__ = ["AlertKind", "Alert", "AlertParams", "find_alerts"]


class AlertKind(enum.StrEnum):
    DEPLETED = "depleted"
    STUCK = "stuck"
    FAILURE_SPIKE = "failure_spike"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    channel_id: ChannelId
    message: str
    evidence: dict[str, int | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertParams:
    depleted_ratio: float = 0.05
    stuck_min_ratio: float = 0.1
    spike_factor: float = 3.0
    spike_min_failures: int = 5


def find_alerts(
    last_hour: FlowStats, last_day: FlowStats, last_week: FlowStats, channels: Sequence[Channel], params: AlertParams
) -> list[Alert]:
    """Every alert that holds now, by kind then channel."""
    alerts: list[Alert] = []
    for ch in sorted(channels, key=lambda c: c.channel_id):
        ratio = ch.balance_ratio
        if ratio is None:
            continue
        day = last_day.out.get(ch.channel_id, Flow())
        if ratio < params.depleted_ratio and day.failed_liquidity:
            message = f"{ratio:.1%} local and {day.failed_liquidity} forwards failed for liquidity in 24 h"
            evidence = {"local_ratio": round(ratio, 4), "failed_liquidity_24h": day.failed_liquidity}
            alerts.append(Alert(AlertKind.DEPLETED, ch.channel_id, message, evidence))
        settled_week = last_week.out.get(ch.channel_id, Flow()).settled
        settled_week += last_week.inbound.get(ch.channel_id, Flow()).settled
        balanced = params.stuck_min_ratio <= ratio <= 1 - params.stuck_min_ratio
        if ch.active and balanced and settled_week == 0 and last_week.observed_s >= 7 * 86_400 * 0.99:
            alerts.append(Alert(AlertKind.STUCK, ch.channel_id,
                                f"no forward in 7 days with {ratio:.0%} local: the capital earns nothing",
                                {"local_ratio": round(ratio, 4), "capacity_msat": ch.capacity_msat}))  # fmt: skip
        hour = last_hour.out.get(ch.channel_id, Flow()).failed_here
        hourly_avg = day.failed_here / 24
        if hour >= params.spike_min_failures and hour >= params.spike_factor * hourly_avg:
            alerts.append(Alert(AlertKind.FAILURE_SPIKE, ch.channel_id,
                                f"{hour} failures in the last hour against {hourly_avg:.1f} per hour over 24 h",
                                {"failed_1h": hour, "hourly_average_24h": round(hourly_avg, 2)}))  # fmt: skip
    return sorted(alerts, key=lambda a: (list(AlertKind).index(a.kind), a.channel_id))
