"""Tree ensembles exported as binned lookup tables (lnlens_core/model/learning/treegraph.py): scikit-learn's
predictions."""

from __future__ import annotations

import base64
import json
import logging
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lnlens_core.errors import ModelError
from lnlens_core.model.features import FEATURE_NAMES
from lnlens_core.model.inference import OnnxModel
from lnlens_core.model.learning import build_pipeline, export_onnx
from lnlens_core.model.learning.treegraph import (
    SMALL_BATCH,
    SMALL_BATCH_META,
    TABLES_META,
    compile_pipeline,
    ensemble_trees,
    with_tables,
)
from lnlens_core.model.registry import ModelRegistry

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


def _tables_graph(payload: bytes) -> onnx.ModelProto | None:
    entry = dict((e.key, e.value) for e in onnx.load_from_string(payload).metadata_props).get(TABLES_META)
    if entry is None:
        return None
    return onnx.load_from_string(zlib.decompress(base64.b64decode(json.loads(entry)["model_zlib_base64"])))


def test_shallow_ensembles_export_as_tables_and_others_as_before(gbr, train_rows):
    """Gradient boosting's depth-3 trees get tables; the forest's depth-8 trees are each too large
    to tabulate, and a linear model is no tree: both are converted as before (skl2onnx)."""
    y = _target(train_rows)
    for kind in ("gbr", "forest", "linear"):
        pipe = gbr if kind == "gbr" else build_pipeline(kind).fit(train_rows, y)
        payload = export_onnx(pipe, name="t", version="1", trained_at=0.0, metrics={})
        tables = _tables_graph(payload)
        assert (tables is not None) == (kind == "gbr"), kind
        assert "GatherElements" not in {n.op_type for n in onnx.load_from_string(payload).graph.node}
        if tables is not None:
            assert "GatherElements" in {n.op_type for n in tables.graph.node}


def test_the_file_holds_the_trees_not_the_tables(gbr, train_rows):
    """The tables (cells of every group) are built by onnxruntime from each tree's small grid when the
    session opens: the file, tables graph included, is a small fraction of them."""
    payload = export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}, rows=train_rows)
    # the same bytes every time (`make model` writes a byte-identical file for the same data)
    assert export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}, rows=train_rows) == payload
    tables = _tables_graph(payload)
    largest = max(int(np.prod(i.dims)) for i in tables.graph.initializer)
    assert largest < 2_000
    assert len(payload) < 400_000 < 1_000_000 < len(_earlier_layout(gbr, payload).SerializeToString())


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
    """From SMALL_BATCH rows the server uses the tables' graph from the metadata, below it the file's
    own graph (the plain trees); both agree."""
    model = OnnxModel.load(export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}))
    assert model.tables_from == SMALL_BATCH
    model.run(_rows(np.random.default_rng(4), SMALL_BATCH - 1))
    assert model._tables is None  # not opened for small batches
    x = _rows(np.random.default_rng(4), 500)
    model.run(x)
    tables = model._tables
    assert tables is not None
    by_tables, walked = (s.run(None, {"X": x})[0][:, 0] for s in (tables, model.session))
    assert np.max(np.abs(by_tables - walked)) < 1e-5


def test_a_broken_tables_graph_is_a_clear_error(gbr, tmp_path, caplog):
    model = onnx.load_from_string(export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}))
    for entry in model.metadata_props:
        if entry.key == TABLES_META:
            entry.value = json.dumps({"model_zlib_base64": base64.b64encode(zlib.compress(b"no model")).decode(),
                                      "from_rows": 64})
    with pytest.raises(ModelError, match="unreadable lookup_tables metadata"):
        OnnxModel.load(model.SerializeToString()).tables_session()
    with pytest.raises(ModelError, match="unreadable lookup_tables metadata"):
        ModelRegistry(None, tmp_path).register(model.SerializeToString(), name="t", version="1", metrics={}, now=0.0)
    served = OnnxModel.load(model.SerializeToString())  # served from the file's own graph, with a warning
    x = _rows(np.random.default_rng(10), 200)
    with caplog.at_level(logging.WARNING):
        assert np.max(np.abs(served.run(x)[1] - gbr.predict(x))) < 1e-5
    assert "serving with the file's own graph" in caplog.text
    for entry in model.metadata_props:
        if entry.key == TABLES_META:
            entry.value = '{"model_zlib_base64": "not base64!", "from_rows": 64}'
    with pytest.raises(ModelError, match="unreadable lookup_tables metadata"):
        OnnxModel.load(model.SerializeToString())


