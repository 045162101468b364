"""Plots are PNG files, the same bytes for the same input."""

from __future__ import annotations

import pytest

from lnlens_core.domain import ChannelId, Recommendation, RecommendationKind
from lnlens_core.model import plots

pytest.importorskip("matplotlib")


def _all(out):
    rows = [
        {
            "time": t * 3600.0,
            "channel_id": cid,
            "model": "m-1" if t < 2 else "m-2",
            "current_ratio": 0.1 * t,
            "predicted_ratio": 0.5 if cid == "1x1x0" else None,
        }
        for t in range(4)
        for cid in ("1x1x0", "2x2x0")
    ]
    rec = Recommendation(
        RecommendationKind.REBALANCE_OUTBOUND,
        ChannelId(1, 1, 0),
        "r",
        {"expected_gain_msat": 5_000, "confidence": 0.75},
        source_channel=ChannelId(2, 2, 0),
        target_channel=ChannelId(1, 1, 0),
        amount_msat=1_000_000,
    )
    return [
        plots.balance_distribution([0.1, 0.5, float("nan"), 0.9], out / "a.png"),
        plots.optimal_vs_current(["1x1x0 peer 🌽", "2x2x0"], [0.1, 0.9], [0.4, float("nan")], out / "b.png"),
        plots.top_rebalances([rec], out / "c.png"),
        plots.top_rebalances([], out / "c0.png"),
        plots.feature_importance([{"feature": "balance_ratio", "mae_increase": 0.01}], out / "d.png"),
        plots.prediction_history(rows, out / "e.png"),
    ]


def test_pngs_are_deterministic(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    first, second = _all(tmp_path / "1"), _all(tmp_path / "2")
    for a, b in zip(first, second, strict=True):
        data = a.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data == b.read_bytes(), a.name
