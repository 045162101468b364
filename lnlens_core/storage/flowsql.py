"""Flow counters over windows of the stored forwards, summed by SQLite (the store's analysis path).

The same numbers as :class:`~lnlens_core.opportunities.flows.FlowCounter` fed with the same forwards (a property
test holds them equal), without building one Python object per forward: SQLite groups the forwards
by (status, failure reason, out channel, in channel) over the covering index ``forwards_sums`` (or,
for a window holding a small share of the table, over ``forwards_received``), and prices each failed
forward at the policy then in force by looking it up in a temporary copy of the
:class:`~lnlens_core.opportunities.flows.PolicyBook`. Several windows ending at the same time are cut into segments
at their starts: each forward is summed once, in its segment, and a window's figures are the sums of its
segments (:meth:`FlowQueries.flow_groups`).

Integer arithmetic matches Python's: divisions round down (floor), also for negative inbound fees.
SQLite's integers are 64-bit, so amounts stay exact while ``amount * fee_ppm`` stays under 9.2e18.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlite_utils import Database

from ..domain import ChannelId, FailureReason, HtlcEvent
from ..opportunities.flows import (
    IN,
    MATCH_WINDOW_S,
    MAXIMA,
    METRICS,
    OUT,
    FlowKey,
    FlowStats,
    FlowTable,
    PolicyBook,
    add_counters,
    payment_corrections,
)
from .rows import FORWARD_COLUMNS, forward_from_row
from .schema import REFUSED_HERE as _REFUSED_HERE

__all__ = ["FlowQueries", "FlowGroups", "GroupKeys", "group_counters", "group_keys", "sum_by_key", "stats_from_groups",
           "channel_rows",
           "SETTLED", "DOWNSTREAM", "LIQUIDITY", "FEE", "OTHER"]  # fmt: skip

# The category of a group of forwards, as its status and failure reason decide (flows.contribution).
SETTLED, DOWNSTREAM, LIQUIDITY, FEE, OTHER = range(5)
_CATEGORY = (
    "CASE WHEN status = 'settled' THEN 0"
    " WHEN failure_reason = 'downstream' OR (failure_reason IS NULL AND status = 'failed') THEN 1"
    " WHEN failure_reason = 'insufficient_balance' THEN 2 WHEN failure_reason = 'fee_insufficient' THEN 3 ELSE 4 END"
)
_FAILED = "status IN ('failed', 'local_failed')"
_OTHER_REASONS = ", ".join(f"'{r.value}'" for r in FailureReason if r.value not in (
    "downstream", "fee_insufficient", "insufficient_balance"))  # fmt: skip
_HERE_REASONS = f"'fee_insufficient', 'insufficient_balance', {_OTHER_REASONS}"
# Kinds of rows, each summed by its own SELECT over its own ranges of the index forwards_sums (status and failure
# reason first), so that no per-row expression has to ask which it is, and no SELECT walks another's rows:
# (WHERE, what it sums: "settled" its fee and amount, "" nothing, else a priced kind: "fee" also stale and the
# offered rate, "liquidity" also the largest amount refused, "other" the missed fee and amount only).
# Settled; failed downstream or before an outgoing channel was chosen (counted, not priced); refused here for a
# fee (stale, the offered rate), for liquidity (the largest amount refused) or another reason (also none: CLN's
# local failures without one). A group (status, failure reason, channels) lies within one kind.
_KINDS = (
    ("status = 'settled'", "settled"),
    (f"{_FAILED} AND failure_reason = 'downstream'", ""),
    ("status = 'failed' AND failure_reason IS NULL", ""),
    (f"{_FAILED} AND failure_reason IN ({_HERE_REASONS}) AND out_channel IS NULL", ""),
    ("status = 'local_failed' AND failure_reason IS NULL AND out_channel IS NULL", ""),
    (f"{_FAILED} AND failure_reason = 'fee_insufficient' AND out_channel IS NOT NULL", "fee"),
    (f"{_FAILED} AND failure_reason = 'insufficient_balance' AND out_channel IS NOT NULL", "liquidity"),
    (f"{_FAILED} AND failure_reason IN ({_OTHER_REASONS}) AND out_channel IS NOT NULL", "other"),
    ("status = 'local_failed' AND failure_reason IS NULL AND out_channel IS NOT NULL", "other"),
)
# Over the time index (a short window) or no index, each SELECT walks every row of the window: three kinds only,
# the priced one with every priced sum (those of one reason are 0 in another's groups).
_DOWNSTREAM = "(failure_reason IS 'downstream' OR (failure_reason IS NULL AND status = 'failed'))"  # never NULL
_WALKED_KINDS = (
    ("status = 'settled'", "settled"),
    (f"{_FAILED} AND (out_channel IS NULL OR {_DOWNSTREAM})", ""),
    (f"{_FAILED} AND out_channel IS NOT NULL AND NOT {_DOWNSTREAM}", "any"),
)
_BOOK = "temp.lnlens_policy_book"
# The period in force at a forward's receive time: one index step for a channel whose policy never changed, and
# for a recent forward, from the first period that ends after it (a binary search on start would cost two seeks).
_LOOKUP = (" LEFT JOIN {book} {alias} ON {alias}.channel_id = {column} AND {alias}.end > received_time"
           " AND {alias}.start <= received_time")  # fmt: skip
# by -> (the channel columns selected, the GROUP BY columns)
_GROUP_BY = {"pair": ("out_channel, in_channel", "out_channel, in_channel"),
             "out": ("out_channel, NULL", "out_channel"), "in": ("NULL, in_channel", "in_channel")}  # fmt: skip
# The share of the table under which a window is read through the time index rather than the covering one.
_TIME_INDEX_SHARE = 0.15


def _floordiv(a: str, b: str) -> str:
    """SQL for Python's ``a // b`` with ``b > 0`` (SQLite's ``/`` truncates toward zero)."""
    return f"(({a}) / ({b}) - (({a}) % ({b}) < 0))"


def _pricing(inbound_fees: bool, negative_ppm: bool) -> tuple[str, str]:
    """Per forward failed here, SQL for the missed fee and amount flows.contribution counts.

    ``po`` is the out channel's policy then in force (NULL columns when the book has none), ``pi``
    the in channel's (joined only when the book holds an inbound fee). SQLite's ``/`` is Python's
    ``//`` on non-negative operands and wherever the result is clamped at 0: plain ``/`` there,
    the longer floor division only for inbound fees and, should the book hold one, a negative rate.
    """
    out_eff = ("(CASE WHEN out_msat > 0 THEN out_msat WHEN po.fee_ppm IS NULL THEN in_msat"
               " WHEN out_msat IS NULL THEN max((in_msat - po.base_fee_msat) * 1000000 / (1000000 + po.fee_ppm), 0)"
               " ELSE 0 END)")  # fmt: skip
    rate = f"{out_eff} * po.fee_ppm"
    fee_out = f"po.base_fee_msat + {_floordiv(rate, '1000000') if negative_ppm else f'{rate} / 1000000'}"
    if inbound_fees:
        inbound = _floordiv(f"({out_eff} + {fee_out}) * pi.inbound_fee_ppm", "1000000")
        fee_out += f" + coalesce(pi.inbound_base_fee_msat + {inbound}, 0)"
    fee = (f"(CASE WHEN po.fee_ppm IS NOT NULL THEN max({fee_out}, 0) WHEN out_msat IS NULL THEN 0"
           " ELSE max(in_msat - out_msat, 0) END)")  # fmt: skip
    return fee, out_eff


# Fee failures only (each SELECT sums one failure reason's groups): stale, the offered rate's sum and count.
_FEE_SUMS = ("(received_time - po.changed < :propagation_s)",
             "(CASE WHEN out_msat > 0 THEN max((in_msat - out_msat - coalesce(po.base_fee_msat, 0)) * 1000000"
             " / out_msat, 0) ELSE 0 END)", "(out_msat > 0)")  # fmt: skip
_ANY_FEE_SUMS = tuple(f"(CASE WHEN failure_reason = 'fee_insufficient' THEN {expr} ELSE 0 END)" for expr in _FEE_SUMS)


SETTLED_SUMS = ("fee_msat", "coalesce(out_msat, in_msat)")
_SUMS = 6
_WIDTH = 2 + _SUMS  # per group: count, five sums, whether it is priced (1 or 0), the largest amount refused
_PRICED_AT = _SUMS


@dataclass(frozen=True, slots=True)
class FlowGroups:
    """Stored forwards summed per (status, out channel, in channel, failure reason[, bucket]) and window.

    ``sums[g, w]`` holds, for group ``g`` in window ``w``: count, then the settled sums (fee, amount)
    for settled groups or the priced sums (missed fee, missed amount, stale, offered rate sum and count)
    for failed ones, 1 for a priced group, then the largest amount a priced group refused (all 0 when
    the group has no forward in the window); ``first[w]`` the earliest receive time of a forward summed
    in window ``w`` (``inf`` when none).
    """

    category: np.ndarray
    out_channel: list[str | None]
    in_channel: list[str]
    bucket: np.ndarray | None
    sums: np.ndarray  # (groups, windows, 8) int64: count, up to 5 sums, priced, the largest amount refused
    first: np.ndarray  # (windows,) float64


class FlowQueries:
    """Mixed into :class:`~lnlens_core.storage.store.Store`; ``self.db`` is its sqlite-utils Database."""

    db: Database

    def _load_book(self, book: PolicyBook) -> tuple[bool, bool]:
        """The book's policies, one row per period it was in force, into a temporary table.

        :returns: whether any of them charges an inbound fee, and whether any has a negative fee rate.
        """
        # In a transaction of its own: a temporary table's rows would otherwise open one (sqlite3 begins
        # one before an INSERT) that nobody commits, keeping every later write from other connections.
        with self.db.atomic():
            self.db.execute(f"DROP TABLE IF EXISTS {_BOOK}")
            self.db.execute(
                f"CREATE TABLE {_BOOK} (channel_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,"
                " changed REAL, base_fee_msat INTEGER, fee_ppm INTEGER, inbound_base_fee_msat INTEGER,"
                " inbound_fee_ppm INTEGER, PRIMARY KEY (channel_id, end)) WITHOUT ROWID"
            )  # a failed forward's policy in one seek of the primary key, which holds every column
            self.db.conn.executemany(f"INSERT INTO {_BOOK} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _period_rows(book))
        sql = (f"SELECT EXISTS (SELECT 1 FROM {_BOOK} WHERE inbound_base_fee_msat != 0 OR inbound_fee_ppm != 0),"
               f" EXISTS (SELECT 1 FROM {_BOOK} WHERE fee_ppm < 0)")  # fmt: skip
        inbound, negative = self.db.execute(sql).fetchone()
        return bool(inbound), bool(negative)

    def _flow_index(self, since: float, until: float) -> str:
        """``INDEXED BY`` the cheaper index for a window, or nothing when the indexes are being rebuilt."""
        names = {row[1] for row in self.db.execute("PRAGMA index_list(forwards)").fetchall()}
        if "forwards_sums" not in names or "forwards_received" not in names:
            return ""
        (rows,) = self.db.execute("SELECT max(rowid) FROM forwards").fetchone()
        if not rows:
            return ""
        sql = "SELECT count(*) FROM (SELECT 1 FROM forwards WHERE received_time >= ? AND received_time < ? LIMIT ?)"
        limit = int(rows * _TIME_INDEX_SHARE)
        (inside,) = self.db.execute(sql, [since, until, limit]).fetchone()
        return "INDEXED BY forwards_received" if inside < limit else "INDEXED BY forwards_sums"

    def flow_groups(
        self,
        book: PolicyBook,
        starts: Sequence[float],
        until: float,
        *,
        propagation_s: float = 3_600,
        bucket_s: float | None = None,
        by: str = "pair",
    ) -> FlowGroups:
        """Resolved forwards received in ``[start, until)`` for each of ``starts``, summed per group.

        :param bucket_s: also group by ``floor(received_time / bucket_s)`` (the live windows' rings);
            then ``until`` may be ``inf``.
        :param by: ``pair`` groups by out and in channel; ``out`` or ``in`` by that channel only (the
            other one is None in the result), a few rows per channel, for the channel-only live windows.
        """
        if by not in _GROUP_BY:
            raise ValueError(f"group by pair, out or in, not {by!r}")
        # The windows cut [min(starts), until) into segments at their starts; each forward is summed once, in
        # its segment, and a window's figures are its segments' (one pass per segment, each over the index that
        # suits its length, rather than one set of conditional sums per window for every forward).
        edges = sorted({s for s in starts if s < until})
        inbound_fees, negative_ppm = self._load_book(book)
        sql = {kinds: self._segment_sql(inbound_fees, negative_ppm, bucket_s, by, kinds)
               for kinds in (_KINDS, _WALKED_KINDS)}  # fmt: skip
        # Converted to arrays a chunk at a time: a month's groups as Python objects all at once cost a daemon
        # ~50 MB of peak RSS at a million forwards (issue 16).
        chunks = []
        names: dict[str | None, str | None] = {}  # one string per channel for every group, not two per group
        first = np.full(len(starts), np.inf)
        try:
            for lo, hi in zip(edges, [*edges[1:], until][: len(edges)], strict=True):
                member = np.array([s <= lo for s in starts], dtype=bool)
                params = {"lo": lo, "hi": hi, "propagation_s": propagation_s}
                index = self._flow_index(lo, hi)
                cursor = self.db.execute(sql[_KINDS if "forwards_sums" in index else _WALKED_KINDS].format(index=index),
                                         params)  # fmt: skip
                while rows := cursor.fetchmany(_GROUP_CHUNK):
                    chunks.append(_groups(rows, member, bucketed=bool(bucket_s), names=names))
                # the segment's earliest forward summed: the first in time order that is not in flight
                (earliest,) = self.db.execute(_EARLIEST, params).fetchone() or (None,)
                if earliest is not None:
                    first[member] = np.minimum(first[member], earliest)
        finally:
            with self.db.atomic():
                self.db.execute(f"DROP TABLE IF EXISTS {_BOOK}")
        return _concat(chunks, first, bucketed=bool(bucket_s))

    @staticmethod
    def _segment_sql(inbound_fees: bool, negative_ppm: bool, bucket_s: float | None, by: str,
                     kinds: tuple[tuple[str, str], ...] = _KINDS) -> str:
        """The forwards received in ``[:lo, :hi)`` summed per group, ``{index}`` to fill in: one row per group of
        category, channels, bucket, count, five sums, 1 if priced, the largest amount refused."""
        channels, group_by = _GROUP_BY[by]
        bucket = f"CAST(floor(received_time / {float(bucket_s)!r}) AS INTEGER)" if bucket_s else "NULL"
        joins = _LOOKUP.format(book=_BOOK, alias="po", column="out_channel")
        if inbound_fees:
            joins += _LOOKUP.format(book=_BOOK, alias="pi", column="in_channel")
        priced = _pricing(inbound_fees, negative_ppm)
        parts = []
        for where, kind in kinds:
            # Each SELECT sums only what its kind needs: SQLite's cost is per row and per aggregate.
            is_priced = kind not in ("settled", "")
            sums = {"settled": SETTLED_SUMS, "": (), "fee": (*priced, *_FEE_SUMS),
                    "any": (*priced, *_ANY_FEE_SUMS)}.get(kind, priced)  # fmt: skip
            columns = ["count(*)", *(f"coalesce(sum({expr}), 0)" for expr in sums),
                       *["0"] * (_SUMS - 1 - len(sums)), "1" if is_priced else "0",
                       # the largest amount refused (flows.MAXIMA: a refill is sized to carry every failed HTLC;
                       # group_counters keeps it for liquidity groups only)
                       f"coalesce(max({sums[1]}), 0)" if kind in ("liquidity", "any") else "0"]  # fmt: skip
            parts.append(
                f"SELECT {_CATEGORY}, {channels}, {bucket}, {', '.join(columns)}"
                f" FROM forwards {{index}}{joins if is_priced else ''}"
                f" WHERE {where} AND received_time >= :lo AND received_time < :hi"
                f" GROUP BY status, failure_reason, {group_by}{', 4' if bucket_s else ''}"
            )
        return " UNION ALL ".join(parts)

    def flow_stats(self, book: PolicyBook, starts: Sequence[float], until: float, *,
                   propagation_s: float = 3_600) -> list[FlowStats]:  # fmt: skip
        """Exact counters over ``[start, until)`` for each start: what FlowCounter gives for the same forwards."""
        groups = self.flow_groups(book, starts, until, propagation_s=propagation_s)
        # read once for the longest window: a shorter window's chains lie inside the longer one's
        events = list(self.payment_events(min(starts), until))
        corrections = [payment_corrections((e for e in events if e.received_time >= since), book,
                                           propagation_s=propagation_s) for since in starts]  # fmt: skip
        return stats_from_groups(groups, starts, until, corrections)

    def payment_events(self, since: float, until: float) -> Iterator[HtlcEvent]:
        """The resolved forwards in ``[since, until)`` that can belong to a payment refused here, oldest first.

        :class:`~lnlens_core.opportunities.flows.PaymentMatcher` ties an HTLC to a refused payment by its payment hash,
        or else on the same incoming channel within ``MATCH_WINDOW_S`` of the payment's previous HTLC. So
        only forwards sharing a refused one's hash, or in a chain of forwards on its incoming channel with
        no gap over that window, can match; a refused forward alone in its chain (or alone with its hash)
        changes nothing. The chains grow from the refused forwards that have a neighbour: those flagged
        ``near`` at ingest (m012, the partial index ``forwards_refused_near``: a few rows, not one per refused
        forward), each checked for a neighbour inside the window by one seek in ``forwards_in``; the hashes
        from ``forwards_refused_hash`` and ``forwards_hash`` (m010): no pass over every forward of the window.
        Chains are followed over every forward (any status, with or without a hash), a superset of the
        matcher's, and extra forwards that match nothing change nothing: the same matches as over every
        forward. A few rows, streamed.
        """
        params = {"since": since, "until": until, "gap": MATCH_WINDOW_S}
        sql = f"SELECT EXISTS (SELECT 1 FROM forwards WHERE {_REFUSED_HERE} AND received_time >= :since" \
              " AND received_time < :until)"
        if not self.db.execute(sql, params).fetchone()[0]:
            return
        names = {row[1] for row in self.db.execute("PRAGMA index_list(forwards)").fetchall()}
        sql = _PAYMENT_CHAINS if _PAYMENT_INDEXES <= names else _PAYMENT_RUNS
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                yield forward_from_row(dict(zip(names, row, strict=True)))


_COLUMNS = ", ".join(FORWARD_COLUMNS)
_PAYMENT_INDEXES = {"forwards_in", "forwards_refused_near", "forwards_refused_hash", "forwards_hash"}
_IN_WINDOW = "{t}.received_time >= :since AND {t}.received_time < :until"
# Indexed: chains of forwards on an incoming channel grown from the refused forwards with a neighbour within the
# matching window, and the forwards sharing a hash with a refused one that is not alone with it.
_PAYMENT_CHAINS = f"""
    WITH RECURSIVE chain(id, in_channel, t) AS (
        SELECT r.rowid, r.in_channel, r.received_time FROM forwards r INDEXED BY forwards_refused_near
        WHERE {_REFUSED_HERE} AND r.payment_hash IS NULL AND r.near = 1 AND {_IN_WINDOW.format(t="r")}
          AND EXISTS (SELECT 1 FROM forwards f INDEXED BY forwards_in WHERE f.in_channel = r.in_channel
                      AND f.received_time BETWEEN r.received_time - :gap AND r.received_time + :gap
                      AND {_IN_WINDOW.format(t="f")} AND f.rowid != r.rowid)
        UNION
        SELECT f.rowid, f.in_channel, f.received_time FROM chain c JOIN forwards f INDEXED BY forwards_in
            ON f.in_channel = c.in_channel AND f.received_time BETWEEN c.t - :gap AND c.t + :gap
        WHERE {_IN_WINDOW.format(t="f")}
    ), hashes(h) AS (
        SELECT DISTINCT r.payment_hash FROM forwards r INDEXED BY forwards_refused_hash
        WHERE {_REFUSED_HERE} AND r.payment_hash IS NOT NULL AND {_IN_WINDOW.format(t="r")}
          AND EXISTS (SELECT 1 FROM forwards f INDEXED BY forwards_hash WHERE f.payment_hash = r.payment_hash
                      AND f.payment_hash IS NOT NULL AND {_IN_WINDOW.format(t="f")} AND f.rowid != r.rowid)
    )
    SELECT {_COLUMNS} FROM forwards WHERE rowid IN (SELECT id FROM chain) AND payment_hash IS NULL
        AND status != 'offered'
    UNION ALL
    SELECT {_COLUMNS} FROM forwards INDEXED BY forwards_hash WHERE payment_hash IS NOT NULL
        AND payment_hash IN (SELECT h FROM hashes) AND {_IN_WINDOW.format(t="forwards")} AND status != 'offered'
    ORDER BY received_time, key
"""
# Without those indexes (a first backfill builds them at its end): runs found by window functions in one pass.
_PAYMENT_RUNS = f"""
    WITH w AS (
        SELECT {_COLUMNS}, received_time - lag(received_time)
            OVER (PARTITION BY in_channel ORDER BY received_time, key) AS gap
        FROM forwards
        WHERE received_time >= :since AND received_time < :until AND status != 'offered'
    ), c AS (
        SELECT *, sum(gap IS NULL OR gap > :gap)
            OVER (PARTITION BY in_channel ORDER BY received_time, key) AS run FROM w
    ), n AS (
        SELECT *, count(*) OVER (PARTITION BY in_channel, run) AS in_run,
            count(*) OVER (PARTITION BY payment_hash) AS with_hash FROM c
    ), r AS (SELECT in_channel, run, payment_hash FROM n WHERE {_REFUSED_HERE}
             AND (CASE WHEN payment_hash IS NULL THEN in_run ELSE with_hash END) > 1)
    SELECT {_COLUMNS} FROM n
    WHERE (payment_hash IS NULL AND (in_channel, run) IN (SELECT in_channel, run FROM r WHERE payment_hash IS NULL))
       OR payment_hash IN (SELECT payment_hash FROM r WHERE payment_hash IS NOT NULL)
    ORDER BY received_time, key
"""  # noqa: E501


def _period_rows(book: PolicyBook) -> list[tuple[Any, ...]]:
    """One row per period of the book: ``[start, end)`` with end the next period's start (``inf`` for the last)."""
    rows: list[tuple[Any, ...]] = []
    for cid, start, changed, p in book.periods():
        text = str(cid)
        if rows and rows[-1][0] == text:
            rows[-1] = (*rows[-1][:2], start, *rows[-1][3:])
        rows.append((text, start, math.inf, changed, p.base_fee_msat, p.fee_ppm, p.inbound_base_fee_msat,
                     p.inbound_fee_ppm))  # fmt: skip
    # Policies observed at one instant leave empty periods between them (start == end), which price nothing:
    # without them a channel's periods end at distinct times (the table's key).
    return [row for row in rows if row[1] < row[2]]


_GROUP_CHUNK = 4096
STATS_CHUNK = 8192  # groups counted and summed at once by stats_from_groups
_EARLIEST = ("SELECT received_time FROM forwards WHERE received_time >= :lo AND received_time < :hi"
             " AND status != 'offered' ORDER BY received_time LIMIT 1")  # fmt: skip


def _concat(chunks: list[FlowGroups], first: np.ndarray, *, bucketed: bool) -> FlowGroups:
    if not chunks:
        chunks = [_groups([], np.ones(len(first), dtype=bool), bucketed=bucketed)]
    if len(chunks) == 1:
        return replace(chunks[0], first=first)
    return FlowGroups(
        category=np.concatenate([c.category for c in chunks]),
        out_channel=[x for c in chunks for x in c.out_channel],
        in_channel=[x for c in chunks for x in c.in_channel],
        bucket=np.concatenate([c.bucket for c in chunks]) if bucketed else None,  # type: ignore[misc]
        sums=np.concatenate([c.sums for c in chunks]),
        first=first,
    )


def _groups(rows: list[tuple[Any, ...]], member: np.ndarray, *, bucketed: bool,
            names: dict[str | None, str | None] | None = None) -> FlowGroups:  # fmt: skip
    """One segment's rows as groups of every window: its sums in the windows it belongs to (``member``), none
    (zero, first time ``inf``) in the others.

    :param names: the channel ids' texts seen so far, shared by a call's chunks: SQLite returns a new string for
        each row's channel, and a window's groups grow with the forwards in it (a day of 3,000,000 stored forwards
        held ~20 MB of duplicate strings at a daemon's peak; issue 16), while the channels are a few thousand."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * (4 + _WIDTH)
    numbers = np.array(columns[4:], dtype=np.int64).T.reshape(len(rows), _WIDTH)
    return FlowGroups(
        category=np.array(columns[0], dtype=np.int64),
        out_channel=list(columns[1]) if names is None else list(map(names.setdefault, columns[1], columns[1])),
        in_channel=list(columns[2]) if names is None else list(map(names.setdefault, columns[2], columns[2])),
        bucket=np.array(columns[3], dtype=np.int64) if bucketed else None,
        sums=np.where(member[None, :, None], numbers[:, None, :], 0),
        first=np.full(len(member), np.inf),
    )


_I = {name: i for i, name in enumerate(METRICS)}
_MAX = np.array([_I[name] for name in MAXIMA], dtype=np.intp)
_SUM_COLS = np.array([_I[name] for name in METRICS if name not in MAXIMA], dtype=np.intp)


def group_counters(groups: FlowGroups) -> np.ndarray:
    """The counters (:data:`~lnlens_core.opportunities.flows.METRICS` order) of each group in each window:
    (groups, windows, M)."""
    cat, sums = groups.category[:, None], groups.sums
    n = sums[:, :, 0]
    out = np.zeros((*n.shape, len(METRICS)), dtype=np.int64)
    failed = cat != SETTLED
    out[:, :, _I["attempts"]] = n
    for name, category in (("settled", SETTLED), ("failed_downstream", DOWNSTREAM), ("failed_liquidity", LIQUIDITY),
                           ("failed_fee", FEE), ("failed_other", OTHER)):  # fmt: skip
        out[:, :, _I[name]] = n * (cat == category)
    out[:, :, _I["revenue_msat"]] = sums[:, :, 1] * ~failed
    out[:, :, _I["volume_msat"]] = sums[:, :, 2] * ~failed
    for k, name in enumerate(("missed_revenue_msat", "missed_volume_msat", "failed_fee_stale", "offered_fee_ppm_sum",
                              "offered_fee_count"), start=1):  # fmt: skip
        out[:, :, _I[name]] = sums[:, :, k] * failed
    # every HTLC on its own here; payment_corrections then ties a refused payment's HTLCs together
    out[:, :, _I["missed_revenue_htlc_msat"]] = out[:, :, _I["missed_revenue_msat"]]
    out[:, :, _I["missed_payments"]] = n * sums[:, :, _PRICED_AT]  # 1 per refused HTLC (priced groups)
    out[:, :, _I["missed_liquidity_msat"]] = sums[:, :, 1] * (cat == LIQUIDITY)
    out[:, :, _I["max_failed_liquidity_msat"]] = sums[:, :, 1 + _SUMS] * (cat == LIQUIDITY)
    return out


@dataclass(frozen=True, slots=True)
class GroupKeys:
    """Each group's keys as row numbers: out channel (-1 when none), in channel, pair (-1 when none)."""

    channels: list[ChannelId]
    pairs: list[tuple[ChannelId, ChannelId]]
    out: np.ndarray
    inbound: np.ndarray
    pair: np.ndarray
    row: dict[str | None, int]
    """A channel's row by its text (None: -1)."""
    codes: np.ndarray
    """Each pair's ``in row * len(channels) + out row``, ascending (a pair's row is its place here)."""

    def pair_rows(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The rows of pairs given as (in, out) channel texts, each of which has a group."""
        n = len(self.channels)
        wanted = np.array([self.row[i] * n + self.row[o] for i, o in pairs], dtype=np.int64)
        return np.searchsorted(self.codes, wanted)


def group_keys(groups: FlowGroups) -> GroupKeys:
    texts = sorted(set(groups.in_channel).union(groups.out_channel).difference([None]))
    n = len(texts)
    row: dict[str | None, int] = dict(zip(texts, range(n), strict=True))
    row[None] = -1
    out = np.array(list(map(row.__getitem__, groups.out_channel)), dtype=np.int64)
    inbound = np.array(list(map(row.__getitem__, groups.in_channel)), dtype=np.int64)
    codes = np.where(out >= 0, inbound * n + out, -1)
    unique, pair = np.unique(codes, return_inverse=True)
    offset = int(len(unique) and unique[0] < 0)  # code -1 (no out channel) sorts first
    channels = [ChannelId.parse(t) for t in texts]
    unique = unique[offset:]
    pairs = list(zip(map(channels.__getitem__, (unique // max(n, 1)).tolist()),
                     map(channels.__getitem__, (unique % max(n, 1)).tolist()), strict=True))  # fmt: skip
    return GroupKeys(channels, pairs, out, inbound, np.where(out >= 0, pair.reshape(-1) - offset, -1), row, unique)


def sum_by_key(rows: np.ndarray, values: np.ndarray, n: int, into: np.ndarray | None = None) -> np.ndarray:
    """``table[rows[i]] += values[i]`` for ``rows >= 0``, in an (n, M) table; exact integer sums (the
    :data:`~lnlens_core.opportunities.flows.MAXIMA` columns keep the largest value, as everywhere counters add up).

    The same table as :func:`~lnlens_core.opportunities.flows.add_counters` into zeros, by sorting the rows and summing
    each run of equal ones (numpy's reduceat): several times faster than ``add.at`` on many groups.

    :param into: a table to add to (returned), as summing the rows chunk by chunk gives the same table as
        summing them at once; else a new one of zeros."""
    keep = np.flatnonzero(rows >= 0)
    table = np.zeros((n, values.shape[-1]), dtype=np.int64) if into is None else into
    if len(keep):
        # one sorted copy of the kept rows' values, not a kept copy and then its sorted copy (issue 16)
        order = keep[np.argsort(rows[keep], kind="stable")]
        rows, values = rows[order], values[order]
        heads = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        sums = np.add.reduceat(values, heads, axis=0)
        sums[:, _MAX] = np.maximum(np.maximum.reduceat(values[:, _MAX], heads, axis=0), 0)
        at = rows[heads]  # each row once
        if into is not None:
            sums[:, _MAX] = np.maximum(sums[:, _MAX], table[at][:, _MAX])
            sums[:, _SUM_COLS] += table[at][:, _SUM_COLS]
        table[at] = sums
    return table


Corrections = Sequence[tuple[HtlcEvent, list[int]]]


def stats_from_groups(groups: FlowGroups, starts: Sequence[float], until: float,
                      corrections: Sequence[Corrections] = ()) -> list[FlowStats]:  # fmt: skip
    """One :class:`FlowStats` per window: each group's counters added to its pair (or, without an out channel, to
    its in channel), each pair's to its out and in channels, then the window's
    :func:`~lnlens_core.opportunities.flows.payment_corrections` (none by default) at their events' keys.

    A window's groups are counted and summed :data:`STATS_CHUNK` at a time into its tables: the counters of
    every group of a day of 3,000,000 stored forwards at once (~100,000 groups) were ~16 MB of a daemon's peak,
    with the copies the sums make of them (issue 16); the tables are the same."""
    keys = group_keys(groups)
    result = []
    for w, since in enumerate(starts):
        tables = [np.zeros((len(keys.channels), len(METRICS)), dtype=np.int64),
                  np.zeros((len(keys.channels), len(METRICS)), dtype=np.int64),
                  np.zeros((len(keys.pairs), len(METRICS)), dtype=np.int64)]  # fmt: skip
        for lo in range(0, len(groups.category), STATS_CHUNK):
            part = slice(lo, lo + STATS_CHUNK)
            inside = lo + np.flatnonzero(groups.sums[part, w, 0])  # the groups of this window's segments
            if not len(inside):
                continue
            values = group_counters(replace(groups, category=groups.category[inside],
                                            sums=groups.sums[inside, w : w + 1]))[:, 0]  # fmt: skip
            sum_by_key(keys.pair[inside], values, len(tables[2]), into=tables[2])
            alone = keys.pair[inside] < 0  # refused before an outgoing channel was chosen: an in key only
            sum_by_key(keys.inbound[inside[alone]], values[alone], len(tables[1]), into=tables[1])
        # A channel's figures are the sums of its pairs' (a pair is its in and its out channel): summed from the
        # pairs, a fraction of the groups (a pair has a group per status and failure reason).
        n = max(len(keys.channels), 1)
        sum_by_key(keys.codes % n, tables[2], len(tables[0]), into=tables[0])
        sum_by_key(keys.codes // n, tables[2], len(tables[1]), into=tables[1])
        fixes = corrections[w] if w < len(corrections) else ()
        if fixes:  # one call per table: a month's corrections are thousands of rows
            rows = np.array([row for _, row in fixes], dtype=np.int64)
            add_counters(tables[1], np.array([keys.row[str(e.in_channel)] for e, _ in fixes], dtype=np.intp), rows)
            routed = [k for k, (e, _) in enumerate(fixes) if e.out_channel is not None]
            if routed:
                texts = [(str(fixes[k][0].in_channel), str(fixes[k][0].out_channel)) for k in routed]
                add_counters(tables[0], np.array([keys.row[o] for _, o in texts], dtype=np.intp), rows[routed])
                add_counters(tables[2], keys.pair_rows(texts).astype(np.intp), rows[routed])
        out, inbound, pairs = _flows(keys.channels, tables[0]), _flows(keys.channels, tables[1]), \
            _flows(keys.pairs, tables[2])
        first = groups.first[w]
        observed = until - float(first) if np.isfinite(first) else 0.0
        result.append(FlowStats(since, until, observed, out, inbound, pairs))
    return result


def channel_rows(groups: FlowGroups) -> tuple[list[FlowKey], np.ndarray, np.ndarray]:
    """The first window's counters of groups made ``by="out"`` or ``by="in"`` as rows of OUT or IN keys.

    :returns: (keys, buckets, counters), one entry per row (for ``WindowedFlows.load``); a group of
        forwards refused before an outgoing channel was chosen has no OUT key and is left out.
    """
    counters = group_counters(groups)[:, 0]
    ids: dict[str, ChannelId] = {}
    keys: list[FlowKey] = []
    kept: list[int] = []
    for i, (out_text, in_text) in enumerate(zip(groups.out_channel, groups.in_channel, strict=True)):
        kind, text = (OUT, out_text) if out_text is not None else (IN, in_text)
        if text is None:
            continue
        cid = ids.get(text) or ids.setdefault(text, ChannelId.parse(text))
        keys.append((kind, cid, None))
        kept.append(i)
    buckets = groups.bucket if groups.bucket is not None else np.zeros(len(counters), dtype=np.int64)
    return keys, buckets[kept], counters[kept]


def _flows(keys: Sequence[Any], table: np.ndarray) -> FlowTable[Any]:
    """The keys with any counted forward (attempts > 0) and their counters."""
    rows = np.flatnonzero(table[:, 0])
    return FlowTable(list(map(keys.__getitem__, rows.tolist())), table[rows])
