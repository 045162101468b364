"""D.6: every strategy and the common properties, with hand-worked expected values.

Reference channel (conftest): ratio 0.405113, our policy 1000 msat + 100 ppm, inbound 0/0, min HTLC 0,
max HTLC 1,000,000,000 msat (the capacity), CLTV 80, enabled, active; peer charges 1500 msat + 250 ppm.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lnlens_core.backend import Capability
from lnlens_core.domain import ChannelPolicy, FeeUpdate
from lnlens_core.errors import StrategyError


def with_policy(ref, channel=None, **policy):
    channel = channel or ref.channel()
    return replace(channel, local_policy=replace(channel.local_policy, **policy))


def test_ignore_changes_nothing_even_with_common_properties(harness):
    decision = harness.decide("[a]\nstrategy = ignore\nmin_htlc_msat = 5000\ntime_lock_delta = 10\n")
    assert (decision.policy, decision.strategy, decision.update, decision.error) == ("a", "ignore", None, None)


def test_ignore_fees_applies_htlc_cltv_and_re_enables(harness, ref):
    inputs = ref.inputs(with_policy(ref, disabled=True))
    decision = harness.decide("[a]\nstrategy = ignore_fees\nmin_htlc_msat = 5000\ntime_lock_delta = 10\n", inputs)
    assert decision.update == FeeUpdate(min_htlc_msat=5000, cltv_delta=10, disabled=False)


def test_ignore_fees_does_not_use_inbound_level(harness):
    decision = harness.decide("[a]\nstrategy = ignore_fees\ninbound_level_ppm = 0\n")
    assert decision.update is None
    assert decision.notes == ("inbound_level_ppm ignored: strategy ignore_fees does not use it",)


def test_static_sets_every_fee_given(harness):
    text = "[a]\nstrategy = static\nbase_fee_msat = 0\nfee_ppm = 300\ninbound_base_fee_msat = -100\n"
    text += "inbound_fee_ppm = -50\n"
    decision = harness.decide(text)
    assert decision.update == FeeUpdate(base_fee_msat=0, fee_ppm=300, inbound_base_fee_msat=-100, inbound_fee_ppm=-50)


def test_static_inbound_level(harness):
    # inbound = min(0, level - outbound ppm after the update) = min(0, 100 - 300) = -200, overriding -50
    text = "[a]\nstrategy = static\nfee_ppm = 300\ninbound_fee_ppm = -50\ninbound_level_ppm = 100\n"
    assert harness.decide(text).update == FeeUpdate(fee_ppm=300, inbound_fee_ppm=-200)
    # the outbound ppm does not change: the current 100 is used; min(0, 400 - 100) = 0 = current -> no change
    assert harness.decide("[a]\nstrategy = static\ninbound_level_ppm = 400\n").update is None
    assert harness.decide("[a]\nstrategy = static\ninbound_level_ppm = 50\n").update == FeeUpdate(inbound_fee_ppm=-50)


def test_match_peer(harness, ref):
    assert harness.decide("[a]\nstrategy = match_peer\n").update == FeeUpdate(base_fee_msat=1500, fee_ppm=250)
    overridden = harness.decide("[a]\nstrategy = match_peer\nfee_ppm = 99\n")
    assert overridden.update == FeeUpdate(base_fee_msat=1500, fee_ppm=99)
    peer = ChannelPolicy(base_fee_msat=0, fee_ppm=10, inbound_base_fee_msat=-5, inbound_fee_ppm=-7)
    decision = harness.decide("[a]\nstrategy = match_peer\ninbound_level_ppm = 0\n", ref.inputs(peer_policy=peer))
    assert decision.update == FeeUpdate(base_fee_msat=0, fee_ppm=10, inbound_base_fee_msat=-5, inbound_fee_ppm=-7)
    assert "inbound_level_ppm ignored: strategy match_peer does not use it" in decision.notes


def test_match_peer_without_peer_policy_keeps_the_channel(harness, ref):
    decision = harness.decide("[a]\nstrategy = match_peer\n", ref.inputs(peer_policy=None))
    assert (decision.policy, decision.strategy, decision.update) == ("a", "match_peer", None)
    assert "peer's policy on 799000x5x1 is unknown" in decision.error


QUARTER = "[a]\nstrategy = proportional\nmin_fee_ppm = 100\nmax_fee_ppm = 500\n"


def quarter_inputs(ref, *, fee_ppm=100, others=(), active=True):
    channel = with_policy(ref, ref.plain("700000x1x0", 250_000, 750_000, active=active), fee_ppm=fee_ppm)
    return ref.inputs(channel, peer_channels=(channel, *others))


def test_proportional(harness, ref):
    # ratio 0.25 -> trunc(100 + 0.75 * 400) = 400
    decision = harness.decide(QUARTER, quarter_inputs(ref))
    assert decision.update == FeeUpdate(fee_ppm=400) and decision.desired.min_fee_ppm_delta == 10


def test_proportional_default_delta_is_10(harness, ref):
    decision = harness.decide(QUARTER, quarter_inputs(ref, fee_ppm=395))
    assert decision.update is None and "fee_ppm 395 -> 400 kept: below min_fee_ppm_delta=10" in decision.notes
    assert harness.decide(QUARTER + "min_fee_ppm_delta = 0\n", quarter_inputs(ref, fee_ppm=395)).update == FeeUpdate(
        fee_ppm=400
    )
    assert harness.decide(QUARTER, quarter_inputs(ref, fee_ppm=390)).update == FeeUpdate(fee_ppm=400)


def test_proportional_sum_peer_chans(harness, ref):
    full = ref.plain("700000x2x0", 750_000, 250_000)
    idle = ref.plain("700000x3x0", 750_000, 250_000, active=False)
    text = QUARTER + "sum_peer_chans = true\n"
    # active: 250k + 750k local of 2M -> 0.5 -> 300
    assert harness.decide(text, quarter_inputs(ref, others=(full,))).update == FeeUpdate(fee_ppm=300)
    # inactive channels count only when none is active
    assert harness.decide(text, quarter_inputs(ref, others=(idle,))).update == FeeUpdate(fee_ppm=400)
    assert harness.decide(text, quarter_inputs(ref, others=(idle,), active=False)).update == FeeUpdate(fee_ppm=300)
    # sum_peer_chans = false really is false (quirk 2)
    off = QUARTER + "sum_peer_chans = false\n"
    assert harness.decide(off, quarter_inputs(ref, others=(full,))).update == FeeUpdate(fee_ppm=400)


def test_proportional_clamps_at_zero_and_allows_inverted_bounds(harness, ref):
    below = "[a]\nstrategy = proportional\nmin_fee_ppm = 100\nmax_fee_ppm = -500\n"
    assert harness.decide(below, quarter_inputs(ref)).update == FeeUpdate(fee_ppm=0)  # 100 + 0.75 * -600 < 0
    inverted = "[a]\nstrategy = proportional\nmin_fee_ppm = 500\nmax_fee_ppm = 100\n"
    assert harness.decide(inverted, quarter_inputs(ref)).update == FeeUpdate(fee_ppm=200)  # 500 - 0.75 * 400


def test_proportional_base_and_inbound_as_static(harness, ref):
    text = QUARTER + "base_fee_msat = 0\ninbound_base_fee_msat = -10\ninbound_level_ppm = 100\n"
    decision = harness.decide(text, quarter_inputs(ref))
    assert decision.update == FeeUpdate(base_fee_msat=0, fee_ppm=400, inbound_base_fee_msat=-10, inbound_fee_ppm=-300)


def test_proportional_on_an_empty_channel_keeps_it(harness, ref):
    empty = ref.plain("700000x1x0", 0, 0)
    decision = harness.decide(QUARTER, ref.inputs(empty, peer_channels=(empty,)))
    assert decision.update is None and "no balance on either side" in decision.error


def test_cost(harness, ref):
    # 5,000 sat funding fee on 1,000,000 sat: trunc(1.0 * 1e6 * 5000 / 1e6) = 5000 ppm
    assert harness.decide("[a]\nstrategy = cost\n").update == FeeUpdate(fee_ppm=5000)
    assert harness.decide("[a]\nstrategy = cost\ncost_factor = 0.5\n").update == FeeUpdate(fee_ppm=2500)
    decision = harness.decide("[a]\nstrategy = cost\nbase_fee_msat = 1\n", ref.inputs(funding_fee_msat=None))
    assert decision.update == FeeUpdate(base_fee_msat=1, fee_ppm=1)


def test_onchain_fee(harness, ref):
    # trunc((0.01 / 0.1) * (223 * 10)) = trunc(222.99999999999997) = 222: charge-lnd's own float arithmetic
    decision = harness.decide("[a]\nstrategy = onchain_fee\n")
    assert decision.update == FeeUpdate(fee_ppm=222) and decision.desired.min_fee_ppm_delta == 10
    # 2 blocks: 20 sat/vB; 0.05 BTC: trunc(0.19999999999999998 * 4460) = 891
    decision = harness.decide("[a]\nstrategy = onchain_fee\nonchain_fee_numblocks = 2\nonchain_fee_btc = 0.05\n")
    assert decision.update == FeeUpdate(fee_ppm=891)
    low = harness.decide("[a]\nstrategy = onchain_fee\ntime_lock_delta = 40\n", env=ref.env(onchain_fee_rates={6: 0.5}))
    assert low.update == FeeUpdate(cltv_delta=40) and "below 1: fees kept" in low.reason
    missing = harness.decide("[a]\nstrategy = onchain_fee\n", env=ref.env(onchain_fee_rates={}))
    assert missing.update is None and "6-block" in missing.error


def test_onchain_fee_conf_targets_are_announced(harness):
    text = "[a]\nonchain.conf_target = 1\nonchain.max_fee_rate = 5\nstrategy = ignore\n\n[b]\nstrategy = onchain_fee\n"
    text += "onchain_fee_numblocks = 12\n"
    assert harness.load(text).conf_targets() == {2, 12}


def test_disable_keeps_fees_htlc_and_cltv(harness, ref):
    text = "[a]\nstrategy = disable\nmin_htlc_msat = 5000\ntime_lock_delta = 10\n"
    assert harness.decide(text).update == FeeUpdate(disabled=True)
    inactive = harness.decide(text, ref.inputs(ref.channel(active=False)))
    assert inactive.update is None and "status kept: the channel is not active" in inactive.notes
    assert harness.decide(text, ref.inputs(with_policy(ref, disabled=True))).update is None


def test_other_strategies_re_enable_a_disabled_channel(harness, ref):
    inputs = ref.inputs(with_policy(ref, disabled=True))
    assert harness.decide("[a]\nstrategy = static\n", inputs).update == FeeUpdate(disabled=False)
    assert harness.decide("[a]\nstrategy = ignore\n", inputs).update is None


def test_use_config(harness):
    inner = "[inner-low]\nchan.max_ratio = 0.5\nstrategy = static\nfee_ppm = 77\nmin_htlc_msat = 2\n"
    harness.write(inner, "inner.ini")
    text = "[outer]\nstrategy = use_config\nconfig_file = file://inner.ini\ntime_lock_delta = 50\n"
    decision = harness.decide(text)
    # the other file's policy decides, with its own common properties (the outer time_lock_delta is not used)
    assert (decision.policy, decision.strategy) == ("inner-low (from inner.ini)", "static")
    assert decision.update == FeeUpdate(fee_ppm=77, min_htlc_msat=2)


def test_use_config_with_nothing_matching_applies_only_the_outer_common_properties(harness):
    harness.write("[inner]\nchan.min_ratio = 0.9\nstrategy = static\nfee_ppm = 77\n", "inner.ini")
    text = "[outer]\nstrategy = use_config\nconfig_file = inner.ini\ntime_lock_delta = 50\n"
    decision = harness.decide(text)
    assert (decision.policy, decision.strategy, decision.update) == ("outer", "use_config", FeeUpdate(cltv_delta=50))


def test_use_config_propagates_the_inner_delta(harness, ref):
    harness.write("[p]\nstrategy = proportional\nmin_fee_ppm = 100\nmax_fee_ppm = 500\n", "inner.ini")
    text = "[outer]\nstrategy = use_config\nconfig_file = inner.ini\nmin_fee_ppm_delta = 0\n"
    decision = harness.decide(text, quarter_inputs(ref, fee_ppm=395))
    assert decision.desired.min_fee_ppm_delta == 10 and decision.update is None


def test_use_config_file_problems_are_config_errors(harness, strategies):
    from lnlens_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"charge.ini:3 \[o\] config_file: cannot read .*missing.ini"):
        harness.load("[o]\nstrategy = use_config\nconfig_file = missing.ini\n")
    harness.write("[loop]\nstrategy = use_config\nconfig_file = charge.ini\n", "other.ini")
    with pytest.raises(ConfigError, match="use_config cycle"):
        harness.load("[o]\nstrategy = use_config\nconfig_file = other.ini\n")
    harness.write("[bad]\nstrategy = static\nfee_ppm = x\n", "bad.ini")
    with pytest.raises(ConfigError, match=r"bad.ini:3 \[bad\] fee_ppm: invalid literal"):
        harness.load("[o]\nstrategy = use_config\nconfig_file = bad.ini\n")


def test_a_failing_strategy_leaves_the_channel_unchanged(harness, strategies, ref):
    """Quirk 3 is never reproduced: no DISABLE, no change, and the reason is recorded."""

    class Broken:
        name = "broken"

        def propose(self, channel, ctx):
            raise ZeroDivisionError("boom")

    class Refusing:
        name = "refusing"

        def propose(self, channel, ctx):
            raise StrategyError("not enough data for 799000x5x1")

    harness.strategies = {**strategies, "broken": Broken, "refusing": Refusing}
    inputs = ref.inputs(with_policy(ref, disabled=False))
    broken = harness.decide("[a]\nstrategy = broken\nmin_htlc_msat = 5\n", inputs)
    assert (broken.policy, broken.strategy, broken.update) == ("a", "broken", None)
    assert broken.error == "strategy broken failed: ZeroDivisionError('boom')"
    refusing = harness.decide("[a]\nstrategy = refusing\n", inputs)
    assert refusing.update is None and refusing.error == "not enough data for 799000x5x1"
    assert any("channel kept unchanged" in line for line in refusing.explain())


def test_a_strategy_returning_garbage_or_missing_keeps_the_channel(harness, strategies, ref):
    from lnlens_core.fees.chargelnd import PolicyEvaluator

    class Sloppy:
        name = "sloppy"

        def propose(self, channel, ctx):
            return {"fee_ppm": 5}

    harness.strategies = {**strategies, "sloppy": Sloppy}
    decision = harness.decide("[a]\nstrategy = sloppy\n")
    assert decision.update is None and decision.error == "strategy sloppy returned {'fee_ppm': 5}, not a FeeProposal"
    policies = harness.load("[a]\nstrategy = sloppy\n")
    decision = PolicyEvaluator(policies, strategies).evaluate(ref.inputs(), ref.env())
    assert decision.update is None and decision.error.endswith("[a] strategy: strategy is not registered")


def test_use_config_strategy_outside_a_policy_file_refuses(strategies, ref):
    from lnlens_core.fees.strategy import FeeContext

    ctx = FeeContext(now=ref.NOW, node=ref.env().node, capabilities=frozenset())
    with pytest.raises(StrategyError, match="only meaningful inside a policy file"):
        strategies["use_config"](config_file="x.ini").propose(ref.channel(), ctx)


# --- common properties -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "expected_max_htlc"),
    [
        ("max_htlc_msat_ratio = 0.5", 495_000_000),  # 0.5 * (1,000,000 - 10,000 reserve) sat
        ("max_htlc_msat_ratio = 0.5\nmax_htlc_msat = 400000000", 400_000_000),  # the smaller
        ("max_htlc_msat_ratio = 0.5\nmax_htlc_msat = 600000000", 495_000_000),
        ("max_htlc_msat_ratio = 0\nmax_htlc_msat = 400000000", 400_000_000),  # ratio 0 ignored
        ("max_htlc_msat_ratio = 1.5", 990_000_000),  # clamped to 1
        ("max_htlc_msat_ratio = 0.0021", 2_079_000),  # int(0.0021 * 990000 * 1000), not 2,078,999 (order matters)
        ("max_htlc_msat_ratio = -1", None),  # clamped to 0, then ignored
        ("max_htlc_msat = 0", None),  # 0 is "leave it" (charge-lnd resends it on every run)
        ("max_htlc_msat = 2000000000", None),  # capped at the capacity, which is the current value
    ],
)
def test_max_htlc(harness, props, expected_max_htlc):
    decision = harness.decide(f"[a]\nstrategy = ignore_fees\n{props}\n")
    assert decision.update == (None if expected_max_htlc is None else FeeUpdate(max_htlc_msat=expected_max_htlc))


def test_htlc_limits_respect_channel_constraints(harness, ref):
    """charge-lnd floors min_htlc at the channel's local minimum and caps max_htlc at its max_pending_amt."""
    inputs = ref.inputs(ref.channel(min_htlc_floor_msat=1000, max_htlc_cap_msat=300_000_000))
    text = "[a]\nstrategy = ignore_fees\nmin_htlc_msat = 1\nmax_htlc_msat = 400000000\n"
    assert harness.decide(text, inputs).update == FeeUpdate(min_htlc_msat=1000, max_htlc_msat=300_000_000)
    # a known cap replaces the capacity: charge-lnd never caps at the capacity itself
    inputs = ref.inputs(ref.channel(max_htlc_cap_msat=1_500_000_000))
    text = "[a]\nstrategy = ignore_fees\nmax_htlc_msat = 1200000000\n"
    assert harness.decide(text, inputs).update == FeeUpdate(max_htlc_msat=1_200_000_000)


