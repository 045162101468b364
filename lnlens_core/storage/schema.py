"""The lnlens schema: named, forward-only migrations. Never edit one once released; add the next."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = ["migrations", "FORWARD_INDEXES", "REFUSED_HERE", "NEAR_GAP_S", "MARK_NEAR", "MARK_ALL_NEAR"]

migrations = Migrations("lnlens")

# A forward refused here (flows._refused_here): what a payment's later HTLCs are tied to (Store.payment_events).
REFUSED_HERE = "status = 'local_failed' AND out_channel IS NOT NULL AND failure_reason IS NOT 'downstream'"

# m012: ``forwards.near`` is 1 when another forward (any status) arrived on the same incoming channel within
# NEAR_GAP_S (flows.MATCH_WINDOW_S) of this one: only such a refused forward can start a chain of HTLCs of one
# payment (Store.payment_events), so the chains start from a partial index of these few rows. Set at ingest
# (MARK_NEAR, for each new or moved forward) and over the whole table (MARK_ALL_NEAR) by m012 and wherever the
# indexes are rebuilt after a bulk ingest. A flag is never cleared: once its neighbour is pruned the row still
# says 1, a superset that the chains' own test (a neighbour inside the window) narrows to the same forwards.
NEAR_GAP_S = 10.0
_NEAR = "in_channel = :in_channel AND received_time BETWEEN :t - :gap AND :t + :gap"
# The forwards within the gap of one (at :in_channel, :t), itself included, when it is not alone there.
MARK_NEAR = (f"UPDATE forwards SET near = 1 WHERE {_NEAR} AND near = 0"
             f" AND (SELECT count(*) FROM (SELECT 1 FROM forwards WHERE {_NEAR} LIMIT 2)) > 1")  # fmt: skip
MARK_ALL_NEAR = """
    UPDATE forwards SET near = 1 WHERE near = 0 AND rowid IN (
        SELECT id FROM (SELECT rowid AS id, received_time - lag(received_time) OVER w AS before,
                               lead(received_time) OVER w - received_time AS after
                        FROM forwards WINDOW w AS (PARTITION BY in_channel ORDER BY received_time))
        WHERE before <= :gap OR after <= :gap)
