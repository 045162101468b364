"""Features: named, versioned, NaN where the data cannot tell, identical in training and serving."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lnlens_core.domain import ChannelId, ChannelPolicy, FailureReason, ForwardStatus, HtlcEvent
from lnlens_core.model.features import FEATURE_NAMES, FEATURE_VERSION, compute_features, windows_from_events
from lnlens_core.opportunities.flows import PolicyBook
from lnlens_core.testing import make_channel

NOW = 1_770_000_000.0
A, B = ChannelId(1, 1, 0), ChannelId(2, 2, 0)
col = FEATURE_NAMES.index


def _channels():
    return [
        make_channel(A, capacity_msat=10_000_000_000, local_ratio=0.2, fee_ppm=100),
        make_channel(B, capacity_msat=4_000_000_000, local_ratio=0.75, fee_ppm=300),
    ]


def _ev(t, status, *, out_msat=1_000_000, reason=None, inc=B, out=A, htlc=0):
    return HtlcEvent(
        in_channel=inc,
        in_msat=out_msat + 1_100,
        status=status,
        received_time=t,
        in_htlc_id=htlc,
        out_channel=out,
        out_msat=out_msat,
        fee_msat=1_100,
        resolved_time=t,
        failure_reason=reason,
    )


def test_schema_is_named_ordered_and_versioned():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) and FEATURE_NAMES[0] == "balance_ratio"
    assert isinstance(FEATURE_VERSION, int) and FEATURE_VERSION >= 1


def test_no_data_gives_nan_never_a_default():
    x = compute_features(_channels(), windows_from_events([], PolicyBook(), NOW))
    assert x.shape == (2, len(FEATURE_NAMES))
    assert x[0, col("balance_ratio")] == pytest.approx(0.2)
    for name in (
        "out_volume_rate_24h",
        "out_success_rate_24h",
        "avg_out_amount_share_24h",
        "peer_fee_ppm_log1p",
        "fee_vs_peer_log",
        "hours_since_policy_change",
        "liquidity_failure_share_24h",
    ):
        assert np.isnan(x[:, col(name)]).all(), name
    assert x[0, col("observed_hours_24h")] == 0.0


def test_values_come_from_the_events():
    events = [
        _ev(NOW - 7_200, ForwardStatus.SETTLED, htlc=1),
        _ev(NOW - 1_800, ForwardStatus.SETTLED, htlc=2, out_msat=3_000_000),
        _ev(NOW - 1_200, ForwardStatus.LOCAL_FAILED, reason=FailureReason.INSUFFICIENT_BALANCE, htlc=3),
        _ev(NOW - 600, ForwardStatus.FAILED, reason=FailureReason.DOWNSTREAM, htlc=4),
    ]
    book = PolicyBook()
    book.observe_channels(_channels(), NOW - 10_000)
    peer = {A: ChannelPolicy(base_fee_msat=0, fee_ppm=50)}
    x = compute_features(_channels(), windows_from_events(events, book, NOW), peer_policies=peer, book=book)
    hours = 7_200 / 3_600  # the window saw data from its first event on
    a = x[0]
    assert a[col("out_volume_rate_24h")] == pytest.approx(4_000_000 / 10_000_000_000 / hours)
    assert a[col("out_success_rate_24h")] == pytest.approx(2 / 4)
    assert a[col("liquidity_failure_share_24h")] == pytest.approx(1 / 4)
    assert a[col("avg_out_amount_share_24h")] == pytest.approx(2_000_000 / 10_000_000_000)
    assert a[col("peer_fee_ppm_log1p")] == pytest.approx(math.log1p(50))
    assert a[col("fee_vs_peer_log")] == pytest.approx(math.log1p(100) - math.log1p(50))
    assert a[col("observed_hours_24h")] == pytest.approx(hours)
    assert np.isnan(a[col("hours_since_policy_change")])  # one policy seen, never a change
    b = x[1]
    # the settled amount, counted as it left us (flows.Flow.volume_msat)
    assert b[col("in_volume_rate_24h")] == pytest.approx((1_000_000 + 3_000_000) / 4_000_000_000 / hours)
    assert np.isnan(b[col("out_success_rate_24h")])  # nothing tried to leave by B
    assert np.isnan(x[1, col("peer_fee_ppm_log1p")])


def test_training_and_serving_compute_the_same_rows(sim_db, sim_data, tiny):
    """The rows a model was trained on are the rows the store-based inference builds at that time."""
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.liquidity import liquidity_view
    from lnlens_core.storage import Store

    store = Store(sim_db)
    try:
        t = float(np.unique(sim_data.times)[-1])
        view = liquidity_view(store, OnnxModel.load(tiny[1]), now=t)
    finally:
        store.close()
    trained = sim_data.x[sim_data.times == t]
    assert len(trained)
    served = {tuple(np.nan_to_num(r, nan=-12345.0)) for r in view.features}
    for row in trained:
        assert tuple(np.nan_to_num(row, nan=-12345.0)) in served


def test_a_daemons_view_streams_the_day_and_serves_the_same(sim_db, sim_data, tiny):
    """Issue 16: a daemon's view (keep_forwards=False) never holds the day of forwards; the channels it covers, its
    features, predictions and suggestions are those of the view that keeps them."""
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.liquidity import liquidity_view
    from lnlens_core.storage import Store

    store = Store(sim_db)
    try:
        t = float(np.unique(sim_data.times)[-1])
        model = OnnxModel.load(tiny[1])
        kept = liquidity_view(store, model, now=t)
        streamed = liquidity_view(store, model, now=t, keep_forwards=False)
        day = {e.in_channel for e in kept.recent} | {e.out_channel for e in kept.recent if e.out_channel}
        assert store.forward_channels(t - 86_400, t) == day
    finally:
        store.close()
    assert kept.recent and streamed.recent == []
    assert [c.channel_id for c in streamed.channels] == [c.channel_id for c in kept.channels]
    np.testing.assert_array_equal(streamed.features, kept.features)
    np.testing.assert_array_equal(streamed.predicted, kept.predicted)
    assert streamed.suggestions == kept.suggestions


def test_windows_counted_in_chunks_equal_one_pass(monkeypatch):
    """The day is counted in chunks (issue 16: bounded memory); a refused payment retried across a chunk boundary
    is still tied together, so the windows are exactly those of one pass."""
    import lnlens_core.model.features as features

    book = PolicyBook()
    book.observe_channels(_channels(), NOW - 90_000)
    events = []
    for i in range(40):
        t = NOW - 80_000 + i * 2_000
        events.append(_ev(t, ForwardStatus.LOCAL_FAILED, reason=FailureReason.INSUFFICIENT_BALANCE, htlc=2 * i))
        events.append(_ev(t + 5, ForwardStatus.SETTLED if i % 3 else ForwardStatus.LOCAL_FAILED,
                          reason=None if i % 3 else FailureReason.FEE_INSUFFICIENT, htlc=2 * i + 1))  # fmt: skip
    whole = windows_from_events(events, book, NOW)
    monkeypatch.setattr(features, "_CHUNK", 3)
    chunked = windows_from_events(events, book, NOW)
    assert chunked == whole
    channels_only = windows_from_events(events, book, NOW, pairs=False)  # what the model's runs count
    for got, want in ((channels_only.short, whole.short), (channels_only.long, whole.long)):
        assert (got.out, got.inbound, got.observed_s, got.pairs) == (want.out, want.inbound, want.observed_s, {})
    assert whole.long.pairs
    assert (compute_features(_channels(), channels_only, book=book).tobytes()
            == compute_features(_channels(), whole, book=book).tobytes())  # fmt: skip
    flow = whole.long.out[A]
    assert flow.settled and flow.missed_recovered_msat, flow
    assert flow.missed_revenue_msat < flow.missed_revenue_htlc_msat, flow
