"""The fee-response model: its schema, parity with scikit-learn, its opinions, and model_driven through it."""

from __future__ import annotations

import numpy as np
import pytest

from lnlens_core.domain import ChannelId
from lnlens_core.errors import ModelError
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.model.fee_model import FEE_INPUTS, FEE_OUTPUT, FeeResponseModel
from lnlens_core.model.learning import export_onnx
from lnlens_core.testing import FakeNode, make_channel

GRID = [0.5, 0.7, 1.0, 1.4, 2.0]
FULL, EMPTY, FREE = ChannelId(1, 1, 0), ChannelId(2, 1, 0), ChannelId(3, 1, 0)


def _fit(confidence: float = 0.8):
    """A model of a world where a full channel earns most at half its fee and an empty one at 1.4×."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    ratio = rng.uniform(size=4000)
    logm = np.log2(rng.choice(GRID, size=4000))
    best = np.where(ratio > 0.5, -1.0, np.log2(1.4))
    x = np.zeros((4000, len(FEE_INPUTS)))
    x[:, 0], x[:, -1] = ratio, logm
    y = 10_000 - 8_000 * (logm - best) ** 2
    pipe = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), DecisionTreeRegressor(max_depth=6))
    pipe.fit(x, y)
    payload = export_onnx(pipe, name="fee-test", version="1", trained_at=0.0, metrics={},
                          extra={"multipliers": GRID, "confidence": confidence},
                          input_names=FEE_INPUTS, output=FEE_OUTPUT, target="test")  # fmt: skip
    return pipe, payload


def _features(ratios):
    x = np.zeros((len(ratios), len(FEE_INPUTS) - 1), dtype=np.float32)
    x[:, 0] = ratios
    return x


def test_opinions_pick_the_best_multiplier_and_skip_what_no_multiplier_moves():
    _, payload = _fit()
    model = FeeResponseModel.load(payload)
    channels = [make_channel(FULL, local_ratio=0.9, fee_ppm=100), make_channel(EMPTY, local_ratio=0.1, fee_ppm=100),
                make_channel(FREE, local_ratio=0.9, fee_ppm=0)]  # fmt: skip
    got = model.opinions(channels, _features([0.9, 0.1, 0.9]))
    assert set(got) == {FULL, EMPTY}  # 0 ppm times anything is 0 ppm
    assert (got[FULL].fee_ppm, got[EMPTY].fee_ppm) == (50, 140)
    assert got[FULL].confidence == 0.8 and got[FULL].model == "fee-test-1"
    # Too small a predicted gain: keep (the gain needed here is more than any multiplier offers).
    assert model.opinions(channels, _features([0.9, 0.1, 0.9]), min_gain=10.0) == {}


def test_onnx_agrees_with_scikit_learn_within_float32():
    pipe, payload = _fit()
    rows = np.random.default_rng(1).uniform(size=(500, len(FEE_INPUTS))).astype(np.float32)
    assert np.abs(FeeResponseModel.load(payload).predict(rows) - pipe.predict(rows)).max() < 1e-2  # msat


def test_a_liquidity_model_is_not_a_fee_model(tmp_path):
    import lnlens_models

    with pytest.raises(ModelError, match="log2_fee_multiplier") as err:
        FeeResponseModel.load(lnlens_models.model_bytes())
    assert FEE_OUTPUT in str(err.value)


def test_model_driven_follows_the_fee_model_when_one_is_installed(lens, tmp_path, monkeypatch):
    path = tmp_path / "fee.onnx"
    path.write_bytes(_fit()[1])
    monkeypatch.setattr("lnlens_core.model.fee_model.default_fee_model_path", lambda: path)
    node = FakeNode([make_channel("800001x2x1", local_ratio=0.1, fee_ppm=100),
                     make_channel("800002x3x0", local_ratio=0.9, fee_ppm=100)])  # fmt: skip
    policy = tmp_path / "policy.ini"
    policy.write_text("[default]\nstrategy = model_driven\nmax_step_share = 1\n")
    rows = {str(c.channel_id): c for c in FeeEngine.from_config(lens, node, policy_path=policy).plan().changes}
    assert rows["800001x2x1"].proposed.fee_ppm == 140 and "fee-test-1 suggests 140 ppm" in rows["800001x2x1"].reason
    assert rows["800002x3x0"].proposed.fee_ppm == 50
