"""Queries on lnlens's own records: the fee journal, analysis runs and their alerts, model versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlite_utils import Database

from ..domain import ChannelId

__all__ = ["RecordQueries", "JOURNAL_STATES"]

JOURNAL_STATES = ("planned", "applied", "verified", "failed", "vetoed", "rolled_back")


class RecordQueries:
    """Mixed into :class:`~lnlens_core.storage.store.Store`; ``self.db`` is its sqlite-utils Database."""

    db: Database

    # -- fee journal ----------------------------------------------------------

    def journal_plan(
        self,
        *,
        channel_id: ChannelId,
        old_policy: Any,
        new_policy: Any,
        reason: str,
        now: float,
        policy: str | None = None,
        strategy: str | None = None,
        plugin: str | None = None,
        rollback_of: int | None = None,
    ) -> int:
        """Record an intended change before it is sent; returns its journal id."""
        with self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO fee_updates (channel_id, state, planned_time, policy, strategy, plugin, reason,"
                " old_policy, new_policy, rollback_of) VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?)",
                [str(channel_id), now, policy, strategy, plugin, reason, json.dumps(asdict(old_policy)),
                 json.dumps(asdict(new_policy)), rollback_of],
            )  # fmt: skip
        return int(cur.lastrowid or 0)

    def journal_mark(self, entry_id: int, state: str, *, now: float, detail: str | None = None) -> None:
        """Move a journal entry on (planned → applied → verified, or failed/vetoed/rolled_back)."""
        if state not in JOURNAL_STATES:
            raise ValueError(f"unknown journal state {state!r}")
        column = "applied_time" if state == "applied" else "finished_time"
        with self.db.atomic():
            self.db.execute(
                f"UPDATE fee_updates SET state = ?, {column} = ?, detail = coalesce(?, detail) WHERE id = ?",
                [state, now, detail, entry_id],
            )

    def journal(self, *, channel_id: ChannelId | None = None, states: Sequence[str] = ()) -> list[dict[str, Any]]:
        where, params = ["1=1"], []
        if channel_id is not None:
            where.append("channel_id = ?")
            params.append(str(channel_id))
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        sql = f"SELECT * FROM fee_updates WHERE {' AND '.join(where)} ORDER BY id"
        return list(self.db.query(sql, params))

    # -- opportunities --------------------------------------------------------

    def save_opportunities(self, rows: Sequence[dict[str, Any]], *, run_time: float) -> None:
        """Store one analysis run: each row is an opportunity's JSON form (see lnlens_core.opportunities.report). A
        run at the same time as a stored one (a simulator's database: every command's "now" is its newest data)
        replaces it, so each run's opportunities are stored, and listed, once."""
        with self.db.atomic():
            self.db.execute("DELETE FROM opportunities WHERE run_time = ?", [run_time])
            self.db.conn.executemany(
                "INSERT INTO opportunities (run_time, out_channel, in_channel, window_s, urgency,"
                " missed_revenue_msat, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_time, r["short_channel_id"], r.get("in_channel"), r["window_s"], r["urgency"],
                  r["missed_revenue_msat"], json.dumps(r)) for r in rows],
            )  # fmt: skip

    def save_alerts(self, rows: Sequence[dict[str, Any]], *, run_time: float) -> None:
        """Store one analysis run's alerts (their JSON form: type, short_channel_id, message, evidence); like
        :meth:`save_opportunities`, a run at a stored run's time replaces it."""
        with self.db.atomic():
            self.db.execute("DELETE FROM alerts WHERE run_time = ?", [run_time])
            self.db.conn.executemany(
                "INSERT INTO alerts (run_time, kind, channel_id, message, evidence) VALUES (?, ?, ?, ?, ?)",
                [(run_time, r["type"], r["short_channel_id"], r["message"], json.dumps(r["evidence"])) for r in rows],
            )

    def alerts(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """Stored alerts, newest run first."""
        sql, params = "SELECT * FROM alerts", []
        if since is not None:
            sql, params = sql + " WHERE run_time >= ?", [since]
        rows = self.db.query(sql + " ORDER BY run_time DESC, id", params)
        return [{**r, "evidence": json.loads(r["evidence"])} for r in rows]

    def latest_opportunities(self) -> tuple[float | None, list[dict[str, Any]]]:
        """The newest stored analysis run: its time and its opportunities, most urgent first."""
        (when,) = self.db.execute("SELECT max(run_time) FROM opportunities").fetchone()
        if when is None:
            return None, []
        rows = self.db.execute("SELECT body FROM opportunities WHERE run_time = ? ORDER BY id", [when]).fetchall()
        items = [json.loads(body) for (body,) in rows]
        # Databases written before runs replaced each other can hold several runs at one time: the last one counts.
        last: dict[tuple[str, str | None], int] = {}
        for i, item in enumerate(items):
            last[(item["short_channel_id"], item.get("in_channel"))] = i
        return when, [items[i] for i in sorted(last.values())]

    # -- model versions -------------------------------------------------------

    def add_model_run(self, *, time: float, name: str, version: str, path: str, metrics: dict[str, Any]) -> int:
        """Record a model version (inactive); returns its id."""
        with self.db.atomic():
            cur = self.db.execute(
                "INSERT INTO model_runs (time, name, version, path, metrics, active) VALUES (?, ?, ?, ?, ?, 0)",
                [time, name, version, path, json.dumps(metrics, sort_keys=True)],
            )
        return int(cur.lastrowid)

    def model_runs(self) -> list[dict[str, Any]]:
        """Every recorded model version, oldest first, metrics decoded."""
        rows = list(self.db.query("SELECT * FROM model_runs ORDER BY id"))
        for row in rows:
            row["metrics"] = json.loads(row["metrics"])
            row["active"] = bool(row["active"])
        return rows

    def activate_model(self, model_id: int, *, time: float) -> None:
        """Make one model version the active one, in one transaction."""
        with self.db.atomic():
            self.db.execute("UPDATE model_runs SET active = 0 WHERE active = 1")
            self.db.execute(
                "UPDATE model_runs SET active = 1, activated_time = ?,"
                " activation = (SELECT coalesce(max(activation), 0) + 1 FROM model_runs) WHERE id = ?",
                [time, model_id],
            )

    def deactivate_models(self) -> None:
        """No store model is active (the shipped default serves)."""
        with self.db.atomic():
            self.db.execute("UPDATE model_runs SET active = 0 WHERE active = 1")

    def save_predictions(self, rows: Sequence[tuple[str, float | None, float | None]], *, time: float,
                         model: str) -> None:  # fmt: skip
        """Store one model run's predictions: (channel id, current ratio, predicted ratio) per channel."""
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO model_predictions (time, channel_id, model, current_ratio, predicted_ratio)"
                " VALUES (?, ?, ?, ?, ?)",
                [(time, cid, model, cur, pred) for cid, cur, pred in rows],
            )

    def predictions(self, *, channel_id: ChannelId | None = None) -> list[dict[str, Any]]:
        """The stored predictions, oldest first (one channel's, or all)."""
        sql, params = "SELECT * FROM model_predictions", []
        if channel_id is not None:
            sql, params = sql + " WHERE channel_id = ?", [str(channel_id)]
        return list(self.db.query(sql + " ORDER BY time, channel_id", params))

    # -- drift indicators -----------------------------------------------------

    def save_drift(self, report: dict[str, Any], *, time: float) -> int:
        """Store one drift report (lnlens_core.model.learning.drift) of the model it names."""
        with self.db.atomic():
            cur = self.db.execute("INSERT INTO model_drift (time, model, body) VALUES (?, ?, ?)",
                                  [time, report["model"], json.dumps(report, sort_keys=True)])  # fmt: skip
        return int(cur.lastrowid or 0)

    def latest_drift(self, model: str | None = None) -> dict[str, dict[str, Any]]:
        """The newest stored drift report of each model version (or of ``model`` only), by ``name-version``."""
        if model is not None:
            sql = "SELECT body FROM model_drift WHERE model = ? ORDER BY time DESC, id DESC LIMIT 1"
            rows = self.db.execute(sql, [model]).fetchall()
        else:
            sql = ("SELECT body FROM model_drift WHERE id IN"
                   " (SELECT max(id) FROM model_drift GROUP BY model)")  # fmt: skip
            rows = self.db.execute(sql).fetchall()
        reports = [json.loads(body) for (body,) in rows]
        return {r["model"]: r for r in reports}
