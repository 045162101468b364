"""D.3-D.5: every chan.* / node.* / onchain.* criterion, inclusive at its bound, against hand-worked values.

The reference channel's numbers are derived in conftest.py. Each case is a section body; the expectation
is whether the final section ``[t]`` matches the reference channel.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lnlens_core.domain import ChannelPolicy
from lnlens_core.fees.chargelnd import ActivityStats

CID_INT = (799000 << 40) | (5 << 16) | 1

CASES = [
    # chan.id in its three forms, a list, and a miss
    ("chan.id = 799000x5x1", True),
    ("chan.id = 799000:5:1", True),
    (f"chan.id = {CID_INT}", True),
    ("chan.id = 1x1x1, 799000x5x1", True),
    ("chan.id = 1x1x1", False),
    ("chan.initiator = true", True),
    ("chan.initiator = no", False),
    ("chan.private = off", True),
    ("chan.private = 1", False),
    # capacity 1,000,000 sat
    ("chan.min_capacity = 1_000_000", True),
    ("chan.min_capacity = 1000001", False),
    ("chan.max_capacity = 1000000", True),
    ("chan.max_capacity = 999_999", False),
    # ratio 412000 / 1017000 = 0.405113
    ("chan.min_ratio = 0.405", True),
    ("chan.min_ratio = 0.4052", False),
    ("chan.max_ratio = 0.4052", True),
    ("chan.max_ratio = 0.405", False),
    # local 412,000 sat (balance + outgoing pending + our commit fee), remote 605,000 sat
    ("chan.min_local_balance = 412000", True),
    ("chan.min_local_balance = 412001", False),
    ("chan.max_local_balance = 412000", True),
    ("chan.max_local_balance = 411999", False),
    ("chan.min_remote_balance = 605000", True),
    ("chan.min_remote_balance = 605001", False),
    ("chan.max_remote_balance = 605000", True),
    ("chan.max_remote_balance = 604999", False),
    # the peer's policy: 1500 msat + 250 ppm, enabled
    ("chan.min_base_fee_msat = 1500", True),
    ("chan.min_base_fee_msat = 1501", False),
    ("chan.max_base_fee_msat = 1500", True),
    ("chan.max_base_fee_msat = 1499", False),
    ("chan.min_fee_ppm = 250", True),
    ("chan.min_fee_ppm = 251", False),
    ("chan.max_fee_ppm = 250", True),
    ("chan.max_fee_ppm = 249", False),
    ("chan.disabled = false", True),
    ("chan.disabled = true", False),
    # age 800000 - 799000 = 1000 blocks
    ("chan.min_age = 1000", True),
    ("chan.min_age = 1001", False),
    ("chan.max_age = 1000", True),
    ("chan.max_age = 999", False),
    # two pending HTLCs; the earliest expires at 800050, 50 blocks from now
    ("chan.min_count_pending_htlcs = 2", True),
    ("chan.min_count_pending_htlcs = 3", False),
    ("chan.max_count_pending_htlcs = 2", True),
    ("chan.max_count_pending_htlcs = 1", False),
    ("chan.min_next_pending_htlc_expiry = 50", True),
    ("chan.min_next_pending_htlc_expiry = 51", False),
    ("chan.max_next_pending_htlc_expiry = 50", True),
    ("chan.max_next_pending_htlc_expiry = 49", False),
    # activity over 1d: 3 in (30,000 sat), 1 out (10,000 sat); ratios 0.75
    ("chan.activity_period = 1d\nchan.min_htlcs_in = 3", True),
    ("chan.activity_period = 24h\nchan.min_htlcs_in = 4", False),
    ("chan.activity_period = 1440m\nchan.max_htlcs_in = 3", True),
    ("chan.activity_period = 86400s\nchan.max_htlcs_in = 2", False),
    ("chan.activity_period = 86400\nchan.min_htlcs_out = 1", True),
    ("chan.activity_period = 1d\nchan.min_htlcs_out = 2", False),
    ("chan.activity_period = 1d\nchan.max_htlcs_out = 1", True),
    ("chan.activity_period = 1d\nchan.max_htlcs_out = 0", False),
    ("chan.activity_period = 1d\nchan.min_sats_in = 30000", True),
    ("chan.activity_period = 1d\nchan.min_sats_in = 30001", False),
    ("chan.activity_period = 1d\nchan.max_sats_in = 30000", True),
    ("chan.activity_period = 1d\nchan.max_sats_in = 29999", False),
    ("chan.activity_period = 1d\nchan.min_sats_out = 10000", True),
    ("chan.activity_period = 1d\nchan.min_sats_out = 10001", False),
    ("chan.activity_period = 1d\nchan.max_sats_out = 10000", True),
    ("chan.activity_period = 1d\nchan.max_sats_out = 9999", False),
    ("chan.activity_period = 1d\nchan.min_htlcs_ratio = 0.75", True),
    ("chan.activity_period = 1d\nchan.min_htlcs_ratio = 0.76", False),
    ("chan.activity_period = 1d\nchan.max_htlcs_ratio = 0.75", True),
    ("chan.activity_period = 1d\nchan.max_htlcs_ratio = 0.74", False),
    ("chan.activity_period = 1d\nchan.min_sats_ratio = 0.75", True),
    ("chan.activity_period = 1d\nchan.max_sats_ratio = 0.74", False),
    # the channel is 1000 blocks = 600,000 s old: a 7-day window (604,800 s) is longer
    ("chan.activity_period = 7d", False),
    ("chan.activity_period = 7d\nchan.activity_period_ignore_channel_age = false", False),
    ("chan.activity_period = 7d\nchan.activity_period_ignore_channel_age = true", True),
    ("chan.activity_period = 6d", True),
    # node: peer id, 20 public channels, 50,000,000 sat
    ("node.id = 02" + "ab" * 32, True),
    ("node.id = 03" + "cd" * 32 + ", 02" + "ab" * 32, True),
    ("node.id = 03" + "cd" * 32, False),
    ("node.min_channels = 20", True),
    ("node.min_channels = 21", False),
    ("node.max_channels = 20", True),
    ("node.max_channels = 19", False),
    ("node.min_capacity = 50000000", True),
    ("node.min_capacity = 50000001", False),
    ("node.max_capacity = 50_000_000", True),
    ("node.max_capacity = 49999999", False),
    # shared: active = this (412,000/605,000) + (100,000/100,000); inactive = (50,000/0)
    ("node.min_shared_channels_active = 2", True),
    ("node.min_shared_channels_active = 3", False),
    ("node.max_shared_channels_active = 2", True),
    ("node.max_shared_channels_active = 1", False),
    ("node.min_shared_channels_inactive = 1", True),
    ("node.max_shared_channels_inactive = 0", False),
    ("node.min_shared_capacity_active = 1217000", True),
    ("node.min_shared_capacity_active = 1217001", False),
    ("node.max_shared_capacity_active = 1217000", True),
    ("node.max_shared_capacity_active = 1216999", False),
    ("node.min_shared_capacity_inactive = 50000", True),
    ("node.max_shared_capacity_inactive = 49999", False),
    # 562,000 / 1,267,000 = 0.443567; active 512,000 / 1,217,000 = 0.420707; inactive 1.0
    ("node.min_shared_ratio = 0.4435", True),
    ("node.min_shared_ratio = 0.4436", False),
    ("node.max_shared_ratio = 0.4436", True),
    ("node.max_shared_ratio = 0.4435", False),
    ("node.min_shared_ratio_active = 0.4207", True),
    ("node.min_shared_ratio_active = 0.4208", False),
    ("node.max_shared_ratio_active = 0.4208", True),
    ("node.max_shared_ratio_active = 0.4207", False),
    ("node.min_shared_ratio_inactive = 1", True),
    ("node.max_shared_ratio_inactive = 0.99", False),
    # onchain: 10 sat/vB at 6 blocks (the default target), 20 at 2; targets below 2 are raised to 2
    ("onchain.min_fee_rate = 10", True),
    ("onchain.min_fee_rate = 10.5", False),
    ("onchain.max_fee_rate = 10", True),
    ("onchain.max_fee_rate = 9.99", False),
    ("onchain.conf_target = 2\nonchain.min_fee_rate = 20", True),
    ("onchain.conf_target = 1\nonchain.min_fee_rate = 20", True),
    ("onchain.conf_target = 2\nonchain.max_fee_rate = 19", False),
    ("onchain.synced_to_chain = true", True),
    ("onchain.synced_to_chain = false", False),
    # several namespaces: all must hold
    ("chan.min_ratio = 0.4\nnode.min_channels = 20\nonchain.max_fee_rate = 10", True),
    ("chan.min_ratio = 0.4\nnode.min_channels = 21\nonchain.max_fee_rate = 10", False),
]


@pytest.mark.parametrize(("criteria", "matches"), CASES)
def test_criterion(harness, criteria, matches):
    text = f"[t]\n{criteria}\nstrategy = static\nfee_ppm = 1\n"
    decision = harness.decide(text)
    assert decision.error is None
    assert decision.policy == ("t" if matches else None)
    explained = harness.decide(text, explain=True)
    assert explained.policy == decision.policy
    assert all(check.passed for check in explained.checks) is matches


def test_undefined_quantities_do_not_match_and_do_not_skip_the_channel(harness, ref):
    """Fixed quirk 7: 0/0 ratios fail their test; the channel still reaches later sections."""
    empty = ref.plain("700000x1x0", 0, 0)
    text = "[r]\nchan.min_ratio = 0\nstrategy = ignore\n\n[n]\nnode.min_shared_ratio_inactive = 0\nstrategy = ignore\n"
    text += "\n[fallback]\nstrategy = static\nfee_ppm = 7\n"
    inputs = ref.inputs(empty, peer_channels=(empty,))
    decision = harness.decide(text, inputs, explain=True)
    assert decision.policy == "fallback"
    failed = {c.key: c for c in decision.checks if not c.passed}
    assert failed["chan.min_ratio"].value is None
    assert failed["node.min_shared_ratio_inactive"].value is None


def test_no_forwards_makes_the_activity_ratios_undefined(harness, ref):
    inputs = ref.inputs(activity={ref.DAY: ActivityStats()})
    text = "[t]\nchan.activity_period = 1d\nchan.min_htlcs_ratio = 0\nstrategy = ignore\n"
    assert harness.decide(text, inputs).policy is None
    text = "[t]\nchan.activity_period = 1d\nchan.max_htlcs_in = 0\nchan.max_sats_out = 0\nstrategy = ignore\n"
    assert harness.decide(text, inputs).policy == "t"


def test_no_pending_htlc_means_no_expiry_match(harness, ref):
    inputs = ref.inputs(ref.channel(pending_htlcs=()))
    text = "[t]\nchan.max_next_pending_htlc_expiry = 1000000\nstrategy = ignore\n"
    assert harness.decide(text, inputs).policy is None


def test_unknown_peer_policy_fails_only_the_peer_policy_criteria(harness, ref):
    inputs = ref.inputs(peer_policy=None)
    assert harness.decide("[t]\nchan.min_fee_ppm = 0\nstrategy = ignore\n", inputs).policy is None
    assert harness.decide("[t]\nchan.disabled = false\nstrategy = ignore\n", inputs).policy is None
    assert harness.decide("[t]\nchan.min_capacity = 1\nstrategy = ignore\n", inputs).policy == "t"


def test_peer_disabled_matches_chan_disabled_true(harness, ref):
    """Fixed quirk 1: chan.disabled compares with the peer policy's flag instead of raising."""
    inputs = ref.inputs(peer_policy=ChannelPolicy(base_fee_msat=0, fee_ppm=0, disabled=True))
    assert harness.decide("[t]\nchan.min_ratio = 0\nchan.disabled = true\nstrategy = ignore\n", inputs).policy == "t"


