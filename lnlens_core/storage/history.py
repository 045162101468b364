"""Bounded reads of the channel history for the liquidity model: every query here uses an index.

The online learner and the daemons' model runs read the store every interval, and a node's
store grows without bound (a million forwards, a snapshot of every channel every interval), so
nothing here reads a table whole: snapshot times through the ``time`` index, one channel's
snapshots through the primary key ``(channel_id, time)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

__all__ = ["HistoryQueries", "POLICY_COLUMNS"]

# The columns of ChannelPolicy (rows.policy_from_row): two snapshots have the same policy when all match.
POLICY_COLUMNS = ("base_fee_msat", "fee_ppm", "inbound_base_fee_msat", "inbound_fee_ppm", "min_htlc_msat",
                  "max_htlc_msat", "cltv_delta", "disabled")  # fmt: skip
_TIMES_CHUNK = 500  # under SQLite's default limit of 999 bound parameters


class HistoryQueries:
    """Mixed into :class:`~lnlens_core.storage.store.Store`; ``self.db`` is its sqlite-utils Database."""

    db: Database

    def snapshot_times_from(self, time: float | None, *, limit: int) -> list[float]:
        """Distinct snapshot times at or after ``time`` (all if None), oldest first, at most ``limit``."""
        where, params = ("", [limit]) if time is None else ("WHERE time >= ?", [time, limit])
        sql = f"SELECT DISTINCT time FROM channel_snapshots {where} ORDER BY time LIMIT ?"
        return [t for (t,) in self.db.execute(sql, params).fetchall()]

    def snapshots_at(self, times: Sequence[float]) -> list[dict[str, Any]]:
        """Every channel's snapshot at exactly these times, ordered by time, then channel id."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(times), _TIMES_CHUNK):
            chunk = list(times[start : start + _TIMES_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows += self.db.query(f"SELECT * FROM channel_snapshots WHERE time IN ({marks})", chunk)
        return sorted(rows, key=lambda r: (r["time"], r["channel_id"]))

    def snapshots_between(self, since: float, until: float, *, after: bool = False) -> list[dict[str, Any]]:
        """Snapshots with ``since <= time <= until`` (``since < time`` when ``after``), ordered by time, channel id."""
        op = ">" if after else ">="
        sql = f"SELECT * FROM channel_snapshots WHERE time {op} ? AND time <= ? ORDER BY time, channel_id"
        return list(self.db.query(sql, [since, until]))

    def channel_snapshot_before(self, channel_id: str, time: float) -> dict[str, Any] | None:
        """The channel's newest snapshot strictly before ``time``."""
        sql = "SELECT * FROM channel_snapshots WHERE channel_id = ? AND time < ? ORDER BY time DESC LIMIT 1"
        return next(iter(self.db.query(sql, [channel_id, time])), None)

    def channel_policy_change_before(self, channel_id: str, row: dict[str, Any]) -> dict[str, Any] | None:
        """The channel's newest snapshot before ``row`` (one of its snapshots) whose policy differs from ``row``'s.

        Walks the primary key backwards from ``row`` and stops at the first difference, so it
        reads as many rows as the policy in force at ``row`` is old in snapshots.
        """
        differs = " OR ".join(f"{c} IS NOT ?" for c in POLICY_COLUMNS)
        sql = (f"SELECT * FROM channel_snapshots WHERE channel_id = ? AND time < ? AND ({differs})"
               " ORDER BY time DESC LIMIT 1")  # fmt: skip
        return next(iter(self.db.query(sql, [channel_id, row["time"], *(row[c] for c in POLICY_COLUMNS)])), None)

    def channel_snapshot_after(self, channel_id: str, time: float | None) -> dict[str, Any] | None:
        """The channel's oldest snapshot strictly after ``time`` (its first one if None)."""
        params: list[Any] = [channel_id]
        if time is None:
            sql = "SELECT * FROM channel_snapshots WHERE channel_id = ? ORDER BY time LIMIT 1"
        else:
            sql = "SELECT * FROM channel_snapshots WHERE channel_id = ? AND time > ? ORDER BY time LIMIT 1"
            params.append(time)
        return next(iter(self.db.query(sql, params)), None)
