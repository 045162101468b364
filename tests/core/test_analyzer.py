"""Analyzer formulas at their edges, and the recommendation rules that must always hold."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnlens_core.domain import ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent, RecommendationKind
from lnlens_core.opportunities.analyzer import MONTH_S, analyze, project_monthly, urgency
from lnlens_core.opportunities.flows import Flow, FlowCounter, PolicyBook
from lnlens_core.opportunities.params import AnalyzerParams
from lnlens_core.testing import make_channel

K = RecommendationKind
P = AnalyzerParams()
A, B, C = (ChannelId.parse(s) for s in ("800000x1x0", "800001x1x0", "800002x1x0"))
NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (Flow(), (0, {"revenue": 0.0, "frequency": 0.0, "rate": 0.0})),
        # saturation: 10,000 sats missed, 10 failures, every decided forward failed
        (Flow(attempts=10, failed_liquidity=10, missed_revenue_msat=10_000_000),
         (100, {"revenue": 40.0, "frequency": 30.0, "rate": 30.0})),
        # beyond saturation stays at the caps
        (Flow(attempts=50, failed_fee=50, missed_revenue_msat=99_000_000),
         (100, {"revenue": 40.0, "frequency": 30.0, "rate": 30.0})),
        # half-way points: 5,000 sats, 5 failures out of 10 decided (downstream ones do not count)
        (Flow(attempts=14, settled=5, failed_liquidity=5, failed_downstream=4, missed_revenue_msat=5_000_000),
         (50, {"revenue": 20.0, "frequency": 15.0, "rate": 15.0})),
    ],
)  # fmt: skip
def test_urgency_edges(flow, expected):
    assert urgency(flow, P) == expected


def test_urgency_weights_are_configurable():
    params = AnalyzerParams(revenue_weight=100, frequency_weight=0, rate_weight=0, revenue_saturation_msat=1_000)
    assert urgency(Flow(attempts=1, failed_fee=1, missed_revenue_msat=500), params)[0] == 50


def test_projection_scales_and_widens_for_short_windows():
    day = 86_400
    point, low, high = project_monthly(1_000_000, 100, day, P)
    assert point == 30_000_000 and low < point < high
    assert (low, high) == (round((100 - 1.645 * 10) * 10_000 * 30), round((100 + 1.645 * 10) * 10_000 * 30))
    # one hour observed: the point extrapolates, the high end is as if a full day had been seen
    p1, l1, h1 = project_monthly(1_000_000, 100, 3_600, P)
    assert p1 == 1_000_000 * MONTH_S // 3_600 and l1 == low and h1 == round(high * 24)
    assert project_monthly(0, 0, day, P) == (0, 0, 0)


GAP = 20  # seconds between the test's forwards: more than a retry takes, so each is its own payment


def failed(i, out, reason, *, in_ch=A, out_msat=1_000_000, in_msat=1_001_100, t=NOW - 5000, gap=GAP):
    return HtlcEvent(in_ch, in_msat, ForwardStatus.LOCAL_FAILED, t + gap * i, in_htlc_id=i, out_channel=out,
                     out_msat=out_msat, failure_reason=reason, resolved_time=t + gap * i + 1)  # fmt: skip


def settled(i, out, *, in_ch=A, out_msat=1_000_000, t=NOW - 5000, gap=GAP):
    return HtlcEvent(in_ch, out_msat + 1100, ForwardStatus.SETTLED, t + gap * i, in_htlc_id=i, out_channel=out,
                     out_msat=out_msat, fee_msat=1100, resolved_time=t + gap * i + 1)  # fmt: skip


def run(events, channels, *, book=None, params=P):
    book = book or PolicyBook()
    if not book._times:
        book.observe_channels(channels, 0.0)
    counter = FlowCounter(book, since=NOW - 86_400, until=NOW, propagation_s=params.propagation_s)
    counter.add(events)
    return analyze(counter.stats(), channels, params)


def kinds(opps, cid):
    return [r.kind for o in opps if o.channel_id == cid for r in o.recommendations]


def test_missed_revenue_uses_the_policy_in_force_including_cln_style_missing_out_msat():
    channels = [make_channel(A, local_ratio=0.9), make_channel(B, local_ratio=0.05, fee_ppm=100, base_fee_msat=1000)]
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(5)]
    events += [failed(10 + i, B, FailureReason.INSUFFICIENT_BALANCE, out_msat=None) for i in range(5)]
    (opp,), _ = run(events, channels)
    # 1000 base + 1,000,000 * 100 / 1e6 = 1100 msat each; the inverted out amount gives the same fee
    assert opp.missed_revenue_msat == 10 * 1100 and opp.missed_volume_msat == 10 * 1_000_000
    assert opp.failed_liquidity == 10 and opp.cause == "liquidity"


def test_inbound_fee_discount_is_part_of_the_missed_fee():
    policy_a = ChannelPolicy(0, 0, inbound_base_fee_msat=-100, inbound_fee_ppm=-50)
    channels = [make_channel(A, local_ratio=0.9), make_channel(B, local_ratio=0.05, fee_ppm=100, base_fee_msat=1000)]
    book = PolicyBook()
    book.observe(A, policy_a, 0.0)
    book.observe(B, channels[1].local_policy, 0.0)
    (opp,), _ = run([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(4)], channels, book=book)
    inbound = -100 + (1_000_000 + 1100) * -50 // 1_000_000
    assert opp.missed_revenue_msat == 4 * (1100 + inbound)


def test_depleted_channel_gets_a_rebalance_from_the_channel_that_fed_it():
    channels = [
        make_channel(A, local_ratio=0.7),
        make_channel(B, local_ratio=0.05, capacity_msat=4_000_000_000),
        make_channel(C, local_ratio=0.95),
    ]
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE, in_ch=A) for i in range(8)]
    opps, pairs = run(events, channels, params=AnalyzerParams(min_missed_msat=0))
    (rec,) = next(o for o in opps if o.channel_id == B).recommendations
    assert rec.kind is K.REBALANCE_OUTBOUND and rec.target_channel == B and rec.source_channel == A
    # B needs 50% - 5% of 4,000,000 sat; A can spare 70% - 50% of 2,000,000 sat; the failed demand
    # (8 x 1,000 sat in one day) needs 56,000 sat for a week: the smallest of the three.
    assert rec.amount_msat == min(1_800_000_000, 400_000_000, 8 * 1_000_000 * 7) == rec.evidence["demand_msat"]
    assert "move 56,000 sats into it from 800000x1x0" in rec.reason
    assert [(p.in_channel, p.channel_id) for p in pairs] == [(A, B)]


def test_htlcs_that_fit_after_a_refill_get_a_refill_sized_to_carry_them():
    # The case: B is 70 % local of 2,000,000 sat (1,400,000 sat, 1,380,000 spendable) and
    # HTLCs of spendable + 100,000 sat fail there. A refill of 100,000 sat carries every one of them.
    spendable = 1_380_000_000
    channels = [make_channel(A, local_ratio=0.9),
                make_channel(B, local_ratio=0.7, local_reserve_msat=20_000_000, spendable_msat=spendable)]
    big = spendable + 100_000_000
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE, out_msat=big - i * 1_000_000, in_msat=big + 10_000_000)
              for i in range(5)]  # fmt: skip
    opps, _ = run(events, channels)
    (rec,) = next(o for o in opps if o.channel_id == B).recommendations
    assert rec.kind is K.REBALANCE_OUTBOUND and rec.target_channel == B and rec.source_channel == A
    assert rec.amount_msat == 100_000_000 == rec.evidence["carry_refill_msat"]  # the largest failed HTLC now fits
    assert rec.evidence["largest_failed_msat"] == big
    assert "fits the channel once 100,000 sats more are on our side" in rec.reason


def test_without_spendable_the_refill_counts_the_reserve_and_commitment_fee():
    # LND reports no spendable balance: what can leave is the local balance less the reserve and commit fee.
    channels = [make_channel(A, local_ratio=0.9),
                make_channel(B, local_ratio=0.6, local_reserve_msat=20_000_000, commit_fee_msat=3_000_000)]
    out = 1_200_000_000 + 50_000_000 - 23_000_000  # 50,000 sat more than the 1,177,000 sat that can leave
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE, out_msat=out, in_msat=out + 10_000_000)
              for i in range(3)]  # fmt: skip
    (rec,) = next(o for o in run(events, channels)[0] if o.channel_id == B).recommendations
    assert rec.kind is K.REBALANCE_OUTBOUND and rec.amount_msat == 50_000_000 and rec.source_channel == A


def test_the_refill_comes_only_from_a_channel_that_can_spare_it():
    spendable = 1_380_000_000
    # A can spare 10 % of 2,000,000 sat = 200,000 sat; C only 2 % = 40,000 sat; the HTLC needs 150,000 sat more.
    channels = [make_channel(A, local_ratio=0.6), make_channel(C, local_ratio=0.52),
                make_channel(B, local_ratio=0.7, spendable_msat=spendable)]  # fmt: skip
    out = spendable + 150_000_000
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE, in_ch=C, out_msat=out, in_msat=out + 10_000_000)
              for i in range(4)]  # fmt: skip
    (rec,) = next(o for o in run(events, channels)[0] if o.channel_id == B).recommendations
    # C fed the failures but cannot spare 150,000 sat: A, which can, is the source.
    assert rec.source_channel == A and rec.amount_msat == 150_000_000
    # Nobody can spare it: the recommendation says so and names the amount.
    poor = [make_channel(A, local_ratio=0.52), make_channel(C, local_ratio=0.52), channels[2]]
    (rec,) = next(o for o in run(events, poor)[0] if o.channel_id == B).recommendations
    assert rec.source_channel is None and rec.amount_msat == 150_000_000
    assert "none of our channels can spare 150,000 sats" in rec.reason


def test_htlcs_larger_than_the_channel_could_ever_carry_mean_capacity():
    # 2,000,000 sat with a 20,000 sat reserve carries at most 1,980,000 sat: HTLCs of 2,500,000 sat never fit.
    channels = [make_channel(A, local_ratio=0.5), make_channel(B, local_ratio=0.7, local_reserve_msat=20_000_000)]
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE, out_msat=2_500_000_000, in_msat=2_510_000_000)
              for i in range(5)]  # fmt: skip
    opps, _ = run(events, channels)
    (rec,) = next(o for o in opps if o.channel_id == B).recommendations
    assert rec.kind is K.INCREASE_CAPACITY
    assert rec.evidence["carry_limit_msat"] == 1_980_000_000 and rec.amount_msat == 2_520_000_000
    # A depleted channel with such HTLCs needs both: capacity for them, and a refill for its share.
    low = [channels[0], make_channel(B, local_ratio=0.1, local_reserve_msat=20_000_000)]
    assert kinds(run(events, low)[0], B) == [K.INCREASE_CAPACITY, K.REBALANCE_OUTBOUND]


def test_a_channel_that_can_carry_the_failed_htlcs_now_gets_no_refill():
    # 70 % local and the 1,000 sat HTLCs that failed would pass now: neither a refill nor capacity helps.
    channels = [make_channel(A, local_ratio=0.5), make_channel(B, local_ratio=0.7)]
    opps, _ = run([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(5)], channels)
    assert kinds(opps, B) == []


@settings(max_examples=60, deadline=None)
@given(
    n_liquidity=st.integers(0, 40),
    n_fee=st.integers(0, 40),
    ratio=st.floats(0.0, 1.0),
    fee_ppm=st.integers(0, 5000),
)
def test_liquidity_failures_never_produce_lower_fees(n_liquidity, n_fee, ratio, fee_ppm):
    channels = [make_channel(A, local_ratio=0.6), make_channel(B, local_ratio=ratio, fee_ppm=fee_ppm)]
    events = [failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(n_liquidity)]
    opps, _ = run(events, channels)
    assert K.LOWER_FEES not in kinds(opps, B)
    # and with fee failures too, lower_fees needs them to outnumber the liquidity failures
    events += [failed(100 + i, B, FailureReason.FEE_INSUFFICIENT, in_msat=1_000_010) for i in range(n_fee)]
    opps, _ = run(events, channels)
    if K.LOWER_FEES in kinds(opps, B):
        assert n_fee >= n_liquidity and n_fee >= P.min_failures


def counted(events, channels):
    book = PolicyBook()
    book.observe_channels(channels, 0.0)
    counter = FlowCounter(book, since=NOW - 86_400, until=NOW)
    counter.add(events)
    return counter.stats().out


def test_a_payment_refused_on_two_channels_counts_once_and_not_at_all_once_we_carry_it():
    channels = [make_channel(A), make_channel(B, fee_ppm=100, base_fee_msat=1000), make_channel(C, fee_ppm=100,
                base_fee_msat=1000)]  # fmt: skip
    liquidity = FailureReason.INSUFFICIENT_BALANCE
    # One payment: refused on B, retried 0.4 s later on C (the same peer's other channel), refused again.
    retried = [failed(0, B, liquidity, gap=0.4), failed(1, C, liquidity, gap=0.4)]
    out = counted(retried, channels)
    assert out[B].missed_revenue_msat == 1100 and out[C].missed_revenue_msat == 0
    assert out[B].missed_revenue_htlc_msat == out[C].missed_revenue_htlc_msat == 1100
    assert out[B].failed_liquidity == out[C].failed_liquidity == 1
    # ... and then carried by C: nothing was lost, 1,100 msat were refused and recovered.
    out = counted([*retried, settled(2, C, gap=0.4)], channels)
    assert out[B].missed_revenue_msat == out[B].missed_liquidity_msat == 0 and out[B].missed_volume_msat > 0
    assert out[B].missed_recovered_msat == 1100 and out[C].revenue_msat == 1100
    # A different amount, another incoming channel, or a later time is another payment.
    others = [failed(1, C, liquidity, gap=0.4, in_msat=1_200_000), failed(1, C, liquidity, gap=0.4, in_ch=C),
              failed(1, C, liquidity, gap=30)]  # fmt: skip
    for other in others:
        out = counted([failed(0, B, liquidity), other], channels)
        assert out[B].missed_revenue_msat == 1100 and out[C].missed_revenue_msat > 0


def test_a_payment_hash_decides_over_the_heuristic():
    channels = [make_channel(A), make_channel(B, fee_ppm=100, base_fee_msat=1000)]
    liquidity = FailureReason.INSUFFICIENT_BALANCE
    one, two = failed(0, B, liquidity, gap=0.4), failed(1, B, liquidity, gap=0.4)
    out = counted([replace(one, payment_hash="aa" * 32), replace(two, payment_hash="bb" * 32)], channels)
    assert out[B].missed_revenue_msat == 2 * 1100  # look alike, but two payments
    late = settled(2, B, gap=60)
    out = counted([replace(one, payment_hash="aa" * 32), replace(late, payment_hash="aa" * 32)], channels)
    assert out[B].missed_revenue_msat == 0 and out[B].missed_recovered_msat == 1100  # a minute later, same payment


def test_fee_failures_during_propagation_do_not_lower_fees_but_later_ones_do():
    old, new = ChannelPolicy(1000, 100), ChannelPolicy(1000, 2000)
    channels = [make_channel(A, local_ratio=0.5), make_channel(B, local_ratio=0.5, fee_ppm=2000)]
    book = PolicyBook()
    book.observe(A, channels[0].local_policy, 0.0)
    book.observe(B, old, 0.0)
    changed = NOW - 20_000
    book.observe(B, new, changed)
    # senders offer 100 ppm + base, as the old policy asked
    stale = [failed(i, B, FailureReason.FEE_INSUFFICIENT, t=changed + 60) for i in range(10)]
    opps, _ = run(stale, channels, book=book)
    assert K.LOWER_FEES not in kinds(opps, B)
    late = [failed(100 + i, B, FailureReason.FEE_INSUFFICIENT, t=changed + 7_200) for i in range(4)]
    opps, _ = run(stale + late, channels, book=book)
    (rec,) = [r for o in opps for r in o.recommendations if r.kind is K.LOWER_FEES]
    assert rec.proposed_fee_ppm == 100 and rec.evidence["failed_fee_while_propagating"] == 10


def test_fast_drain_at_a_low_fee_raises_fees():
    channels = [
        make_channel(A, local_ratio=0.5, fee_ppm=500),
        make_channel(B, local_ratio=0.3, fee_ppm=50),
        make_channel(C, local_ratio=0.5, fee_ppm=800),
    ]
    drain = [settled(i, B, out_msat=20_000_000) for i in range(60)]  # 1.2 M sat out of a 2 M sat channel
    opps, _ = run(drain, channels)
    (rec,) = [r for o in opps if o.channel_id == B for r in o.recommendations]
    assert rec.kind is K.RAISE_FEES and rec.proposed_fee_ppm == 500
    # the same drain at a high fee is left alone
    channels[1] = make_channel(B, local_ratio=0.3, fee_ppm=900)
    opps, _ = run(drain, channels)
    assert K.RAISE_FEES not in kinds(opps, B)


def test_other_failures_ask_for_investigation():
    channels = [make_channel(A), make_channel(B)]
    opps, _ = run([failed(i, B, FailureReason.DISABLED) for i in range(4)], channels)
    assert kinds(opps, B) == [K.INVESTIGATE]


def test_downstream_failures_are_counted_but_never_missed_revenue():
    channels = [make_channel(A), make_channel(B)]
    events = [
        HtlcEvent(A, 1_001_100, ForwardStatus.FAILED, NOW - 500 + i, in_htlc_id=i, out_channel=B, out_msat=1_000_000,
                  failure_reason=FailureReason.DOWNSTREAM, resolved_time=NOW - 400)
        for i in range(20)
    ]  # fmt: skip
    opps, pairs = run(events, channels)
    assert opps == [] and pairs == []


def test_liquidity_failures_that_earned_nothing_ask_for_a_fee_not_a_rebalance():
    channels = [make_channel(A, local_ratio=0.9, fee_ppm=300), make_channel(B, local_ratio=0.05, fee_ppm=0,
                                                                            base_fee_msat=0)]  # fmt: skip
    opps, _ = run([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(5)], channels)
    (rec,) = [r for o in opps if o.channel_id == B for r in o.recommendations]
    assert rec.kind is K.RAISE_FEES and rec.proposed_fee_ppm == 150 and "earned nothing" in rec.reason


def test_params_from_the_analyzer_settings_table():
    params = AnalyzerParams.from_mapping({"min_failures": 5, "propagation_s": "2h", "drain_share": 0.7})
    assert (params.min_failures, params.propagation_s, params.drain_share) == (5, 7_200, 0.7)
    with pytest.raises(Exception) as info:
        AnalyzerParams.from_mapping({"min_failure": 5, "target_ratio": "half", "min_missed_msat": -1})
    problems = info.value.problems
    assert len(problems) == 3 and problems[0].startswith("analyzer.min_failure: unknown setting (accepted: ")
    with pytest.raises(Exception) as info:
        AnalyzerParams.from_mapping({"revenue_saturation_msat": 0, "frequency_saturation": 0, "min_failures": 0})
    assert list(info.value.problems) == [
        "analyzer.revenue_saturation_msat: must be above 0: scores are divided by it",
        "analyzer.frequency_saturation: must be above 0: scores are divided by it",
    ]


def test_opportunities_cli_uses_the_analyzer_table(tmp_path, monkeypatch, capsys):
    import json

    from lnlens_core.cli import main
    from lnlens_core.storage import Store

    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    channels = [make_channel(A, local_ratio=0.9), make_channel(B, local_ratio=0.05)]
    store = Store(tmp_path / "db.sqlite3")
    store.add_snapshots(channels, time=NOW - 10)
    store.ingest_forwards([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(4)], source="live")
    store.set_meta("clock", "simulated")
    store.close()
    settings = tmp_path / "lnlens.toml"
    for min_failures, expected in ((3, 1), (5, 0)):
        settings.write_text(f"[analyzer]\nmin_failures = {min_failures}\nmin_missed_msat = 0\n")
        assert main(["--config", str(settings), "--db", str(tmp_path / "db.sqlite3"), "opportunities", "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["opportunities"]) == expected


def test_a_channel_too_cheap_to_refill_gets_a_fee_raise_not_a_rebalance():
    channels = [make_channel(A, local_ratio=0.9, fee_ppm=300), make_channel(B, local_ratio=0.05, fee_ppm=20)]
    opps, _ = run([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(5)], channels)
    (rec,) = [r for o in opps if o.channel_id == B for r in o.recommendations]
    assert rec.kind is K.RAISE_FEES and rec.proposed_fee_ppm == 160  # the median of 300 and 20
    assert "earn less than a refill costs" in rec.reason


def test_the_monthly_range_counts_refused_payments_not_their_retried_htlcs():
    channels = [make_channel(A), make_channel(B, local_ratio=0.05, fee_ppm=100, base_fee_msat=1000)]
    liquidity, big = FailureReason.INSUFFICIENT_BALANCE, 1_000_000_000  # 101,000 msat each
    # Four payments, each refused on B and retried there 0.4 s later, refused again.
    events = [failed(k, B, liquidity, t=NOW - 5000 + 20 * i, gap=0.4, out_msat=big, in_msat=big + 101_000)
              for i in range(4) for k in range(2)]  # fmt: skip
    book = PolicyBook()
    book.observe_channels(channels, 0.0)
    counter = FlowCounter(book, since=NOW - 86_400, until=NOW, propagation_s=P.propagation_s)
    counter.add(events)
    stats = counter.stats()
    (opp,), _ = analyze(stats, channels, P)
    flow = stats.out[B]
    assert flow.failed_here == 8 and flow.missed_payments == 4 and opp.missed_revenue_msat == 4 * 101_000
    want = project_monthly(4 * 101_000, 4, stats.observed_s, P)
    assert (opp.projected_monthly_missed_msat, opp.projected_monthly_missed_low_msat,
            opp.projected_monthly_missed_high_msat) == want  # fmt: skip
    assert want != project_monthly(4 * 101_000, 8, stats.observed_s, P)


def test_a_zero_divisor_in_the_settings_file_is_one_line_naming_file_and_field(tmp_path, monkeypatch, capsys):
    from lnlens_core.cli import main
    from lnlens_core.storage import Store

    monkeypatch.setenv("LNLENS_DATA_DIR", str(tmp_path))
    store = Store(tmp_path / "db.sqlite3")
    store.add_snapshots([make_channel(B, local_ratio=0.05)], time=NOW - 10)
    store.ingest_forwards([failed(i, B, FailureReason.INSUFFICIENT_BALANCE) for i in range(4)], source="live")
    store.set_meta("clock", "simulated")
    store.close()
    settings = tmp_path / "lnlens.toml"
    settings.write_text("[analyzer]\nfrequency_saturation = 0\n")
    assert main(["--config", str(settings), "--db", str(tmp_path / "db.sqlite3"), "opportunities"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{settings}:2: analyzer.frequency_saturation: must be above 0" in err
