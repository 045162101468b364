import pytest

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendUnavailable
from lnlens_core.hookspecs import hookimpl
from lnlens_core.opportunities.monitor import HtlcMonitor
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode

CID = ChannelId.parse("800000x1x0")


def history(n):
    return [HtlcEvent(CID, 1000 + i, ForwardStatus.SETTLED, 100.0 + i, in_htlc_id=i, out_channel=CID,
                      out_msat=1000, fee_msat=i, resolved_time=101.0 + i) for i in range(n)]  # fmt: skip


def test_backfill_resumes_exactly_after_a_failure(tmp_path, manual_clock):
    node = FakeNode(forwards=history(2_345))
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    monitor = HtlcMonitor(store, manual_clock, lambda events: None)
    pages = []

    def on_page(progress):
        pages.append(progress)
        if len(pages) == 2:  # the node goes away while the third page is read
            node.fail_next(BackendUnavailable("node went away"))

    with pytest.raises(BackendUnavailable):
        monitor.backfill(node, page_size=500, on_page=on_page)
    assert store.get_cursor("fake:forwards") == "1000"
    store.close()
    # "Restart": a new store and monitor on the same file resume from the cursor.
    store = Store(path)
    node.calls.clear()
    progress = HtlcMonitor(store, manual_clock, lambda events: None).backfill(node, page_size=500)
    assert node.calls[0].args[0] == "1000"
    assert progress.done and progress.events_new == 1_345
    keys = [e.key for e in store.iter_forwards()]
    assert len(keys) == len(set(keys)) == 2_345
    node.add_forwards(history(2_400)[2_345:])
    assert HtlcMonitor(store, manual_clock, lambda events: None).backfill(node).events_new == 55


def test_record_batches_new_events_for_track_event(lens, register_plugin):
    seen = []

    class Observer:
        @hookimpl
        def track_event(self, events):
            seen.append(len(events))

    register_plugin(Observer())
    events = history(10)
    lens.monitor.record(events[:6])
    lens.monitor.record(events[4:])  # 4 and 5 already known
    assert seen == []
    assert lens.monitor.flush() == 10
    assert seen == [10]
    assert lens.monitor.flush() == 0 and seen == [10]
