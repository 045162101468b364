"""What the plugin's worker publishes for the RPC handlers, and the last saved analysis after a restart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lnlens_core.opportunities.report import SCHEMA_VERSION
from lnlens_core.storage import Store

__all__ = ["Results", "restored_result"]


@dataclass(slots=True)
class Results:
    """What the worker publishes; the I/O thread only reads it (under ``LensService._lock``)."""

    worker: str = "starting"
    error: str | None = None
    backfill: dict[str, Any] = field(
        default_factory=lambda: {"state": "pending", "pages": 0, "forwards_read": 0, "forwards_new": 0,
                                 "cursor": None, "error": None}
    )  # fmt: skip
    events_live: int = 0
    events_recorded: int = 0
    events_recorded_live: int = 0
    newest_event_time: float | None = None
    """The received time of the newest forward stored, as of the last catch-up."""
    history_loaded: bool = False
    """The worker rebuilt its windows from the store: from now on every answer is computed current."""
    channels_version: int = 0
    """Bumped at each re-read of our channels; with the event counters it says whether a stored answer is current."""
    forwards_stored: int | None = None
    forwards_version: tuple[int, int] | None = None
    """(events offered, events recorded) when ``forwards_stored`` was counted."""
    analyses: dict[int, dict[str, Any]] = field(default_factory=dict)
    analysis_versions: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """Per stored window: (events offered, events recorded, channels version) it includes."""
    last_analysis: dict[str, Any] | None = None
    last_policy_run: dict[str, Any] | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    channels_time: float | None = None
    channels_rows_version: tuple[int, int, int] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    liquidity_model: dict[str, Any] | None = None
    """The model loop's status (lnlens_core.model.loop): online learning, its last decision, drift."""


def restored_result(store: Store) -> dict[str, Any] | None:
    """The last analysis a previous run saved, shaped as a lens-opportunities answer (``restored``: true).

    Lets the plugin answer at once after a restart, before its history is reloaded;
    the run's alerts come from the store, its vetoes are not saved (empty here).
    """
    when, rows = store.latest_opportunities()
    if when is None or not rows:
        return None
    return {
        "schema_version": SCHEMA_VERSION, "run_time": when, "newest_event_time": store.latest_forward_time(until=when),
        "window_s": rows[0]["window_s"],
        "channels": len(store.latest_channels(at=when)[1]),
        "opportunities": [r for r in rows if r["in_channel"] is None],
        "pairs": [r for r in rows if r["in_channel"] is not None],
        "vetoed": [], "alerts": [_alert_json(a) for a in store.alerts(since=when) if a["run_time"] == when],
        "backfill_done": False, "restored": True,
    }  # fmt: skip


def _alert_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": row["kind"], "short_channel_id": row["channel_id"], "message": row["message"],
            "evidence": row["evidence"]}  # fmt: skip