def test_peer_unknown_to_the_graph_does_not_match_node_size(harness, ref):
    """charge-lnd 0.3.1 crashes the whole run; lnlens fails only node.*_channels / node.*_capacity."""
    inputs = ref.inputs(peer_node_channels=None, peer_node_capacity_msat=None)
    assert harness.decide("[t]\nnode.min_channels = 0\nstrategy = ignore\n", inputs).policy is None
    assert harness.decide("[t]\nnode.max_capacity = 10\nstrategy = ignore\n", inputs).policy is None
    assert harness.decide(f"[t]\nnode.id = {ref.PEER}\nstrategy = ignore\n", inputs).policy == "t"


def test_unknown_initiator_does_not_match_either_way(harness, ref):
    inputs = ref.inputs(ref.channel(initiator=None))
    assert harness.decide("[t]\nchan.initiator = true\nstrategy = ignore\n", inputs).policy is None
    assert harness.decide("[t]\nchan.initiator = false\nstrategy = ignore\n", inputs).policy is None


def test_unsynced_and_unknown_sync_state(harness, ref):
    text = "[t]\nonchain.synced_to_chain = false\nstrategy = ignore\n"
    assert harness.decide(text, env=ref.env(synced_to_chain=False)).policy == "t"
    assert harness.decide(text, env=ref.env(synced_to_chain=None)).policy is None


