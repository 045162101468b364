"""Sums of settled forwards per channel for the fee policy's inputs (:mod:`lnlens_core.fees.assemble`).

The same numbers as the Python loops over the stored forwards they replace
(:func:`~lnlens_core.fees.chargelnd.activity_by_channel`, the forwards loop of
:func:`~lnlens_core.fees.signals.fee_epochs`), held equal by tests, without building one object per forward.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database

from ..domain import ChannelId

__all__ = ["SettledQueries"]

_STEPS = "temp.lnlens_fee_steps"


class SettledQueries:
    """Mixed into :class:`~lnlens_core.storage.store.Store`; ``self.db`` is its sqlite-utils Database."""

    db: Database

    def _has_index(self, name: str) -> bool:
        return any(row[1] == name for row in self.db.execute("PRAGMA index_list(forwards)").fetchall())

    def settled_activity(self, windows: Sequence[tuple[float, float]], *, received_since: float,
                         received_until: float) -> list[dict[ChannelId, tuple[int, int, int, int]]]:  # fmt: skip
        """Settled forwards received in ``[received_since, received_until)``, per channel and window.

        A forward counts in a window ``[start, end)`` by its resolved time (its received time when
        unknown), as charge-lnd times a forward by when it settled; it counts in (its ``in_msat``) on its
        incoming channel and out (its ``out_msat``, 0 when unknown) on its outgoing one.

        :returns: per window, ``{channel: (htlcs in, htlcs out, in msat, out msat)}`` for the channels
            with any forward in it.
        """
        params: dict[str, float] = {"rs": received_since, "ru": received_until}
        columns = []
        for k, (start, end) in enumerate(windows):
            params[f"s{k}"], params[f"e{k}"] = start, end
            inside = f"(coalesce(resolved_time, received_time) >= :s{k} AND coalesce(resolved_time, received_time)" \
                     f" < :e{k})"
            columns += [f"sum({inside})", f"coalesce(sum(CASE WHEN {inside} THEN {{msat}} END), 0)"]
        if not columns:
            return []
        found: list[dict[ChannelId, list[int]]] = [{} for _ in windows]
        ids: dict[str, ChannelId] = {}
        # each side read in the order of its index, summed per channel as it goes
        for side, channel, msat in ((0, "in_channel", "in_msat"), (1, "out_channel", "coalesce(out_msat, 0)")):
            picked = ", ".join(columns).format(msat=msat)
            index = f"forwards_settled_{channel[:-8]}"
            hint = f"INDEXED BY {index}" if self._has_index(index) else ""  # a first backfill builds it at its end
            sql = (f"SELECT {channel}, {picked} FROM forwards {hint}"
                   f" WHERE status = 'settled' AND {channel} IS NOT NULL AND received_time >= :rs"
                   f" AND received_time < :ru GROUP BY {channel}")  # fmt: skip
            for text, *sums in self.db.execute(sql, params).fetchall():
                cid = ids.get(text) or ids.setdefault(text, ChannelId.parse(text))
                for k, per in enumerate(found):
                    count, summed = sums[2 * k], sums[2 * k + 1]
                    if count:
                        row = per.setdefault(cid, [0, 0, 0, 0])
                        row[side], row[2 + side] = count, summed
        return [{cid: (a, b, c, d) for cid, (a, b, c, d) in per.items()} for per in found]

    def settled_by_fee_level(self, steps: Sequence[tuple[ChannelId, float, float, int]], since: float,
                             until: float) -> dict[tuple[ChannelId, int], tuple[int, int]]:  # fmt: skip
        """Settled forwards received in ``[since, until)`` summed per outgoing channel and the fee level in
        force when each arrived.

        :param steps: ``(channel, start, end, fee_ppm)``: the level in force over ``[start, end)``.
        :returns: ``{(channel, fee_ppm): (forwards, fees earned msat)}``.
        """
        # In a transaction of its own, as the flow sums' policy book (storage/flowsql.py).
        with self.db.atomic():
            self.db.execute(f"DROP TABLE IF EXISTS {_STEPS}")
            self.db.execute(f"CREATE TABLE {_STEPS} (channel_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,"
                            " fee_ppm INTEGER NOT NULL)")  # fmt: skip
            self.db.conn.executemany(f"INSERT INTO {_STEPS} VALUES (?, ?, ?, ?)",
                                     [(str(cid), start, end, fee) for cid, start, end, fee in steps])  # fmt: skip
        # level by level (few), each a range of the channel's settled forwards in the index: no lookup per forward
        # (while a first backfill defers the index: each forward's level looked up instead)
        join = "CROSS JOIN forwards f INDEXED BY forwards_settled_out" if self._has_index("forwards_settled_out") \
            else "JOIN forwards f"
        sql = (f"SELECT s.rowid, count(f.received_time), coalesce(sum(f.fee_msat), 0) FROM {_STEPS} s {join}"
               " ON f.out_channel = s.channel_id AND f.received_time >= max(s.start, :since)"
               " AND f.received_time < min(s.end, :until) WHERE f.status = 'settled' GROUP BY s.rowid")  # fmt: skip
        rows = self.db.execute(sql, {"since": since, "until": until}).fetchall()
        with self.db.atomic():
            self.db.execute(f"DROP TABLE IF EXISTS {_STEPS}")
        found: dict[tuple[ChannelId, int], tuple[int, int]] = {}
        for rowid, n, revenue in rows:
            cid, _, _, fee = steps[rowid - 1]  # rows were inserted in order: rowid k is step k - 1
            before = found.get((cid, int(fee)), (0, 0))
            found[(cid, int(fee))] = (before[0] + int(n), before[1] + int(revenue))
        return found
