"""Measured outcomes of changes and the automatic-rollback rule, on synthetic compound-Poisson revenue."""

from __future__ import annotations

import numpy as np

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.fees.outcomes import RevenueIndex, journal_outcomes, judge, measure, policy_aggregates

C = ChannelId.parse("800000x1x0")
OTHER = ChannelId.parse("800001x1x0")
T = 1_800_000_000.0
W = 86_400.0


CHANNELS = [ChannelId.parse(f"800002x{i}x0") for i in range(6)]


def drifting_node(rng, *, days=9, rate=40, factor_after=1.0):
    """C and six other channels over ``days`` days ending one day after T, each with its own
    log-normal demand walk (σ 0.25 a day) and a common daily factor; C's fees × ``factor_after`` after T."""
    events = []
    common = np.exp(rng.normal(0, 0.3, days))
    for cid in [C, *CHANNELS]:
        walk = np.exp(np.cumsum(rng.normal(0, 0.25, days)))
        for d in range(days):
            start = T + (d - days + 1) * W
            scale = factor_after if cid == C and start >= T else 1.0
            n = rng.poisson(rate * walk[d] * common[d])
            times = rng.uniform(start, start + W, n)
            fees = np.maximum(1, (rng.lognormal(7, 1, n) * scale).astype(int))
            events += [HtlcEvent(OTHER, 100_000 + int(f), ForwardStatus.SETTLED, float(t), out_channel=cid,
                                 out_msat=100_000, fee_msat=int(f))
                       for t, f in zip(times, fees, strict=True)]  # fmt: skip
    return RevenueIndex(events)


def verdict(index, *, alone=True, **kw):
    changes = {C: [T]} if alone else {c: [T] for c in [C, *CHANNELS]}
    return judge(index, C, T, W, change_times=changes, drop_share=0.3, min_forwards=10, alpha=0.05, **kw)


def test_demand_drift_alone_rarely_triggers_a_rollback_and_a_real_drop_almost_always_does():
    rng = np.random.default_rng(2024)
    placebo = [drifting_node(rng) for _ in range(60)]
    for alone in (True, False):  # the other channels as control / the same hours of previous days
        fired = sum(verdict(i, alone=alone).verdict is not None for i in placebo)
        assert fired / len(placebo) <= 0.05, f"{fired} false rollbacks in {len(placebo)} (alone={alone})"
    naive = sum(verdict(i, controlled=False).verdict is not None for i in placebo)
    assert naive / len(placebo) >= 0.1, "the plain before/after test is fooled by drift (why there is a control)"
    dropped = [drifting_node(rng, factor_after=0.1) for _ in range(30)]
    caught = sum(verdict(i).verdict is not None for i in dropped)
    assert caught / len(dropped) >= 0.8, f"only {caught} of {len(dropped)} bad changes caught"
    j = verdict(dropped[0])
    assert j.control == "channels" and j.placebos > 0 and "unchanged channel(s)" in (j.verdict or "")


def test_rule_needs_a_minimum_sample():
    rng = np.random.default_rng(1)
    quiet = drifting_node(rng, rate=3, factor_after=0.0)  # everything gone after, but too few forwards before
    j = verdict(quiet)
    assert j.before_forwards < 10 and j.verdict is None


def test_measure_bands_windows_and_aggregates():
    settled = ForwardStatus.SETTLED
    events = [HtlcEvent(OTHER, 10_100, settled, T - 10, out_channel=C, out_msat=10_000, fee_msat=100),
              HtlcEvent(OTHER, 10_300, settled, T + 10, out_channel=C, out_msat=10_000, fee_msat=300),
              HtlcEvent(OTHER, 10_300, ForwardStatus.LOCAL_FAILED, T + 20, out_channel=C, out_msat=10_000),
              HtlcEvent(C, 10_300, settled, T + 30, out_channel=OTHER, out_msat=10_000, fee_msat=300)]  # fmt: skip
    o = measure(7, C, "p", T, events=events, window_s=W, now=T + 2 * W, previous_change_time=T - 3600)
    assert o.window_s == 3600, "the before window never straddles the previous change"
    assert (o.before.forwards, o.after.forwards, o.revenue_delta_msat) == (1, 1, 200)
    assert round(o.revenue_band_msat) == round(1.959964 * (100**2 + 300**2) ** 0.5)
    rows = [{"id": 1, "channel_id": str(C), "state": "verified", "applied_time": T, "policy": "p"},
            {"id": 2, "channel_id": str(C), "state": "failed", "applied_time": None, "policy": "p"},
            {"id": 3, "channel_id": str(C), "state": "verified", "applied_time": T + 2 * W, "policy": "q"}]  # fmt: skip
    outcomes = journal_outcomes(rows, events, window_s=W, now=T + 2 * W)
    assert [x.journal_id for x in outcomes] == [1, 3] and outcomes[0].complete and not outcomes[1].complete
    agg = policy_aggregates(outcomes)
    assert agg == {"p": {"changes": 1, "revenue_delta_msat": 200, "volume_delta_msat": 0,
                         "revenue_band_msat": round(outcomes[0].revenue_band_msat),
                         "volume_band_msat": round(outcomes[0].volume_band_msat)}}  # fmt: skip


