"""The live feed against the fake lnd: backfill + stream agree with the simulator, across drops and restarts."""

from __future__ import annotations

from collections import Counter

from lnlens_core.domain import FeeUpdate, ForwardStatus
from lnlens_core.storage import Store

SETTLED = ForwardStatus.SETTLED


def flush(feed, fake) -> None:
    """Wait until the feed has stored everything the server sent: end the streams and see it reconnect."""
    drops = feed.live.stats.drops
    fake.drop_streams()
    feed.wait(lambda: feed.live.stats.drops > drops)
    feed.wait_connected(feed.live.stats.connects)


def stored(feed) -> dict:
    store = Store(feed.path)
    try:
        return {e.key: e for e in store.iter_forwards()}
    finally:
        store.close()


def check_against_truth(node, rows: dict) -> None:
    """Every stored forward is the simulator's, field by field; times as lnd reports them."""
    sim = {e.key: e for e in node.events}
    for key, e in rows.items():
        s = sim[key]
        assert (e.in_channel, e.out_channel, e.in_msat, e.status, e.failure_reason, e.in_htlc_id) == (
            s.in_channel, s.out_channel, s.in_msat, s.status, s.failure_reason, s.in_htlc_id)  # fmt: skip
        assert abs(e.resolved_time - s.resolved_time) < 1e-3
        if e.status is not ForwardStatus.LOCAL_FAILED:
            assert (e.out_msat, e.fee_msat) == (s.out_msat, s.fee_msat)
            assert node.ground_truth(key).fee_offered_msat == e.fee_msat
        # Live events carry the offer time; ForwardingHistory only the settlement time.
        assert abs(e.received_time - s.received_time) < 1e-3 or abs(e.received_time - s.resolved_time) < 1e-3


def test_backfill_and_live_stream_agree_with_the_simulator(node, fake, connect, feed, raise_fees):
    node.run(1800)  # before the sidecar starts: lnd's history keeps only the settled forwards
    since = len(fake.calls)
    f = feed(connect(), node.clock)
    f.wait_connected(1)
    assert f.live.stats.backfilled == sum(e.status is SETTLED for e in node.events) > 0
    raise_fees(node)
    node.run(3600)
    flush(f, fake)
    f.close()
    rows = stored(f)
    check_against_truth(node, rows)
    sim_settled = {e.key for e in node.events if e.status is SETTLED}
    assert {k for k, e in rows.items() if e.status is SETTLED} == sim_settled
    failed_streamed = {e.key for e in fake.emitted if e.status is not SETTLED}
    assert {k for k, e in rows.items() if e.status is not SETTLED} == failed_streamed
    assert Counter(e.status for e in rows.values())[ForwardStatus.LOCAL_FAILED] > 0, "the run needs local failures"
    assert f.counted == len(rows), "every forward counted exactly once"
    # Issue 16: the stream path asks lnd for no channel data (only the interval's reads do, once each).
    asked = Counter(path.rsplit("/", 1)[1] for path in fake.calls[since:])
    assert not {"ListChannels", "FeeReport", "GetChanInfo"} & set(asked), asked


def drained(feed, fake) -> None:
    """Wait until the feed has processed every message the server handed out."""
    feed.wait(lambda: fake.backlog == 0 and feed.live.stats.messages >= fake.delivered)


def test_restart_mid_run_leaves_the_store_equal_to_the_simulator(node, fake, connect, feed):
    f = feed(connect(), node.clock)
    f.wait_connected(1)
    node.run(2400)
    drained(f, fake)
    fake.stop()  # lnd restarts: the stream is gone, calls fail; it forwards nothing while it is down
    f.wait(lambda: not f.live.connected.is_set())
    fake.start()  # same port, same node
    f.wait_connected(2)
    node.run(2400)
    flush(f, fake)
    f.close()
    rows = stored(f)
    assert set(rows) == {e.key for e in node.events}
    check_against_truth(node, rows)
    assert f.counted == len(rows)
    assert f.live.stats.drops >= 2


def test_a_crash_with_events_in_flight_loses_only_failures(node, fake, connect, feed):
    f = feed(connect(), node.clock)
    f.wait_connected(1)
    node.run(2400)
    fake.stop()  # at once: messages still queued for the stream die with it
    fake.start()
    f.wait_connected(2)
    node.run(1200)
    flush(f, fake)
    f.close()
    rows = stored(f)
    check_against_truth(node, rows)
    assert {k for k, e in rows.items() if e.status is SETTLED} == {e.key for e in node.events if e.status is SETTLED}
    assert all(e.status is not SETTLED for e in node.events if e.key not in rows)
    assert f.counted == len(rows)


