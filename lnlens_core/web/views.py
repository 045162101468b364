"""What each endpoint answers, as plain JSON data read from the store (never invented).

Each view takes the thread's :class:`~lnlens_core.lens.Lens`, the checked query
parameters and the server's :class:`Live` state (what this process computed itself:
a node backend, the model's latest suggestions).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..backend import NodeBackend
from ..domain import ForwardStatus
from ..errors import LnlensError, ModelError
from ..fees.api import history, plan_or_apply
from ..lens import Lens
from ..model.info import model_name, stored_drift, with_drift
from ..model.registry import ModelRegistry, default_model_path
from ..model.suggestions import ORIGIN
from ..opportunities.report import SCHEMA_VERSION, channel_json
from ..opportunities.run import filter_opportunities
from .params import Param

__all__ = ["Live", "ROUTES", "Conflict"]

API_VERSION = 1


class Conflict(Exception):
    """The request is valid but this server cannot answer it (409), e.g. a plan with no node backend."""


@dataclass
class Live:
    """What the serving process knows beyond the store.

    :param backend: the node, when the server runs next to one (simulator, CLN plugin); plans need it.
    :param backend_lock: held while the node is being driven, so a plan sees one consistent state.
    """

    backend: NodeBackend | None = None
    backend_lock: threading.Lock = field(default_factory=threading.Lock)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    """Rebalances this process offers for acknowledgement on the stream (``lnlens serve --simulate``)."""
    suggestions_time: float | None = None
    model_version: str | None = None


def node_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    info = None
    if live.backend is not None:
        with live.backend_lock:
            i = live.backend.get_info()
        info = {"pubkey": i.pubkey, "alias": i.alias, "network": i.network, "block_height": i.block_height,
                "version": i.version, "backend": i.backend}  # fmt: skip
    store = lens.store
    return {
        "api_version": API_VERSION,
        "time": lens.clock.now(),
        "node": info,
        "database": {
            "path": str(store.path),
            "clock": store.get_meta("clock") or "system",
            "latest_data_time": store.latest_data_time(),
            "schema": store.schema_version(),
            "rows": store.row_counts(),
        },
    }


def channels_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    when, channels = lens.store.latest_channels()
    rows = []
    for c in channels:
        row = channel_json(c, {})
        del row["windows"]  # per-window flows: `lnlens channels --json`; this view is balances and policies
        rows.append(row)
    return {"time": when, "channels": rows}


def _forward(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("key", "in_channel", "out_channel", "in_msat", "out_msat", "fee_msat", "status",
                                "failure_reason", "received_time", "resolved_time", "source")}  # fmt: skip


def forwards_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    rows = lens.store.forwards_page(before=q["cursor"], limit=q["limit"], status=q["status"], channel=q["channel"])
    last = rows[-1] if len(rows) == q["limit"] else None
    return {
        "forwards": [_forward(r) for r in rows],
        "next_cursor": f"{last['received_time']!r}_{last['key']}" if last else None,
    }


def failures_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    now = lens.clock.now()
    return {"time": now, "window_s": q["since"], "failures": lens.store.failure_counts(since=now - q["since"])}


def opportunities_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    when, items = lens.store.latest_opportunities()
    # A run stores per-channel opportunities and channel pairs together; pairs name their in_channel.
    pick = {"min_urgency": q["min_urgency"], "channel": q["channel"], "limit": q["limit"]}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_time": when,
        "opportunities": filter_opportunities([o for o in items if o["in_channel"] is None], **pick),
        "pairs": filter_opportunities([o for o in items if o["in_channel"] is not None], **pick),
    }


def recommendations_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    when, items = lens.store.latest_opportunities()
    rules = [rec for opp in items if opp["in_channel"] is None for rec in opp["recommendations"]]
    return {
        "run_time": when,
        "rules": rules,
        "model": [s for s in live.suggestions if s["origin"] == ORIGIN],
        "suggestions": list(live.suggestions),
        "suggestions_time": live.suggestions_time,
        "model_version": live.model_version,
    }


def alerts_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    since = lens.clock.now() - q["since"] if q["since"] is not None else None
    return {"alerts": lens.store.alerts(since=since)}


def plan_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    if live.backend is None:
        raise Conflict(
            "a fee plan reads the node's channels now, and this server reads a database only; "
            "run it next to a node (lnlens serve --simulate, or the CLN plugin with lens-http-port)"
        )
    with live.backend_lock:
        try:
            return plan_or_apply(lens, live.backend, apply=False)["plan"]
        except LnlensError as exc:
            raise Conflict(f"cannot plan: {exc}") from exc


def history_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    return history(lens, channel=q["channel"], window_s=q["window"])


_model_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_model_lock = threading.Lock()


def model_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    config = lens.config
    reg = ModelRegistry(lens.store, config.data_dir / "models", configured=config.model_path)
    versions = with_drift(lens.store, reg.list())
    active = next((r["id"] for r in versions if r["active"]), None)
    key = (str(config.model_path), active, str(default_model_path()))
    with _model_lock:
        serving = _model_cache.get(key)
        if serving is None:
            try:
                model = reg.load_active()
                serving = {"name": model.name, "version": model.version, "source": model.source,
                           "metrics": model.json_meta("metrics"), "unavailable": None}  # fmt: skip
            except ModelError as exc:
                serving = {"name": None, "version": None, "source": None, "metrics": None, "unavailable": str(exc)}
            _model_cache[key] = serving
    # Drift is measured by the daemons and changes every interval: read it, never cache it.
    drift, note = (None, "no model serves") if serving["name"] is None else stored_drift(
        lens.store, model_name(serving["name"], serving["version"]))  # fmt: skip
    return {"versions": versions, "active": active, "serving": {**serving, "drift": drift, "drift_note": note}}


def predictions_view(lens: Lens, q: dict, live: Live) -> dict[str, Any]:
    rows = lens.store.predictions(channel_id=q["channel"])
    if q["since"] is not None:
        cutoff = lens.clock.now() - q["since"]
        rows = [r for r in rows if r["time"] >= cutoff]
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # oldest first: the last one per channel wins
        latest[r["channel_id"]] = r
    return {"latest": sorted(latest.values(), key=lambda r: r["channel_id"]), "series": rows[-q["limit"] :]}


_CHANNEL = Param("channel", "channel", description="only this channel (BLOCKxTXxOUT)")
_STATUSES = tuple(s.value for s in ForwardStatus)

# path -> (view, parameters, summary)
ROUTES: dict[str, tuple[Any, tuple[Param, ...], str]] = {
    "/api/v1/node": (node_view, (), "The node (when the server runs next to one) and the database"),
    "/api/v1/channels": (channels_view, (), "Channels as the newest snapshot saw them: balances and our policy"),
    "/api/v1/forwards": (forwards_view, (
        Param("limit", "int", 100, 1, 1000, description="forwards per page"),
        Param("cursor", "cursor", description="next_cursor of the previous page"),
        Param("status", "choice", choices=_STATUSES, description="only forwards in this state"),
        _CHANNEL,
    ), "Stored forwards, newest first, paged"),
    "/api/v1/forwards/failures": (failures_view, (
        Param("since", "duration", 86_400, description="window ending now: 1h, 24h, 7d"),
    ), "Failed forwards in a window, by cause"),
    "/api/v1/opportunities": (opportunities_view, (
        Param("min_urgency", "int", 0, 0, 100, description="only opportunities at least this urgent"),
        Param("limit", "int", 50, 1, 1000, description="at most this many"),
        _CHANNEL,
    ), "The newest stored analysis run's opportunities, most urgent first"),
    "/api/v1/recommendations": (recommendations_view, (), "Rule recommendations and the model's rebalances"),
    "/api/v1/alerts": (alerts_view, (
        Param("since", "duration", description="only alerts of runs in this window"),
    ), "Stored alerts, newest run first"),
    "/api/v1/policy/plan": (plan_view, (), "What the fee policy would change now (a dry run; writes nothing)"),
    "/api/v1/policy/history": (history_view, (
        _CHANNEL,
        Param("window", "duration", description="outcome window before/after each change (default: the rails')"),
    ), "The fee journal with each change's measured outcome"),
    "/api/v1/model": (model_view, (), "Liquidity model versions with their drift, and the model serving now"),
    "/api/v1/model/predictions": (predictions_view, (
        _CHANNEL,
        Param("since", "duration", description="only predictions in this window"),
        Param("limit", "int", 1000, 1, 100_000, description="at most this many series points (newest)"),
    ), "The model's optimal ratio per channel next to the current one, latest and over time"),
}  # fmt: skip
