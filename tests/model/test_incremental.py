"""The incremental dataset: the same samples as the whole-store build, from bounded, indexed reads."""

from __future__ import annotations

import numpy as np
import pytest

from lnlens_core.model.features import FEATURE_NAMES, LONG_WINDOW_S
from lnlens_core.model.learning import Dataset, PolicyHistory, SampleStream, dataset_from_store
from lnlens_core.model.target import TARGET_HORIZON_S
from lnlens_core.storage import Store


@pytest.fixture(scope="module")
def whole(grown) -> Dataset:
    """The whole-store build of the grown store (the reference)."""
    store = Store(grown[0])
    try:
        return dataset_from_store(store)
    finally:
        store.close()


def _same(a: Dataset, b: Dataset) -> None:
    assert len(a) == len(b) and len(a)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.x, b.x)  # NaN where NaN: assert_array_equal treats them as equal
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.current, b.current)
    np.testing.assert_array_equal(a.curves, b.curves)


def test_samples_built_as_the_store_grew_equal_the_whole_store_build(grown, whole):
    path, built, stream = grown
    store = Store(path)
    try:
        last = store.latest_data_time()
    finally:
        store.close()
    times = np.unique(built.times)
    assert len(times) >= 15
    # Every sample time whose window and settling margin had passed was built, once.
    missing = set(np.unique(whole.times)) - set(times)
    assert all(t + TARGET_HORIZON_S + stream.settle_s > last for t in missing)
    _same(built, whole.select(np.isin(whole.times, times)))
    # The policy history mattered: some samples know how long ago their channel's fee changed.
    col = FEATURE_NAMES.index("hours_since_policy_change")
    assert np.isfinite(built.x[:, col]).any() and np.isnan(built.x[:, col]).any()


def test_the_rolling_window_keeps_the_newest_samples_and_hands_out_the_rest_once(grown):
    _, built, stream = grown
    newest = built.times.max()
    assert set(stream.window.times) == {t for t in built.times if t > newest - stream.window_s}
    expired = stream.pop_expired()
    assert len(expired) + len(stream.window) == len(built)
    assert not len(stream.pop_expired())


def test_a_late_start_reads_history_before_its_range_exactly(grown, whole):
    """A stream that starts in the middle of the history (a daemon's warm start) seeds the policy in force
    before its range from a few indexed reads, and gives the whole-store rows."""
    path, _, _ = grown
    store = Store(path)
    try:
        stream = SampleStream(lookback_s=8 * 3_600)
        got = Dataset.concat([stream.advance(store, limit=3) for _ in range(5)])
        assert stream.history.since is not None and stream.history.since > store.snapshot_times_from(None, limit=1)[0]
    finally:
        store.close()
    assert 8 <= len(np.unique(got.times)) <= 9
    _same(got, whole.select(np.isin(whole.times, np.unique(got.times))))


class _Spy:
    """Records the time ranges the stream asks the store for (and any whole-table read)."""

    def __init__(self, store: Store) -> None:
        self.store, self.forwards, self.snapshots, self.whole = store, [], [], []

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name in ("policy_history", "snapshots", "latest_channels"):
            self.whole.append(name)
        if name == "iter_forwards":
            def spy(**kw):
                self.forwards.append((kw["since"], kw["until"]))
                return attr(**kw)
            return spy
        if name == "snapshots_between":
            def spy_between(since, until, **kw):
                self.snapshots.append((since, until))
                return attr(since, until, **kw)
            return spy_between
        return attr


def test_a_tick_reads_a_bounded_time_range_only(grown):
    path, _, _ = grown
    store = Store(path)
    try:
        spy = _Spy(store)
        stream = SampleStream(lookback_s=10 * 3_600)
        first = stream.advance(spy, limit=2)
        second = stream.advance(spy, limit=2)
    finally:
        store.close()
    assert len(first) and len(second) and not spy.whole
    lo, hi = second.times.min(), second.times.max()
    assert spy.forwards[-1] == (lo - LONG_WINDOW_S, hi + TARGET_HORIZON_S)
    # The policy history only moved forward: the second tick read the snapshots after the first one's.
    assert spy.snapshots[-1][0] == first.times.max() and spy.snapshots[-1][1] == hi


def test_every_query_of_a_tick_searches_an_index(grown):
    """The statements a warm start and a tick really send (traced), planned by SQLite: no table is scanned."""
    path, _, _ = grown
    store = Store(path)
    sent: list[str] = []
    try:
        store.db.conn.set_trace_callback(sent.append)
        stream = SampleStream(lookback_s=10 * 3_600)
        assert len(stream.advance(store, limit=2)) and len(stream.advance(store, limit=2))
        store.db.conn.set_trace_callback(None)
        selects = {sql for sql in sent if sql.lstrip().upper().startswith("SELECT")}
        assert any("channel_id = " in sql for sql in selects)  # the policy seeding ran
        for sql in selects:
            plan = [str(r[-1]) for r in store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
            for step in plan:
                bounded_scan = step.startswith("SCAN channel_snapshots USING COVERING INDEX") and "LIMIT" in sql
                assert step.startswith(("SEARCH", "USE TEMP B-TREE", "CO-ROUTINE", "COMPOUND", "LEFT-MOST",
                                        "UNION ALL")) or bounded_scan, (sql, plan)  # fmt: skip
    finally:
        store.close()


def test_policy_history_answers_like_the_whole_history_book(grown):
    from lnlens_core.opportunities.flows import PolicyBook

    path, _, _ = grown
    store = Store(path)
    try:
        full = PolicyBook()
        for time, cid, policy in store.policy_history():
            full.observe(cid, policy, time)
        times = store.snapshot_times_from(None, limit=10_000)
        since, until = times[len(times) // 2], times[-5]
        history = PolicyHistory()
        book = history.cover(store, since, until)
        channels = {c.channel_id for c in store.latest_channels()[1]}
        for t in np.linspace(since, until, 60):
            for cid in channels:
                assert book.policy_at(cid, t) == full.policy_at(cid, t)
                assert book.last_change_before(cid, t) == full.last_change_before(cid, t)
        assert history.rows_read < len(list(store.policy_history())) / 2
    finally:
        store.close()


def test_a_time_budget_builds_one_sample_time_at_least_and_the_same_rows(grown, whole):
    path, _, _ = grown
    store = Store(path)
    try:
        stream = SampleStream(lookback_s=4 * 3_600)
        parts = [stream.advance(store, limit=10, budget_s=0.0) for _ in range(4)]
    finally:
        store.close()
    assert [len(np.unique(p.times)) for p in parts] == [1, 1, 1, 1]  # no new time is started past the budget
    got = Dataset.concat(parts)
    _same(got, whole.select(np.isin(whole.times, np.unique(got.times))))