def test_non_final_common_properties_fill_in(harness):
    text = "[limits]\nmin_htlc_msat = 1000\ntime_lock_delta = 144\n\n[a]\nstrategy = static\nfee_ppm = 200\n"
    assert harness.decide(text).update == FeeUpdate(fee_ppm=200, min_htlc_msat=1000, cltv_delta=144)


def test_fields_a_backend_cannot_set_are_reported_not_sent(harness, ref):
    cln_like = frozenset({Capability.HTLC_LIMITS, Capability.LIVE_EVENTS})
    text = "[a]\nstrategy = static\nfee_ppm = 200\ninbound_fee_ppm = -10\ntime_lock_delta = 10\n"
    decision = harness.decide(text, ref.inputs(with_policy(ref, disabled=True)), env=ref.env(cln_like))
    assert decision.update == FeeUpdate(fee_ppm=200)
    assert "inbound fees not applied: this backend cannot set them" in decision.notes
    assert "cltv_delta -> 10 not applied: this backend cannot set it" in decision.notes
    assert "disabled -> False not applied: this backend cannot set it" in decision.notes


def test_circuitbreaker_keys_are_accepted_and_reported(harness):
    text = "[a]\nstrategy = static\nfee_ppm = 100\ncb_max_hourly_rate = 10\ncb_mode = 1\ncb_clear_limit = true\n"
    decision = harness.decide(text)
    assert decision.update is None
    assert "cb_mode not applied: lnlens does not drive circuitbreaker" in decision.notes
