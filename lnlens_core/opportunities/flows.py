"""Flow statistics per channel direction and per channel pair.

Every resolved forward contributes one row of counters (:data:`METRICS`) to up to
three keys: the channel it left by (``out``), the channel it came in by (``in``)
and the pair. :class:`FlowCounter` sums exactly over one window (an analysis over
the store); :class:`WindowedFlows` keeps the 1 h / 24 h / 7 d / 30 d sliding windows
in memory for the live monitor. The windowed form is a ring of time buckets per
window, so its memory is bounded by the number of keys (channels and pairs), never
by the number of events.

Missed revenue is what each failed forward would have paid us at the policy in
force at that moment (:class:`PolicyBook`): the outbound fee on the out channel,
plus the inbound fee (a discount when negative) of the in channel. It is counted
once per payment (:class:`PaymentMatcher`): a sender that retries over another of
our channels sends a second HTLC of the same payment, and one that then goes
through us after all was not lost. ``missed_revenue_htlc_msat`` keeps the per-HTLC
sum, ``missed_recovered_msat`` what was refused but then carried by us anyway.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from ..domain import Channel, ChannelId, ChannelPolicy, FailureCategory, FailureReason, ForwardStatus, HtlcEvent

__all__ = ["Flow", "NO_FLOW", "MAXIMA", "add_counters", "FlowKey", "FlowStats", "FlowTable", "FlowCounter",
           "WindowedFlows", "PolicyBook", "contribution", "WINDOWS", "PaymentMatcher", "recovery",
           "payment_corrections"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Flow:
    """Counters for one key over one window. Amounts in msat."""

    attempts: int = 0
    """Resolved forwards: settled + failed here + failed downstream."""
    settled: int = 0
    failed_liquidity: int = 0
    failed_fee: int = 0
    failed_fee_stale: int = 0
    """Fee failures within the propagation delay after we changed this channel's policy."""
    failed_other: int = 0
    failed_downstream: int = 0
    revenue_msat: int = 0
    volume_msat: int = 0
    """Settled amount leaving (out keys, pairs) or arriving (in keys)."""
    missed_revenue_msat: int = 0
    """Fees lost: once per payment refused here, and only when it did not then go through us anyway."""
    missed_volume_msat: int = 0
    """The amounts the refused HTLCs would have carried out, each counted (a feature of the liquidity model)."""
    missed_liquidity_msat: int = 0
    """The part of missed revenue lost to liquidity failures."""
    missed_revenue_htlc_msat: int = 0
    """What every refused HTLC would have paid, each counted (a payment retried here counts per HTLC)."""
    missed_recovered_msat: int = 0
    """Fees of payments refused here that then went through us anyway (not in missed revenue)."""
    offered_fee_ppm_sum: int = 0
    offered_fee_count: int = 0
    """Fee failures whose offered fee is known: its rate summed, and how many."""
    max_failed_liquidity_msat: int = 0
    """The largest amount a liquidity failure here would have sent out: the window's maximum, never a sum
    (:data:`MAXIMA`), so a refill can be sized to carry every HTLC that failed (docs/opportunities.md)."""
    missed_payments: int = 0
    """Payments refused here and lost: once per payment, not when it then went through us (the count behind
    ``missed_revenue_msat``; ``failed_here`` counts every refused HTLC)."""

    @property
    def failed_here(self) -> int:
        """Failures at our node (liquidity, fee, other) — downstream ones excluded."""
        return self.failed_liquidity + self.failed_fee + self.failed_other

    @property
    def success_rate(self) -> float | None:
        """settled / attempts, None without attempts."""
        return self.settled / self.attempts if self.attempts else None

    @property
    def failure_rate_here(self) -> float | None:
        """Failures at our node over the forwards that reached a decision here (downstream excluded)."""
        decided = self.attempts - self.failed_downstream
        return self.failed_here / decided if decided else None


NO_FLOW = Flow()
"""The counters of a key nothing went through; shared (Flow is frozen), as building one per lookup is not free."""

