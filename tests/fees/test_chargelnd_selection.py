"""D.2: policy selection — file order, non-final accumulation, first final match, [default], [DEFAULT]."""

from __future__ import annotations

import pytest

from lnlens_core.domain import FeeUpdate
from lnlens_core.errors import ConfigError


def test_first_final_match_wins_in_file_order(harness):
    text = """
[low]
chan.max_ratio = 0.5
strategy = static
fee_ppm = 10

[all]
strategy = static
fee_ppm = 20
"""
    decision = harness.decide(text)
    assert (decision.policy, decision.strategy, decision.update) == ("low", "static", FeeUpdate(fee_ppm=10))


def test_position_of_default_is_irrelevant(harness):
    text = """
[default]
strategy = static
fee_ppm = 1

[never]
chan.min_ratio = 0.9
strategy = static
fee_ppm = 2

[always]
chan.min_ratio = 0.1
strategy = static
fee_ppm = 3
"""
    assert harness.decide(text).policy == "always"
    assert harness.decide(text.replace("0.1", "0.95")).policy == "default"


def test_non_final_sections_accumulate_and_the_final_one_overrides(harness):
    text = """
[base]
base_fee_msat = 0
time_lock_delta = 40
fee_ppm = 999

[unmatched]
chan.min_ratio = 0.99
min_htlc_msat = 5

[p]
chan.max_ratio = 0.5
strategy = static
fee_ppm = 300
"""
    decision = harness.decide(text)
    assert decision.policy == "p" and decision.chain == ("base",)
    assert decision.update == FeeUpdate(base_fee_msat=0, fee_ppm=300, cltv_delta=40)
    sources = harness.decide(text, explain=True).sources
    assert (sources["fee_ppm"], sources["base_fee_msat"], sources["time_lock_delta"]) == ("p", "base", "base")
    assert "min_htlc_msat" not in sources  # [unmatched] did not match


def test_default_overlays_earlier_non_final_values(harness):
    text = """
[nonfinal]
fee_ppm = 10
base_fee_msat = 5

[default]
strategy = static
fee_ppm = 30
"""
    decision = harness.decide(text)
    assert (decision.policy, decision.chain) == ("default", ("nonfinal",))
    assert decision.update == FeeUpdate(base_fee_msat=5, fee_ppm=30)


def test_nothing_final_leaves_the_channel_untouched(harness):
    text = "[nonfinal]\nfee_ppm = 10\n\n[default]\nbase_fee_msat = 3\n"
    decision = harness.decide(text)
    assert (decision.policy, decision.strategy, decision.update) == (None, None, None)
    assert decision.chain == ("nonfinal", "default")
    assert harness.decide("[x]\nchan.min_ratio = 0.9\nstrategy = static\nfee_ppm = 1\n").policy is None


def test_an_empty_strategy_is_not_final(harness):
    text = "[a]\nstrategy =\nbase_fee_msat = 1\n\n[b]\nstrategy = static\nfee_ppm = 2\n"
    decision = harness.decide(text)
    assert (decision.policy, decision.chain) == ("b", ("a",))
    assert decision.update == FeeUpdate(base_fee_msat=1, fee_ppm=2)


def test_upper_case_DEFAULT_keys_are_inherited_by_every_section(harness):
    text = "[DEFAULT]\nbase_fee_msat = 7\n\n[a]\nstrategy = static\nfee_ppm = 5\n"
    assert harness.decide(text).update == FeeUpdate(base_fee_msat=7, fee_ppm=5)


def test_a_strategy_in_DEFAULT_makes_every_section_final(harness):
    text = "[DEFAULT]\nstrategy = ignore\n\n[n]\nchan.max_ratio = 0.1\n\n[m]\nmin_htlc_msat = 9\n"
    decision = harness.decide(text)
    assert (decision.policy, decision.strategy, decision.update) == ("m", "ignore", None)


def test_section_names_are_case_sensitive(harness):
    """[Default] is an ordinary policy evaluated in file order, not charge-lnd's fallback."""
    text = "[Default]\nstrategy = static\nfee_ppm = 11\n\n[x]\nstrategy = static\nfee_ppm = 12\n"
    assert harness.decide(text).policy == "Default"
    loaded = harness.load(text)
    assert loaded.default is None and [p.name for p in loaded.policies] == ["Default", "x"]


def test_keys_are_case_insensitive(harness):
    text = "[x]\nChan.Min_Ratio = 0.1\nSTRATEGY = static\nFee_PPM = 12\n"
    decision = harness.decide(text)
    assert decision.policy == "x" and decision.update == FeeUpdate(fee_ppm=12)