"""
# m008's and m010's indexes, as they made them (m012 replaces them with forwards_sums and forwards_refused_near).
_M008_FLOW = ("CREATE INDEX IF NOT EXISTS forwards_flow ON forwards (status, out_channel, in_channel, failure_reason,"
              " received_time, fee_msat, out_msat, in_msat)")  # fmt: skip
_M010_REFUSED = ("CREATE INDEX IF NOT EXISTS forwards_refused ON forwards (in_channel, received_time, status,"
                 f" out_channel, failure_reason, payment_hash) WHERE {REFUSED_HERE} AND payment_hash IS NULL")

# The forwards table's secondary indexes exactly as m001 creates them (SQLite stores the text without
# "IF NOT EXISTS", so a rebuilt index is indistinguishable). A first backfill into an empty table drops
# them and builds each once at the end (Store.begin_bulk_ingest): keeping three indexes up to date row by
# row costs more than the rows themselves.
FORWARD_INDEXES: dict[str, str] = {
    "forwards_received": "CREATE INDEX IF NOT EXISTS forwards_received ON forwards (received_time)",
    "forwards_out": "CREATE INDEX IF NOT EXISTS forwards_out ON forwards (out_channel, received_time)",
    "forwards_in": "CREATE INDEX IF NOT EXISTS forwards_in ON forwards (in_channel, received_time)",
    # m012 (replaces m008's forwards_flow): covers every column the flow counters read (storage/flowsql.py), in
    # the order they are grouped by, so SQLite sums a window without sorting or reading the table; status and
    # failure reason first, so that each kind of forward (settled, refused for a reason, ...) is one range of it.
    "forwards_sums": "CREATE INDEX IF NOT EXISTS forwards_sums ON forwards (status, failure_reason, out_channel,"
    " in_channel, received_time, fee_msat, out_msat, in_msat)",
    # m010: where Store.payment_events starts its few seeks: the refused forwards with a payment hash (by hash),
    # covering what it is filtered by; the hashed forwards.
    "forwards_refused_hash": "CREATE INDEX IF NOT EXISTS forwards_refused_hash ON forwards (payment_hash,"
    f" received_time, status, out_channel, failure_reason) WHERE {REFUSED_HERE} AND payment_hash IS NOT NULL",
    "forwards_hash": "CREATE INDEX IF NOT EXISTS forwards_hash ON forwards (payment_hash, received_time)"
    " WHERE payment_hash IS NOT NULL",
    # m011: the settled forwards by incoming and by outgoing channel, covering what the fee policy's inputs sum
    # (storage/settled.py): each channel's rows in one range, read in order, without the table.
    "forwards_settled_in": "CREATE INDEX IF NOT EXISTS forwards_settled_in ON forwards (in_channel, received_time,"
    " resolved_time, in_msat) WHERE status = 'settled'",
    "forwards_settled_out": "CREATE INDEX IF NOT EXISTS forwards_settled_out ON forwards (out_channel, received_time,"
    " resolved_time, out_msat, fee_msat) WHERE status = 'settled'",
    # m012 (replaces m010's forwards_refused): the refused forwards without a payment hash that have a neighbour
    # (near), by incoming channel and time, covering what they are filtered by.
    "forwards_refused_near": "CREATE INDEX IF NOT EXISTS forwards_refused_near ON forwards (in_channel,"
    f" received_time, status, out_channel, failure_reason) WHERE {REFUSED_HERE} AND payment_hash IS NULL"
    " AND near = 1",
}


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE forwards (
            key TEXT PRIMARY KEY,
            in_channel TEXT NOT NULL,
            in_htlc_id INTEGER,
            out_channel TEXT,
            in_msat INTEGER NOT NULL,
            out_msat INTEGER,
            fee_msat INTEGER,
            status TEXT NOT NULL,
            failure_reason TEXT,
            failcode INTEGER,
            failreason TEXT,
            received_time REAL NOT NULL,
            resolved_time REAL,
            source TEXT NOT NULL
        );
        CREATE INDEX forwards_received ON forwards (received_time);
        CREATE INDEX forwards_out ON forwards (out_channel, received_time);
        CREATE INDEX forwards_in ON forwards (in_channel, received_time);
        CREATE TABLE channel_snapshots (
            time REAL NOT NULL,
            channel_id TEXT NOT NULL,
            peer_id TEXT NOT NULL,
            capacity_msat INTEGER NOT NULL,
            local_balance_msat INTEGER NOT NULL,
            remote_balance_msat INTEGER NOT NULL,
            active INTEGER NOT NULL,
            base_fee_msat INTEGER NOT NULL,
            fee_ppm INTEGER NOT NULL,
            inbound_base_fee_msat INTEGER NOT NULL,
            inbound_fee_ppm INTEGER NOT NULL,
            min_htlc_msat INTEGER NOT NULL,
            max_htlc_msat INTEGER,
            cltv_delta INTEGER NOT NULL,
            disabled INTEGER NOT NULL,
            PRIMARY KEY (channel_id, time)
        );
        CREATE INDEX channel_snapshots_time ON channel_snapshots (time);
        CREATE TABLE fee_updates (
            id INTEGER PRIMARY KEY,
            channel_id TEXT NOT NULL,
            state TEXT NOT NULL,
            planned_time REAL NOT NULL,
            applied_time REAL,
            finished_time REAL,
            policy TEXT,
            strategy TEXT,
            plugin TEXT,
            reason TEXT NOT NULL,
            old_policy TEXT NOT NULL,
            new_policy TEXT NOT NULL,
            rollback_of INTEGER REFERENCES fee_updates(id),
            detail TEXT
        );
        CREATE INDEX fee_updates_channel ON fee_updates (channel_id, planned_time);
        CREATE TABLE opportunities (
            id INTEGER PRIMARY KEY,
            run_time REAL NOT NULL,
            out_channel TEXT NOT NULL,
            in_channel TEXT,
            window_s INTEGER NOT NULL,
            urgency INTEGER NOT NULL,
            missed_revenue_msat INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX opportunities_run ON opportunities (run_time);
        CREATE TABLE model_runs (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            path TEXT,
            metrics TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE cursors (
            stream TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_time REAL NOT NULL
        );
        """
    )


