"""The Store: every query lnlens makes, on the schema in :mod:`.schema`.

sqlite-utils (>= 4.2, which ships ``Migrations`` and ``Database.atomic``) opens the
file with WAL; named migrations run forward only. Ingest is idempotent: a forward
is keyed by :attr:`HtlcEvent.key`, a later status replaces ``offered`` once, and a
resolved forward never changes again, so the same history ingested twice is stored
once and counted once.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ..clock import SystemClock
from ..domain import Channel, ChannelId, ChannelPolicy, ForwardStatus, HtlcEvent
from ..errors import StoreError
from .flowsql import FlowQueries
from .history import POLICY_COLUMNS, HistoryQueries
from .lock import writer_lock
from .records import JOURNAL_STATES, RecordQueries
from .rows import (
    FORWARD_COLUMNS,
    SNAPSHOT_COLUMNS,
    channel_from_row,
    forward_from_row,
    forward_row,
    policy_from_row,
    snapshot_row,
)
from .schema import FORWARD_INDEXES, MARK_ALL_NEAR, MARK_NEAR, NEAR_GAP_S, migrations
from .settled import SettledQueries

__all__ = ["Store", "PRUNABLE", "JOURNAL_STATES", "private_dir"]

# Tables `lnlens cleanup --type X` may prune, with the column that dates a row.
PRUNABLE: dict[str, tuple[str, str]] = {
    "alerts": ("alerts", "run_time"),
    "forwards": ("forwards", "coalesce(resolved_time, received_time)"),
    "snapshots": ("channel_snapshots", "time"),
    "opportunities": ("opportunities", "run_time"),
    "model_runs": ("model_runs", "time"),
    "predictions": ("model_predictions", "time"),
    "drift": ("model_drift", "time"),
    "journal": ("fee_updates", "planned_time"),
}
# Journal rows in these states are part of an unfinished change and are never pruned.
_JOURNAL_OPEN = ("planned", "applied")

_MIGRATE_TRIES = 100  # 0.1 s apart: another process migrating the same new file has 10 s
_KEY_CHUNK = 900  # stays under SQLite's default limit of 999 bound parameters
_BULK_CACHE_KIB = 65_536  # page cache during a bulk ingest: holds the key index of some million forwards


class Store(FlowQueries, HistoryQueries, RecordQueries, SettledQueries):
    """The lnlens database. Not thread-safe: use one Store per thread, or a lock.

    :param path: the database file; None for an in-memory database (tests).
    :param readonly: open for reading only (read-only commands): the file must exist, nothing is
        written to it (a read-only file is readable), and no folder or file is created.
    :param create: with ``readonly=False``, create the file (mode 0600) when it is missing. Its folder
        is never created here: a mistyped path is an error, not a new folder (see :func:`private_dir`
        for the one data directory lnlens makes itself).
    :raises StoreError: the file is missing (and may not be created), cannot be opened, is not an lnlens
        database, or was written by a newer lnlens (a migration this version does not know).
    """

    default_cache: int = 2_000
    """The page cache of every connection a Store opens, in KiB (SQLite's default), and what a bulk ingest gives
    back: one named size rather than whatever a connection happened to hold (issue 16)."""

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False, create: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.readonly = readonly
        self._bulk = False  # between begin_bulk_ingest and end_bulk_ingest
        where = self.path or ":memory:"
        try:
            if self.path is None:
                self.db = Database(memory=True, execute_plugins=False)
            else:
                self.db = _open_file(self.path, readonly=readonly, create=create)
            self._use_default_cache()
            _refuse_unknown(self.db, where)
            if not readonly:
                self._migrate()
            elif self.pending_migrations():
                self._upgrade_then_read(where)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"{where}: cannot open the lnlens database ({exc})") from exc

    def _upgrade_then_read(self, where: str | Path) -> None:
        """A read-only open of a database an older lnlens wrote: its schema is brought up to date first
        (the data is not touched) when the file can be written, else that is the error."""
        assert self.path is not None
        self.db.close()
        if not os.access(self.path, os.W_OK):
            raise StoreError(f"{where}: written by an older lnlens and read-only here, so its schema cannot be "
                             "upgraded; make it writable once or use the lnlens that wrote it")  # fmt: skip
        Store(self.path).close()
        self.db = _open_file(self.path, readonly=True, create=False)
        self._use_default_cache()

    def _use_default_cache(self) -> None:
        self.db.execute(f"PRAGMA cache_size = {-int(self.default_cache)}")

    def _migrate(self) -> None:
        """WAL mode and pending migrations. Processes that open a new database at once race to migrate it:
        the loser (its table already made, the file locked, or an idempotent migration already recorded by
        the winner) looks again once the winner is done."""
        for attempt in range(_MIGRATE_TRIES):
            try:
                if self.path is not None:
                    self.db.enable_wal()
                migrations.apply(self.db)
                return
            except (sqlite3.OperationalError, sqlite3.IntegrityError):
                if attempt == _MIGRATE_TRIES - 1:
                    raise
                SystemClock().sleep(0.1)

    def writer_lock(self, *, holder: str | None = None, wait_s: float = 0.0) -> AbstractContextManager[None]:
        """The database's one writer lock (:mod:`.lock`), held around planning and applying fees and rollbacks.

        :raises WriterBusy: another process or thread holds it (the message names the holder).
        """
        return writer_lock(self.path, key=str(id(self)), holder=holder, wait_s=wait_s)

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------

    def schema_version(self) -> list[str]:
        """The names of the applied migrations, oldest first."""
        return [m.name for m in migrations.applied(self.db)]

    def pending_migrations(self) -> list[str]:
        return [m.name for m in migrations.pending(self.db)]

    def forward_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM forwards").fetchone()[0])

    def row_counts(self) -> dict[str, int]:
        return {name: self.db.table(name).count for name in sorted(self.db.table_names()) if not name.startswith("_")}

    # -- forwards -------------------------------------------------------------

    def ingest_forwards(self, events: Iterable[HtlcEvent], *, source: str) -> list[HtlcEvent]:
        """Store forwards idempotently.

        :param source: where they came from (``live``, ``backfill``, ``sim``), kept per row.
        :returns: the events that were new to the store or that resolved an HTLC the
            store had as ``offered`` — exactly the ones statistics must count.
        """
        latest: dict[str, HtlcEvent] = {}
        for event in events:
            key = event.key  # formatted once per event: a backfill ingests millions
            prev = latest.get(key)
            # Within one batch a resolved status wins over an earlier or later "offered".
            if prev is None or not prev.status.resolved or event.status.resolved:
                latest[key] = event
        if not latest:
            return []
        stored = self._stored_status(list(latest))
        inserts: list[tuple[str, HtlcEvent]] = []
        upgrades: list[tuple[str, HtlcEvent]] = []
        for key, event in latest.items():
            old = stored.get(key)
            if old is None:
                inserts.append((key, event))
            elif old == ForwardStatus.OFFERED.value and event.status.resolved:
                upgrades.append((key, event))
        marks = ",".join("?" * len(FORWARD_COLUMNS))
        # A resolution without the payment hash (a listforwards row) keeps the one a live event brought.
        assignments = ",".join(
            f"{c}=COALESCE(?, {c})" if c == "payment_hash" else f"{c}=?" for c in FORWARD_COLUMNS[1:]
        )
        changed = [e for _, e in inserts] + [e for _, e in upgrades]
        with self.db.atomic():
            self.db.conn.executemany(
                f"INSERT INTO forwards ({','.join(FORWARD_COLUMNS)}) VALUES ({marks})",
                [forward_row(e, source, key) for key, e in inserts],
            )
            self.db.conn.executemany(
                f"UPDATE forwards SET {assignments} WHERE key=? AND status='offered'",
                [(*forward_row(e, source, key)[1:], key) for key, e in upgrades],
            )
            self._mark_near(changed)
        return changed

    def _mark_near(self, events: Sequence[HtlcEvent]) -> None:
        """Flag the forwards within the matching gap of each new or resolved one (schema.MARK_NEAR), one index
        seek each; while the indexes are deferred (a first backfill), their rebuild flags every row instead."""
        if not events or not self._near_indexed():
            return
        self.db.conn.executemany(MARK_NEAR, [{"in_channel": str(e.in_channel), "t": e.received_time,
                                              "gap": NEAR_GAP_S} for e in events])  # fmt: skip

    def _near_indexed(self) -> bool:
        names = {row[1] for row in self.db.execute("PRAGMA index_list(forwards)").fetchall()}
        return "forwards_in" in names and "forwards_refused_near" in names

    def _stored_status(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start : start + _KEY_CHUNK]
            sql = f"SELECT key, status FROM forwards WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(self.db.execute(sql, chunk).fetchall())
        return found

    def forward_channels(self, since: float, until: float) -> set[ChannelId]:
        """Every channel a forward received in ``[since, until)`` came in or went out by (one indexed pass)."""
        sql = ("SELECT in_channel FROM forwards WHERE received_time >= :since AND received_time < :until UNION "
               "SELECT out_channel FROM forwards WHERE received_time >= :since AND received_time < :until "
               "AND out_channel IS NOT NULL")  # fmt: skip
        return {ChannelId.parse(cid) for (cid,) in self.db.execute(sql, {"since": since, "until": until}) if cid}

    def iter_forwards(
        self, *, since: float | None = None, until: float | None = None, batch: int = 1_000
    ) -> Iterator[HtlcEvent]:
        """Forwards received in ``[since, until)``, oldest first, streamed in batches (a batch of 10,000 rows as
        Python tuples was ~10 MB of a daemon's peak, for each pass over a day of forwards; issue 16)."""
        where, params = ["1=1"], []
        if since is not None:
            where.append("received_time >= ?")
            params.append(since)
        if until is not None:
            where.append("received_time < ?")
            params.append(until)
        cursor = self.db.execute(
            f"SELECT {','.join(FORWARD_COLUMNS)} FROM forwards WHERE {' AND '.join(where)}"
            " ORDER BY received_time, key", params
        )
        columns = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch):
            for row in rows:
                yield forward_from_row(dict(zip(columns, row, strict=True)))

    def forwards_page(
        self,
        *,
        before: tuple[float, str] | None = None,
        limit: int = 100,
        status: str | None = None,
        channel: ChannelId | None = None,
    ) -> list[dict[str, Any]]:
        """Stored forwards newest first, ``limit`` at a time, as rows (a read-only API pages with these).

        :param before: ``(received_time, key)`` of the last row of the previous page: keyset paging,
            stable while new forwards arrive.
        :param channel: only forwards in or out through this channel.
        """
        where, params = ["1=1"], []
        if before is not None:
            where.append("(received_time < ? OR (received_time = ? AND key < ?))")
            params.extend([before[0], before[0], before[1]])
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if channel is not None:
            where.append("(in_channel = ? OR out_channel = ?)")
            params.extend([str(channel), str(channel)])
        sql = (f"SELECT {','.join(FORWARD_COLUMNS)} FROM forwards WHERE {' AND '.join(where)}"
               " ORDER BY received_time DESC, key DESC LIMIT ?")  # fmt: skip
        return list(self.db.query(sql, [*params, limit]))

    def failure_counts(self, *, since: float) -> dict[str, int]:
        """Failed forwards received since ``since``, counted by failure reason (``unknown`` when none)."""
        sql = (
            "SELECT coalesce(failure_reason, 'unknown'), count(*) FROM forwards"
            " WHERE received_time >= ? AND status IN ('failed', 'local_failed') GROUP BY 1 ORDER BY 1"
        )
        return {reason: int(n) for reason, n in self.db.execute(sql, [since]).fetchall()}

    # -- meta -----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.atomic():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def latest_forward_time(self, *, until: float | None = None) -> float | None:
        """The received time of the newest stored forward, received at or before ``until`` when given."""
        if until is None:
            return self.db.execute("SELECT max(received_time) FROM forwards").fetchone()[0]
        sql = "SELECT max(received_time) FROM forwards WHERE received_time <= ?"
        return self.db.execute(sql, [until]).fetchone()[0]

    def latest_data_time(self) -> float | None:
        """The newest time any forward, snapshot or fee journal entry in the store refers to."""
        sql = (
            "SELECT max(t) FROM (SELECT max(received_time) AS t FROM forwards"
            " UNION ALL SELECT max(resolved_time) FROM forwards"
            " UNION ALL SELECT max(time) FROM channel_snapshots"
            " UNION ALL SELECT max(max(planned_time, coalesce(applied_time, 0), coalesce(finished_time, 0)))"
            " FROM fee_updates)"
        )
        return self.db.execute(sql).fetchone()[0]

    def next_htlc_ids(self) -> dict[ChannelId, int]:
        """Per incoming channel, the HTLC id after the highest one stored (a node that continues this
        history numbers its new HTLCs from there, so no new forward reuses a stored key)."""
        sql = "SELECT in_channel, max(in_htlc_id) FROM forwards WHERE in_htlc_id IS NOT NULL GROUP BY in_channel"
        return {ChannelId.parse(cid): int(top) + 1 for cid, top in self.db.execute(sql).fetchall()}

    # -- cursors --------------------------------------------------------------

    def get_cursor(self, stream: str) -> str | None:
        row = self.db.execute("SELECT value FROM cursors WHERE stream = ?", [stream]).fetchone()
        return row[0] if row else None

    def set_cursor(self, stream: str, value: str, *, now: float) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO cursors (stream, value, updated_time) VALUES (?, ?, ?) "
                "ON CONFLICT(stream) DO UPDATE SET value=excluded.value, updated_time=excluded.updated_time",
                [stream, value, now],
            )

    def ingest_page(self, events: Sequence[HtlcEvent], *, stream: str, cursor: str, now: float) -> list[HtlcEvent]:
        """Store one history page and move its cursor in the same transaction.

        A crash leaves either both or neither, so a restart never skips or repeats a page.
        """
        with self.db.atomic():
            new = self.ingest_forwards(events, source="backfill")
            self.set_cursor(stream, cursor, now=now)
        return new

    def begin_bulk_ingest(self) -> bool:
        """Prepare for a run of :meth:`ingest_page` calls (a backfill); end it with :meth:`end_bulk_ingest`.

        Into an empty ``forwards`` table (a first backfill), the secondary indexes are dropped and
        built once at the end, several times cheaper than updating them row by row; the rows, and
        the rebuilt indexes, are the same either way, and queries in between are correct, only
        slower. Should a process die in between, the next bulk ingest builds the missing indexes
        first. A larger page cache (64 MiB at most, given back at the end) keeps the key index in
        memory while keys arrive in an order that is random to it.

        :returns: whether the indexes were deferred (pass it to :meth:`end_bulk_ingest`).
        """
        self.db.execute(f"PRAGMA cache_size = {-_BULK_CACHE_KIB}")
        self._bulk = True
        empty = self.db.execute("SELECT 1 FROM forwards LIMIT 1").fetchone() is None
        if empty:
            with self.db.atomic():
                for name in FORWARD_INDEXES:
                    self.db.execute(f"DROP INDEX IF EXISTS {name}")
        else:
            self._build_indexes()
        return empty

    def end_bulk_ingest(self, deferred: bool) -> None:
        """Build the indexes :meth:`begin_bulk_ingest` deferred, and give the page cache back."""
        if deferred:
            self._build_indexes()
        self._use_default_cache()
        self._bulk = False

    @contextmanager
    def own_cache(self) -> Iterator[None]:
        """Inside a bulk ingest, what runs within (a daemon's answers between pages) reads with the store's own
        page cache: the ingest's 64 MiB would keep every page those reads touch (a count of the forwards, a
        window's sums: tens of MB of a daemon's peak over millions of stored forwards; issue 16). The ingest's
        cached pages are dropped, and read again as its next page needs them. Outside a bulk ingest, nothing."""
        if not self._bulk:
            yield
            return
        self._use_default_cache()
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA cache_size = {-_BULK_CACHE_KIB}")

    def _build_indexes(self) -> None:
        """The forwards indexes that are missing, and, if any was, every forward's ``near`` flag (the rows
        stored meanwhile were not flagged one by one): in one transaction, so a writer that sees the indexes
        sees the flags."""
        names = {row[1] for row in self.db.execute("PRAGMA index_list(forwards)").fetchall()}
        if set(FORWARD_INDEXES) <= names:
            return
        with self.db.atomic():
            for sql in FORWARD_INDEXES.values():
                self.db.execute(sql)
            self.db.execute(MARK_ALL_NEAR, {"gap": NEAR_GAP_S})

    # -- channel snapshots ----------------------------------------------------

    def add_snapshots(self, channels: Sequence[Channel], *, time: float) -> None:
        # A snapshot row carries our policy; a channel whose policy the node cannot tell now has none this time.
        rows = [snapshot_row(ch, time) for ch in channels if ch.local_policy is not None]
        with self.db.atomic():
            self.db.conn.executemany(
                f"INSERT OR REPLACE INTO channel_snapshots ({','.join(SNAPSHOT_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(SNAPSHOT_COLUMNS))})",
                rows,
            )

    def latest_channels(self, *, at: float | None = None) -> tuple[float | None, list[Channel]]:
        """Our channels as the newest snapshot (at or before ``at``) saw them, and its time."""
        sql = "SELECT max(time) FROM channel_snapshots" + (" WHERE time <= ?" if at is not None else "")
        (when,) = self.db.execute(sql, [at] if at is not None else []).fetchone()
        if when is None:
            return None, []
        rows = self.db.query("SELECT * FROM channel_snapshots WHERE time = ? ORDER BY channel_id", [when])
        return when, [channel_from_row(r) for r in rows]

    def policy_history(self) -> Iterator[tuple[float, ChannelId, ChannelPolicy]]:
        """Every snapshot's policy, oldest first: the raw material of a PolicyBook."""
        for row in self.db.query("SELECT * FROM channel_snapshots ORDER BY time, channel_id"):
            yield row["time"], ChannelId.parse(row["channel_id"]), policy_from_row(row)

    def policy_changes(self) -> Iterator[tuple[float, ChannelId, ChannelPolicy]]:
        """Like :meth:`policy_history`, only the snapshots whose policy differs from the channel's previous one.

        The same PolicyBook results (it keeps only changes), from a fraction of the rows: a node
        snapshots every channel every interval and changes a policy now and then. Each channel's
        snapshots are read along the primary key (channel, time), without a sort, and each is compared
        with the one before it here: a quarter of the time SQLite's window functions took (a ``lag`` per
        policy column; 13 vs 54 ms for 10,000 snapshots, issue 16). The changes are then put in time order.
        """
        sql = f"SELECT channel_id, time, {', '.join(POLICY_COLUMNS)} FROM channel_snapshots ORDER BY channel_id, time"
        cursor = self.db.execute(sql)
        changes: list[tuple[Any, ...]] = []
        channel, policy = None, None
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                if row[0] != channel or row[2:] != policy:
                    changes.append(row)
                channel, policy = row[0], row[2:]
        changes.sort(key=lambda row: (row[1], row[0]))
        ids: dict[str, ChannelId] = {}
        for text, time, *values in changes:
            cid = ids.get(text) or ids.setdefault(text, ChannelId.parse(text))
            yield time, cid, policy_from_row(dict(zip(POLICY_COLUMNS, values, strict=True)))

    def snapshots(self, *, since: float | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM channel_snapshots", []
        if since is not None:
            sql, params = sql + " WHERE time >= ?", [since]
        return list(self.db.query(sql + " ORDER BY time, channel_id", params))

    # -- retention ------------------------------------------------------------

    def _prune_where(self, kind: str, cutoff: float) -> tuple[str, str, list[Any]]:
        if kind not in PRUNABLE:
            raise ValueError(f"unknown data type {kind!r} (choose from {', '.join(PRUNABLE)})")
        table, dated = PRUNABLE[kind]
        where, params = f"{dated} < ?", [cutoff]
        if kind == "journal":
            where += f" AND state NOT IN ({','.join('?' * len(_JOURNAL_OPEN))})"
            params.extend(_JOURNAL_OPEN)
        if kind == "model_runs":
            where += " AND active = 0"  # the model in use is never pruned
        return table, where, params

    def prunable_rows(self, kind: str, cutoff: float) -> Iterator[dict[str, Any]]:
        """The rows :meth:`prune` would delete, for review or export."""
        table, where, params = self._prune_where(kind, cutoff)
        columns = ",".join(FORWARD_COLUMNS) if table == "forwards" else "*"  # not the index flag (near)
        yield from self.db.query(f"SELECT {columns} FROM {table} WHERE {where}", params)

    def count_prunable(self, kind: str, cutoff: float) -> int:
        table, where, params = self._prune_where(kind, cutoff)
        return int(self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0])

    def prune(self, kind: str, cutoff: float) -> int:
        """Delete rows of ``kind`` dated before ``cutoff``; returns how many."""
        table, where, params = self._prune_where(kind, cutoff)
        with self.db.atomic():
            cur = self.db.execute(f"DELETE FROM {table} WHERE {where}", params)
        return int(cur.rowcount)


