"""Measured outcomes of changes and the automatic-rollback rule, on synthetic compound-Poisson revenue."""

from __future__ import annotations

import numpy as np

from lnlens_core.domain import ChannelId, ForwardStatus, HtlcEvent
from lnlens_core.fees.outcomes import journal_outcomes, measure, policy_aggregates, rollback_verdict

C = ChannelId.parse("800000x1x0")
OTHER = ChannelId.parse("800001x1x0")
T = 1_800_000_000.0
W = 86_400.0


def forwards(rng, rate_per_window, start, fee_scale=1.0):
    n = rng.poisson(rate_per_window)
    times = np.sort(rng.uniform(start, start + W, n))
    fees = np.maximum(1, (rng.lognormal(7, 1, n) * fee_scale).astype(int))
    return [
        HtlcEvent(OTHER, 100_000 + int(f), ForwardStatus.SETTLED, float(t), out_channel=C, out_msat=100_000,
                  fee_msat=int(f), resolved_time=float(t) + 1)
        for t, f in zip(times, fees, strict=True)
    ]  # fmt: skip


def verdict(events, **kw):
    outcome = measure(1, C, "p", T, events=events, window_s=W, now=T + W)
    return rollback_verdict(outcome, drop_share=0.3, min_forwards=10, alpha=0.05, **kw)


def test_noise_triggers_rarely_and_a_real_drop_almost_always():
    rng = np.random.default_rng(2024)
    noise = sum(verdict(forwards(rng, 40, T - W) + forwards(rng, 40, T)) is not None for _ in range(400))
    assert noise / 400 <= 0.05, f"{noise} false rollbacks in 400"
    halved = sum(verdict(forwards(rng, 40, T - W) + forwards(rng, 40, T, 0.3)) is not None for _ in range(200))
    assert halved / 200 >= 0.9, f"only {halved} of 200 bad changes caught"


def test_rule_needs_a_minimum_sample_and_a_complete_window():
    rng = np.random.default_rng(1)
    few = forwards(rng, 5, T - W)  # everything gone after, but too little data before
    assert verdict(few) is None
    many = forwards(rng, 60, T - W)
    assert "revenue fell" in verdict(many)
    early = measure(1, C, "p", T, events=many, window_s=W, now=T + W / 2)
    assert not early.complete and rollback_verdict(early, drop_share=0.3, min_forwards=10, alpha=0.05) is None


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