@migrations()
def m002_snapshot_peer_alias(db: Database) -> None:
    # Reports name peers; the alias comes from the node at snapshot time.
    db.execute("ALTER TABLE channel_snapshots ADD COLUMN peer_alias TEXT NOT NULL DEFAULT ''")


@migrations()
def m003_meta(db: Database) -> None:
    # Facts about the database itself, e.g. clock=simulated for a simulator's run.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m004_model_activation(db: Database) -> None:
    # When each model was last made active, and in which order (a counter: a simulated
    # clock gives many activations the same time), so the previous one can be restored.
    db.execute("ALTER TABLE model_runs ADD COLUMN activated_time REAL")
    db.execute("ALTER TABLE model_runs ADD COLUMN activation INTEGER")


@migrations()
def m005_model_predictions(db: Database) -> None:
    # The liquidity model's prediction per channel each time it ran: its history, by model version.
    db.executescript(
        """
        CREATE TABLE model_predictions (
            time REAL NOT NULL,
            channel_id TEXT NOT NULL,
            model TEXT NOT NULL,
            current_ratio REAL,
            predicted_ratio REAL,
            PRIMARY KEY (channel_id, time, model)
        );
        CREATE INDEX model_predictions_time ON model_predictions (time);
        """
    )


@migrations()
def m006_alerts(db: Database) -> None:
    # Alerts raised by each analysis run, so every surface can show what fired and when.
    db.executescript(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            run_time REAL NOT NULL,
            kind TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            message TEXT NOT NULL,
            evidence TEXT NOT NULL
        );
        CREATE INDEX alerts_run ON alerts (run_time);
        """
    )


@migrations()
def m007_model_drift(db: Database) -> None:
    # Drift indicators of the served model, per version, as the daemons measured them (docs/MODEL.md).
    db.executescript(
        """
        CREATE TABLE model_drift (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            model TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX model_drift_model ON model_drift (model, time);
        CREATE INDEX model_drift_time ON model_drift (time);
        """
    )


@migrations()
def m008_forwards_flow_index(db: Database) -> None:
    # Flow counters summed by SQLite over any window (storage/flowsql.py) read only this index.
    db.execute(_M008_FLOW)


@migrations()
def m009_forward_payment_hash(db: Database) -> None:
    # The payment hash where the backend reports it: missed revenue counts a payment refused on several
    # of our channels once, and not at all when it then went through us (docs/opportunities.md).
    db.execute("ALTER TABLE forwards ADD COLUMN payment_hash TEXT")


@migrations()
def m010_payment_indexes(db: Database) -> None:
    # Refused payments tied together from the refused and hashed forwards, not a pass over every forward.
    db.execute(_M010_REFUSED)
    for name in ("forwards_refused_hash", "forwards_hash"):
        db.execute(FORWARD_INDEXES[name])


@migrations()
def m011_settled_indexes(db: Database) -> None:
    # The fee policy's per-channel sums of settled forwards read these, not every forward as an object.
    for name in ("forwards_settled_in", "forwards_settled_out"):
        db.execute(FORWARD_INDEXES[name])


@migrations()
def m012_forward_neighbours_and_sums(db: Database) -> None:
    # Refused payments' chains start from the few refused forwards with a neighbour (Store.payment_events), not
    # from a seek per refused forward: the flag for every stored forward, in one pass, then its index.
    db.execute("ALTER TABLE forwards ADD COLUMN near INTEGER NOT NULL DEFAULT 0")
    db.execute(MARK_ALL_NEAR, {"gap": NEAR_GAP_S})
    db.execute("DROP INDEX IF EXISTS forwards_refused")
    db.execute(FORWARD_INDEXES["forwards_refused_near"])
    # The flow sums' covering index, by status and failure reason first (each kind of forward one range).
    db.execute("DROP INDEX IF EXISTS forwards_flow")
    db.execute(FORWARD_INDEXES["forwards_sums"])
