"""What a ``lens-*`` method answers with: a JSON result or a :class:`LensRpcError`, and the error codes.

A leaf of the plugin: the method table (:mod:`lnlens_cln.methods`), the service's answers
(:mod:`lnlens_cln.requests`, :mod:`lnlens_cln.service`) and the plugin (:mod:`lnlens_cln.plugin`)
all reply with these, so none of them imports another for its error type.

Error codes (docs/rpc.md): -32602 invalid parameter; 1601 lnlens is unavailable
(database or lightningd unreachable); 1602 the analysis failed; 1603 unknown channel;
1604 the fee policy cannot run (no or a bad policy file, nothing to roll back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "LensRpcError",
    "Reply",
    "ERROR_CODES",
    "INVALID_PARAMS",
    "UNAVAILABLE",
    "ANALYSIS_FAILED",
    "UNKNOWN_CHANNEL",
    "POLICY_FAILED",
]

INVALID_PARAMS = -32602
UNAVAILABLE = 1601
ANALYSIS_FAILED = 1602
UNKNOWN_CHANNEL = 1603
POLICY_FAILED = 1604
ERROR_CODES = {
    INVALID_PARAMS: "a parameter has the wrong type or value, is unknown, or there are too many",
    UNAVAILABLE: "lnlens cannot work now: its database or lightningd's RPC failed (see lens-status)",
    ANALYSIS_FAILED: "the analysis raised an error; the message says why",
    UNKNOWN_CHANNEL: "the short_channel_id is not one of this node's channels",
    POLICY_FAILED: "the fee policy cannot run: no lens-policy file, a bad one, or nothing to roll back",
}


class LensRpcError(Exception):
    """An error for the caller, with its JSON-RPC code (see :data:`ERROR_CODES`)."""

    def __init__(self, message: str, code: int = INVALID_PARAMS) -> None:
        super().__init__(message)
        self.message, self.code = message, code


Reply = Callable[[Any], None]
"""Answers the request: called once with a JSON result or a :class:`LensRpcError`."""