def test_a_rollback_is_its_own_outcome_and_the_losing_policy_keeps_its_loss():
    settled = ForwardStatus.SETTLED

    def fwd(t, fee):
        return HtlcEvent(OTHER, 10_000 + fee, settled, t, out_channel=C, out_msat=10_000, fee_msat=fee)

    # policy p cut revenue from 1,000 to 100 msat an hour; the operator reverted it after 2 h (not a full window)
    events = [fwd(T - 3600 * h + 5, 1000) for h in range(1, 4)]
    events += [fwd(T + 3600 * h + 5, 100) for h in range(2)] + [fwd(T + 7200 + 3600 * h + 5, 1000) for h in range(4)]
    rows = [{"id": 1, "channel_id": str(C), "state": "rolled_back", "applied_time": T, "policy": "p"},
            {"id": 2, "channel_id": str(C), "state": "verified", "applied_time": T + 7200, "policy": "p",
             "rollback_of": 1}]  # fmt: skip
    change, revert = journal_outcomes(rows, events, window_s=3 * 3600, now=T + 10 * 3600)
    assert change.window_s == 7200, "the change's after window stops where the rollback starts"
    assert (change.before.revenue_msat, change.after.revenue_msat) == (2000, 200)
    assert revert.rollback_of == 1 and revert.revenue_delta_msat == 2000 - 200
    agg = policy_aggregates([change, revert])
    assert agg["p"]["revenue_delta_msat"] == -1800 and agg["p"]["changes"] == 1
    assert agg["(rollback)"]["revenue_delta_msat"] == 1800


def steady_channel(rng, *, per_day=60, days=8, after_share=1.0, fee=1000):
    """C alone (every channel changed: no control), with steady demand for ``days`` days ending one
    window after T, 1,000 msat a forward; after T a share ``after_share`` of the forwards remain,
    each paying ``fee`` msat."""
    events = []
    for d in range(days):
        start = T + (d - days + 1) * W
        after = start >= T
        n = rng.poisson(per_day * (after_share if after else 1.0))
        for t in rng.uniform(start, start + W, n):
            events.append(HtlcEvent(OTHER, len(events), ForwardStatus.SETTLED, float(t), out_channel=C,
                                    out_msat=1_000_000, fee_msat=fee if after else 1000))  # fmt: skip
    return RevenueIndex(events)


def test_a_cut_is_judged_against_what_the_old_fee_could_have_earned():
    from lnlens_core.domain import ChannelPolicy

    old, new = ChannelPolicy(base_fee_msat=0, fee_ppm=1000), ChannelPolicy(base_fee_msat=0, fee_ppm=980)
    # demand fell by 60 % just as the fee was cut by 2 %: the cut cannot have lost more than 2 %
    index = steady_channel(np.random.default_rng(3), after_share=0.4, fee=980)
    kw = {"change_times": {C: [T]}, "drop_share": 0.3, "min_forwards": 10, "alpha": 0.05}
    as_increase = judge(index, C, T, W, **kw)
    assert as_increase.verdict is not None, "without the policies the fall looks like the change's doing"
    j = judge(index, C, T, W, old_policy=old, new_policy=new, **kw)
    assert j.verdict is None and j.cut_bound_msat == j.after_forwards * 1000 == j.expected_msat
    # a cut to a tenth can lose 90 %: the bound does not shield it
    gone = steady_channel(np.random.default_rng(3), after_share=1.0, fee=100)
    deep = judge(gone, C, T, W, old_policy=old, new_policy=ChannelPolicy(base_fee_msat=0, fee_ppm=100), **kw)
    assert deep.verdict is not None and deep.revenue_after_msat < 0.2 * deep.cut_bound_msat


def test_is_cut():
    from lnlens_core.domain import ChannelPolicy
    from lnlens_core.fees.outcomes import is_cut

    p = ChannelPolicy(base_fee_msat=1000, fee_ppm=500, max_htlc_msat=10**9, cltv_delta=80)
    assert is_cut(p, p.__class__(base_fee_msat=1000, fee_ppm=490, max_htlc_msat=10**9, cltv_delta=80))
    assert is_cut(p, p.__class__(base_fee_msat=0, fee_ppm=500, max_htlc_msat=None, cltv_delta=40))
    assert not is_cut(p, p.__class__(base_fee_msat=1001, fee_ppm=100, max_htlc_msat=10**9, cltv_delta=80))
    assert not is_cut(p, p.__class__(base_fee_msat=0, fee_ppm=100, max_htlc_msat=10**6, cltv_delta=80))
    assert not is_cut(p, p.__class__(base_fee_msat=0, fee_ppm=100, max_htlc_msat=10**9, cltv_delta=144))
    assert not is_cut(p, p.__class__(base_fee_msat=0, fee_ppm=100, max_htlc_msat=10**9, disabled=True))


def test_a_node_wide_change_with_few_days_of_history_is_judged_with_a_wider_band():
    rng = np.random.default_rng(78)
    # every channel changed, six days of data: the control is the channel's own previous days, three of them
    placebo = [drifting_node(rng, days=6) for _ in range(60)]
    fired = sum(verdict(i, alone=False).verdict is not None for i in placebo)
    assert fired / len(placebo) <= 0.05, f"{fired} false rollbacks in {len(placebo)}"
    gone = [drifting_node(rng, days=6, factor_after=0.0) for _ in range(20)]
    caught = [verdict(i, alone=False) for i in gone]
    assert sum(j.verdict is not None for j in caught) >= 16, "revenue that vanishes everywhere is still caught"
    assert caught[0].control == "history" and caught[0].critical > 2.3, "Student's t on 3 days (2 degrees of freedom)"


def test_without_any_control_a_change_is_not_judged():
    index = steady_channel(np.random.default_rng(5), days=2, after_share=0.0)  # no history, no other channel
    j = judge(index, C, T, W, change_times={C: [T]}, drop_share=0.3, min_forwards=10, alpha=0.05)
    assert j.control == "none" and j.verdict is None and "no unchanged channel" in j.note
    assert judge(index, C, T, W, change_times={C: [T]}, drop_share=0.3, min_forwards=10, alpha=0.05,
                 controlled=False).verdict is not None, "the plain before/after test would have reverted it"