METRICS: tuple[str, ...] = tuple(f.name for f in fields(Flow))
_M = len(METRICS)
_IDX = {name: i for i, name in enumerate(METRICS)}
_SETTLED = [int(name in ("attempts", "settled")) for name in METRICS]
_REVENUE, _VOLUME = _IDX["revenue_msat"], _IDX["volume_msat"]
MAXIMA: tuple[str, ...] = ("max_failed_liquidity_msat",)
"""Metrics that combine by maximum, not by sum (over forwards, buckets and windows)."""
_MAX_COLS = np.array([_IDX[name] for name in MAXIMA], dtype=np.intp)
_SUM_MASK = np.array([name not in MAXIMA for name in METRICS], dtype=np.int64)

OUT, IN, PAIR = 0, 1, 2
FlowKey = tuple[int, ChannelId, ChannelId | None]
"""(OUT, channel, None), (IN, channel, None) or (PAIR, in_channel, out_channel)."""

# window name -> (length s, bucket s). Buckets bound memory and set the resolution at the old edge.
WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3_600, 600),
    "24h": (86_400, 7_200),
    "7d": (604_800, 43_200),
    "30d": (2_592_000, 172_800),
}


class PolicyBook:
    """Our policy on each channel over time, to price a failed forward as of its moment."""

    def __init__(self) -> None:
        self._times: dict[ChannelId, list[float]] = {}
        self._policies: dict[ChannelId, list[ChannelPolicy]] = {}

    def copy(self) -> PolicyBook:
        """An independent book with the same history (policies are immutable and shared)."""
        book = PolicyBook()
        book._times = {cid: list(times) for cid, times in self._times.items()}
        book._policies = {cid: list(policies) for cid, policies in self._policies.items()}
        return book

    def observe(self, channel_id: ChannelId, policy: ChannelPolicy, time: float) -> bool:
        """Note the policy seen at ``time``; returns True when it differs from the last one."""
        times, policies = self._times.setdefault(channel_id, []), self._policies.setdefault(channel_id, [])
        i = bisect.bisect_right(times, time)
        if i and policies[i - 1] == policy:
            return False
        times.insert(i, time)
        policies.insert(i, policy)
        return True

    def observe_channels(self, channels: Iterable[Channel], time: float) -> list[ChannelId]:
        return [c.channel_id for c in channels
                if c.local_policy is not None and self.observe(c.channel_id, c.local_policy, time)]

    def channel_count(self) -> int:
        """How many channels the book knows a policy of."""
        return len(self._times)

    def policy_at(self, channel_id: ChannelId, time: float) -> ChannelPolicy | None:
        """The policy in force at ``time`` (the earliest known one before our first observation)."""
        times = self._times.get(channel_id)
        if not times:
            return None
        i = bisect.bisect_right(times, time)
        return self._policies[channel_id][max(i - 1, 0)]

    def periods(self) -> Iterator[tuple[ChannelId, float, float | None, ChannelPolicy]]:
        """Every policy known with when it took effect: (channel, start, change time, policy).

        ``policy_at(channel, t)`` is the policy of the last period with ``start <= t``: the first
        period of a channel starts at ``-inf``, and its change time is None (``last_change_before``).
        """
        for channel_id, times in self._times.items():
            for i, (time, policy) in enumerate(zip(times, self._policies[channel_id], strict=True)):
                yield channel_id, (time if i else -math.inf), (time if i else None), policy

    def last_change_before(self, channel_id: ChannelId, time: float) -> float | None:
        """When the policy in force at ``time`` took effect (None if it is the first one known)."""
        times = self._times.get(channel_id, [])
        i = bisect.bisect_right(times, time)
        return times[i - 1] if i >= 2 else None


