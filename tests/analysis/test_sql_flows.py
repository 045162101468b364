"""Issue [M]: flow counters summed by SQLite equal the in-memory FlowCounter's, window by window.

Random histories cover what pricing a failed forward depends on: every status and failure reason
(also none), forwards without an outgoing channel or without ``out_msat`` (CLN's local failures) or
with ``out_msat = 0``, a channel our book knows no policy for, policy changes inside the window
(stale fee failures), several changes at the same instant, inbound fees (negative: floor division)
and negative rates. A simulated node's history checks the same on realistic traffic.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from lnlens_core.domain import ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.opportunities.flows import MATCH_WINDOW_S, FlowCounter, FlowStats, PolicyBook
from lnlens_core.storage import Store, flowsql
from lnlens_core.storage.rows import FORWARD_COLUMNS, forward_row
from lnlens_core.storage.schema import FORWARD_INDEXES, NEAR_GAP_S, migrations
from lnlens_core.testing import make_channel

IDS = [ChannelId(810_000 + i, i, 0) for i in range(5)]  # the last one never gets a policy
T0, SPAN = 1_000_000.0, 20_000.0

policies = st.builds(
    ChannelPolicy,
    base_fee_msat=st.integers(0, 5_000),
    fee_ppm=st.one_of(st.integers(0, 3_000), st.integers(-999, -1)),
    inbound_base_fee_msat=st.one_of(st.just(0), st.integers(-2_000, 2_000)),
    inbound_fee_ppm=st.one_of(st.just(0), st.integers(-2_000, 500)),
)


@st.composite
def histories(draw):
    changes = draw(st.lists(st.tuples(st.sampled_from(IDS[:-1]), st.floats(T0 - 100, T0 + SPAN), policies),
                            max_size=14))  # fmt: skip
    times = st.floats(T0 - 50, T0 + SPAN + 50).map(lambda t: round(t, 3))
    events = []
    for i in range(draw(st.integers(0, 60))):
        status = draw(st.sampled_from(list(ForwardStatus)))
        in_cid = draw(st.sampled_from(IDS))
        settled = status is ForwardStatus.SETTLED
        out_cid = IDS[i % 5] if settled else draw(st.one_of(st.none(), st.sampled_from(IDS)))
        in_msat = draw(st.integers(0, 5_000_000))
        out_msat = draw(st.one_of(st.none(), st.just(0), st.integers(0, in_msat)))
        reason = None if settled else draw(st.one_of(st.none(), st.sampled_from(FailureReason)))
        fee = draw(st.one_of(st.none(), st.integers(0, 10_000)))
        events.append(HtlcEvent(in_cid, in_msat, status, draw(times), in_htlc_id=i, out_channel=out_cid,
                                out_msat=out_msat, fee_msat=fee, failure_reason=reason))  # fmt: skip
    return changes, events


def stored(events, path: Path | None = None) -> Store:
    store = Store(path)
    store.ingest_forwards(events, source="live")
    return store


def reference(book: PolicyBook, events, since: float, until: float, propagation_s: float) -> FlowStats:
    counter = FlowCounter(book, since=since, until=until, propagation_s=propagation_s)
    counter.add(events)
    return counter.stats()


def assert_same(got: FlowStats, want: FlowStats) -> None:
    assert (got.since, got.until, got.observed_s) == (want.since, want.until, want.observed_s)
    assert dict(got.out) == dict(want.out)
    assert dict(got.inbound) == dict(want.inbound)
    assert dict(got.pairs) == dict(want.pairs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.floats(0, SPAN + 100), min_size=1, max_size=4),
       st.floats(T0 + SPAN / 2, T0 + SPAN + 100), st.sampled_from([600, 3_600]))  # fmt: skip
def test_sql_counters_equal_the_in_memory_counter(history, spans, until, propagation_s):
    changes, events = history
    book = PolicyBook()
    for cid, time, policy in changes:
        book.observe(cid, policy, time)
    store = stored(events)
    starts = [until - span for span in spans]
    share, chunk = flowsql._TIME_INDEX_SHARE, flowsql.STATS_CHUNK
    try:  # each segment over the covering index (one SELECT per kind of forward) and over the time index
        for flowsql._TIME_INDEX_SHARE, flowsql.STATS_CHUNK in ((0.0, chunk), (2.0, 3)):  # and groups 3 at a time
            got = store.flow_stats(book, starts, until, propagation_s=propagation_s)
            for stats, since in zip(got, starts, strict=True):
                assert_same(stats, reference(book, store.iter_forwards(), since, until, propagation_s))
    finally:
        flowsql._TIME_INDEX_SHARE, flowsql.STATS_CHUNK = share, chunk


def test_sql_counters_equal_the_in_memory_counter_on_simulated_history(tmp_path: Path, monkeypatch):
    sim = pytest.importorskip("lnlens_sim.scenario")
    node = sim.build(sim.SimSettings(network="synthetic", nodes=150, seed=5, payments_per_hour=4_000))
    node.set_sink(None)
    book = PolicyBook()
    for hour in range(6):
        channels = node.list_channels()
        book.observe_channels(channels, node.clock.now())
        for i, ch in enumerate(channels[hour::3]):  # a share of the channels changes its fee every hour
            policy = ChannelPolicy(ch.local_policy.base_fee_msat, 10 * (i + hour), inbound_fee_ppm=-(i % 3) * 7)
            book.observe(ch.channel_id, policy, node.clock.now() + 1_800)
        node.run(3_600)
    store = stored(list(node.events), tmp_path / "sim.sqlite3")
    events = list(store.iter_forwards())
    assert len(events) > 1_000 and any(e.failure_reason for e in events)
    now = node.clock.now()
    starts = [now - span for span in (600, 3_600, 2 * 3_600, 7 * 3_600)]
    for stats, since in zip(store.flow_stats(book, starts, now), starts, strict=True):
        assert_same(stats, reference(book, events, since, now, 3_600))
        assert stats.pairs
    # Each segment between the windows' starts read over the time index, or over the covering one: the same sums.
    for share in (0.0, 1.0):
        monkeypatch.setattr(flowsql, "_TIME_INDEX_SHARE", share)
        for stats, since in zip(store.flow_stats(book, starts, now), starts, strict=True):
            assert_same(stats, reference(book, events, since, now, 3_600))
    # A window's groups counted and summed a few at a time (stats_from_groups): the same tables.
    monkeypatch.setattr(flowsql, "STATS_CHUNK", 7)
    for stats, since in zip(store.flow_stats(book, starts, now), starts, strict=True):
        assert_same(stats, reference(book, events, since, now, 3_600))


def test_windows_that_repeat_or_start_at_their_end_are_summed_as_in_memory():
    """Windows cut the time into segments at their starts: one start twice, one at the end, one after it."""
    book = PolicyBook()
    book.observe(IDS[1], ChannelPolicy(1_000, 100), T0)
    events = [HtlcEvent(IDS[0], 2_000_000, status, T0 + 10 * i, in_htlc_id=i, out_channel=IDS[1], out_msat=1_000_000,
                        fee_msat=1_000 if status is ForwardStatus.SETTLED else None,
                        failure_reason=None if status is ForwardStatus.SETTLED else FailureReason.INSUFFICIENT_BALANCE)
              for i, status in enumerate([ForwardStatus.SETTLED, ForwardStatus.LOCAL_FAILED] * 5)]  # fmt: skip
    store = stored(events)
    until = T0 + 60
    starts = [T0 + 20, T0, T0 + 20, until, until + 5, T0 - 1_000]
    got = store.flow_stats(book, starts, until)
    for stats, since in zip(got, starts, strict=True):
        assert_same(stats, reference(book, store.iter_forwards(), since, until, 3_600))
    assert got[1].out[IDS[1]].attempts == 6 and got[3].out == {} == got[4].out


def test_policy_changes_build_the_book_every_snapshot_builds():
    store = Store()
    channels = [make_channel(cid, fee_ppm=100) for cid in IDS[:3]]
    for hour in range(6):  # the same policies every snapshot, but channel 0 changes at 2 h and back at 4 h
        fee = 300 if hour in (2, 3) else 100
        store.add_snapshots([replace(channels[0], local_policy=replace(channels[0].local_policy, fee_ppm=fee)),
                             *channels[1:]], time=T0 + hour * 3_600)  # fmt: skip
    every, changes = PolicyBook(), PolicyBook()
    for book, rows in ((every, store.policy_history()), (changes, store.policy_changes())):
        for time, cid, policy in rows:
            book.observe(cid, policy, time)
    assert list(every.periods()) == list(changes.periods())
    assert len(list(store.policy_changes())) == 5 < len(list(store.policy_history())) == 18


def test_summing_leaves_no_transaction_open(tmp_path: Path):
    """The policy book's temporary table must not leave the connection in a transaction nobody commits:
    the plugin's later writes (model runs, journal) would stay invisible to every other connection."""
    failed = HtlcEvent(IDS[0], 1_000, ForwardStatus.LOCAL_FAILED, T0, in_htlc_id=1, out_channel=IDS[1], out_msat=900,
                       failure_reason=FailureReason.INSUFFICIENT_BALANCE)  # fmt: skip
    store = stored([failed], tmp_path / "db")
    book = PolicyBook()
    book.observe(IDS[1], ChannelPolicy(1_000, 100), T0 - 1)
    assert store.flow_stats(book, [T0 - 10], T0 + 10)[0].out[IDS[1]].missed_revenue_msat == 1_000
    assert not store.db.conn.in_transaction
    store.set_meta("written", "after")
    assert Store(tmp_path / "db").get_meta("written") == "after"


