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

from lnlens_core.domain import FailureReason

from .node import SimNode
from .payments import PaymentResult

__all__ = ["EVENT_COLUMNS", "ATTEMPT_COLUMNS", "AttemptLog", "event_rows", "write_events_csv"]

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


ATTEMPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("payment_id", "simulator's payment number"),
    ("time", "epoch seconds (simulated) the payment started"),
    ("attempt", "0-based attempt number"),
    ("sender", "sending node's pubkey"),
    ("receiver", "receiving node's pubkey"),
    ("amount_msat", "amount delivered to the receiver, msat"),
    ("fee_msat", "fees the route charged (paid only if settled)"),
    ("hops", "number of channels in the route"),
    ("route", "the route: space-separated BLOCKxTXxOUT/direction (0: from node1)"),
    ("settled", "1 if this attempt settled the payment, else 0"),
    ("failed_hop", "position of the refusing hop's outgoing channel; empty if settled"),
    ("failed_channel", "the refusing hop's channel, BLOCKxTXxOUT; empty if settled"),
    ("failure_reason", "why it was refused (lnlens FailureReason); empty if settled"),
)


class AttemptLog:
    """Every HTLC attempt in the network, with its real route, hops, fees and failure class.

    Attach with ``node.payment_observers.append(log)``; memory grows with every attempt,
    so it is opt-in (``lnlens sim run --attempts-csv FILE``).
    """

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.rows: list[tuple[Any, ...]] = []

    def __call__(self, payment_id: int, time: float, result: PaymentResult) -> None:
        for n, attempt in enumerate(result.attempts):
            failed = attempt.failed_at
            if failed is None:
                reason = None
            elif attempt.our_hop is not None and attempt.our_hop.index == failed:
                reason = attempt.our_hop.reason
            else:
                reason = FailureReason.INSUFFICIENT_BALANCE  # other nodes refuse only for lack of balance
            fee = attempt.amounts[0] - result.amount_msat
            row = (payment_id, time, n, result.sender, result.receiver, result.amount_msat, fee, tuple(attempt.route))
            self.rows.append((*row, failed, reason))

    def write_csv(self, out: str | Path | IO[str]) -> int:
        """Write every attempt as CSV (header first); returns the number of rows."""
        graph, channel_id = self.node.network.graph, self.node.channel_id_of_edge
        handle = open(out, "w", newline="", encoding="utf-8") if isinstance(out, (str, Path)) else out  # noqa: SIM115
        try:
            writer = csv.writer(handle)
            writer.writerow([name for name, _ in ATTEMPT_COLUMNS])
            for pid, time, n, sender, receiver, amount, fee, route, failed, reason in self.rows:
                hops = " ".join(f"{channel_id(e)}/{e & 1}" for e in route)
                writer.writerow([
                    pid, time, n, graph.pubkeys[sender], graph.pubkeys[receiver], amount, fee, len(route), hops,
                    int(failed is None), "" if failed is None else failed,
                    "" if failed is None else str(channel_id(route[failed])), reason.value if reason else "",
                ])  # fmt: skip
            return len(self.rows)
        finally:
            if isinstance(out, (str, Path)):
                handle.close()