def test_section_without_criteria_matches_every_channel(harness, ref):
    other = ref.plain("1x1x1", 1, 2)
    decision = harness.decide("[any]\nstrategy = static\nfee_ppm = 3\n", ref.inputs(other, peer_channels=()))
    assert decision.policy == "any"


def test_extended_interpolation(harness):
    text = """
[DEFAULT]
max_fee_ppm = 900

[vars]
min_fee_ppm = 100

[p]
strategy = proportional
min_fee_ppm = ${vars:min_fee_ppm}
base_fee_msat = ${max_fee_ppm}
"""
    decision = harness.decide(text)
    # ratio 412000/1017000 = 0.405113 -> trunc(100 + 0.594887 * 800) = trunc(575.91) = 575
    assert (decision.policy, decision.chain, decision.strategy) == ("p", ("vars",), "proportional")
    assert decision.update == FeeUpdate(base_fee_msat=900, fee_ppm=575)


def test_required_inputs_name_only_what_the_file_reads(harness, strategies):
    assert harness.load("[a]\nstrategy = static\nfee_ppm = 1\n").required_inputs() == frozenset()
    text = """
[a]
chan.min_fee_ppm = 1
node.min_channels = 2
onchain.synced_to_chain = true
strategy = ignore

[b]
chan.activity_period = 1d
chan.min_htlcs_in = 1
node.max_shared_ratio = 0.5
strategy = cost

[c]
strategy = onchain_fee
"""
    assert harness.load(text).required_inputs() == {
        "peer_policy", "peer_node_channels", "synced_to_chain", "activity", "peer_channels", "funding_fee_msat",
        "onchain_fee_rates",
    }  # fmt: skip
    sum_peer = "[p]\nstrategy = proportional\nmin_fee_ppm = 1\nmax_fee_ppm = 2\nsum_peer_chans = yes\n"
    assert harness.load(sum_peer).required_inputs() == {"peer_channels"}
    harness.write("[m]\nstrategy = match_peer\n", "inner.ini")
    assert harness.load("[o]\nstrategy = use_config\nconfig_file = inner.ini\n").required_inputs() == {"peer_policy"}

    class Custom:
        name = "custom"

        def propose(self, channel, ctx):
            return None

    harness.strategies = {**strategies, "custom": Custom}
    assert harness.load("[x]\nstrategy = custom\n").required_inputs() == {
        "peer_policy", "peer_channels", "funding_fee_msat", "onchain_fee_rates",
    }  # fmt: skip


VARIABLES = """
[DEFAULT]
cheap_ppm = 10
rich = 0.8
spread = ${cheap_ppm}0

[levels]
high_ppm = 700

[rich]
chan.min_ratio = ${rich}
strategy = static
fee_ppm = ${cheap_ppm}

[p]
strategy = proportional
min_fee_ppm = ${spread}
max_fee_ppm = ${levels:high_ppm}
"""


def test_variables_that_are_only_interpolation_sources_are_not_policy_keys(harness):
    """[DEFAULT] variables and helper-section keys used as ${...} are accepted, as charge-lnd accepts them."""
    decision = harness.decide(VARIABLES)
    # [levels] matches every channel and is non-final; ratio 0.405113 -> trunc(100 + 0.594887 * 600) = 456
    assert (decision.policy, decision.chain) == ("p", ("levels",))
    assert decision.update == FeeUpdate(fee_ppm=456)
    assert "cheap_ppm" not in decision.params and "high_ppm" not in decision.params


def test_variables_in_a_use_config_file(harness):
    harness.write(VARIABLES, "inner.ini")
    decision = harness.decide("[DEFAULT]\nname = inner.ini\n\n[o]\nstrategy = use_config\nconfig_file = ${name}\n")
    assert decision.update == FeeUpdate(fee_ppm=456)


def test_a_property_used_as_a_variable_under_a_strategy_that_does_not_read_it(harness):
    decision = harness.decide("[a]\nstrategy = static\nmax_fee_ppm = 70\nfee_ppm = ${max_fee_ppm}\n")
    assert decision.update == FeeUpdate(fee_ppm=70)


def test_a_typo_in_a_policy_key_is_still_an_error_beside_variables(harness):
    text = "[DEFAULT]\ncheap_ppm = 10\nunused = 3\n\n[a]\nstrategy = static\nfee_pmm = ${cheap_ppm}\n"
    with pytest.raises(ConfigError) as err:
        harness.load(text)
    path = harness.dir / "charge.ini"
    assert err.value.problems == (
        f"{path}:7 [a] fee_pmm: unknown key (did you mean fee_ppm?)",
        f"{path}:3 [DEFAULT] unused: unknown key",
    )