def _would_be(event: HtlcEvent, book: PolicyBook) -> tuple[int, int]:
    """(fee msat, out msat) a failed forward would have brought at the policy then in force."""
    assert event.out_channel is not None
    policy = book.policy_at(event.out_channel, event.received_time)
    out_msat = event.out_msat
    if policy is None:
        # Unknown policy: the fee the sender offered is all we know.
        offered = event.in_msat - out_msat if out_msat is not None else 0
        return max(offered, 0), out_msat or event.in_msat
    if out_msat is None:
        # CLN omits out_msat on local failures: invert in = out + base + out*ppm/1e6.
        out_msat = max((event.in_msat - policy.base_fee_msat) * 1_000_000 // (1_000_000 + policy.fee_ppm), 0)
    fee = policy.fee_msat(out_msat)
    in_policy = book.policy_at(event.in_channel, event.received_time)
    if in_policy is not None and (in_policy.inbound_base_fee_msat or in_policy.inbound_fee_ppm):
        fee += in_policy.inbound_fee_msat(out_msat + fee)
    return max(fee, 0), out_msat


def contribution(event: HtlcEvent, book: PolicyBook, *, propagation_s: float, first: bool = True) -> list[int] | None:
    """The counters (in :data:`METRICS` order) one resolved forward adds to each of its keys.

    None for forwards still in flight. ``first`` is False for a refused HTLC of a payment
    already refused here (:class:`PaymentMatcher`): it counts as a failure, in the per-HTLC
    figure and in the refused volume (an HTLC-level amount, as the liquidity model learned
    it), not again as missed revenue.
    """
    if event.status is ForwardStatus.SETTLED:
        # Most forwards settle: their row is a copy of a template plus two amounts.
        row = _SETTLED.copy()
        row[_REVENUE] = event.fee_msat or 0
        row[_VOLUME] = event.out_msat if event.out_msat is not None else event.in_msat
        return row
    if not event.status.resolved:
        return None
    row = [0] * _M
    row[_IDX["attempts"]] = 1
    reason = event.failure_reason or (
        FailureReason.DOWNSTREAM if event.status is ForwardStatus.FAILED else FailureReason.UNKNOWN
    )
    if reason is FailureReason.DOWNSTREAM:
        row[_IDX["failed_downstream"]] = 1
        return row
    category = reason.category
    row[_IDX[f"failed_{category.value}"]] = 1
    if event.out_channel is None:
        return row  # refused before an outgoing channel was chosen: nothing to price
    fee_msat, out_msat = _would_be(event, book)
    row[_IDX["missed_revenue_htlc_msat"]] = fee_msat
    row[_IDX["missed_volume_msat"]] = out_msat
    if first:
        row[_IDX["missed_payments"]] = 1
        row[_IDX["missed_revenue_msat"]] = fee_msat
        if category is FailureCategory.LIQUIDITY:
            row[_IDX["missed_liquidity_msat"]] = fee_msat
    if category is FailureCategory.LIQUIDITY:
        row[_IDX["max_failed_liquidity_msat"]] = out_msat
    if category is FailureCategory.FEE:
        changed = book.last_change_before(event.out_channel, event.received_time)
        if changed is not None and event.received_time - changed < propagation_s:
            row[_IDX["failed_fee_stale"]] = 1
        if event.out_msat:
            policy = book.policy_at(event.out_channel, event.received_time)
            base = policy.base_fee_msat if policy else 0
            offered_ppm = (event.in_msat - event.out_msat - base) * 1_000_000 // event.out_msat
            row[_IDX["offered_fee_ppm_sum"]] = max(offered_ppm, 0)
            row[_IDX["offered_fee_count"]] = 1
    return row


def recovery(first_row: Sequence[int]) -> list[int]:
    """The counters that move a refused payment's first row from missed to recovered.

    Added at the keys and time of the payment's first refusal once a later HTLC of the
    same payment settles through us.
    """
    row = [0] * _M
    for name in ("missed_revenue_msat", "missed_liquidity_msat"):
        row[_IDX[name]] = -first_row[_IDX[name]]
    row[_IDX["missed_recovered_msat"]] = first_row[_IDX["missed_revenue_msat"]]
    row[_IDX["missed_payments"]] = -first_row[_IDX["missed_payments"]]
    return row


MATCH_WINDOW_S = 10.0
"""Without a payment hash, an HTLC belongs to a refused payment when it arrives within this long of the
payment's previous HTLC here: a sender retries as soon as the failure is back (a few round trips)."""
MATCH_HASH_WINDOW_S = 600.0
"""With a payment hash, how long a refused payment stays open for its later HTLCs."""
MATCH_TOLERANCE = 0.01
MATCH_TOLERANCE_MSAT = 10_000
"""... on the same incoming channel, its amount within 1 % (or 10 sat) of the first refused HTLC's: a
retry over another of our channels changes only the fees charged after us, a small share of it."""


@dataclass(slots=True)
class _Payment:
    """A payment refused here: its first refused HTLC, the counters that added, when its last HTLC came."""

    event: HtlcEvent
    row: list[int]
    last: float
    recovered: bool = False


class PaymentMatcher:
    """Ties the HTLCs of one payment together, to count a refused payment once and not at all if it went through.

    By payment hash when the backend gives one (CLN's ``forward_event``). Otherwise by a
    heuristic (LND's events, CLN's ``listforwards``, the simulator): a later HTLC on the same
    incoming channel, within :data:`MATCH_WINDOW_S` of the payment's previous HTLC here and
    with an amount within :data:`MATCH_TOLERANCE` of the first refused one, is a retry of it.
    The sender's retry keeps the route up to us and the amount to the receiver; only the fees
    after us change. Events are matched in the order given (the store's: by time received);
    memory is bounded by the payments refused in the last window.
    """

    def __init__(self) -> None:
        self._by_hash: dict[str, _Payment] = {}
        self._by_channel: dict[ChannelId, list[_Payment]] = {}
        self._channels_swept = float("-inf")
        self._hashes_swept = float("-inf")

    def _prune(self, now: float) -> None:
        # Memory only: _find checks every bound itself, so dropping expired payments later never changes
        # a match. Sweeping once per window of data time (not per event) keeps a backfill linear.
        if now - self._channels_swept >= MATCH_WINDOW_S:
            self._channels_swept = now
            for key, open_ in list(self._by_channel.items()):
                kept = [p for p in open_ if now - p.last <= MATCH_WINDOW_S]
                if kept:
                    self._by_channel[key] = kept
                else:
                    del self._by_channel[key]
        if now - self._hashes_swept >= MATCH_HASH_WINDOW_S / 8:
            self._hashes_swept = now
            for h in [h for h, p in self._by_hash.items() if now - p.last > MATCH_HASH_WINDOW_S]:
                del self._by_hash[h]

    def _find(self, event: HtlcEvent) -> _Payment | None:
        if event.payment_hash is not None:
            # bounded in time here, not only by pruning: a match never depends on how many payments are open
            found = self._by_hash.get(event.payment_hash)
            if found is not None and event.received_time - found.last > MATCH_HASH_WINDOW_S:
                return None
            return found
        best = None
        for p in self._by_channel.get(event.in_channel, ()):
            if p.event.payment_hash is not None or abs(event.received_time - p.last) > MATCH_WINDOW_S:
                continue
            if abs(event.in_msat - p.event.in_msat) <= max(MATCH_TOLERANCE * p.event.in_msat, MATCH_TOLERANCE_MSAT):
                if best is None or p.last > best.last:
                    best = p
        return best

    def refused(self, event: HtlcEvent) -> bool:
        """Note an HTLC refused here; True when it is its payment's first refusal (it counts as missed)."""
        self._prune(event.received_time)
        found = self._find(event)
        if found is not None:
            found.last = max(found.last, event.received_time)
            return False
        return True

    def open(self, event: HtlcEvent, row: list[int]) -> None:
        """Remember a payment's first refusal and the counters it added."""
        payment = _Payment(event, row, event.received_time)
        if event.payment_hash is not None:
            self._by_hash[event.payment_hash] = payment
        else:
            self._by_channel.setdefault(event.in_channel, []).append(payment)

    def carried(self, event: HtlcEvent) -> _Payment | None:
        """Note an HTLC that settled or failed downstream; a refused payment it settles, once."""
        self._prune(event.received_time)
        found = self._find(event)
        if found is None:
            return None
        found.last = max(found.last, event.received_time)
        if event.status is not ForwardStatus.SETTLED or found.recovered:
            return None
        found.recovered = True
        return found


def _refused_here(event: HtlcEvent) -> bool:
    return (
        event.status is ForwardStatus.LOCAL_FAILED
        and event.failure_reason is not FailureReason.DOWNSTREAM
        and event.out_channel is not None
    )


def _matched(
    events: Iterable[HtlcEvent], book: PolicyBook, propagation_s: float, payments: PaymentMatcher
) -> Iterator[tuple[HtlcEvent, list[int], str]]:
    """Each resolved forward's counters with a refused payment's HTLCs tied together: (event, row, kind).

    kind is ``first`` (a payment's first refusal here), ``repeat`` (a later refusal of it: not missed
    again), ``other``, or ``recovery``: the row that moves a refused payment from missed to recovered,
    at its first refusal's keys, once a later HTLC of it settles through us.
    """
    for event in events:
        if not event.status.resolved:
            continue
        if _refused_here(event):
            first = payments.refused(event)
            row = contribution(event, book, propagation_s=propagation_s, first=first)
            assert row is not None
            yield event, row, "first" if first else "repeat"
            if first:
                payments.open(event, row)
            continue
        row = contribution(event, book, propagation_s=propagation_s)
        assert row is not None
        yield event, row, "other"
        if (settles := payments.carried(event)) is not None:
            yield settles.event, recovery(settles.row), "recovery"


def payment_corrections(events: Iterable[HtlcEvent], book: PolicyBook, *,
                        propagation_s: float) -> list[tuple[HtlcEvent, list[int]]]:  # fmt: skip
    """What tying refused payments together changes against counting every HTLC on its own.

    (event whose keys take the row, row): a repeated refusal's missed revenue taken back, a recovered
    payment moved from missed to recovered. The store's SQL sums count each HTLC on its own and add
    these, read from the few forwards that can belong to a refused payment
    (:meth:`~lnlens_core.storage.Store.payment_events`); the same numbers as :class:`FlowCounter`.
    """
    found: list[tuple[HtlcEvent, list[int]]] = []
    for event, row, kind in _matched(events, book, propagation_s, PaymentMatcher()):
        if kind == "recovery":
            found.append((event, row))
        elif kind == "repeat":
            single = contribution(event, book, propagation_s=propagation_s)
            assert single is not None
            found.append((event, [a - b for a, b in zip(row, single, strict=True)]))
    return found


def _batch(
    events: Iterable[HtlcEvent], rows: _KeyIndex, book: PolicyBook, propagation_s: float, payments: PaymentMatcher
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key row numbers, event times, counter rows): one entry per (event, key)."""
    key_rows: list[int] = []
    owners: list[int] = []
    """For each key row, the counted event it belongs to: times and counters are built once per
    event and repeated per key by numpy, not by Python."""
    times: list[float] = []
    counters: list[list[int]] = []

    def count(event: HtlcEvent, row: list[int]) -> None:
        event_rows = rows.event_rows(event)
        key_rows.extend(event_rows)
        owners.extend([len(times)] * len(event_rows))
        times.append(event.received_time)
        counters.append(row)

    for event, row, _ in _matched(events, book, propagation_s, payments):
        count(event, row)
    owner = np.asarray(owners, dtype=np.intp)
    return (
        np.asarray(key_rows, dtype=np.intp),
        np.asarray(times, dtype=np.float64)[owner],
        np.asarray(counters, dtype=np.int64).reshape(-1, _M)[owner],
    )


def add_counters(table: np.ndarray, rows: np.ndarray, counters: np.ndarray) -> None:
    """``table[rows] += counters`` where rows may repeat (each repeat adds), in place; the
    :data:`MAXIMA` columns keep the largest value instead.

    numpy's ``add.at`` is several times faster on a flat array than on rows of a 2-D one,
    so each (row, metric) cell becomes one flat index. Integer sums: exact in any order.
    """
    if not table.flags.c_contiguous:
        raise ValueError("counter tables are C-contiguous (a reshaped copy would lose the sums)")
    flat_table = table.reshape(-1)
    flat = (rows * _M)[:, None] + np.arange(_M)
    np.add.at(flat_table, flat.ravel(), (counters * _SUM_MASK).ravel())
    np.maximum.at(flat_table, ((rows * _M)[:, None] + _MAX_COLS).ravel(), counters[:, _MAX_COLS].ravel())


def _keys(event: HtlcEvent) -> list[FlowKey]:
    keys: list[FlowKey] = [(IN, event.in_channel, None)]
    if event.out_channel is not None:
        keys += [(OUT, event.out_channel, None), (PAIR, event.in_channel, event.out_channel)]
    return keys


_K = TypeVar("_K")


class FlowTable(Mapping[_K, Flow]):
    """The flows of many keys as one table of counters, a row per key in their order (:data:`METRICS` columns).

    A window over 10,000 channels and 20,000 pairs is 40,000 flows: as :class:`Flow` objects they cost a store's
    analysis more than summing the forwards (issue 16), while the analyzer reads them as columns and returns a
    few. So a key's Flow is built when it is read, and :meth:`counters` gives columns without any. The table is
    read-only; equal to any mapping with the same flows.
    """

    __slots__ = ("_keys", "_table", "_rows")

    def __init__(self, keys: Sequence[_K], table: np.ndarray) -> None:
        if table.shape != (len(keys), _M):
            raise ValueError(f"a row of {_M} counters per key, not {table.shape} for {len(keys)} keys")
        self._keys = keys
        self._table = table.view()
        self._table.flags.writeable = False
        self._rows: dict[_K, int] | None = None

    def counters(self, names: Sequence[str] = METRICS) -> np.ndarray:
        """The named counters of every key, a row each in the keys' order."""
        if tuple(names) == METRICS:
            return self._table
        return self._table[:, [_IDX[name] for name in names]]

    def _index(self) -> dict[_K, int]:
        if self._rows is None:
            self._rows = dict(zip(self._keys, range(len(self._keys)), strict=True))
        return self._rows

    def __getitem__(self, key: _K) -> Flow:
        return Flow(*self._table[self._index()[key]].tolist())

    def __contains__(self, key: object) -> bool:
        return key in self._index()

    def __iter__(self) -> Iterator[_K]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"FlowTable({dict(self.items())!r})"


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Counters per key over ``[since, until)``; ``observed_s`` is the part of it we saw data for."""

    since: float
    until: float
    observed_s: float
    out: Mapping[ChannelId, Flow]
    inbound: Mapping[ChannelId, Flow]
    pairs: Mapping[tuple[ChannelId, ChannelId], Flow]

    @property
    def window_s(self) -> float:
        return self.until - self.since


def _stats(keys: Sequence[FlowKey], data: np.ndarray, since: float, until: float, observed_s: float) -> FlowStats:
    used = data[: len(keys)]
    rows = np.flatnonzero(used.any(axis=1)).tolist()
    kept: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    at: tuple[list[int], list[int], list[int]] = ([], [], [])
    for i in rows:
        kind, a, b = keys[i]
        kept[kind].append(a if kind != PAIR else (a, b))
        at[kind].append(i)
    out, inbound, pairs = (FlowTable(k, used[r]) for k, r in zip(kept, at, strict=True))
    return FlowStats(since, until, observed_s, out, inbound, pairs)


class _KeyIndex:
    """Keys to row numbers, with numpy arrays (one per shape) that grow as keys appear."""

    def __init__(self, *shape_tails: tuple[int, ...], pairs: bool = True) -> None:
        self.pairs = pairs
        self.keys: list[FlowKey] = []
        self.index: dict[FlowKey, int] = {}
        self.arrays = [np.zeros((16, *tail), dtype=np.int64) for tail in shape_tails]
        self._routes: dict[tuple[ChannelId, ChannelId | None], tuple[int, ...]] = {}

    def event_rows(self, event: HtlcEvent) -> tuple[int, ...]:
        """The rows of an event's keys, in :func:`_keys` order.

        Cached per (in, out) channel pair: a node routes over a fixed set of pairs, so one
        lookup per forward replaces three. New keys get rows in the same order as without it.
        """
        route = (event.in_channel, event.out_channel)
        found = self._routes.get(route)
        if found is None:
            keys = _keys(event) if self.pairs else _keys(event)[:2]
            found = self._routes[route] = tuple(self.row(key) for key in keys)
        return found

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` keys in every array at once."""
        extra = rows - len(self.arrays[0])
        if extra > 0:
            self.arrays = [np.concatenate([a, np.zeros((extra, *a.shape[1:]), dtype=a.dtype)]) for a in self.arrays]

    def row(self, key: FlowKey) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.keys)
            self.keys.append(key)
            if i >= len(self.arrays[0]):
                # Grow by half: amortised O(1) per key without doubling the memory of a large node.
                extra = max(len(self.arrays[0]) // 2, 16)
                self.arrays = [np.concatenate([a, np.zeros((extra, *a.shape[1:]), dtype=a.dtype)]) for a in self.arrays]
        return i


class FlowCounter:
    """Exact counters over one window, fed from the store by an analysis run."""

    def __init__(self, book: PolicyBook, *, since: float, until: float, propagation_s: float = 3_600,
                 pairs: bool = True) -> None:  # fmt: skip
        """:param pairs: also count channel pairs (else the stats' ``pairs`` are empty, as in WindowedFlows)."""
        self.book, self.since, self.until, self.propagation_s = book, since, until, propagation_s
        self._rows = _KeyIndex((_M,), pairs=pairs)
        self._payments = PaymentMatcher()
        self._first: float | None = None

    def add(self, events: Iterable[HtlcEvent]) -> None:
        inside = (e for e in events if self.since <= e.received_time < self.until)
        key_rows, times, counters = _batch(inside, self._rows, self.book, self.propagation_s, self._payments)
        if len(times):
            first = float(times.min())
            self._first = first if self._first is None else min(self._first, first)
            add_counters(self._rows.arrays[0], key_rows, counters)

    def stats(self) -> FlowStats:
        observed = self.until - self._first if self._first is not None else 0.0
        return _stats(self._rows.keys, self._rows.arrays[0], self.since, self.until, observed)


class _Ring:
    def __init__(self, length_s: int, bucket_s: int) -> None:
        self.length_s, self.bucket_s = length_s, bucket_s
        # One slot more than the window holds: at a bucket boundary the newest slot is empty
        # and the others cover exactly the window; mid-bucket the old edge is early by under one bucket.
        self.n = length_s // bucket_s + 1
        self.head: int | None = None  # absolute number of the newest bucket

    def advance(self, bucket: int, data: np.ndarray) -> None:
        """Move the head to ``bucket``, zeroing the slots that fall out of the window."""
        if self.head is not None and bucket - self.head >= self.n:
            data[...] = 0  # the whole ring fell out: one pass over memory, not n strided ones
        elif self.head is not None and bucket > self.head:
            for b in range(self.head + 1, bucket + 1):
                data[:, b % self.n, :] = 0
        if self.head is None or bucket > self.head:
            self.head = bucket


class WindowedFlows:
    """The live monitor's sliding windows, one bucket ring per window, memory O(keys).

    A window's value covers its last ``n`` buckets, the newest one still filling, so
    the oldest edge is exact to one bucket (10 min, 2 h, 12 h, 2 d).

    :param pairs: also keep channel pairs. The monitor keeps channels only (IN and OUT keys): a
        node routes over some 20 pairs per channel, and an analysis reads pairs from the store
        (:meth:`~lnlens_core.storage.Store.flow_stats`), exact and in well under a second.
    """

    def __init__(self, book: PolicyBook, *, propagation_s: float = 3_600, pairs: bool = True) -> None:
        self.book, self.propagation_s = book, propagation_s
        self._rings = [_Ring(*spec) for spec in WINDOWS.values()]
        self._rows = _KeyIndex(*((r.n, _M) for r in self._rings), pairs=pairs)
        self._payments = PaymentMatcher()
        self._first: float | None = None

    @property
    def keys(self) -> int:
        return len(self._rows.keys)

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._rows.arrays)

    def reserve(self, keys: int) -> None:
        """Room for ``keys`` keys in every ring at once, for a caller that knows about how many it will load (a
        restart): the rings then never grow by half as keys arrive, each growth holding the old and the new
        rings for a moment, nor keep an unused third (~20 MB and ~5 MB at 1,000 channels; issue 16)."""
        self._rows.reserve(keys)

    def advance_to(self, now: float) -> None:
        for ring, data in zip(self._rings, self._rows.arrays, strict=True):
            ring.advance(int(now // ring.bucket_s), data)

    def add(self, events: Iterable[HtlcEvent]) -> None:
        """Count resolved forwards (each at most once: the caller passes only new ones)."""
        key_rows, times, counters = _batch(events, self._rows, self.book, self.propagation_s, self._payments)
        if not len(times):
            return
        self._note_first(float(times.min()))
        for w, ring in enumerate(self._rings):
            self._add_to_ring(w, key_rows, (times // ring.bucket_s).astype(np.int64), counters)

    def load(self, window: str, keys: Sequence[FlowKey], buckets: np.ndarray, counters: np.ndarray,
             first: float | None) -> None:  # fmt: skip
        """Add counters already summed per (key, bucket of this window's ring), e.g. by SQLite from the store.

        :param buckets: ``floor(received_time / bucket_s)`` of each row; ``first``: the earliest time counted.
        """
        if not len(keys):
            return
        rows = np.array([self._rows.row(key) for key in keys], dtype=np.intp)  # new keys first: arrays may grow
        if first is not None:
            self._note_first(first)
        self._add_to_ring(list(WINDOWS).index(window), rows, np.asarray(buckets, dtype=np.int64), counters)

    def _note_first(self, first: float) -> None:
        self._first = first if self._first is None else min(self._first, first)

    def _add_to_ring(self, w: int, key_rows: np.ndarray, buckets: np.ndarray, counters: np.ndarray) -> None:
        ring, data = self._rings[w], self._rows.arrays[w]
        ring.advance(int(buckets.max()), data)
        assert ring.head is not None
        keep = buckets > ring.head - ring.n  # the rest is older than this window
        # A (key, slot) pair is row key * n + slot of the array seen as (keys * n, metrics).
        add_counters(data.reshape(-1, _M), key_rows[keep] * ring.n + buckets[keep] % ring.n, counters[keep])

    def stats(self, window: str, now: float) -> FlowStats:
        """The counters of one window (``1h``, ``24h``, ``7d``, ``30d``) as of ``now``."""
        w = list(WINDOWS).index(window)
        self.advance_to(now)
        ring, data = self._rings[w], self._rows.arrays[w]
        used = data[: len(self._rows.keys)]
        summed = used.sum(axis=1)
        summed[:, _MAX_COLS] = used[:, :, _MAX_COLS].max(axis=1)
        since = now - ring.length_s
        observed = min(now - self._first, ring.length_s) if self._first is not None else 0.0
        return _stats(self._rows.keys, summed, since, now, observed)