def test_missing_inputs_keep_the_channel_and_say_what_is_missing(harness, ref):
    decision = harness.decide("[t]\nchan.activity_period = 2d\nchan.min_htlcs_in = 0\nstrategy = ignore\n")
    assert decision.update is None and "172800" in decision.error
    decision = harness.decide("[t]\nonchain.conf_target = 12\nonchain.min_fee_rate = 1\nstrategy = ignore\n")
    assert decision.update is None and "12-block" in decision.error


def test_evaluation_short_circuits_unless_explaining(harness):
    # the 2-day window is not in the inputs: only reaching chan.min_htlcs_in would notice
    text = "[t]\nchan.min_ratio = 0.9\nchan.activity_period = 2d\nchan.min_htlcs_in = 0\nnode.min_channels = 1\n"
    text += "strategy = ignore\n"
    quick = harness.decide(text)
    assert (quick.policy, quick.error, quick.checks) == (None, None, ())
    explained = harness.decide(text, explain=True)
    assert (explained.policy, explained.error) == (None, None)
    keys = ["chan.min_ratio", "chan.activity_period", "chan.min_htlcs_in", "node.min_channels"]
    assert [c.key for c in explained.checks] == keys
    assert [c.passed for c in explained.checks] == [False, True, False, True]
    assert "172800 s" in explained.checks[2].note


