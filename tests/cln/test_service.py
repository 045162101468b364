"""The worker's results without a process: what a restarted plugin answers before its first run."""

from __future__ import annotations

from lnlens_cln.service import restored_result
from lnlens_cln.standin.checks import validate

from lnlens_core.clock import ManualClock
from lnlens_core.domain import ChannelId, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.lens import Lens
from lnlens_core.opportunities import run_analysis
from lnlens_core.storage import Store
from lnlens_core.testing import FakeNode, make_channel


def test_a_restart_answers_with_the_last_saved_analysis(tmp_path, config, pm):
    clock = ManualClock()
    channels = [make_channel("800000x1x0", local_ratio=0.01, fee_ppm=2000), make_channel("800000x2x0", local_ratio=0.9)]
    failed = [
        HtlcEvent(channels[1].channel_id, 2_000_000, ForwardStatus.LOCAL_FAILED, clock.now() - 600 + i, in_htlc_id=i,
                  out_channel=channels[0].channel_id, failcode=4103,
                  failure_reason=FailureReason.INSUFFICIENT_BALANCE, resolved_time=clock.now() - 600 + i)
        for i in range(12)
    ]  # fmt: skip
    store = Store(config.db_path)
    assert restored_result(store) is None  # a new database has nothing to restore
    lens = Lens(config, store=store, clock=clock, pm=pm, backend=FakeNode(channels))
    lens.monitor.observe_channels(channels)
    lens.monitor.record(failed)
    saved = run_analysis(lens, since_s=86_400, channels=channels).to_json()
    assert saved["opportunities"], "the premise: a depleted channel with liquidity failures"

    restored = validate("lens-opportunities", restored_result(store))
    assert restored["restored"] is True and restored["backfill_done"] is False
    assert restored["run_time"] == saved["run_time"] and restored["window_s"] == 86_400
    assert restored["opportunities"] == saved["opportunities"] and restored["pairs"] == saved["pairs"]
    assert restored["channels"] == 2
    assert restored["opportunities"][0]["short_channel_id"] == str(ChannelId.parse("800000x1x0"))
    store.close()