def private_dir(path: Path) -> Path:
    """Create folder ``path`` (and its missing parents) readable by its owner only (0700); an existing
    folder is left as it is. For lnlens's own data directory: the forwarding history is private."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        for p in reversed(missing):
            p.mkdir(mode=0o700)
            p.chmod(0o700)  # mkdir's mode passes through the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the data directory ({exc.strerror or exc})") from None
    return path


def _open_file(path: Path, *, readonly: bool, create: bool) -> Database:
    if not path.exists():
        if readonly or not create:
            raise StoreError(f"{path}: no such database (check --db; lnlens sim run, monitor or serve create one)")
        if not path.parent.is_dir():
            raise StoreError(f"{path}: the folder {path.parent} does not exist (check --db; lnlens creates no folders "
                             "for a database path it is given)")  # fmt: skip
        try:  # created here, owner-only, so SQLite's WAL and shared-memory files (same mode) are private too
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    elif path.is_dir():
        raise StoreError(f"{path}: is a folder, not a database file")
    if not readonly:
        return Database(path, execute_plugins=False)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # A WAL database we may not write, in a folder we may not write: SQLite cannot make the shared-memory
        # file a reader needs. Nobody can change such a file, so it is read as immutable.
        conn.close()
        if os.access(path, os.W_OK):
            raise
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True)
    # mode=ro already refuses every write to the file; no `PRAGMA query_only`, which would also refuse the
    # temporary tables a read needs (the policy book the flow sums join, storage/flowsql.py).
    return Database(conn, execute_plugins=False)


def _refuse_unknown(db: Database, where: str | Path) -> None:
    """:raises StoreError: the database has migrations this lnlens does not know (a newer lnlens wrote it)."""
    known = [m.name for m in migrations.pending(Database(memory=True))]
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise StoreError(
            f"{where}: written by a newer lnlens (migration {unknown[-1]}; the newest this version knows is "
            f"{known[-1]}): upgrade lnlens to use it; nothing was written"
        )