def test_a_forward_is_priced_at_the_last_policy_of_its_instant_as_in_memory():
    """Several policies observed at one instant (an empty period between them) and a forward at that instant."""
    book = PolicyBook()
    for fee_ppm in (100, 5_000, 200):
        book.observe(IDS[1], ChannelPolicy(1_000, fee_ppm), T0)
    book.observe(IDS[1], ChannelPolicy(0, 1), T0 + 10)
    events = [HtlcEvent(IDS[0], 2_000_000, ForwardStatus.LOCAL_FAILED, t, in_htlc_id=i, out_channel=IDS[1],
                        out_msat=1_000_000, failure_reason=FailureReason.FEE_INSUFFICIENT)
              for i, t in enumerate((T0 - 5, T0, T0 + 5, T0 + 10))]  # fmt: skip
    (got,) = stored(events).flow_stats(book, [T0 - 100], T0 + 100)
    assert_same(got, reference(book, events, T0 - 100, T0 + 100, 3_600))
    assert got.out[IDS[1]].missed_revenue_htlc_msat == 1_100 + 1_200 + 1_200 + 1  # each HTLC at its instant's policy
    assert got.out[IDS[1]].missed_revenue_msat == 1_100  # one payment retried within seconds: counted once


@st.composite
def retried_payments(draw):
    """Payments refused here and retried within seconds, over our channels, with or without a payment hash:
    what the store's payment matching must tie together exactly as the in-memory matcher does."""
    events, t = [], T0
    for p in range(draw(st.integers(1, 12))):
        t += draw(st.sampled_from([0.0, 3.0, 9.5, 10.0, 11.0, 400.0]))
        in_cid, amount = draw(st.sampled_from(IDS)), draw(st.integers(10_000, 2_000_000))
        payment_hash = draw(st.one_of(st.none(), st.just(f"{p % 4:064x}")))
        for k in range(draw(st.integers(1, 4))):
            t += draw(st.sampled_from([0.0, 2.0, 10.0, 10.5, 700.0])) if k else 0.0
            status = draw(st.sampled_from([ForwardStatus.LOCAL_FAILED, ForwardStatus.LOCAL_FAILED,
                                           ForwardStatus.SETTLED, ForwardStatus.FAILED, ForwardStatus.OFFERED]))
            failed = status.resolved and status is not ForwardStatus.SETTLED
            reasons = [FailureReason.INSUFFICIENT_BALANCE, FailureReason.FEE_INSUFFICIENT, FailureReason.DOWNSTREAM]
            reason = draw(st.sampled_from(reasons)) if failed else None
            events.append(HtlcEvent(in_cid, amount + draw(st.integers(0, 30_000)), status, round(t, 3),
                                    in_htlc_id=len(events), out_channel=draw(st.sampled_from(IDS)),
                                    out_msat=amount, fee_msat=1_000 if status is ForwardStatus.SETTLED else None,
                                    failure_reason=reason, payment_hash=payment_hash))  # fmt: skip
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retried_payments(), st.lists(st.floats(0, 3_000), min_size=1, max_size=3), st.floats(0, 3_000))
def test_refused_payments_are_tied_together_in_sql_as_in_memory(events, spans, end):
    book = PolicyBook()
    for i, cid in enumerate(IDS[:-1]):
        book.observe(cid, ChannelPolicy(1_000, 100 * (i + 1)), T0)
    store = stored(events)
    until = T0 + end
    starts = [until - span for span in spans]
    for stats, since in zip(store.flow_stats(book, starts, until), starts, strict=True):
        assert_same(stats, reference(book, store.iter_forwards(), since, until, 3_600))
        store.db.executescript("DROP INDEX forwards_refused_near")  # the one-pass form, as in a first backfill
        assert_same(store.flow_stats(book, [since], until)[0], reference(book, store.iter_forwards(), since, until,
                                                                         3_600))  # fmt: skip
        store.db.execute(FORWARD_INDEXES["forwards_refused_near"])


