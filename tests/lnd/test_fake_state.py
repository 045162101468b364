"""The fake lnd as other clients of lnd see it (charge-lnd in tests/differential): seeded channel facts on the
wire, channels missing from the graph, and the frozen mode that records writes per macaroon and leaves the
node alone."""

from __future__ import annotations

import pytest
from lnlens_lnd.connection import Credentials
from lnlens_lnd.rpc import LndRpc, ln, router
from lnlens_testing.lnd import ADMIN, FakeLnd

from lnlens_core.domain import FeeUpdate, PendingHtlc
from lnlens_core.errors import BackendRejected


def _rpc(fake: FakeLnd, key: int) -> LndRpc:
    macaroon = fake.macaroons.bake(ADMIN, root_key_id=key)
    creds = Credentials(fake.host, fake.cert_path.read_bytes(), macaroon, f"root key {key}", str(fake.cert_path))
    return LndRpc(creds, mode="apply", timeout_s=10.0)


@pytest.fixture
def frozen(node, tmp_path):
    server = FakeLnd(node, tmp_path / "frozen", frozen=True)
    server.start()
    yield server
    server.stop()


def test_seeded_facts_reach_list_channels_and_the_graph(node, fake):
    first, second, last = (c.channel_id for c in node.list_channels()[:3])
    htlc = PendingHtlc(incoming=True, amount_msat=40_000_000, expiry_height=934_100)
    node.seed_channel(first, commit_fee_msat=3_000_000, pending_htlcs=(htlc,), active=False, private=True,
                      min_htlc_floor_msat=1_000, max_htlc_cap_msat=5_000_000_000)  # fmt: skip
    node.seed_channel(second, peer_policy=False)
    node.seed_channel(last, in_graph=False)
    off = next(c for c in node.list_channels() if c.channel_id == last)
    assert off.local_policy is None and node.own_policy(last).cltv_delta > 0  # the simulator reports it as lnd does
    with pytest.raises(BackendRejected, match="not in the node's graph"):
        node.set_channel_policy(last, FeeUpdate(fee_ppm=5))
    with pytest.raises(ValueError, match="not a channel fact: colour"):
        node.seed_channel(first, colour="red")
    rpc = _rpc(fake, 1)
    try:
        ch = next(c for c in rpc.call("ListChannels", ln.ListChannelsRequest()).channels if c.chan_id == first.to_int())
        assert (ch.commit_fee, ch.active, ch.private, ch.unsettled_balance) == (3_000, False, True, 40_000)
        assert [(h.incoming, h.amount, h.expiration_height) for h in ch.pending_htlcs] == [(True, 40_000, 934_100)]
        assert (ch.local_constraints.min_htlc_msat, ch.local_constraints.max_pending_amt_msat) == (1_000, 5_000_000_000)
        edge = rpc.call("GetChanInfo", ln.ChanInfoRequest(chan_id=second.to_int()))
        peer_side = "node1_policy" if edge.node1_pub != node.get_info().pubkey else "node2_policy"
        assert not edge.HasField(peer_side), "an unannounced peer side has no policy in the edge"
        with pytest.raises(BackendRejected, match="edge not found"):
            rpc.call("GetChanInfo", ln.ChanInfoRequest(chan_id=last.to_int()))
        reported = {f.chan_id for f in rpc.call("FeeReport").channel_fees}
        assert last.to_int() not in reported and first.to_int() in reported  # lnd's FeeReport walks its graph
        txid, index = fake.chan_point(last)
        update = ln.PolicyUpdateRequest(chan_point=ln.ChannelPoint(funding_txid_str=txid, output_index=index),
                                        fee_rate_ppm=5, time_lock_delta=80)  # fmt: skip
        (failed,) = rpc.call("UpdateChannelPolicy", update).failed_updates
        assert (failed.reason, failed.update_error) == (2, "unable to find channel")  # NOT_FOUND, as lnd
    finally:
        rpc.close()


def test_a_frozen_fake_records_each_callers_writes_and_changes_nothing(node, frozen):
    channel = node.list_channels()[0]
    before = channel.local_policy
    txid, index = frozen.chan_point(channel.channel_id)
    point = ln.ChannelPoint(funding_txid_str=txid, output_index=index)
    one, two = _rpc(frozen, 7), _rpc(frozen, 8)
    try:
        update = ln.PolicyUpdateRequest(chan_point=point, base_fee_msat=1, fee_rate_ppm=999, time_lock_delta=80)
        assert not one.call("UpdateChannelPolicy", update).failed_updates
        status = router.UpdateChanStatusRequest(
            chan_point=ln.ChannelPoint(funding_txid_str=txid, output_index=index), action=router.DISABLE
        )
        two.call("UpdateChanStatus", status)
    finally:
        one.close()
        two.close()
    assert node.list_channels()[0].local_policy == before
    assert [(key, method) for key, method, _ in frozen.writes] == [(7, "UpdateChannelPolicy"), (8, "UpdateChanStatus")]
    assert frozen.writes[0][2].fee_rate_ppm == 999 and frozen.writes[1][2].action == router.DISABLE


def test_the_read_paths_take_a_channel_whose_policy_lnd_cannot_tell(node, connect, tmp_path):
    """Snapshots, the analysis, the features and the fee opinions keep working, and never read invented zeros."""
    import math

    from lnlens_core.config import LensConfig
    from lnlens_core.lens import Lens
    from lnlens_core.model.features import FEATURE_NAMES, compute_features, windows_from_events
    from lnlens_core.opportunities.flows import PolicyBook
    from lnlens_core.opportunities.monitor import HtlcMonitor
    from lnlens_core.opportunities.report import channel_json
    from lnlens_core.opportunities.run import run_analysis
    from lnlens_core.plugins import get_plugin_manager
    from lnlens_core.storage import Store

    node.run(1800)
    off = node.list_channels()[0].channel_id
    node.seed_channel(off, in_graph=False)
    backend = connect()
    channels = list(backend.list_channels())
    assert [c.channel_id for c in channels if c.local_policy is None] == [off]
    store = Store(None)
    try:
        store.add_snapshots(channels, time=node.clock.now())
        assert {c.channel_id for c in store.latest_channels()[1]} == {c.channel_id for c in channels} - {off}
        lens = Lens(LensConfig(data_dir=tmp_path, db_path=tmp_path / "db"), store=store, clock=node.clock,
                    pm=get_plugin_manager(load_entrypoints=False), backend=backend)  # fmt: skip
        HtlcMonitor(store, node.clock, lens.emit).backfill(backend)
        assert run_analysis(lens, since_s=86_400, channels=channels, save=False).to_json()["channels"] == len(channels)
        x = compute_features(channels, windows_from_events([], PolicyBook(), node.clock.now()))
        at = [c.channel_id for c in channels].index(off)
        assert math.isnan(x[at][FEATURE_NAMES.index("fee_ppm_log1p")])
        assert channel_json(channels[at], {})["fee_ppm"] is None
    finally:
        store.close()
