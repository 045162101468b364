"""Checks for stand-in tests: responses against the shipped schemas, the plugin's database against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lnlens_cln.methods import schema

from lnlens_core.domain import ForwardStatus
from lnlens_core.opportunities.failures import classify_cln
from lnlens_core.storage import Store

if TYPE_CHECKING:
    from . import StandIn


def validate(method: str, response: dict) -> dict:
    """Check a response against the method's shipped JSON schema; returns it."""
    import jsonschema  # the testing extra's: only tests call this

    spec = schema(method)
    jsonschema.Draft202012Validator.check_schema(spec)
    jsonschema.Draft202012Validator(spec["response"]).validate(json.loads(json.dumps(response)))
    return response


def stored_forwards(standin: StandIn) -> dict[str, tuple[str, str | None, str]]:
    """``key -> (status, failure_reason, source)`` as the plugin stored them."""
    store = Store(Path(standin.lightning_dir) / "lnlens.sqlite3")
    try:
        rows = store.db.execute("SELECT key, status, failure_reason, source FROM forwards").fetchall()
    finally:
        store.close()
    return {key: (status, reason, source) for key, status, reason, source in rows}


def expected_forwards(standin: StandIn) -> dict[str, tuple[str, str | None]]:
    """``key -> (status, failure_reason)`` for every forward the simulator made at our node.

    Local failures are classified from their failcode, as lightningd reports them.
    """
    out = {}
    for e in standin.node.events:
        reason = classify_cln(e.status, e.failcode, e.failreason) if e.status is not ForwardStatus.SETTLED else None
        out[e.key] = (e.status.value, reason.value if reason else None)
    return out


def assert_store_matches_simulator(standin: StandIn) -> dict[str, tuple[str, str | None, str]]:
    stored = stored_forwards(standin)
    expected = expected_forwards(standin)
    assert set(stored) == set(expected), (len(stored), len(expected))
    mismatched = {k: (stored[k][:2], v) for k, v in expected.items() if stored[k][:2] != v}
    assert not mismatched, list(mismatched.items())[:5]
    return stored
