"""The OpenAPI 3.1 document: built from the route table, with the response shapes it promises.

Tests check every response against it (schemathesis), so a shape change here or in a view
that is not made in both places fails the suite.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from .params import Param
from .views import API_VERSION, ROUTES

__all__ = ["openapi_document"]

_NUM = {"type": "number"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], *, extra: bool = True) -> dict[str, Any]:
    return {"type": "object", "required": list(props), "properties": props, "additionalProperties": extra}


_ANY_OBJ = {"type": "object"}
_ROWS = {"type": "array", "items": _ANY_OBJ}
_CHANNEL = _obj({
    "short_channel_id": _STR, "peer_id": _STR, "peer_alias": _STR, "active": _BOOL, "capacity_msat": _INT,
    "local_balance_msat": _INT, "remote_balance_msat": _INT, "balance_ratio": _nullable(_NUM),
    # our policy: null when the node cannot tell it (a channel missing from lnd's graph)
    "base_fee_msat": _nullable(_INT), "fee_ppm": _nullable(_INT), "min_htlc_msat": _nullable(_INT),
    "max_htlc_msat": _nullable(_INT), "cltv_delta": _nullable(_INT),
})  # fmt: skip
_FORWARD = _obj({
    "key": _STR, "in_channel": _STR, "out_channel": _nullable(_STR), "in_msat": _INT, "out_msat": _nullable(_INT),
    "fee_msat": _nullable(_INT), "status": _STR, "failure_reason": _nullable(_STR), "received_time": _NUM,
    "resolved_time": _nullable(_NUM), "source": _STR,
}, extra=False)  # fmt: skip
_OPPORTUNITY = _obj({
    "short_channel_id": _STR, "in_channel": _nullable(_STR), "urgency": _INT, "missed_revenue_msat": _INT,
    "cause": _nullable(_STR), "recommendations": _ROWS,
})  # fmt: skip

# Drift indicators (docs/MODEL.md): every number may be null, with the reason next to it.
_INPUT_DRIFT = _obj({"status": _nullable({"enum": ["stable", "moderate", "shifted"]}), "reason": _nullable(_STR),
                     "live_rows": _INT})  # fmt: skip
_ERROR_DRIFT = _obj({"status": _nullable({"enum": ["ok", "degraded"]}), "reason": _nullable(_STR),
                     "live_mae": _nullable(_NUM), "validation_mae": _nullable(_NUM), "ratio": _nullable(_NUM),
                     "current_ratio_mae": _nullable(_NUM)})  # fmt: skip
_DRIFT_SUMMARY = _obj({"model": _STR, "time": _NUM, "samples": _INT, "inputs": _INPUT_DRIFT, "error": _ERROR_DRIFT})
_DRIFT_REPORT = _obj({"model": _STR, "time": _NUM, "window": _obj({"window_s": _NUM, "samples": _INT,
                                                                     "from": _nullable(_NUM), "to": _nullable(_NUM)}),
                      "inputs": _obj({**_INPUT_DRIFT["properties"], "features": {
                          "type": "object", "additionalProperties": _obj({
                              "psi": _nullable(_NUM), "mean_shift": _nullable(_NUM), "reason": _nullable(_STR)})}}),
                      "error": _obj({**_ERROR_DRIFT["properties"], "samples": _INT})})  # fmt: skip

RESPONSES: dict[str, dict[str, Any]] = {
    "/api/v1/node": _obj({
        "api_version": _INT, "time": _NUM,
        "node": _nullable(_obj({"pubkey": _STR, "alias": _STR, "network": _STR, "block_height": _INT,
                                "version": _STR, "backend": _STR})),
        "database": _obj({"path": _STR, "clock": _STR, "latest_data_time": _nullable(_NUM),
                          "schema": {"type": "array", "items": _STR},
                          "rows": {"type": "object", "additionalProperties": _INT}}),
    }),
    "/api/v1/channels": _obj({"time": _nullable(_NUM), "channels": {"type": "array", "items": _CHANNEL}}),
    "/api/v1/forwards": _obj({"forwards": {"type": "array", "items": _FORWARD}, "next_cursor": _nullable(_STR)}),
    "/api/v1/forwards/failures": _obj({"time": _NUM, "window_s": _INT,
                                       "failures": {"type": "object", "additionalProperties": _INT}}),
    "/api/v1/opportunities": _obj({"schema_version": _INT, "run_time": _nullable(_NUM),
                                   "opportunities": {"type": "array", "items": _OPPORTUNITY},
                                   "pairs": {"type": "array", "items": _OPPORTUNITY}}),
    "/api/v1/recommendations": _obj({"run_time": _nullable(_NUM), "rules": _ROWS, "model": _ROWS,
                                     "suggestions": _ROWS, "suggestions_time": _nullable(_NUM),
                                     "model_version": _nullable(_STR)}),
    "/api/v1/alerts": _obj({"alerts": {"type": "array", "items": _obj({
        "id": _INT, "run_time": _NUM, "kind": _STR, "channel_id": _STR, "message": _STR, "evidence": _ANY_OBJ})}}),
    "/api/v1/policy/plan": _obj({"time": _NUM, "backend": _STR, "policy_file": _nullable(_STR),
                                 "summary": {"type": "object", "additionalProperties": _INT},
                                 "notes": {"type": "array"}, "channels": _ROWS}),
    "/api/v1/policy/history": _obj({"window_s": _INT, "changes": _ROWS, "policies": {}}),
    "/api/v1/model": _obj({"versions": {"type": "array", "items": _obj({
        "id": _INT, "name": _STR, "version": _STR, "active": _BOOL, "metrics": _ANY_OBJ,
        "drift": _nullable(_DRIFT_SUMMARY), "drift_note": _nullable(_STR)})}, "active": _nullable(_INT),
        "serving": _obj({"name": _nullable(_STR), "version": _nullable(_STR), "source": _nullable(_STR),
                         "metrics": {}, "unavailable": _nullable(_STR), "drift": _nullable(_DRIFT_REPORT),
                         "drift_note": _nullable(_STR)})}),
    "/api/v1/model/predictions": _obj({"latest": _ROWS, "series": {"type": "array", "items": _obj({
        "time": _NUM, "channel_id": _STR, "model": _STR, "current_ratio": _nullable(_NUM),
        "predicted_ratio": _nullable(_NUM)})}}),
}  # fmt: skip

_ERROR = {"description": "", "content": {"application/json": {"schema": _obj({"error": _STR}, extra=False)}}}


def _param_schema(p: Param) -> dict[str, Any]:
    if p.kind == "int":
        return {"type": "integer", "minimum": p.minimum, "maximum": p.maximum, "default": p.default}
    if p.kind == "choice":
        return {"type": "string", "enum": list(p.choices)}
    if p.kind == "duration":
        return {"type": "string", "pattern": r"^[1-9][0-9]{0,8}[smhdw]?$", "examples": ["1h", "24h", "7d"]}
    if p.kind == "channel":
        return {"type": "string", "pattern": r"^[0-9]{1,7}x[0-9]{1,7}x[0-9]{1,4}$", "examples": ["800000x1x0"]}
    return {
        "type": "string",
        "pattern": r"^[0-9]{1,15}(\.[0-9]{1,17})?_[0-9a-fhx:/]+$",
        "description": "the previous page's next_cursor (opaque)",
    }


def _error(text: str) -> dict[str, Any]:
    return {**_ERROR, "description": text}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, (view, params, summary) in ROUTES.items():
        responses = {
            "200": {"description": "OK", "content": {"application/json": {"schema": RESPONSES[path]}}},
            "400": _error("a bad query parameter (the message names it)"),
            "401": _error("no token, or a wrong one (the message names the header, never where the token is kept)"),
        }
        if view.__name__ == "plan_view":
            responses["409"] = _error("no node backend in this server: a plan needs the node's channels now")
        paths[path] = {"get": {
            "summary": summary, "operationId": view.__name__.removesuffix("_view"),
            "parameters": [{"name": p.name, "in": "query", "required": False, "description": p.description,
                            "schema": _param_schema(p)} for p in params],
            "responses": responses,
        }}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "lnlens read-only API", "version": f"{API_VERSION} (lnlens {__version__})",
                 "description": "Read-only JSON over the lnlens database. Amounts are integer msat; times are epoch "
                                "seconds. The WebSocket stream at /api/v1/stream is documented in docs/api.md."},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "the token in <data-dir>/http-token"}}},
        "security": [{"token": []}],
        "paths": paths,
    }  # fmt: skip
