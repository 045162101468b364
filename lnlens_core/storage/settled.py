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
            inside = f"(t >= :s{k} AND t < :e{k})"
            columns += [f"sum({inside})", f"coalesce(sum(CASE WHEN {inside} THEN msat END), 0)"]
        if not columns:
            return []
        picked = ", ".join(columns)
        sql = (f"WITH s AS (SELECT in_channel, out_channel, in_msat, coalesce(out_msat, 0) AS out_msat,"
               " coalesce(resolved_time, received_time) AS t FROM forwards"
               " WHERE status = 'settled' AND received_time >= :rs AND received_time < :ru)"
               f" SELECT 0, in_channel, {picked} FROM (SELECT in_channel, t, in_msat AS msat FROM s) GROUP BY 2"
               f" UNION ALL SELECT 1, out_channel, {picked} FROM (SELECT out_channel, t, out_msat AS msat FROM s"
               " WHERE out_channel IS NOT NULL) GROUP BY 2")  # fmt: skip
        found: list[dict[ChannelId, list[int]]] = [{} for _ in windows]
        ids: dict[str, ChannelId] = {}
        for side, text, *sums in self.db.execute(sql, params).fetchall():
            cid = ids.get(text) or ids.setdefault(text, ChannelId.parse(text))
            for k, per in enumerate(found):
                count, msat = sums[2 * k], sums[2 * k + 1]
                if count:
                    row = per.setdefault(cid, [0, 0, 0, 0])
                    row[side], row[2 + side] = count, msat
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
            self.db.execute("CREATE INDEX temp.lnlens_fee_steps_at ON lnlens_fee_steps (channel_id, end)")
        sql = (f"SELECT s.channel_id, s.fee_ppm, count(*), coalesce(sum(f.fee_msat), 0) FROM forwards f"
               f" JOIN {_STEPS} s ON s.channel_id = f.out_channel AND s.end > f.received_time"
               " AND s.start <= f.received_time WHERE f.status = 'settled' AND f.received_time >= ?"
               " AND f.received_time < ? GROUP BY 1, 2")  # fmt: skip
        rows = self.db.execute(sql, [since, until]).fetchall()
        with self.db.atomic():
            self.db.execute(f"DROP TABLE IF EXISTS {_STEPS}")
        ids = {str(cid): cid for cid, *_ in steps}
        return {(ids[text], int(fee)): (int(n), int(revenue)) for text, fee, n, revenue in rows}
