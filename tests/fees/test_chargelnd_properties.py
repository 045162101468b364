"""Hypothesis properties of the charge-lnd strategies and of selection."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lnlens_core.domain import NodeInfo
from lnlens_core.fees.chargelnd.strategies import Proportional
from lnlens_core.fees.strategy import FeeContext
from lnlens_core.testing import ALL_CAPABILITIES, make_channel

CTX = FeeContext(now=0.0, node=NodeInfo("02" + "11" * 32, "us", "regtest", 800_000, "t", "fake"),
                 capabilities=ALL_CAPABILITIES)  # fmt: skip
CAPACITY = 10**9


def ppm_at(strategy, local_msat):
    channel = replace(make_channel(), local_balance_msat=local_msat, remote_balance_msat=CAPACITY - local_msat)
    return strategy.propose(channel, CTX).update.fee_ppm


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, CAPACITY),
    st.integers(0, CAPACITY),
)
def test_proportional_is_monotone_in_the_ratio_and_bounded(lo, hi, local_a, local_b):
    lo, hi = sorted((lo, hi))
    strategy = Proportional(min_fee_ppm=lo, max_fee_ppm=hi)
    local_a, local_b = sorted((local_a, local_b))
    ppm_a, ppm_b = ppm_at(strategy, local_a), ppm_at(strategy, local_b)
    assert lo <= ppm_b <= ppm_a <= hi  # more local balance never raises the fee


@given(st.integers(-5000, 5000), st.integers(-5000, 5000), st.integers(0, CAPACITY))
def test_proportional_is_never_negative(lo, hi, local):
    assert ppm_at(Proportional(min_fee_ppm=lo, max_fee_ppm=hi), local) >= 0


SECTION = st.tuples(st.booleans(), st.booleans())  # (matches the channel, final)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the factory is stateless
@given(st.lists(SECTION, max_size=8), st.booleans())
def test_selection_is_the_first_final_match(harness_factory, sections, with_default):
    harness = harness_factory()
    lines = []
    for i, (matches, final) in enumerate(sections):
        lines.append(f"[s{i}]\nchan.min_capacity = {1 if matches else 10**9}\nmin_htlc_msat = {i + 1}")
        if final:
            lines.append(f"strategy = static\nfee_ppm = {1000 + i}")
    if with_default:
        lines.append("[default]\nstrategy = static\nfee_ppm = 999")
    decision = harness.decide("\n".join(lines) + "\n")
    finals = [i for i, (m, f) in enumerate(sections) if m and f]
    first = finals[0] if finals else None
    if first is not None:
        expected_policy, chain_end = f"s{first}", first
    else:
        expected_policy, chain_end = ("default" if with_default else None), len(sections)
    expected_chain = tuple(f"s{i}" for i, (m, f) in enumerate(sections[:chain_end]) if m and not f)
    assert decision.policy == expected_policy
    assert decision.chain == expected_chain
    if expected_policy is not None:
        matched = [i for i, (m, f) in enumerate(sections[: chain_end + 1]) if m]
        expected_ppm = 1000 + first if first is not None else 999
        expected_min_htlc = matched[-1] + 1 if matched else None
        assert decision.desired.fee_ppm == expected_ppm
        assert decision.desired.min_htlc_msat == expected_min_htlc


CRITERIA = st.sampled_from(
    [
        "chan.min_ratio = 0.3",
        "chan.max_ratio = 0.3",
        "chan.min_capacity = 1",
        "chan.max_age = 10",
        "node.min_channels = 10",
        "node.max_shared_ratio = 0.5",
        "onchain.min_fee_rate = 5",
        "chan.activity_period = 1d\nchan.min_htlcs_in = 2",
        "chan.activity_period = 2d\nchan.max_htlcs_out = 0",
        "onchain.conf_target = 3\nonchain.max_fee_rate = 50",
        "chan.disabled = false",
        "chan.max_next_pending_htlc_expiry = 60",
    ]
)
FINALS = st.sampled_from(
    [
        "",
        "strategy = static\nfee_ppm = 7",
        "strategy = ignore",
        "strategy = match_peer",
        "strategy = proportional\nmin_fee_ppm = 1\nmax_fee_ppm = 900",
        "strategy = disable",
    ]
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the factory is stateless
@given(st.lists(st.tuples(st.lists(CRITERIA, max_size=3, unique_by=lambda c: c.split(" = ")[0]), FINALS), max_size=6))
def test_explaining_never_changes_the_decision(harness_factory, ref, sections):
    """Some criteria need inputs the reference channel lacks (a 2-day window, a 3-block estimate)."""
    harness = harness_factory()
    text = "\n".join(f"[s{i}]\n" + "\n".join(crit) + f"\n{final}\n" for i, (crit, final) in enumerate(sections))
    quick, slow = harness.decide(text), harness.decide(text, explain=True)
    assert (quick.policy, quick.chain, quick.strategy, quick.update, quick.error) == (
        slow.policy, slow.chain, slow.strategy, slow.update, slow.error,
    )  # fmt: skip
    assert quick.checks == ()
