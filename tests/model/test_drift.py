"""Drift indicators on inputs shifted by known amounts, and the live error against the validation MAE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lnlens_core.model.features import FEATURE_NAMES
from lnlens_core.model.inference import OnnxModel
from lnlens_core.model.learning import FeatureStats, build_pipeline, drift_report, export_onnx, fit, time_split
from lnlens_core.model.learning.drift import MIN_LIVE_ROWS, PSI_MODERATE, PSI_SHIFTED, input_drift, live_error

F = len(FEATURE_NAMES)
col = FEATURE_NAMES.index


def _normal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, F))


def test_statistics_merged_batch_by_batch_equal_one_pass():
    x = _normal(3_000, 1)
    x[::7, 3] = np.nan
    one = FeatureStats.of(x)
    merged = FeatureStats()
    for part in np.array_split(x, 5):
        merged.update(part)
    a, b = one.to_json()["features"], merged.to_json()["features"]
    for name in FEATURE_NAMES:
        assert a[name]["count"] == b[name]["count"] and a[name]["missing"] == b[name]["missing"]
        assert a[name]["mean"] == pytest.approx(b[name]["mean"], abs=1e-12)
        assert a[name]["std"] == pytest.approx(b[name]["std"], abs=1e-12)
    known = x[:, 3][~np.isnan(x[:, 3])]
    assert a["balance_ratio"]["std"] == pytest.approx(float(x[:, 0].std()))
    assert a[FEATURE_NAMES[3]]["missing"] == 3_000 - len(known)
    assert sum(a[FEATURE_NAMES[3]]["bins"]) == len(known)  # every known value in one bin; NaN counted apart
    # The bins are the training deciles: about a tenth of the rows each.
    shares = np.array(a["balance_ratio"]["bins"]) / 3_000
    assert len(shares) == 10 and np.allclose(shares, 0.1, atol=0.002)


def test_a_feature_shifted_by_one_standard_deviation_is_found_and_named():
    stats = FeatureStats.of(_normal(20_000, 2)).to_json()
    live = _normal(5_000, 3)
    j = col("net_out_rate_24h")
    live[:, j] += 1.0
    report = input_drift(stats, live)
    f = report["features"]["net_out_rate_24h"]
    assert f["mean_shift"] == pytest.approx((live[:, j].mean() - stats["features"]["net_out_rate_24h"]["mean"])
                                            / stats["features"]["net_out_rate_24h"]["std"])  # fmt: skip
    assert 0.95 < f["mean_shift"] < 1.05
    assert f["psi"] > PSI_SHIFTED
    assert report["status"] == "shifted" and report["shifted"] == ["net_out_rate_24h"]
    others = [v["psi"] for n, v in report["features"].items() if n != "net_out_rate_24h"]
    assert max(others) < PSI_MODERATE and max(abs(v["mean_shift"]) for n, v in report["features"].items()
                                             if n != "net_out_rate_24h") < 0.1  # fmt: skip


def test_psi_is_the_textbook_sum_over_bins_with_missing_values_as_a_bin():
    train = np.full((100, F), np.nan)
    train[:, 0] = np.repeat([0.1, 0.3, 0.5, 0.7], 25)  # deciles 0.1 ... 0.7: four bins of a quarter
    stats = FeatureStats.of(train).to_json()
    live = np.full((MIN_LIVE_ROWS * 2, F), np.nan)
    live[:, 0] = np.r_[np.full(50, 0.1), np.full(30, 0.3), np.full(10, 0.5), np.full(10, np.nan)]
    f = input_drift(stats, live)["features"]["balance_ratio"]
    p = np.array([0.0, 0.5, 0.3, 0.1, 0.0, 0.1])  # below 0.1, the four values, missing
    q = np.array([0.0, 0.25, 0.25, 0.25, 0.25, 0.0])
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert f["psi"] == pytest.approx(float(((p - q) * np.log(p / q)).sum()))
    assert f["live_missing_share"] == pytest.approx(0.1) and f["train_missing_share"] == 0.0
    # A flag constant in training (all 1) that goes 0 live is a shift too, though it has no std.
    empty = input_drift(stats, live)["features"]["capacity_log10_sat"]  # missing in both: no shift, no mean
    assert empty["psi"] == 0.0 and empty["reason"] == "no live value (all missing)"
    train[:, 2], live[:, 2] = 1.0, 0.0
    active = input_drift(FeatureStats.of(train).to_json(), live)["features"]["active"]
    assert active["psi"] > PSI_SHIFTED and active["mean_shift"] is None and "constant in training" in active["reason"]


def test_missing_data_gives_null_and_says_why():
    stats = FeatureStats.of(_normal(500, 4)).to_json()
    few = input_drift(stats, _normal(MIN_LIVE_ROWS - 1, 5))
    assert few["status"] is None and f"needs at least {MIN_LIVE_ROWS}" in few["reason"] and few["features"] == {}
    none = input_drift(None, _normal(500, 5))
    assert none["status"] is None and "no training feature statistics" in none["reason"]


@pytest.fixture(scope="module")
def trained(sim_data):
    older, recent = time_split(sim_data)
    pipe = build_pipeline("linear")
    fit(pipe, older)
    return older, recent, pipe


def _model(pipe, older, *, mae, stats=True) -> OnnxModel:
    payload = export_onnx(pipe, name="d", version="1", trained_at=0.0, metrics={"model": {"mae": mae}},
                          feature_stats=FeatureStats.of(older.x) if stats else None)  # fmt: skip
    return OnnxModel.load(payload)


def test_live_error_is_the_served_models_mae_on_matured_samples_against_its_validation_mae(trained):
    older, recent, pipe = trained
    model = _model(pipe, older, mae=0.001)
    report = drift_report(model, recent, time=5.0, window_s=86_400)
    err = report["error"]
    expected = float(np.abs(model.predict(recent.x) - recent.y).mean())
    assert err["live_mae"] == pytest.approx(expected) and err["samples"] == len(recent)
    assert err["ratio"] == pytest.approx(expected / 0.001)
    assert err["status"] == ("degraded" if expected / 0.001 > 1.5 else "ok")
    assert err["current_ratio_mae"] == pytest.approx(float(np.abs(recent.current - recent.y).mean()))
    generous = drift_report(_model(pipe, older, mae=expected * 2), recent, time=5.0, window_s=86_400)["error"]
    assert generous["status"] == "ok" and generous["ratio"] == pytest.approx(0.5)
    assert report["inputs"]["status"] in ("stable", "moderate", "shifted") and report["inputs"]["max_psi"] >= 0
    assert report["window"]["samples"] == len(recent) and report["model"] == "d-1"


def test_live_error_without_enough_samples_or_validation_mae_is_null(trained):
    older, recent, pipe = trained
    few = recent.select(np.arange(len(recent)) < 10)
    err = drift_report(_model(pipe, older, mae=0.01), few, time=0.0, window_s=1.0)["error"]
    assert err["status"] is None and err["live_mae"] is None and "needs at least 30" in err["reason"]
    nan = live_error(np.zeros(len(recent)), recent, validation_mae=math.nan)
    assert nan["status"] is None and nan["live_mae"] is not None and "no validation MAE" in nan["reason"]
    old = drift_report(_model(pipe, older, mae=0.01, stats=False), recent, time=0.0, window_s=1.0)["inputs"]
    assert old["status"] is None and "retrain" in old["reason"]