def exact_near(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """(stored, exact) ``near`` flag per forward key: exact is 1 when another forward arrived on the same incoming
    channel within the matching gap (any status), found by comparing every pair of rows."""
    rows = store.db.execute("SELECT key, in_channel, received_time, near FROM forwards").fetchall()
    exact = {key: int(any(other != key and c2 == c and abs(t2 - t) <= MATCH_WINDOW_S for other, c2, t2, _ in rows))
             for key, c, t, _ in rows}  # fmt: skip
    return {key: near for key, _, _, near in rows}, exact


def assert_windows_same(store: Store, book: PolicyBook, until: float, spans) -> None:
    starts = [until - span for span in spans]
    for stats, since in zip(store.flow_stats(book, starts, until), starts, strict=True):
        assert_same(stats, reference(book, store.iter_forwards(), since, until, 3_600))


def fixed_book() -> PolicyBook:
    book = PolicyBook()
    for i, cid in enumerate(IDS[:-1]):
        book.observe(cid, ChannelPolicy(1_000, 100 * (i + 1)), T0)
    return book


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retried_payments(), st.data())
def test_near_flags_and_payments_hold_for_late_out_of_order_forwards_and_later_resolutions(events, data):
    """m012's flag kept at ingest: forwards stored in any order and in several batches, some first as offered and
    resolved in a later batch (at the same or, as a listforwards row may say, another receive time). Every
    forward with a neighbour is flagged (exactly those when no forward moved), and the counters stay the
    in-memory ones."""
    order = data.draw(st.permutations(range(len(events))))
    batches: list[list[HtlcEvent]] = [[]]
    moved = False
    for i in order:
        event = events[i]
        if event.status.resolved and data.draw(st.booleans()):
            offered = replace(event, status=ForwardStatus.OFFERED, failure_reason=None, fee_msat=None)
            shift = data.draw(st.sampled_from([0.0, 0.0, 4.0, -15.0]))
            moved |= shift != 0.0
            batches[0].append(offered)  # offered first, resolved in a later batch
            event = replace(event, received_time=event.received_time + shift)
        if data.draw(st.booleans()):
            batches.append([])
        batches[-1].append(event)
    store = Store()
    for batch in batches:
        store.ingest_forwards(batch, source="live")
    stored_flags, exact = exact_near(store)
    assert all(stored_flags[key] >= flag for key, flag in exact.items())
    if not moved:
        assert stored_flags == exact
    assert_windows_same(store, fixed_book(), T0 + data.draw(st.floats(0, 3_000)), [3_000, 400])


