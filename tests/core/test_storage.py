import sqlite3

import pytest

from lnlens_core.domain import ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.errors import StoreError
from lnlens_core.storage import Store
from lnlens_core.testing import make_channel

IN, OUT = ChannelId.parse("800000x1x0"), ChannelId.parse("800001x2x1")


def forward(i, status=ForwardStatus.SETTLED, t=1000.0, **kw):
    resolved = None if status is ForwardStatus.OFFERED else t + 1
    fee = 10 if status is ForwardStatus.SETTLED else None
    return HtlcEvent(IN, 100_010, status, t + i, in_htlc_id=i, out_channel=OUT, out_msat=100_000,
                     fee_msat=fee, resolved_time=resolved, **kw)  # fmt: skip


def test_same_forwards_ingested_twice_are_stored_once(store):
    events = [forward(i) for i in range(50)]
    assert len(store.ingest_forwards(events, source="backfill")) == 50
    assert store.ingest_forwards(events, source="live") == []
    assert store.row_counts()["forwards"] == 50


def test_offered_then_settled_counts_once_and_never_regresses(store):
    offered, settled = forward(1, ForwardStatus.OFFERED), forward(1)
    assert store.ingest_forwards([offered], source="live") == [offered]
    assert store.ingest_forwards([settled], source="live") == [settled]
    assert store.ingest_forwards([offered, settled], source="backfill") == []
    (row,) = store.iter_forwards()
    assert row.status is ForwardStatus.SETTLED and row.fee_msat == 10


def test_a_live_events_payment_hash_survives_a_resolution_without_one(store):
    offered = forward(2, ForwardStatus.OFFERED, payment_hash="cd" * 32)  # forward_event carries it
    store.ingest_forwards([offered], source="live")
    store.ingest_forwards([forward(2)], source="backfill")  # a listforwards row does not
    (row,) = store.iter_forwards()
    assert row.status is ForwardStatus.SETTLED and row.payment_hash == "cd" * 32


def test_resolution_inside_one_batch_wins(store):
    failed = forward(3, ForwardStatus.LOCAL_FAILED, failure_reason=FailureReason.INSUFFICIENT_BALANCE, failcode=4103)
    assert store.ingest_forwards([failed, forward(3, ForwardStatus.OFFERED)], source="live") == [failed]
    (row,) = store.iter_forwards()
    assert row == failed


def test_migrations_run_from_an_empty_file_and_are_idempotent(tmp_path):
    path = tmp_path / "lnlens.sqlite3"
    first = Store(path)
    applied = first.schema_version()
    first.close()
    again = Store(path)
    assert again.schema_version() == applied and again.pending_migrations() == []
    assert {"forwards", "channel_snapshots", "fee_updates", "opportunities", "model_runs", "cursors"} <= set(
        again.row_counts()
    )
    assert again.db.journal_mode == "wal"


def test_a_file_that_is_not_a_database_is_named_in_the_error(tmp_path):
    bad = tmp_path / "garbage.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="garbage.sqlite3"):
        Store(bad)


def test_cursor_and_page_are_written_together(store):
    store.ingest_page([forward(1)], stream="fake:forwards", cursor="1", now=5.0)
    assert store.get_cursor("fake:forwards") == "1"
    with pytest.raises(sqlite3.IntegrityError), store.db.atomic():
        store.ingest_page([forward(2)], stream="fake:forwards", cursor="2", now=6.0)
        store.db.execute("INSERT INTO cursors VALUES ('fake:forwards', 'x', 0)")  # provoke a failure mid-page
    assert store.get_cursor("fake:forwards") == "1"
    assert store.row_counts()["forwards"] == 1


def test_snapshots_round_trip(store):
    store.add_snapshots([make_channel("800000x1x0"), make_channel("800001x2x1")], time=10.0)
    rows = store.snapshots()
    assert [r["channel_id"] for r in rows] == ["800000x1x0", "800001x2x1"]
    assert rows[0]["local_balance_msat"] == 1_000_000_000


def test_journal_moves_through_states(store):
    old, new = ChannelPolicy(1000, 100), ChannelPolicy(1000, 200)
    entry = store.journal_plan(channel_id=IN, old_policy=old, new_policy=new, reason="test", now=1.0, strategy="static")
    store.journal_mark(entry, "applied", now=2.0)
    store.journal_mark(entry, "verified", now=3.0)
    (row,) = store.journal(channel_id=IN)
    assert row["state"] == "verified" and row["applied_time"] == 2.0 and row["finished_time"] == 3.0
    with pytest.raises(ValueError):
        store.journal_mark(entry, "bogus", now=4.0)


def test_prune_counts_deletes_and_spares_open_journal_entries(store):
    store.ingest_forwards([forward(i, t=100.0) for i in range(5)] + [forward(9, t=10_000.0)], source="live")
    assert store.count_prunable("forwards", 5_000.0) == 5
    assert store.prune("forwards", 5_000.0) == 5
    assert store.row_counts()["forwards"] == 1
    old, new = ChannelPolicy(1000, 100), ChannelPolicy(1000, 200)
    open_entry = store.journal_plan(channel_id=IN, old_policy=old, new_policy=new, reason="r", now=1.0)
    done = store.journal_plan(channel_id=IN, old_policy=old, new_policy=new, reason="r", now=1.0)
    store.journal_mark(done, "verified", now=2.0)
    assert store.prune("journal", 100.0) == 1
    assert [r["id"] for r in store.journal()] == [open_entry]
