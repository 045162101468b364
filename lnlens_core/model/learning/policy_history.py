"""Our policy history for a bounded time range, read from the store in pieces and kept between reads.

Features and missed-forward pricing ask a :class:`~lnlens_core.opportunities.flows.PolicyBook` two things:
the policy in force at a moment, and when it took effect (``hours_since_policy_change``).
Building the book from every snapshot ever stored (``Store.policy_history``) costs a read of
the whole snapshot table, which a daemon cannot afford every interval. For any time in
``[since, until]`` the answers only need, per channel, its snapshots in that range and the
policy in force just before ``since`` with the moment it took effect — a few indexed reads
per channel. :class:`PolicyHistory` gives exactly the answers the whole-history book gives
(tests/model/test_incremental.py compares them), and later reads only add newer snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...domain import ChannelId, ChannelPolicy
from ...opportunities.flows import PolicyBook
from ...storage.rows import policy_from_row

__all__ = ["PolicyHistory"]


class _Book(PolicyBook):
    """A PolicyBook that also knows the first policy of a channel whose snapshots all lie after the range.

    The whole-history book answers a time before a channel's first snapshot with that first
    policy; this one keeps it aside so that it never sits among the range's change points.
    """

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[ChannelId, ChannelPolicy] = {}

    def policy_at(self, channel_id: ChannelId, time: float) -> ChannelPolicy | None:
        found = super().policy_at(channel_id, time)
        return found if found is not None else self.first.get(channel_id)

    def copy(self) -> _Book:
        """An independent book (a live observation added to it leaves this one as it is)."""
        other = _Book()
        other._times = {c: list(v) for c, v in self._times.items()}
        other._policies = {c: list(v) for c, v in self._policies.items()}
        other.first = dict(self.first)
        return other


class PolicyHistory:
    """Our policies as the store's snapshots saw them, exact for any time in the range covered so far.

    Not thread-safe; one per thread (like the Store it reads).
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, since: float | None) -> None:
        self.book = _Book()
        self.since = since
        self.through: float | None = None  # snapshots in [since, through] are in the book
        self._seeded: set[ChannelId] = set()
        self.rows_read = 0

    def cover(self, store, since: float, until: float, *, channels: Iterable[ChannelId] = ()) -> PolicyBook:
        """The book, exact for times in ``[since, until]`` for every channel with a snapshot in that range and
        every one in ``channels`` (e.g. the channels of the forwards about to be counted).

        Covering a range that starts earlier than the one covered so far starts over from there.
        """
        if self.since is None or since < self.since:
            self._reset(since)
        assert self.since is not None
        if self.through is None or until > self.through:
            start, after = (self.since, False) if self.through is None else (self.through, True)
            rows = store.snapshots_between(start, until, after=after)
            self.rows_read += len(rows)
            for row in rows:
                cid = ChannelId.parse(row["channel_id"])
                if cid not in self._seeded:
                    self._seed(store, cid, in_range=True)
                self.book.observe(cid, policy_from_row(row), row["time"])
            self.through = until
        for cid in channels:
            if cid not in self._seeded:
                self._seed(store, cid, in_range=False)
        return self.book

    def _seed(self, store, cid: ChannelId, *, in_range: bool) -> None:
        """What the channel's snapshots before ``since`` say about times from ``since`` on.

        The policy in force at ``since`` and the moment it took effect (the first snapshot after the
        last one with another policy) are all a time in range can be asked; the other policy is
        kept too, so that moment counts as a change. A channel with no snapshot before ``since``
        and none in the range is answered with its first policy, whenever that was seen.
        """
        assert self.since is not None
        self._seeded.add(cid)
        key = str(cid)
        prev = store.channel_snapshot_before(key, self.since)
        if prev is None:
            if not in_range:
                first = store.channel_snapshot_after(key, None)
                if first is not None:
                    self.book.first[cid] = policy_from_row(first)
            return
        other = store.channel_policy_change_before(key, prev)
        start = store.channel_snapshot_after(key, other["time"] if other is not None else None)
        assert start is not None  # prev itself qualifies
        self.rows_read += 2 + (other is not None)
        if other is not None:
            self.book.observe(cid, policy_from_row(other), other["time"])
        self.book.observe(cid, policy_from_row(start), start["time"])

    def book_copy(self) -> PolicyBook:
        return self.book.copy()
