"""LndBackend against the fake lnd: policies (inbound fees included), versions, failed updates, history paging."""

from __future__ import annotations

from collections import Counter

import pytest
from lnlens_lnd import convert
from lnlens_lnd.backend import LndBackend, parse_cursor
from lnlens_lnd.rpc import ln
from lnlens_testing.lnd import FakeLnd, minimal_ops

from lnlens_core.backend import Capability
from lnlens_core.domain import ChannelId, FeeUpdate, ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendRejected
from lnlens_core.fees.chargelnd.inputs import chargelnd_balances_msat


def test_inbound_fee_update_round_trips(connect, node):
    backend = connect("apply")
    channel = backend.list_channels()[0]
    before = channel.local_policy
    after = backend.set_channel_policy(channel.channel_id, FeeUpdate(inbound_fee_ppm=-150, inbound_base_fee_msat=-500))
    assert (after.inbound_fee_ppm, after.inbound_base_fee_msat) == (-150, -500)
    # lnd writes base and rate on every update: they survive only because the client resends them.
    assert (after.base_fee_msat, after.fee_ppm, after.cltv_delta) == (before.base_fee_msat, before.fee_ppm,
                                                                      before.cltv_delta)  # fmt: skip
    e = node.out_edge(channel.channel_id)
    assert node.network.policy[e] == after  # the simulator really routes with it
    again = next(c for c in backend.list_channels() if c.channel_id == channel.channel_id).local_policy
    assert again == after
    # Changing the outbound fee later keeps the inbound discount (unset inbound_fee = keep).
    later = backend.set_channel_policy(channel.channel_id, FeeUpdate(fee_ppm=before.fee_ppm + 1))
    assert (later.inbound_fee_ppm, later.fee_ppm) == (-150, before.fee_ppm + 1)


def test_positive_inbound_fees_need_the_setting(connect, fake):
    backend = connect("apply")
    channel = backend.list_channels()[0]
    assert Capability.POSITIVE_INBOUND_FEES not in backend.capabilities
    with pytest.raises(BackendRejected, match=f"channel {channel.channel_id}: .*positive inbound fee"):
        backend.set_channel_policy(channel.channel_id, FeeUpdate(inbound_fee_ppm=10))
    assert Capability.POSITIVE_INBOUND_FEES in connect("apply", accept_positive_inbound_fees=True).capabilities


def test_capabilities_follow_the_version(node, tmp_path):
    old = FakeLnd(node, tmp_path / "old", version="0.17.5-beta commit=v0.17.5-beta")
    old.start()
    try:
        mac = old.write_macaroon("lnlens.macaroon", minimal_ops("apply"))
        backend = LndBackend.connect(old.settings(mac, mode="apply"), clock=node.clock)
        assert backend.version == (0, 17, 5) and Capability.INBOUND_FEES not in backend.capabilities
        channel = backend.list_channels()[0]
        calls = len(old.calls)
        with pytest.raises(BackendRejected, match=f"channel {channel.channel_id}: lnd 0.17.5-beta cannot set "
                                                  "inbound_fee_ppm"):  # fmt: skip
            backend.set_channel_policy(channel.channel_id, FeeUpdate(inbound_fee_ppm=-10))
        assert len(old.calls) == calls, "refused without asking lnd, which would drop the field silently"
        backend.close()
    finally:
        old.stop()


def test_failed_updates_are_surfaced_per_channel(connect):
    backend = connect("apply")
    channel = backend.list_channels()[0]
    too_big = channel.capacity_msat * 2
    with pytest.raises(BackendRejected, match=rf"channel {channel.channel_id}: lnd refused the policy update "
                                              r"\(INVALID_PARAMETER: .*htlc limits"):  # fmt: skip
        backend.set_channel_policy(channel.channel_id, FeeUpdate(max_htlc_msat=too_big))
    with pytest.raises(BackendRejected, match=f"channel {channel.channel_id}: .*time lock delta of 10 is too small"):
        backend.set_channel_policy(channel.channel_id, FeeUpdate(cltv_delta=10))
    unchanged = next(c for c in backend.list_channels() if c.channel_id == channel.channel_id)
    assert unchanged.local_policy == channel.local_policy


def test_min_htlc_is_sent_only_when_set(connect, node):
    backend = connect("apply")
    channel = backend.list_channels()[1]
    after = backend.set_channel_policy(channel.channel_id, FeeUpdate(min_htlc_msat=5000, cltv_delta=40))
    assert (after.min_htlc_msat, after.cltv_delta) == (5000, 40)
    assert backend.set_channel_policy(channel.channel_id, FeeUpdate(fee_ppm=3)).min_htlc_msat == 5000


def test_peer_policy_is_the_peers_side(connect, node):
    backend = connect("read")
    for channel in backend.list_channels()[:4]:
        assert backend.get_peer_policy(channel.channel_id) == node.get_peer_policy(channel.channel_id)
    with pytest.raises(BackendRejected, match="not one of ours"):
        backend.get_peer_policy(ChannelId(1, 2, 3))


