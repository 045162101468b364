"""The JSON shape of an analysis, shared by ``lnlens opportunities``, CLN's ``lens-opportunities``
and ``lnlens lnd opportunities``: CLN style — snake_case, integer ``*_msat``, ``short_channel_id``,
a top-level noun key. Bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain import Channel, Opportunity, Recommendation
from .flows import Flow, FlowStats

__all__ = ["SCHEMA_VERSION", "opportunity_json", "recommendation_json", "channel_json", "flow_json", "FLOW_FIELDS"]

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
        "missed_revenue_htlc_msat": opp.missed_revenue_htlc_msat,
        "missed_recovered_msat": opp.missed_recovered_msat,
        "projected_monthly_missed_msat": opp.projected_monthly_missed_msat,
        "projected_monthly_missed_low_msat": opp.projected_monthly_missed_low_msat,
        "projected_monthly_missed_high_msat": opp.projected_monthly_missed_high_msat,
        "urgency": opp.urgency,
        "urgency_components": dict(opp.urgency_components),
        "recommendations": [recommendation_json(r) for r in opp.recommendations],
    }


FLOW_FIELDS = ("attempts", "settled", "failed_liquidity", "failed_fee", "failed_other", "failed_downstream",
               "revenue_msat", "volume_msat", "missed_revenue_msat")  # fmt: skip


def flow_json(flow: Flow | None) -> dict[str, int]:
    flow = flow or Flow()
    return {name: int(getattr(flow, name)) for name in FLOW_FIELDS}


def channel_json(c: Channel, stats: Mapping[str, FlowStats]) -> dict[str, Any]:
    """One channel with its balances, our policy, and its flows per window and direction."""
    p = c.local_policy
    return {
        "short_channel_id": str(c.channel_id), "peer_id": c.peer_id, "peer_alias": c.peer_alias,
        "active": c.active, "private": c.private, "capacity_msat": c.capacity_msat,
        "local_balance_msat": c.local_balance_msat, "remote_balance_msat": c.remote_balance_msat,
        "spendable_msat": c.spendable_msat, "receivable_msat": c.receivable_msat,
        "balance_ratio": round(c.balance_ratio, 4) if c.balance_ratio is not None else None,
        # None: the node cannot tell our policy on this channel (missing from its graph)
        "base_fee_msat": p and p.base_fee_msat, "fee_ppm": p and p.fee_ppm, "min_htlc_msat": p and p.min_htlc_msat,
        "max_htlc_msat": p and p.max_htlc_msat, "cltv_delta": p and p.cltv_delta,
        "windows": {
            name: {"out": flow_json(s.out.get(c.channel_id)), "in": flow_json(s.inbound.get(c.channel_id))}
            for name, s in stats.items()
        },
    }  # fmt: skip