def neighbourly_events(n: int, seed: int) -> list[HtlcEvent]:
    """Forwards on few channels, many of them within seconds of another (refused payments retried), by hash or not."""
    rng = random.Random(seed)
    events, t = [], T0
    for i in range(n):
        t += rng.choice([0.0, 2.0, 9.0, 10.0, 30.0, 600.0])
        status = rng.choice([ForwardStatus.LOCAL_FAILED, ForwardStatus.LOCAL_FAILED, ForwardStatus.SETTLED,
                             ForwardStatus.FAILED])  # fmt: skip
        reason = None if status is ForwardStatus.SETTLED else rng.choice(list(FailureReason))
        events.append(HtlcEvent(rng.choice(IDS[:3]), 1_010_000, status, t, in_htlc_id=i, out_channel=rng.choice(IDS),
                                out_msat=1_000_000, fee_msat=1_000 if reason is None else None, failure_reason=reason,
                                payment_hash=rng.choice([None, None, f"{i % 7:064x}"])))  # fmt: skip
    return events


def test_m012_flags_a_store_the_previous_schema_made_and_loses_nothing(tmp_path: Path):
    """A store made by the schema before m012 (forwards stored then): the upgrade flags every forward with a
    neighbour, keeps every row once, and the counters are the in-memory ones (also after more ingest)."""
    path = tmp_path / "old.sqlite3"
    old = Database(path)
    migrations.apply(old, stop_before="m012_forward_neighbours_and_sums")
    events = neighbourly_events(400, seed=3)
    marks = ",".join("?" * len(FORWARD_COLUMNS))
    old.conn.executemany(f"INSERT INTO forwards ({','.join(FORWARD_COLUMNS)}) VALUES ({marks})",
                         [forward_row(e, "backfill") for e in events])  # fmt: skip
    old.conn.commit()
    before = old.execute("SELECT count(*), sum(in_msat), sum(coalesce(fee_msat, 0)) FROM forwards").fetchone()
    old.close()
    store = Store(path)
    assert store.pending_migrations() == []
    assert store.db.execute("SELECT count(*), sum(in_msat), sum(coalesce(fee_msat, 0)) FROM forwards").fetchone() \
        == before  # fmt: skip
    names = {row[1] for row in store.db.execute("PRAGMA index_list(forwards)").fetchall()}
    assert {"forwards_refused_near", "forwards_sums"} <= names and not {"forwards_refused", "forwards_flow"} & names
    stored_flags, exact = exact_near(store)
    assert stored_flags == exact and 0 < sum(exact.values()) < len(exact)
    until = events[-1].received_time + 1
    assert_windows_same(store, fixed_book(), until, [until - T0 + 1, 3_600, 600])
    later = [replace(e, in_htlc_id=1_000 + i, received_time=e.received_time + 5) for i, e in enumerate(events[-50:])]
    assert store.ingest_forwards([*later, *events[:10]], source="live") == later  # the old ones stored once
    stored_flags, exact = exact_near(store)
    assert stored_flags == exact
    assert_windows_same(store, fixed_book(), until + 10, [until - T0 + 11, 3_600])


