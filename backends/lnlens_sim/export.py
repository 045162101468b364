"""CSV export of a simulation's event stream (SEEDS row 51), with a documented schema.

One row per forward at our node, in the order they happened. Every field is real or
empty: an empty cell means the value does not exist for that row (for instance no
failure code on a settled forward), never a stand-in. The columns after
``failreason`` come from the simulator's ground truth and exist only in simulations.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .node import SimNode

__all__ = ["EVENT_COLUMNS", "event_rows", "write_events_csv"]

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("received_time", "epoch seconds (simulated) the HTLC reached our node"),
    ("resolved_time", "epoch seconds it settled or failed"),
    ("key", "HTLC identity, in_channel/in_htlc_id (same as the store's forwards.key)"),
    ("in_channel", "incoming short channel id, BLOCKxTXxOUT"),
    ("in_htlc_id", "HTLC id on the incoming channel"),
    ("out_channel", "outgoing short channel id"),
    ("in_msat", "amount received, msat"),
    ("out_msat", "amount to forward, msat"),
    ("fee_msat", "in_msat - out_msat: the fee offered (earned if settled)"),
    ("status", "settled | local_failed (we refused) | failed (refused further on)"),
    ("failure_reason", "lnlens FailureReason; empty when settled"),
    ("failcode", "BOLT 4 failure code we returned (local_failed only)"),
    ("failreason", "BOLT 4 failure name we returned (local_failed only)"),
    ("payment_id", "simulator's payment number (several attempts share one)"),
    ("attempt", "0-based attempt number within the payment"),
    ("route_hops", "number of channels in the attempt's route"),
    ("hop_index", "position of our outgoing channel in that route"),
    ("fee_at_policy_msat", "fee our policy in force asked: what a failed forward would have paid"),
    ("refused_here", "1 if our node refused it, else 0"),
    ("downstream_ok", "1/0: whether the rest of the route had the balance; empty if unknown"),
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return getattr(value, "value", value) if not isinstance(value, (int, float)) else value


def event_rows(node: SimNode) -> Iterator[dict[str, Any]]:
    for event in node.events:
        truth = node.ground_truth(event)
        row = {
            "received_time": event.received_time, "resolved_time": event.resolved_time, "key": event.key,
            "in_channel": str(event.in_channel), "in_htlc_id": event.in_htlc_id,
            "out_channel": str(event.out_channel) if event.out_channel else None, "in_msat": event.in_msat,
            "out_msat": event.out_msat, "fee_msat": event.fee_msat, "status": event.status,
            "failure_reason": event.failure_reason, "failcode": event.failcode, "failreason": event.failreason,
            "payment_id": truth.payment_id, "attempt": truth.attempt, "route_hops": truth.route_hops,
            "hop_index": truth.hop_index, "fee_at_policy_msat": truth.fee_at_policy_msat,
            "refused_here": truth.refused_here, "downstream_ok": truth.downstream_ok,
        }  # fmt: skip
        yield {k: _cell(v) for k, v in row.items()}


def write_events_csv(node: SimNode, out: str | Path | IO[str]) -> int:
    """Write every event as CSV (header first); returns the number of rows."""
    handle = open(out, "w", newline="", encoding="utf-8") if isinstance(out, (str, Path)) else out  # noqa: SIM115
    try:
        writer = csv.DictWriter(handle, fieldnames=[name for name, _ in EVENT_COLUMNS])
        writer.writeheader()
        count = 0
        for row in event_rows(node):
            writer.writerow(row)
            count += 1
        return count
    finally:
        if isinstance(out, (str, Path)):
            handle.close()
