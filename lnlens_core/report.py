"""The JSON shape of an analysis, shared by ``lnlens opportunities``, CLN's ``lens-opportunities``
and ``lnlens lnd opportunities``: CLN style — snake_case, integer ``*_msat``, ``short_channel_id``,
a top-level noun key. Bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from typing import Any

from .domain import Opportunity, Recommendation

__all__ = ["SCHEMA_VERSION", "opportunity_json", "recommendation_json"]

SCHEMA_VERSION = 1


def _cid(value: object) -> str | None:
    return str(value) if value is not None else None


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    return {
        "type": rec.kind.value,
        "short_channel_id": str(rec.channel_id),
        "reason": rec.reason,
        "source_channel": _cid(rec.source_channel),
        "target_channel": _cid(rec.target_channel),
        "amount_msat": rec.amount_msat,
        "proposed_fee_ppm": rec.proposed_fee_ppm,
        "evidence": dict(rec.evidence),
        "origin": rec.origin,
    }


def opportunity_json(opp: Opportunity) -> dict[str, Any]:
    cause = opp.cause
    return {
        "short_channel_id": str(opp.channel_id),
        "in_channel": _cid(opp.in_channel),
        "peer_id": opp.peer_id,
        "peer_alias": opp.peer_alias,
        "window_s": opp.window_s,
        "observed_s": opp.observed_s,
        "attempts": opp.attempts,
        "settled": opp.settled,
        "failed_liquidity": opp.failed_liquidity,
        "failed_fee": opp.failed_fee,
        "failed_other": opp.failed_other,
        "failed_downstream": opp.failed_downstream,
        "success_rate": round(opp.success_rate, 4) if opp.success_rate is not None else None,
        "cause": cause.value if cause else None,
        "revenue_msat": opp.revenue_msat,
        "missed_revenue_msat": opp.missed_revenue_msat,
        "missed_volume_msat": opp.missed_volume_msat,
        "missed_liquidity_msat": opp.missed_liquidity_msat,
        "projected_monthly_missed_msat": opp.projected_monthly_missed_msat,
        "projected_monthly_missed_low_msat": opp.projected_monthly_missed_low_msat,
        "projected_monthly_missed_high_msat": opp.projected_monthly_missed_high_msat,
        "urgency": opp.urgency,
        "urgency_components": dict(opp.urgency_components),
        "recommendations": [recommendation_json(r) for r in opp.recommendations],
    }
