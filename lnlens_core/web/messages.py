"""The stream's messages (version :data:`STREAM_VERSION`): JSON objects built from lnlens events.

Every message is ``{"v": 1, "type": ..., "seq": n, "time": t, "data": {...}}``; ``seq`` counts
per connection from 1, so a client sees whether it missed something. docs/api.md documents
each type; a test checks every type built here against that list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..domain import ChannelPolicy
from ..events import (
    FeeUpdateApplied,
    FeeUpdatePlanned,
    FeeUpdateRolledBack,
    FeeUpdateVetoed,
    ForwardRecorded,
    LensEvent,
    ModelCandidateDecided,
    ModelDriftMeasured,
    ModelSuggested,
    OpportunitiesFound,
    StrategyFailed,
)
from ..opportunities.report import opportunity_json, recommendation_json

__all__ = ["STREAM_VERSION", "SERVER_TYPES", "CLIENT_TYPES", "from_events", "policy_json"]

STREAM_VERSION = 1
SERVER_TYPES = (
    "hello", "heartbeat", "forward", "opportunities", "alerts", "fee_planned", "fee_applied", "fee_vetoed",
    "fee_rolled_back", "strategy_failed", "suggestion", "rebalance_result", "model", "error",
)  # fmt: skip
CLIENT_TYPES = ("ack",)


def policy_json(p: ChannelPolicy) -> dict[str, Any]:
    return {"base_fee_msat": p.base_fee_msat, "fee_ppm": p.fee_ppm, "inbound_base_fee_msat": p.inbound_base_fee_msat,
            "inbound_fee_ppm": p.inbound_fee_ppm, "min_htlc_msat": p.min_htlc_msat, "max_htlc_msat": p.max_htlc_msat,
            "cltv_delta": p.cltv_delta, "disabled": p.disabled}  # fmt: skip


def _one(e: LensEvent) -> tuple[str, float, dict[str, Any]] | None:
    if isinstance(e, ForwardRecorded):
        f = e.event
        return "forward", f.resolved_time or f.received_time, {
            "key": f.key, "in_channel": str(f.in_channel), "out_channel": str(f.out_channel) if f.out_channel else None,
            "in_msat": f.in_msat, "out_msat": f.out_msat, "fee_msat": f.fee_msat, "status": f.status.value,
            "failure_reason": f.failure_reason.value if f.failure_reason else None,
            "received_time": f.received_time, "resolved_time": f.resolved_time, "source": e.source,
        }  # fmt: skip
    if isinstance(e, OpportunitiesFound):
        return "opportunities", e.run_time, {
            "run_time": e.run_time, "window_s": e.window_s, "count": len(e.opportunities),
            "missed_revenue_msat": sum(o.missed_revenue_msat for o in e.opportunities),
            "top": [opportunity_json(o) for o in e.opportunities[:10]],
        }  # fmt: skip
    if isinstance(e, FeeUpdatePlanned):
        return "fee_planned", e.time, {
            "short_channel_id": str(e.channel_id), "policy": e.policy, "strategy": e.strategy,
            "changes": e.update.fields_set(), "reason": e.reason, "applying": e.applying,
        }  # fmt: skip
    if isinstance(e, FeeUpdateApplied):
        return "fee_applied", e.time, {
            "journal_id": e.journal_id, "short_channel_id": str(e.channel_id), "old": policy_json(e.old),
            "new": policy_json(e.new), "verified": e.verified,
        }  # fmt: skip
    if isinstance(e, FeeUpdateVetoed):
        return "fee_vetoed", e.time, {
            "short_channel_id": str(e.channel_id), "changes": e.update.fields_set(),
            "vetoes": [{"plugin": p, "reason": r} for p, r in e.vetoes],
        }  # fmt: skip
    if isinstance(e, FeeUpdateRolledBack):
        return "fee_rolled_back", e.time, {
            "journal_id": e.journal_id, "rollback_of": e.rollback_of, "short_channel_id": str(e.channel_id),
            "reason": e.reason, "automatic": e.automatic,
        }  # fmt: skip
    if isinstance(e, StrategyFailed):
        return "strategy_failed", e.time, {"short_channel_id": str(e.channel_id), "strategy": e.strategy,
                                           "error": e.error}  # fmt: skip
    if isinstance(e, ModelCandidateDecided):
        return "model", e.time, {
            "kind": "decision", "model_id": e.model_id, "name": e.name, "version": e.version,
            "promoted": e.promoted, "reason": e.reason, "candidate_mae": e.candidate_mae,
            "current_mae": e.current_mae, "holdout_samples": e.holdout_samples,
        }  # fmt: skip
    if isinstance(e, ModelDriftMeasured):
        return "model", e.time, {"kind": "drift", **e.summary}
    return None  # a kind this stream version does not carry


def _suggestions(e: ModelSuggested) -> list[tuple[str, float, dict[str, Any]]]:
    # A daemon cannot carry a rebalance out, so its suggestions have no id to acknowledge (hello's acks: false).
    return [("suggestion", e.time, {"id": None, "status": "open", "time": e.time, "model_version": e.model,
                                    **recommendation_json(r), "max_fee_msat": r.evidence.get("max_fee_msat")})
            for r in e.suggestions]  # fmt: skip


def from_events(events: Sequence[LensEvent]) -> list[tuple[str, float, dict[str, Any]]]:
    """``(type, time, data)`` for every event this stream version carries, in order."""
    out: list[tuple[str, float, dict[str, Any]]] = []
    for e in events:
        if isinstance(e, ModelSuggested):
            out += _suggestions(e)
        elif (m := _one(e)) is not None:
            out.append(m)
    return out
