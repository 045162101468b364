"""onnxruntime serving: parity with scikit-learn, schema checks, NaN handling."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from lnlens_core.errors import ModelError
from lnlens_core.model.features import FEATURE_NAMES
from lnlens_core.model.inference import OnnxModel
from lnlens_core.model.learning import predict, time_split

from .conftest import tiny_model


def _with_meta(payload: bytes, **changes: str) -> bytes:
    model = onnx.load_from_string(payload)
    for entry in model.metadata_props:
        if entry.key in changes:
            entry.value = changes[entry.key]
    return model.SerializeToString()


@pytest.mark.parametrize("kind", ["gbr", "forest", "sgd", "linear"])
def test_onnxruntime_matches_sklearn_on_validation_data(sim_data, kind):
    train, val = time_split(sim_data)
    pipe, payload = tiny_model(train, kind=kind) if kind != "sgd" else _sgd(train)
    got = OnnxModel.load(payload).predict(val.x)
    want = predict(pipe, val.x)
    assert len(val) > 10
    assert np.nanmax(np.abs(got - want)) < 1e-5


def _sgd(train):
    from lnlens_core.model.learning import OnlineLearner, export_onnx

    learner = OnlineLearner()
    learner.update(train)
    return learner.pipeline, export_onnx(learner.pipeline, name="sgd", version="t", trained_at=0.0, metrics={})


def test_metadata_carries_schema_and_provenance(tiny):
    model = OnnxModel.load(tiny[1])
    assert model.json_meta("feature_names") == list(FEATURE_NAMES)
    assert set(model.json_meta("libraries")) >= {"sklearn", "skl2onnx", "onnx"}
    assert model.metadata["output"] == "adjustment"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"feature_names": '["balance_ratio"]'}, "features differ"),
        ({"feature_version": "999"}, "feature version"),
        ({"output": "ratio"}, "output"),
    ],
)
def test_schema_mismatch_raises_model_error(tiny, change, message):
    with pytest.raises(ModelError, match=message):
        OnnxModel.load(_with_meta(tiny[1], **change))


def test_reordered_features_are_refused(tiny):
    import json

    names = list(FEATURE_NAMES)
    names[1], names[2] = names[2], names[1]
    with pytest.raises(ModelError, match="order differs"):
        OnnxModel.load(_with_meta(tiny[1], feature_names=json.dumps(names)))


def test_unreadable_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxModel.load(bad)


def test_missing_onnxruntime_is_a_model_error(monkeypatch, tiny):
    import lnlens_core.model.inference as inference
    from lnlens_core.errors import MissingExtra

    def missing(module, *, extra, what):
        raise MissingExtra(what, extra, module)

    monkeypatch.setattr(inference, "require", missing)
    with pytest.raises(ModelError, match=r"lnlens\[ml\]"):
        OnnxModel.load(tiny[1])


def test_batch_and_nan_rows(tiny, sim_data):
    model = OnnxModel.load(tiny[1])
    x = sim_data.x[:5].copy()
    x[0, 0] = np.nan  # no current ratio: no prediction
    x[1, 5:] = np.nan  # unknown flows: still a prediction
    out = model.predict(x)
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all() and ((out[1:] >= 0) & (out[1:] <= 1)).all()
    assert model.predict(np.zeros((0, len(FEATURE_NAMES)))).shape == (0,)
    with pytest.raises(ModelError, match="features"):
        model.predict(np.zeros((2, 3)))


def test_threads_split_rows_without_changing_predictions(tiny, sim_data):
    rows = np.random.default_rng(0).integers(0, len(sim_data.x), 2_000)  # past onnxruntime's row-parallel size
    x = sim_data.x[rows]
    one, two = OnnxModel.load(tiny[1], threads=1), OnnxModel.load(tiny[1], threads=2)
    # Two threads sum the trees in another order: float32 rounding (a few 1e-9), nothing more.
    np.testing.assert_allclose(two.predict(x), one.predict(x), rtol=0, atol=1e-6)


def test_the_move_is_added_to_the_callers_ratio_not_its_float32_copy(tiny, sim_data):
    """A predicted move of 0 must leave the ratio exactly as the caller gave it (the error against "keep the
    current ratio" is measured in float64): the model reads float32 rows, the answer adds to the float64 ratio."""
    model = OnnxModel.load(tiny[1])
    x = sim_data.x[:50].astype(np.float64)
    x[:, 0] = 0.1 + np.arange(50) * 1e-9  # ratios float32 cannot hold
    _, move = model.run(x)
    assert np.array_equal(model.predict(x), np.clip(x[:, 0] + move, 0.0, 1.0))
