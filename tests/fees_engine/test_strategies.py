"""lnlens's own strategies: balance_based, flow_based, inbound_fee, model_driven."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnlens_core.backend import Capability
from lnlens_core.domain import FeeUpdate, NodeInfo, RecommendationKind
from lnlens_core.errors import ConfigError, StrategyError
from lnlens_core.fees.lnlens_strategies import BalanceBased, FlowBased, InboundFee, ModelDriven, balance_curve
from lnlens_core.fees.signals import ChannelSignals, ModelPrediction
from lnlens_core.fees.strategy import FeeContext, build_strategy
from lnlens_core.opportunities.flows import Flow
from lnlens_core.testing import make_channel

NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")
LND = frozenset({Capability.INBOUND_FEES, Capability.POSITIVE_INBOUND_FEES})
CLN = frozenset({Capability.HTLC_LIMITS})


def ctx(signals=None, caps=LND):
    return FeeContext(now=0.0, node=NODE, capabilities=caps, signals=signals)


@settings(max_examples=200, deadline=None)
@given(fee=st.integers(1, 5000), spread=st.floats(1, 10), bins=st.integers(1, 20),
       ratios=st.lists(st.floats(0, 1), min_size=2, max_size=2))  # fmt: skip
def test_balance_based_is_monotone_bounded_and_honours_fee_ppm(fee, spread, bins, ratios):
    strategy = BalanceBased(fee_ppm=fee, spread=spread, bins=bins, hysteresis=0.0)
    lo, hi = sorted(ratios)
    f_lo, f_hi = strategy.target(lo, None)[1], strategy.target(hi, None)[1]
    assert f_lo >= f_hi, "fee never rises as the local balance grows"
    for value in (f_lo, f_hi):
        assert strategy.min_fee_ppm <= value <= strategy.max_fee_ppm
    if bins % 2 == 1:
        assert strategy.curve[bins // 2] == fee, "a balanced channel pays the configured fee_ppm"


def test_balance_based_curve_and_hysteresis():
    assert balance_curve(100, 25, 400, 5) == [400, 200, 100, 50, 25]
    s = BalanceBased(fee_ppm=100, bins=5, hysteresis=0.05)
    # ratio 0.41 is bin 2 (100 ppm), but a channel already at bin 1's fee keeps it near the 0.4 edge
    assert s.target(0.41, 200) == (1, 200)
    assert s.target(0.46, 200) == (2, 100)
    assert s.target(0.41, 999) == (2, 100)
    proposal = BalanceBased(fee_ppm=100, base_fee_msat=0, inbound_fee_ppm=-20).propose(
        make_channel(local_ratio=0.05, fee_ppm=100), ctx()
    )
    assert proposal.update == FeeUpdate(base_fee_msat=0, fee_ppm=400, inbound_fee_ppm=-20)


def test_unknown_parameter_is_a_config_error_listing_accepted():
    with pytest.raises(ConfigError) as info:
        build_strategy(BalanceBased, {"fee_ppm": 1, "bin": 3}, where="p.ini [x]")
    assert "does not take bin" in str(info.value) and "bins" in str(info.value) and "hysteresis" in str(info.value)
    with pytest.raises(ConfigError, match="min_fee_ppm <= fee_ppm"):
        build_strategy(BalanceBased, {"fee_ppm": 10, "min_fee_ppm": 50}, where="p.ini [x]")


NO_FLOW = Flow()


def sig(out=NO_FLOW, inflow=NO_FLOW, rec=None, proposed=None, model=None):
    return ChannelSignals(7 * 86400, out, inflow, rec, proposed, model)


@pytest.mark.parametrize(
    ("signals", "ratio", "expected"),
    [
        (sig(rec=RecommendationKind.RAISE_FEES, proposed=130), 0.5, 115),  # step 15, below the proposal
        (sig(rec=RecommendationKind.RAISE_FEES, proposed=105), 0.5, 105),  # never past the analyzer's rate
        (sig(out=Flow(attempts=5, failed_fee=5)), 0.5, 85),
        (sig(out=Flow(attempts=4, failed_liquidity=4)), 0.1, 115),
        (sig(out=Flow(settled=5, volume_msat=900), inflow=Flow(volume_msat=100)), 0.3, 115),  # drains us
        (sig(out=Flow(settled=5, volume_msat=900), inflow=Flow(volume_msat=100)), 0.5, None),  # enough left
        (sig(out=Flow(settled=3, volume_msat=900), inflow=Flow(volume_msat=100)), 0.3, None),  # too few forwards
        (sig(out=Flow(settled=1, volume_msat=100), inflow=Flow(settled=5, volume_msat=900)), 0.8, 85),  # fills up
        (sig(), 0.9, 85),  # idle and full
        (ChannelSignals(7 * 86400, observed_s=3600), 0.9, None),  # an hour of history is not idleness
        (sig(out=Flow(settled=2, volume_msat=500), inflow=Flow(volume_msat=400)), 0.5, None),  # dead band
    ],
)
def test_flow_based_directions(signals, ratio, expected):
    channel = make_channel(local_ratio=ratio, fee_ppm=100)
    proposal = FlowBased().propose(channel, ctx(signals))
    assert proposal.update.fee_ppm == expected, proposal.reason


def test_flow_based_is_bounded_and_needs_signals():
    low = make_channel(local_ratio=0.9, fee_ppm=3)
    assert FlowBased(min_fee_ppm=1).propose(low, ctx(sig())).update.fee_ppm == 1
    high = make_channel(local_ratio=0.5, fee_ppm=2990)
    raised = FlowBased(max_fee_ppm=3000).propose(high, ctx(sig(rec=RecommendationKind.RAISE_FEES)))
    assert raised.update.fee_ppm == 3000
    with pytest.raises(StrategyError, match="flow signals"):
        FlowBased().propose(high, ctx(None))


def test_inbound_fee_discount_surcharge_and_cln():
    s = InboundFee(discount_ppm=40, surcharge_ppm=25)
    drained = s.propose(make_channel(local_ratio=0.1), ctx(sig()))
    assert drained.update.inbound_fee_ppm == -40
    draining = sig(out=Flow(volume_msat=1000), inflow=Flow(volume_msat=0))
    assert s.propose(make_channel(local_ratio=0.5), ctx(draining)).update.inbound_fee_ppm == -40
    full = make_channel(local_ratio=0.95)
    assert s.propose(full, ctx(sig())).update.inbound_fee_ppm == 25
    no_positive = ctx(sig(), caps=frozenset({Capability.INBOUND_FEES}))
    assert s.propose(full, no_positive).update.inbound_fee_ppm == 0
    with pytest.raises(StrategyError, match="not supported by this backend"):
        s.propose(full, ctx(sig(), caps=CLN))


def test_model_driven_says_no_model_and_steps_toward_the_prediction():
    channel = make_channel(fee_ppm=200)
    for signals in (None, sig()):
        proposal = ModelDriven().propose(channel, ctx(signals))
        assert proposal.update.is_empty() and "no model opinion" in proposal.reason
    unsure = sig(model=ModelPrediction("m@1", fee_ppm=50, confidence=0.1))
    assert ModelDriven().propose(channel, ctx(unsure)).update.is_empty()
    sure = sig(model=ModelPrediction("m@1", fee_ppm=50, confidence=0.9))
    assert ModelDriven(max_step_share=0.25).propose(channel, ctx(sure)).update.fee_ppm == 150
    close = sig(model=ModelPrediction("m@1", fee_ppm=190))
    assert ModelDriven().propose(channel, ctx(close)).update.fee_ppm == 190
