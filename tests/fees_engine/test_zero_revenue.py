"""zero_revenue: a channel is changed only when its current fee earned nothing, each rule in its own case."""

from __future__ import annotations

import pytest

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent, NodeInfo
from lnlens_core.errors import ConfigError
from lnlens_core.fees.lnlens_strategies import ZeroRevenue
from lnlens_core.fees.signals import ChannelSignals, FeeEpoch
from lnlens_core.fees.strategy import FeeContext, build_strategy
from lnlens_core.testing import FakeNode, make_channel

NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")
HOUR = 3_600.0
PEER = "03" + "bb" * 32


def ctx(*history, siblings=()):
    return FeeContext(now=1_800_000_000.0, node=NODE, capabilities=frozenset(), peer_channels=tuple(siblings),
                      signals=ChannelSignals(86_400, fee_history=history))  # fmt: skip


def fee(proposal):
    return proposal.update.fee_ppm


def test_idle_liquidity_is_cut_and_a_channel_that_earns_is_kept():
    s = ZeroRevenue()  # cut 0.5, 30 % local, judged after 6 h
    full = make_channel(fee_ppm=300, local_ratio=0.8)
    proposal = s.propose(full, ctx(FeeEpoch(300, 7 * HOUR, 0, 0)))
    assert fee(proposal) == 150 and proposal.reason.startswith("idle")
    assert fee(s.propose(full, ctx(FeeEpoch(300, 7 * HOUR, 1, 30)))) is None, "it earns: kept"
    assert fee(s.propose(full, ctx(FeeEpoch(300, 5 * HOUR, 0, 0)))) is None, "not judged yet"
    assert fee(s.propose(full, ctx(FeeEpoch(600, 99 * HOUR, 0, 0)))) is None, "another level's history"
    assert fee(s.propose(full, FeeContext(now=0.0, node=NODE, capabilities=frozenset()))) is None, "no history"
    assert fee(s.propose(make_channel(fee_ppm=1, local_ratio=0.8), ctx(FeeEpoch(1, 7 * HOUR, 0, 0)))) is None
    assert fee(ZeroRevenue(cut=0.8, min_fee_ppm=250).propose(full, ctx(FeeEpoch(300, 7 * HOUR, 0, 0)))) == 250


def test_a_channel_forwarding_for_free_gets_a_price():
    s = ZeroRevenue()  # 3 free forwards, +50 ppm
    free = make_channel(fee_ppm=0, base_fee_msat=0, local_ratio=0.2)
    proposal = s.propose(free, ctx(FeeEpoch(0, 7 * HOUR, 3, 0)))
    assert fee(proposal) == 50 and "for free" in proposal.reason
    assert fee(s.propose(free, ctx(FeeEpoch(0, 7 * HOUR, 2, 0)))) is None, "too few forwards to call it demand"
    assert fee(s.propose(free, ctx(FeeEpoch(0, 7 * HOUR, 40, 1)))) is None, "1 msat earned: it earns, kept"
    assert fee(ZeroRevenue(free_step_ppm=10).propose(free, ctx(FeeEpoch(0, 7 * HOUR, 3, 0)))) == 10


def test_a_drained_channel_stops_undercutting_its_siblings_and_nothing_else_is_raised():
    s = ZeroRevenue()
    drained = make_channel("800000x1x0", fee_ppm=0, local_ratio=0.05, peer_id=PEER)
    dear = make_channel("800001x2x0", fee_ppm=300, local_ratio=0.9, peer_id=PEER)
    cheap = make_channel("800002x3x0", fee_ppm=0, local_ratio=0.9, peer_id=PEER)
    idle = FeeEpoch(0, 7 * HOUR, 0, 0)
    proposal = s.propose(drained, ctx(idle, siblings=(drained, dear, cheap)))
    assert fee(proposal) == 300 and proposal.reason.startswith("drained")
    assert fee(s.propose(drained, ctx(idle, siblings=(drained, cheap)))) is None, "no dearer sibling"
    assert fee(s.propose(drained, ctx(idle))) is None, "no sibling at all"
    assert fee(s.propose(drained, ctx(FeeEpoch(0, HOUR, 0, 0), siblings=(dear,)))) is None, "too young"
    never_up = [make_channel(fee_ppm=f, local_ratio=r, peer_id=PEER) for f in (0, 100) for r in (0.05, 0.9)]
    for ch in never_up:  # a sibling's fee is the only way up besides free forwards
        new = fee(s.propose(ch, ctx(FeeEpoch(ch.local_policy.fee_ppm, 7 * HOUR, 0, 0), siblings=(ch,))))
        assert new is None or new < ch.local_policy.fee_ppm


def test_parameters_are_checked():
    for bad in ({"cut": 1.0}, {"free_forwards": 0}, {"free_step_ppm": 0}, {"idle_s": 0}):
        with pytest.raises(ConfigError, match="0 < cut < 1"):
            build_strategy(ZeroRevenue, bad, where="policy.ini [zr]")


@pytest.fixture
def node() -> FakeNode:
    return FakeNode([
        make_channel("800000x1x0", local_ratio=0.8, fee_ppm=400, peer_id="03" + "aa" * 32),  # idle, full
        make_channel("800001x2x1", local_ratio=0.1, fee_ppm=0, base_fee_msat=0, peer_id=PEER),  # drained
        make_channel("800003x4x0", local_ratio=0.7, fee_ppm=300, peer_id=PEER),  # its sibling, earning
        make_channel("800002x3x0", local_ratio=0.5, fee_ppm=0, base_fee_msat=0, peer_id="03" + "cc" * 32),  # free
    ])  # fmt: skip


def test_the_engine_applies_each_rule_within_the_default_rails(make_engine, node, lens, manual_clock):
    idle, drained, sibling, free = (ChannelId.parse(c) for c in ("800000x1x0", "800001x2x1", "800003x4x0",
                                                                   "800002x3x0"))  # fmt: skip
    now = manual_clock.now()
    lens.store.add_snapshots(list(node.channels.values()), time=now - 2 * 86_400)

    def forwards(out, fee_msat, first):
        return [HtlcEvent(idle, 101_000, ForwardStatus.SETTLED, now - HOUR + i, in_htlc_id=first + i,
                          out_channel=out, out_msat=100_000, fee_msat=fee_msat, resolved_time=now - HOUR + i)
                for i in range(4)]  # fmt: skip

    lens.store.ingest_forwards(forwards(sibling, 1000, 0) + forwards(free, 0, 10), source="test")
    plan = make_engine("[default]\nstrategy = zero_revenue\n").plan()
    new = {c.channel_id: (c.update.fee_ppm if c.update is not None else None) for c in plan.changes}
    assert new[idle] == 300, "cut toward 200, by at most max(50 ppm, 25 %) a change"
    assert new[drained] == 50, "toward its sibling's 300 ppm, at most 50 ppm a change"
    assert new[sibling] is None, "it earns"
    assert new[free] == 50, "four forwards for nothing: priced"
