"""Every lnlens event kind becomes its documented stream message; unknown kinds are skipped."""

from __future__ import annotations

from lnlens_core.domain import ChannelId, ChannelPolicy, FeeUpdate
from lnlens_core.events import (
    FeeUpdateApplied,
    FeeUpdatePlanned,
    FeeUpdateRolledBack,
    FeeUpdateVetoed,
    OpportunitiesFound,
    StrategyFailed,
)
from lnlens_core.web.messages import SERVER_TYPES, from_events

CID = ChannelId(800_000, 1, 0)
OLD, NEW = ChannelPolicy(base_fee_msat=1000, fee_ppm=100), ChannelPolicy(base_fee_msat=1000, fee_ppm=150)


def test_fee_and_analysis_events_become_messages():
    events = [
        OpportunitiesFound(10.0, 3600, ()),
        FeeUpdatePlanned(11.0, CID, "p", "static", FeeUpdate(fee_ppm=150), "why", False),
        FeeUpdateApplied(12.0, 7, CID, OLD, NEW, True),
        FeeUpdateVetoed(13.0, CID, FeeUpdate(fee_ppm=9000), (("guard", "too high"),)),
        FeeUpdateRolledBack(14.0, 8, 7, CID, "revenue fell", True),
        StrategyFailed(15.0, CID, "static", "boom"),
        object(),  # a kind this stream version does not know
    ]
    out = from_events(events)  # type: ignore[arg-type]
    assert [kind for kind, _, _ in out] == ["opportunities", "fee_planned", "fee_applied", "fee_vetoed",
                                           "fee_rolled_back", "strategy_failed"]  # fmt: skip
    assert all(kind in SERVER_TYPES for kind, _, _ in out)
    assert [t for _, t, _ in out] == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    data = {kind: d for kind, _, d in out}
    assert data["opportunities"] == {"run_time": 10.0, "window_s": 3600, "count": 0, "missed_revenue_msat": 0,
                                     "top": []}  # fmt: skip
    assert data["fee_planned"]["changes"] == {"fee_ppm": 150} and data["fee_planned"]["applying"] is False
    assert data["fee_applied"]["old"]["fee_ppm"] == 100 and data["fee_applied"]["new"]["fee_ppm"] == 150
    assert data["fee_vetoed"]["vetoes"] == [{"plugin": "guard", "reason": "too high"}]
    assert data["fee_rolled_back"] == {"journal_id": 8, "rollback_of": 7, "short_channel_id": "800000x1x0",
                                       "reason": "revenue fell", "automatic": True}  # fmt: skip
    assert data["strategy_failed"]["error"] == "boom"