def test_channels_match_the_simulator(connect, node):
    backend = connect("read")
    ours = {c.channel_id: c for c in backend.list_channels()}
    for sim in node.list_channels():
        c = ours[sim.channel_id]
        assert c.peer_id == sim.peer_id and c.local_policy == sim.local_policy
        assert c.peer_alias == sim.peer_alias != ""  # lnd fills it only when asked (peer_alias_lookup)
        assert c.capacity_msat == sim.capacity_msat // 1000 * 1000  # lnd reports sat
        assert c.local_balance_msat == sim.local_balance_msat // 1000 * 1000
        assert (c.min_htlc_floor_msat, c.max_htlc_cap_msat) == (sim.min_htlc_floor_msat, sim.max_htlc_cap_msat)
        assert c.initiator == sim.initiator and c.commit_fee_msat == sim.commit_fee_msat


def test_peer_opened_channels_keep_their_commit_fee():
    """lnd reports commit_fee on every channel; charge-lnd adds it to the opener's side, the peer's included."""
    raw = ln.Channel(chan_id=ChannelId(800000, 1, 0).to_int(), capacity=1_000_000, local_balance=400_000,
                     remote_balance=597_000, commit_fee=3_000, initiator=False,
                     local_constraints=ln.ChannelConstraints(min_htlc_msat=1, max_pending_amt_msat=990_000_000),
                     remote_constraints=ln.ChannelConstraints(chan_reserve_sat=10_000))  # fmt: skip
    channel = convert.channel(raw, convert.policy(ln.RoutingPolicy()))
    assert (channel.commit_fee_msat, channel.initiator) == (3_000_000, False)
    assert chargelnd_balances_msat(channel) == (400_000_000, 600_000_000)
    assert (channel.min_htlc_floor_msat, channel.max_htlc_cap_msat, channel.remote_reserve_msat) == (
        1,
        990_000_000,
        10_000_000,
    )
    # a ListChannels entry without constraints (an old lnd) leaves them unknown rather than 0
    bare = convert.channel(ln.Channel(chan_id=raw.chan_id, capacity=1), convert.policy(ln.RoutingPolicy()))
    assert (bare.min_htlc_floor_msat, bare.max_htlc_cap_msat) == (None, None)


def _forwards_in_one_second(node, second: float, n: int, start_id: int) -> list[HtlcEvent]:
    a, b = (c.channel_id for c in node.list_channels()[:2])
    return [HtlcEvent(a, 2000 + i, ForwardStatus.SETTLED, second + i / (2 * n), in_htlc_id=start_id + i,
                      out_channel=b, out_msat=1000 + i, fee_msat=1000, resolved_time=second + i / (2 * n))
            for i in range(n)]  # fmt: skip


def test_history_cursor_pages_exactly_through_equal_seconds(connect, fake, node):
    """lnd's offset counts inside a fixed window; many forwards within one second must neither repeat nor vanish."""
    backend = connect("read")
    t = float(int(node.clock.now())) + 10
    fake.publish(_forwards_in_one_second(node, t, 9, 0) + _forwards_in_one_second(node, t + 1, 5, 100))
    seen, cursor = [], None
    for _ in range(100):
        page = backend.list_forwards(cursor, limit=2)
        seen.extend(page.events)
        cursor = page.next_cursor
        if page.done:
            break
    assert [e.in_htlc_id for e in seen] == [*range(9), *range(100, 105)]
    assert parse_cursor(cursor)[1:] == (4_102_444_800, 5)  # re-anchored on the last second
    fake.publish(_forwards_in_one_second(node, t + 1.6, 3, 200))  # later in the same second
    later = backend.list_forwards(cursor, limit=10)
    assert [e.in_htlc_id for e in later.events] == [200, 201, 202] and later.done


def test_bad_cursor_is_rejected(connect):
    with pytest.raises(BackendRejected, match="not an lnd history cursor"):
        connect("read").list_forwards("sim:12")


def _asked(fake, since: int) -> Counter:
    return Counter(path.rsplit("/", 1)[1] for path in fake.calls[since:])


def test_an_interval_asks_lnd_once_answers_the_same_and_never_carries_over(connect, fake, node):
    """Issue 16: inside LndBackend.interval() (one `lnlens lnd run` interval) channels and peers' policies are what
    the same reads return outside one, from one ListChannels, one FeeReport and one GetChanInfo per channel (a
    channel lnd's graph lacks included); the next interval, and any read after our own change, read lnd again."""
    off = node.list_channels()[-1].channel_id
    node.seed_channel(off, in_graph=False)
    backend = connect("apply")

    def read() -> tuple[list, dict]:
        channels = backend.list_channels()
        peers = {}
        for c in channels:
            try:
                peers[c.channel_id] = backend.get_peer_policy(c.channel_id)
            except BackendRejected as exc:
                peers[c.channel_id] = str(exc)
        return channels, peers

    plain = read()
    assert isinstance(plain[1][off], str) and plain[0][-1].local_policy is None
    since = len(fake.calls)
    with backend.interval():
        assert read() == plain and read() == plain
        assert backend.list_channels() == plain[0]
    asked = _asked(fake, since)
    assert (asked["ListChannels"], asked["FeeReport"], asked["GetChanInfo"]) == (1, 1, len(plain[0])), asked

    first = plain[0][0]
    node.set_channel_policy(first.channel_id, FeeUpdate(fee_ppm=first.local_policy.fee_ppm + 7))  # lncli, say
    with backend.interval():
        now = backend.list_channels()[0].local_policy
        assert now.fee_ppm == first.local_policy.fee_ppm + 7, "an answer from the last interval"
        after = backend.set_channel_policy(first.channel_id, FeeUpdate(fee_ppm=now.fee_ppm + 1))
        assert backend.list_channels()[0].local_policy == after != now, "an answer from before our own change"