def _earlier_layout(gbr, payload: bytes) -> onnx.ModelProto:
    """A file as the previous exporter wrote it: the tables as its graph, the plain trees in ``small_batch``."""
    tables, walk = compile_pipeline(gbr, WIDTH)
    for entry in onnx.load_from_string(payload).metadata_props:
        if entry.key != TABLES_META:
            tables.metadata_props.add().CopyFrom(entry)
    spec = {"below_rows": SMALL_BATCH, "model_base64": base64.b64encode(walk.SerializeToString()).decode()}
    tables.metadata_props.add(key=SMALL_BATCH_META, value=json.dumps(spec))
    return tables


def test_files_of_the_earlier_layout_are_served(gbr):
    old = _earlier_layout(gbr, export_onnx(gbr, name="t", version="1", trained_at=0.0, metrics={}))
    model = OnnxModel.load(old.SerializeToString())
    assert model.small is not None and model.tables_session() is None
    rng = np.random.default_rng(6)
    for n in (1, SMALL_BATCH - 1, 1_000):
        x = _rows(rng, n)
        assert np.max(np.abs(model.run(x)[1] - gbr.predict(x))) < 1e-5
    for entry in old.metadata_props:
        if entry.key == SMALL_BATCH_META:
            entry.value = '{"model_base64": "bm90IGEgbW9kZWw=", "below_rows": 64}'
    with pytest.raises(ModelError, match="unreadable small_batch metadata"):
        OnnxModel.load(old.SerializeToString())


def test_skl2onnx_graphs_gain_tables_that_give_their_predictions(gbr, train_rows):
    """with_tables re-exports a model converted by skl2onnx (as the shipped ones were) without
    retraining: its graph and metadata kept, the tables added, predictions those of its own graph."""
    from skl2onnx import to_onnx

    plain = to_onnx(gbr, np.zeros((1, WIDTH), dtype=np.float32))
    for entry in onnx.load_from_string(export_onnx(gbr, name="t", version="1", trained_at=0.0,
                                                   metrics={})).metadata_props:
        if entry.key != TABLES_META:
            plain.metadata_props.add().CopyFrom(entry)
    payload = with_tables(plain.SerializeToString(), sample=train_rows)
    assert with_tables(payload, sample=train_rows) == payload  # re-exporting is idempotent
    again = onnx.load_from_string(payload)
    assert again.graph == plain.graph
    assert {e.key: e.value for e in again.metadata_props if e.key != TABLES_META} == {
        e.key: e.value for e in plain.metadata_props}
    model = OnnxModel.load(payload)
    rng = np.random.default_rng(8)
    for x in (_rows(rng, 3_000), _at_thresholds(gbr, rng)):
        by_tables, walked = (s.run(None, {"X": x})[0][:, 0] for s in (model.tables_session(), model.session))
        assert np.max(np.abs(by_tables - walked)) < 1e-6
    assert with_tables(to_onnx(build_pipeline("linear").fit(train_rows, _target(train_rows)),
                               np.zeros((1, WIDTH), dtype=np.float32)).SerializeToString()) is None


@pytest.mark.parametrize("name", ["liquidity-default", "fee-response-default"])
def test_shipped_models_carry_tables_that_give_their_predictions(name):
    import lnlens_models

    from lnlens_core.model.fee_model import FeeResponseModel

    payload = lnlens_models.model_bytes(name)
    model = (FeeResponseModel if name.startswith("fee") else OnnxModel).load(payload)
    assert model.tables_session() is not None
    width = len(model.INPUT_NAMES)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5_000, width)).astype(np.float32)
    x *= rng.choice(np.float32([1e-6, 1e-3, 1.0, 1e3, 1e6]), x.shape)
    x[rng.random(x.shape) < 0.2] = np.nan
    by_tables, walked = (s.run(None, {"X": x})[0][:, 0] for s in (model.tables_session(), model.session))
    # onnxruntime sums the plain trees' leaves in float32 (the tables are summed in float64): within
    # float32 rounding of the largest sums
    assert np.max(np.abs(by_tables - walked)) <= 1e-6 * max(1.0, float(np.max(np.abs(walked))))
