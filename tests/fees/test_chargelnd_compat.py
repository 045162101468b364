"""compat = strict replicates charge-lnd 0.3.1's quirks 2, 4 and 5 (never 3); the default fixes them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lnlens_core.domain import FeeUpdate
from lnlens_core.errors import ConfigError
from lnlens_core.fees.chargelnd import PolicyEvaluator, check_policy_file, load_policy_file


def decide(harness, ref, text, compat, inputs=None):
    policies = load_policy_file(harness.write(text), harness.strategies, base_dir=harness.dir, compat=compat)
    return PolicyEvaluator(policies, harness.strategies).evaluate(inputs or ref.inputs(), ref.env())


def test_quirk_2_property_booleans(harness, ref):
    text = "[a]\nsum_peer_chans = false\ncb_clear_limit = nonsense\n"
    props = load_policy_file(harness.write(text), harness.strategies, compat="strict").policies[0].properties
    assert props["sum_peer_chans"] is True and props["cb_clear_limit"] is True
    assert check_policy_file(harness.write(text), harness.strategies).problems  # 'nonsense' is refused by default


@pytest.mark.parametrize(
    ("setting", "lnlens_matches", "strict_matches"),
    [("", False, False), ("true", True, False), ("false", False, True)],
)
def test_quirk_4_young_channels(harness, ref, setting, lnlens_matches, strict_matches):
    # the reference channel is 1000 blocks (600,000 s) old; the window is 7 days (604,800 s)
    text = "[t]\nchan.activity_period = 7d\n"
    if setting:
        text += f"chan.activity_period_ignore_channel_age = {setting}\n"
    text += "strategy = static\nfee_ppm = 1\n"
    assert (decide(harness, ref, text, "lnlens").policy == "t") is lnlens_matches
    assert (decide(harness, ref, text, "strict").policy == "t") is strict_matches


def test_quirk_5_sub_delta_ppm(harness, ref):
    text = "[a]\nstrategy = static\nbase_fee_msat = 0\nfee_ppm = 105\nmin_fee_ppm_delta = 10\n"
    assert decide(harness, ref, text, "lnlens").update == FeeUpdate(base_fee_msat=0)
    assert decide(harness, ref, text, "strict").update == FeeUpdate(base_fee_msat=0, fee_ppm=105)
    alone = "[a]\nstrategy = static\nfee_ppm = 105\nmin_fee_ppm_delta = 10\n"
    assert decide(harness, ref, alone, "strict").update is None


def test_quirk_5_is_not_triggered_by_a_status_change_alone(harness, ref):
    """charge-lnd sends the status with UpdateChanStatus, apart from the policy: a re-enable carries no fee."""
    channel = ref.channel(local_policy=replace(ref.channel().local_policy, disabled=True))
    alone = "[a]\nstrategy = static\nfee_ppm = 105\nmin_fee_ppm_delta = 10\n"
    assert decide(harness, ref, alone, "strict", ref.inputs(channel)).update == FeeUpdate(disabled=False)


def test_quirk_3_is_not_replicated_even_in_strict_mode(harness, ref):
    empty = ref.plain("700000x1x0", 0, 0)
    text = "[a]\nstrategy = proportional\nmin_fee_ppm = 1\nmax_fee_ppm = 2\n"
    decision = decide(harness, ref, text, "strict", ref.inputs(empty, peer_channels=(empty,)))
    assert decision.update is None and decision.error


def test_unknown_compat_mode(harness):
    with pytest.raises(ConfigError, match="compat must be one of lnlens, strict, not 'loose'"):
        load_policy_file(harness.write("[a]\nstrategy = ignore\n"), harness.strategies, compat="loose")
