"""revenue_max: fee history from persisted data, minimum sample, exploration, bounded steps, static fallback."""

from __future__ import annotations

from lnlens_core.domain import ChannelId, ChannelPolicy, ForwardStatus, HtlcEvent, NodeInfo
from lnlens_core.fees.lnlens_strategies import RevenueMax
from lnlens_core.fees.signals import ChannelSignals, FeeEpoch, fee_epochs
from lnlens_core.fees.strategy import FeeContext
from lnlens_core.testing import make_channel

NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")
DAY = 86_400.0
NOW = 1_800_000_000.0


def ctx(history):
    signals = ChannelSignals(7 * 86_400, fee_history=tuple(history)) if history is not None else None
    return FeeContext(now=NOW, node=NODE, capabilities=frozenset(), signals=signals)


def test_fee_epochs_from_snapshots_and_forwards():
    ch = make_channel("800000x1x0", fee_ppm=200)
    other = ChannelId.parse("800001x1x0")
    cid = ch.channel_id
    history = [(NOW - 3 * DAY, cid, ChannelPolicy(0, 100)), (NOW - 2 * DAY, cid, ChannelPolicy(0, 100)),
               (NOW - DAY, cid, ChannelPolicy(0, 200))]  # fmt: skip

    def fwd(t, fee, status=ForwardStatus.SETTLED, out=ch.channel_id):
        return HtlcEvent(other, 1000 + fee, status, t, out_channel=out, out_msat=1000,
                         fee_msat=fee if status is ForwardStatus.SETTLED else None)  # fmt: skip

    events = [fwd(NOW - 2.5 * DAY, 7), fwd(NOW - 1.5 * DAY, 5), fwd(NOW - 0.5 * DAY, 30),
              fwd(NOW - 0.4 * DAY, 30, ForwardStatus.LOCAL_FAILED), fwd(NOW - 0.3 * DAY, 99, out=other),
              fwd(NOW - 40 * DAY, 1000)]  # fmt: skip
    epochs = fee_epochs([ch], events, history, now=NOW, window_s=30 * 86_400)[ch.channel_id]
    assert epochs == (FeeEpoch(100, 2 * DAY, 2, 12), FeeEpoch(200, DAY, 1, 30))
    assert epochs[1].revenue_per_day_msat == 30


def test_static_fallback_and_minimum_sample():
    ch = make_channel(fee_ppm=100)
    assert RevenueMax(fee_ppm=150).propose(ch, ctx(None)).update.fee_ppm == 150
    assert RevenueMax().propose(ch, ctx([])).update.is_empty()
    young = [FeeEpoch(100, DAY / 2, 50, 5000)]
    proposal = RevenueMax().propose(ch, ctx(young))
    assert proposal.update.is_empty() and "collecting a sample" in proposal.reason


def test_explores_up_then_down_then_settles():
    ch = make_channel(fee_ppm=100)
    s = RevenueMax(step_ppm=10, step_share=0.2)
    here = FeeEpoch(100, 2 * DAY, 40, 4000)
    assert s.propose(ch, ctx([here])).update.fee_ppm == 120
    worse_up = FeeEpoch(120, 2 * DAY, 20, 2000)
    assert s.propose(ch, ctx([here, worse_up])).update.fee_ppm == 80
    worse_down = FeeEpoch(80, 2 * DAY, 30, 3000)
    settled = s.propose(ch, ctx([here, worse_up, worse_down]))
    assert settled.update.is_empty() and "best level" in settled.reason


def test_moves_toward_the_best_level_by_bounded_steps_within_bounds():
    ch = make_channel(fee_ppm=100)
    history = [FeeEpoch(100, 2 * DAY, 40, 4000), FeeEpoch(400, 3 * DAY, 30, 30000)]
    assert RevenueMax(step_share=0.2).propose(ch, ctx(history)).update.fee_ppm == 120
    assert RevenueMax(step_share=0.2, max_fee_ppm=110).propose(ch, ctx(history)).update.fee_ppm == 110
    near = [FeeEpoch(100, 2 * DAY, 40, 4000), FeeEpoch(105, 3 * DAY, 30, 9000)]
    assert RevenueMax(step_ppm=10).propose(ch, ctx(near)).update.fee_ppm == 105, "never past the best level"
    idle = [FeeEpoch(100, 2 * DAY, 40, 4000), FeeEpoch(50, 2 * DAY, 0, 0)]  # long enough with no forwards: known
    assert RevenueMax(step_share=0.2).propose(ch, ctx(idle)).update.fee_ppm == 120


def test_engine_feeds_persisted_history_to_revenue_max(make_engine, node, lens, manual_clock):
    a = ChannelId.parse("800000x1x0")
    now = manual_clock.now()
    lens.store.add_snapshots(list(node.channels.values()), time=now - 3 * DAY)
    other = ChannelId.parse("800001x2x1")
    lens.store.ingest_forwards([HtlcEvent(other, 101_000, ForwardStatus.SETTLED, now - DAY + i, in_htlc_id=i,
                                          out_channel=a, out_msat=100_000, fee_msat=1000, resolved_time=now - DAY + i)
                                for i in range(20)], source="test")  # fmt: skip
    plan = make_engine("[default]\nstrategy = revenue_max\nfee_ppm = 150\n").plan()
    rows = {c.channel_id: c for c in plan.changes}
    assert rows[a].update.fee_ppm == 120 and "exploring" in rows[a].reason
    gamma = ChannelId.parse("800002x3x0")  # known level (3 days, no forwards: long enough), explores too
    assert "exploring" in rows[gamma].reason
