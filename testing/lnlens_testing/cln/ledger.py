"""Forwards as lightningd keeps them: rows with created/updated indexes, and the notifications.

A settled or downstream-failed HTLC is created ``offered`` (one ``created_index``) and
updated once when it resolves (one ``updated_index``), with a ``forward_event`` for
each step; a local failure is created already ``local_failed``, without ``out_msat``
and ``fee_msat`` (REFERENCE.md A3). ``listforwards`` pages by either index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lnlens_core.domain import ForwardStatus, HtlcEvent

__all__ = ["ForwardLedger"]


def _base(event: HtlcEvent) -> dict[str, Any]:
    row: dict[str, Any] = {
        "in_channel": str(event.in_channel),
        "in_htlc_id": event.in_htlc_id,
        "in_msat": event.in_msat,
        "status": "offered",
        "style": "tlv",
        "received_time": round(event.received_time, 9),
    }
    if event.out_channel is not None:
        row["out_channel"] = str(event.out_channel)
    return row


class ForwardLedger:
    """lightningd's ``forwards`` table for the stand-in."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.created = 0
        self.updated = 0
        self._pending: dict[str, tuple[int, HtlcEvent]] = {}

    def offer(self, event: HtlcEvent) -> list[dict[str, Any]]:
        """Create the row for ``event``; returns the ``forward_event`` payloads it causes.

        A local failure is final at once; anything else stays ``offered`` until :meth:`resolve`.
        """
        self.created += 1
        row = _base(event) | {"created_index": self.created}
        if event.status is ForwardStatus.LOCAL_FAILED:
            row.update(status="local_failed", resolved_time=round(event.resolved_time or event.received_time, 9))
            if event.failcode is not None:
                row["failcode"] = event.failcode
            if event.failreason is not None:
                row["failreason"] = event.failreason
        else:
            row.update(out_msat=event.out_msat, fee_msat=event.fee_msat)
            self._pending[event.key] = (self.created, event)
        self.rows[self.created] = row
        return [dict(row)]

    @property
    def in_flight(self) -> list[str]:
        return list(self._pending)

    def resolve(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Settle or fail the offered rows (all, or those of ``keys``) as their events say."""
        out = []
        for key in list(self._pending) if keys is None else list(keys):
            created, event = self._pending.pop(key)
            self.updated += 1
            row = self.rows[created]
            row.update(status=event.status.value, updated_index=self.updated,
                       resolved_time=round(event.resolved_time or event.received_time, 9))  # fmt: skip
            payload = {k: v for k, v in row.items() if k != "created_index"}
            out.append(payload)
        return out

    def add(self, events: Iterable[HtlcEvent], *, hold: int = 0) -> list[dict[str, Any]]:
        """Create every event's row and resolve all but the last ``hold`` offered ones."""
        payloads: list[dict[str, Any]] = []
        for event in events:
            payloads += self.offer(event)
        pending = self.in_flight
        payloads += self.resolve(pending[: max(0, len(pending) - hold)])
        return payloads

    def listforwards(self, params: dict[str, Any]) -> dict[str, Any]:
        index, start, limit = params.get("index"), params.get("start"), params.get("limit")
        if (start is not None or limit is not None) and index is None:
            raise ValueError("start and limit need index")
        rows = list(self.rows.values())
        status = params.get("status")
        if status is not None:
            rows = [r for r in rows if r["status"] == status]
        if index == "created":
            rows = [r for r in rows if r["created_index"] >= (start or 0)]
        elif index == "updated":
            rows = sorted((r for r in rows if r.get("updated_index", -1) >= (start or 0)),
                          key=lambda r: r["updated_index"])  # fmt: skip
        elif index is not None:
            raise ValueError(f"index must be created or updated, not {index!r}")
        if limit is not None:
            rows = rows[: int(limit)]
        return {"forwards": [dict(r) for r in rows]}

    def wait(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("subsystem") != "forwards":
            raise ValueError("the stand-in only waits on forwards")
        name = params.get("indexname")
        value = {"created": self.created, "updated": self.updated}.get(str(name))
        if value is None:
            raise ValueError(f"indexname must be created or updated, not {name!r}")
        if int(params.get("nextvalue", 0)) > value:
            raise ValueError("the stand-in cannot block: nextvalue is ahead of the index")
        return {"subsystem": "forwards", str(name): value}
