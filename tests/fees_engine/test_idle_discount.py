"""idle_discount: cheaper only where the current fee earned nothing long enough on a channel holding liquidity."""

from __future__ import annotations

import pytest

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent, NodeInfo
from lnlens_core.errors import ConfigError
from lnlens_core.fees.lnlens_strategies import IdleDiscount
from lnlens_core.fees.signals import ChannelSignals, FeeEpoch
from lnlens_core.fees.strategy import FeeContext, build_strategy
from lnlens_core.testing import make_channel

NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")
HOUR = 3_600.0
NOW = 1_800_000_000.0


def ctx(*history):
    return FeeContext(now=NOW, node=NODE, capabilities=frozenset(), signals=ChannelSignals(86_400, fee_history=history))


def test_cuts_an_idle_channel_holding_liquidity_and_keeps_every_other():
    s = IdleDiscount()  # cut 0.5, 30 % local, 12 h
    full = make_channel(fee_ppm=300, local_ratio=0.8)
    proposal = s.propose(full, ctx(FeeEpoch(300, 13 * HOUR, 0, 0)))
    assert proposal.update.fee_ppm == 150 and "idle" in proposal.reason
    assert s.propose(full, ctx(FeeEpoch(300, 13 * HOUR, 1, 50))).update.fee_ppm is None, "it earns: kept"
    assert s.propose(full, ctx(FeeEpoch(300, 11 * HOUR, 0, 0))).update.fee_ppm is None, "not judged yet"
    assert s.propose(full, ctx(FeeEpoch(600, 99 * HOUR, 0, 0))).update.fee_ppm is None, "another level's history"
    assert s.propose(full, FeeContext(now=NOW, node=NODE, capabilities=frozenset())).update.fee_ppm is None
    drained = make_channel(fee_ppm=300, local_ratio=0.2)
    assert s.propose(drained, ctx(FeeEpoch(300, 13 * HOUR, 0, 0))).update.fee_ppm is None, "no idle liquidity"
    floor = make_channel(fee_ppm=1, local_ratio=0.8)
    assert s.propose(floor, ctx(FeeEpoch(1, 13 * HOUR, 0, 0))).update.fee_ppm is None
    assert IdleDiscount(cut=0.8, min_fee_ppm=250).propose(full, ctx(FeeEpoch(300, 13 * HOUR, 0, 0))).update.fee_ppm \
        == 250  # fmt: skip


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match="0 < cut < 1"):
        build_strategy(IdleDiscount, {"cut": 1.5}, where="policy.ini [idle]")


def test_engine_cuts_an_idle_channel_within_the_rails(make_engine, node, lens, manual_clock):
    a, other = ChannelId.parse("800000x1x0"), ChannelId.parse("800001x2x1")
    now = manual_clock.now()
    lens.store.add_snapshots(list(node.channels.values()), time=now - 2 * 86_400)
    lens.store.ingest_forwards([HtlcEvent(other, 101_000, ForwardStatus.SETTLED, now - HOUR + i, in_htlc_id=i,
                                          out_channel=a, out_msat=100_000, fee_msat=1000, resolved_time=now - HOUR + i)
                                for i in range(3)], source="test")  # fmt: skip
    plan = make_engine("[default]\nstrategy = idle_discount\n").plan()
    rows = {c.channel_id: c for c in plan.changes}
    assert rows[a].update is None and "earns" in rows[a].reason, "it forwarded at its fee: kept"
    cut = [c for c in plan.changes if c.update is not None and c.update.fee_ppm is not None]
    assert cut, "the channels that earned nothing in two days are cut"
    for change in cut:
        old = node.channels[change.channel_id].local_policy.fee_ppm
        assert max(old // 2, old - max(50, old // 4) - 1) <= change.update.fee_ppm < old, "within the step rail"
