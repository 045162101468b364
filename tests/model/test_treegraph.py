"""Tree ensembles exported as binned lookup tables (lnlens_core/learning/treegraph.py): scikit-learn's predictions."""

from __future__ import annotations

import base64
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lnlens_core.errors import ModelError
from lnlens_core.features import FEATURE_NAMES
from lnlens_core.inference import OnnxModel
from lnlens_core.learning import build_pipeline, export_onnx
from lnlens_core.learning.treegraph import SMALL_BATCH, compile_pipeline, ensemble_trees

WIDTH = len(FEATURE_NAMES)


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, WIDTH)).astype(np.float32)
    x[:, 2] = rng.integers(0, 2, n)  # a 0/1 feature, as `active`
    x[:, 5] = np.round(x[:, 5], 1)  # few distinct values
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


@pytest.fixture(scope="module")
def train_rows() -> np.ndarray:
    return _rows(np.random.default_rng(7), 3_000)


def _target(x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(x)
    return 0.3 * z[:, 0] + 0.2 * np.sin(z[:, 1]) + 0.1 * (z[:, 3] > 0) * z[:, 4] + 0.05 * z[:, 5] * z[:, 2]


@pytest.fixture(scope="module")
def gbr(train_rows):
    return build_pipeline("gbr", seed=0).fit(train_rows, _target(train_rows))


@pytest.fixture(scope="module", params=["gbr", "forest"])
def fitted(request, train_rows, gbr):
    return gbr if request.param == "gbr" else build_pipeline("forest", seed=0).fit(train_rows, _target(train_rows))


def _at_thresholds(pipe, rng: np.random.Generator) -> np.ndarray:
    """Rows whose value on a split feature is exactly a threshold in float32, or either neighbour."""
    trees, _ = ensemble_trees(pipe[-1])
    cases = []
    for tree in trees[:40]:
        for f, t in zip(tree.feature, tree.threshold, strict=True):
            if f >= 0:
                for v in (t, np.float32(t), np.nextafter(np.float32(t), np.float32(np.inf))):
                    cases.append((f, np.float32(v)))
    x = _rows(rng, len(cases))
    for i, (f, v) in enumerate(cases):
        x[i, f] = v
    return x


def _raw(payload: bytes, x: np.ndarray) -> np.ndarray:
    return OnnxModel.load(payload).run(x)[1]


def test_tables_give_scikit_learns_predictions(fitted, train_rows, sim_data):
    payload = export_onnx(fitted, name="t", version="1", trained_at=0.0, metrics={}, rows=train_rows)
    rng = np.random.default_rng(1)
    real = sim_data.x.astype(np.float32)
    cases = {
        "random rows with NaN": _rows(rng, 5_000),
        "rows at the thresholds": _at_thresholds(fitted, rng),
        "simulated node rows": real[rng.integers(0, len(real), 2_000)],
        "a single row": _rows(rng, 1),
        "a small batch": _rows(rng, SMALL_BATCH - 1),
    }
    for name, x in cases.items():
        assert np.max(np.abs(_raw(payload, x) - fitted.predict(x))) < 1e-5, name


def test_shallow_ensembles_export_as_tables_and_others_as_before(gbr, train_rows):
    """Gradient boosting's depth-3 trees become tables; the forest's depth-8 trees are each too large
    to tabulate, and a linear model is no tree: both are converted as before (skl2onnx)."""
    y = _target(train_rows)
    ops = {}
    for kind in ("gbr", "forest", "linear"):
        pipe = gbr if kind == "gbr" else build_pipeline(kind).fit(train_rows, y)
        model = onnx.load_from_string(export_onnx(pipe, name="t", version="1", trained_at=0.0, metrics={}))
        ops[kind] = {n.op_type for n in model.graph.node}
    assert "GatherElements" in ops["gbr"]
    assert "GatherElements" not in ops["forest"] | ops["linear"]


@pytest.mark.parametrize("max_cells, max_leaves", [(64, 1), (512, 16), (200, 4096)])
def test_small_limits_still_exact(gbr, train_rows, max_cells, max_leaves):
    """Tiny tables: many groups packed several to an output, trees too large to tabulate walked as
    trees; one feature per search tree or several."""
    model, _ = compile_pipeline(gbr, WIDTH, sample=train_rows, max_cells=max_cells, max_leaves=max_leaves)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = _rows(np.random.default_rng(2), 3_000)
    got = session.run(None, {"X": x})[0][:, 0]
    assert np.max(np.abs(got - gbr.predict(x))) < 1e-5


def test_training_rows_change_speed_not_predictions(gbr, train_rows):
    x = _rows(np.random.default_rng(3), 1_000)
    with_rows = export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}, rows=train_rows)
    without = export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={})
    assert np.max(np.abs(_raw(with_rows, x) - _raw(without, x))) < 1e-6


def test_small_batches_walk_the_trees(gbr, train_rows):
    """Under SMALL_BATCH rows the server uses the plain trees' graph from the metadata; both agree."""
    model = OnnxModel.load(export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}))
    walk, below = model.small
    assert below == SMALL_BATCH
    assert "GatherElements" not in {n.op_type for n in onnx.load_from_string(
        base64.b64decode(json.loads(model.metadata["small_batch"])["model_base64"])).graph.node}
    x = _rows(np.random.default_rng(4), 500)
    tables, walked = (s.run(None, {"X": x})[0][:, 0] for s in (model.session, walk))
    assert np.max(np.abs(tables - walked)) < 1e-5


def test_a_broken_small_batch_graph_is_a_clear_error(gbr):
    model = onnx.load_from_string(export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}))
    for entry in model.metadata_props:
        if entry.key == "small_batch":
            entry.value = '{"model_base64": "bm90IGEgbW9kZWw=", "below_rows": 64}'
    with pytest.raises(ModelError, match="unreadable small_batch metadata"):
        OnnxModel.load(model.SerializeToString())