def test_a_missing_input_before_any_failure_is_an_error(harness):
    text = "[t]\nchan.activity_period = 2d\nchan.min_htlcs_in = 0\nchan.min_ratio = 0.9\nstrategy = ignore\n"
    assert "172800" in harness.decide(text).error
    assert "172800" in harness.decide(text, explain=True).error


def test_namespaces_are_evaluated_in_order_of_first_appearance(harness):
    text = "[t]\nnode.min_channels = 99\nchan.min_capacity = 1\nnode.max_channels = 1\nstrategy = ignore\n"
    explained = harness.decide(text, explain=True)
    assert [c.key for c in explained.checks] == ["node.min_channels", "node.max_channels", "chan.min_capacity"]
    # evaluation stops at the first failing namespace test: the missing window in `chan` is never reached
    text = "[t]\nnode.min_channels = 99\nchan.activity_period = 2d\nchan.min_htlcs_in = 0\nstrategy = ignore\n"
    assert harness.decide(text).error is None


def test_explanation_names_value_threshold_and_unit(harness):
    decision = harness.decide("[t]\nchan.min_capacity = 2000000\nstrategy = ignore\n", explain=True)
    (check,) = decision.checks
    assert (check.value, check.threshold, check.unit, check.passed) == (1_000_000.0, 2_000_000, "sat", False)
    assert str(check) == "[t] chan.min_capacity: 1000000 >= 2000000 sat: FAIL"
    assert "policy: (none final: channel untouched)" in decision.explain()


def test_a_section_inheriting_a_different_peer_misses(harness, ref):
    inputs = ref.inputs(ref.channel(peer_id=ref.OTHER_PEER))
    assert harness.decide(f"[t]\nnode.id = {ref.PEER}\nstrategy = ignore\n", inputs).policy is None
    inputs = ref.inputs(replace(ref.channel(), private=True))
    assert harness.decide("[t]\nchan.private = yes\nstrategy = ignore\n", inputs).policy == "t"