def test_a_bulk_ingest_flags_every_forward_when_it_builds_the_indexes(tmp_path: Path):
    """A first backfill defers the indexes and the flags with them; the rebuild at its end, or at the next bulk
    ingest when a process died in between, flags every forward stored meanwhile."""
    events = neighbourly_events(300, seed=4)
    for finished in (True, False):
        store = Store(tmp_path / f"bulk-{finished}.sqlite3")
        deferred = store.begin_bulk_ingest()
        assert deferred
        for start in range(0, len(events), 100):
            store.ingest_forwards(events[start : start + 100], source="backfill")
        if finished:
            store.end_bulk_ingest(deferred)
        else:  # died: the next run finds forwards and no indexes
            store.close()
            store = Store(tmp_path / f"bulk-{finished}.sqlite3")
            assert not store.begin_bulk_ingest()
            store.end_bulk_ingest(False)
        stored_flags, exact = exact_near(store)
        assert stored_flags == exact and sum(exact.values())
        until = events[-1].received_time + 1
        assert_windows_same(store, fixed_book(), until, [until - T0 + 1, 3_600])


def test_what_runs_between_a_bulk_ingests_pages_reads_with_the_stores_own_page_cache(tmp_path: Path):
    """Store.own_cache: inside a bulk ingest, the store's page cache (Store.default_cache), then the ingest's again;
    outside one, as is."""
    store = Store(tmp_path / "cache.sqlite3")

    def cache() -> int:
        return int(store.db.execute("PRAGMA cache_size").fetchone()[0])

    normal = cache()
    assert normal == -Store.default_cache  # KiB
    with store.own_cache():
        assert cache() == normal
    deferred = store.begin_bulk_ingest()
    bulk = cache()
    assert bulk != normal
    with store.own_cache():
        assert cache() == normal
        store.ingest_forwards(neighbourly_events(20, seed=1), source="live")
    assert cache() == bulk
    store.end_bulk_ingest(deferred)
    assert cache() == normal
    store.close()


def test_the_flag_gap_covers_the_matching_window():
    """m012's flag is stored with a fixed gap: the payment matcher may never look further than it."""
    assert NEAR_GAP_S >= MATCH_WINDOW_S
