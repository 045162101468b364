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
    OpportunitiesFound,
    StrategyFailed,
)
from ..report import opportunity_json

__all__ = ["STREAM_VERSION", "SERVER_TYPES", "CLIENT_TYPES", "from_events", "policy_json"]

STREAM_VERSION = 1
SERVER_TYPES = (
    "hello", "heartbeat", "forward", "opportunities", "alerts", "fee_planned", "fee_applied", "fee_vetoed",
    "fee_rolled_back", "strategy_failed", "suggestion", "rebalance_result", "error",
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
    return None  # a kind this stream version does not carry


def from_events(events: Sequence[LensEvent]) -> list[tuple[str, float, dict[str, Any]]]:
    """``(type, time, data)`` for every event this stream version carries, in order."""
    return [m for e in events if (m := _one(e)) is not None]