def test_a_dropped_stream_loses_no_settled_forward(node, fake, connect, feed):
    f = feed(connect(), node.clock, backoff_s=(0.3, 0.3))
    f.wait_connected(1)
    node.run(1200)
    before = len(node.events)
    fake.drop_streams()
    node.run(1800)  # lnd keeps forwarding while lnlens is disconnected
    gap = node.events[before:]
    f.wait_connected(2)
    node.run(1200)
    flush(f, fake)
    f.close()
    rows = stored(f)
    check_against_truth(node, rows)
    assert {k for k, e in rows.items() if e.status is SETTLED} == {e.key for e in node.events if e.status is SETTLED}
    assert any(e.status is SETTLED for e in gap), "the gap must contain settled forwards"
    lost = {e.key for e in node.events} - set(rows)
    # lnd keeps no failed forwards: exactly the failures during the gap that the stream never carried are missing.
    assert lost == {e.key for e in gap if e.status is not SETTLED and e not in fake.emitted}
    assert f.counted == len(rows)


def test_before_lnd_0_20_settles_come_from_history_only(node, tmp_path, feed):
    """History entries carry no HTLC ids before 0.20, so a live settle would not share their key."""
    from lnlens_testing.lnd import LndHarness

    h = LndHarness(tmp_path / "old", mode="read", version="0.19.3-beta commit=v0.19.3", node=node)
    try:
        assert not h.backend.history_has_htlc_ids
        f = feed(h.backend, node.clock)
        f.wait_connected(1)
        node.run(3600)
        flush(f, h.fake)
        f.close()
        rows = stored(f)
        shape = Counter((e.in_channel, e.out_channel, e.in_msat, e.out_msat) for e in rows.values()
                        if e.status is SETTLED)  # fmt: skip
        sim_shape = Counter((e.in_channel, e.out_channel, e.in_msat, e.out_msat) for e in node.events
                            if e.status is SETTLED)  # fmt: skip
        assert shape == sim_shape and f.counted == len(rows)
    finally:
        h.close()


def test_fee_raise_shows_up_as_fee_failures_from_link_fail_events(node, fake, connect, feed):
    backend = connect("apply")
    f = feed(backend, node.clock)
    f.wait_connected(1)
    node.run(1800)
    busiest = Counter(e.out_channel for e in node.events if e.status is SETTLED).most_common(1)[0][0]
    policy = next(c.local_policy for c in backend.list_channels() if c.channel_id == busiest)
    backend.set_channel_policy(busiest, FeeUpdate(fee_ppm=policy.fee_ppm * 50 + 5000))
    node.run(900)  # senders still use the old gossip for a while
    flush(f, fake)
    f.close()
    rows = stored(f)
    check_against_truth(node, rows)
    fee_failures = [e for e in rows.values() if e.failure_reason and e.failure_reason.value == "fee_insufficient"]
    assert fee_failures and all(e.out_channel == busiest and e.failcode == 4108 for e in fee_failures)


def test_stream_refused_with_unavailable_is_retried_with_backoff(node, fake, connect, feed):
    import grpc

    backend = connect()
    for _ in range(2):
        fake.fail_next("/routerrpc.Router/SubscribeHtlcEvents", grpc.StatusCode.UNAVAILABLE, "lnd is restarting")
    f = feed(backend, node.clock, backoff_s=(0.01, 0.04))
    f.wait_connected(1)
    assert f.live.stats.drops == 2 and "lnd is restarting" in f.live.stats.last_error
    node.run(1800)
    flush(f, fake)
    f.close()
    rows = stored(f)
    assert {k for k, e in rows.items() if e.status is SETTLED} == {e.key for e in node.events if e.status is SETTLED}


def test_a_failing_history_read_after_each_subscribe_backs_off_growing(node, fake, connect, feed, caplog):
    import logging

    import grpc

    backend = connect()
    for _ in range(4):  # the subscription works each time; ForwardingHistory right after it does not
        fake.fail_next("/lnrpc.Lightning/ForwardingHistory", grpc.StatusCode.UNAVAILABLE, "history unavailable")
    with caplog.at_level(logging.WARNING, logger="lnlens_lnd.events"):
        f = feed(backend, node.clock, backoff_s=(0.01, 1.0))
        f.wait_connected(5)
    waits = [float(r.getMessage().rsplit("reconnecting in ", 1)[1].split()[0])
             for r in caplog.records if "history unavailable" in r.getMessage()]  # fmt: skip
    assert waits == [0.01, 0.02, 0.04, 0.08]
    assert f.live.stats.drops == 4 and f.live.connected.is_set()
