"""Pipelines, comparison, importance, ONNX export and the online learner (metrics: :mod:`.metrics`)."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...extras import require
from ..features import FEATURE_NAMES, FEATURE_VERSION
from ..target import MOVES, TARGET_HORIZON_S
from .dataset import Dataset, iter_chunks
from .drift import FeatureStats
from .metrics import baselines, confidence_table, evaluate

KINDS = ("gbr", "forest", "linear", "sgd")
TARGET_DEFINITION = (
    f"the local ratio (the current one moved by one of {len(MOVES)} steps from -100 % to +100 %, the finest "
    f"±{MOVES[len(MOVES) // 2 + 1]:.2%}) at which the channel would have earned the most fees from its "
    f"realised forward demand over the next {TARGET_HORIZON_S // 3600} h, net of the circular-rebalance route cost "
    "of reaching it (the current ratio when staying is among the best; docs/MODEL.md)"
)


def build_pipeline(kind: str, *, seed: int = 0):
    """An unfitted scikit-learn pipeline: median imputation (NaN stays NaN until here), then the model."""
    require("sklearn", extra="train", what="training the liquidity model")
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge, SGDRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    if kind == "gbr":
        model = GradientBoostingRegressor(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, min_samples_leaf=20, random_state=seed
        )
        return make_pipeline(imputer, model)
    if kind == "forest":
        return make_pipeline(
            imputer,
            RandomForestRegressor(n_estimators=50, max_depth=8, min_samples_leaf=10, random_state=seed, n_jobs=1),
        )
    if kind == "linear":
        return make_pipeline(imputer, StandardScaler(), Ridge(alpha=1.0))
    if kind == "sgd":
        return make_pipeline(
            imputer, StandardScaler(), SGDRegressor(learning_rate="invscaling", eta0=0.01, random_state=seed)
        )
    raise ValueError(f"unknown model kind {kind!r} (choose from {', '.join(KINDS)})")


OUTPUT = "adjustment"
"""The pipelines learn the move ``optimal - current``; a ratio is ``current + move``, clipped to [0, 1]."""


def fit(pipeline, data: Dataset):
    """Fit on the adjustment each sample needed (see :data:`OUTPUT`)."""
    return pipeline.fit(data.x.astype(np.float32), data.y - data.current)


def predict(pipeline, x: np.ndarray) -> np.ndarray:
    """The pipeline's ratios for float32 inputs (as ONNX sees them), clipped to [0, 1]."""
    x32 = x.astype(np.float32)
    return np.clip(x32[:, 0].astype(np.float64) + pipeline.predict(x32), 0.0, 1.0)


def _versions() -> dict[str, str]:
    import onnx
    import skl2onnx
    import sklearn

    return {
        "sklearn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def export_onnx(
    pipeline,
    *,
    name: str,
    version: str,
    trained_at: float,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    feature_stats: FeatureStats | None = None,
    input_names: Sequence[str] = FEATURE_NAMES,
    output: str = OUTPUT,
    target: str = TARGET_DEFINITION,
    rows: np.ndarray | None = None,
) -> bytes:
    """The fitted pipeline as ONNX (float32 input ``X`` of width len(input_names)) with metadata_props:
    feature names and version, target, metrics, library versions and anything in ``extra`` (JSON).

    :param feature_stats: the training rows' statistics, which drift indicators compare live inputs
        with (:mod:`.drift`); without them a served model has no input drift (and says so).
    :param input_names: the columns, the feature schema's unless a model takes more (the fee-response
        model adds its fee multiplier); ``output`` and ``target`` say what it predicts.
    :param rows: training rows, for a tree ensemble: its search trees then reach the usual values in
        fewer steps (the predictions are the same with or without them).
    """
    require("skl2onnx", extra="train", what="exporting the liquidity model")
    from skl2onnx import to_onnx

    from .treegraph import TABLES_META, compile_pipeline, tables_entry

    # A tree ensemble's file walks its trees (exact thresholds, treegraph.py) and carries, compressed in
    # its metadata, the same trees as binned lookup tables for large batches (same predictions, several
    # times faster); anything else is converted by skl2onnx.
    compiled = compile_pipeline(pipeline, len(input_names), sample=rows)
    serving: dict[str, Any] = {}
    if compiled is None:
        onx = to_onnx(pipeline, np.zeros((1, len(input_names)), dtype=np.float32))
    else:
        tables, onx = compiled
        serving[TABLES_META] = tables_entry(tables)
    props = {
        "name": name,
        "version": version,
        "feature_names": json.dumps(list(input_names)),
        "feature_version": str(FEATURE_VERSION),
        "target": target,
        "trained_at": repr(trained_at),
        "metrics": json.dumps(metrics, sort_keys=True),
        "libraries": json.dumps(_versions(), sort_keys=True),
        "model_kind": type(pipeline[-1]).__name__,
        "output": output,
    }
    if feature_stats is not None:
        props["feature_stats"] = json.dumps(feature_stats.to_json(), sort_keys=True)
    for key, value in {**serving, **(extra or {})}.items():
        props[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    del onx.metadata_props[:]
    for key, value in props.items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    onx.producer_name = "lnlens"
    return onx.SerializeToString()


def compare(train: Dataset, val: Dataset, kinds: Sequence[str] = ("gbr", "linear"), *, seed: int = 0):
    """Fit each kind on ``train``, score it on ``val`` next to the naive baselines.

    :returns: (metrics by name, fitted pipelines by kind, validation predictions by kind).
    """
    results: dict[str, dict[str, float]] = dict(baselines(val))
    fitted, preds = {}, {}
    for kind in kinds:
        if kind == "sgd":
            learner = OnlineLearner(seed=seed)
            for chunk in iter_chunks(train, 256):
                learner.update(chunk)
            pipe = learner.pipeline
        else:
            pipe = fit(build_pipeline(kind, seed=seed), train)
        fitted[kind] = pipe
        preds[kind] = predict(pipe, val.x)
        results[kind] = evaluate(preds[kind], val)
    return results, fitted, preds


def permutation_importance_table(pipeline, val: Dataset, *, seed: int = 0, repeats: int = 3) -> list[dict[str, Any]]:
    """Permutation importance of the fitted model on held-out data: the rise in MAE of the ratio
    when one feature's column is shuffled, mean over ``repeats`` shuffles."""
    rng = np.random.default_rng(seed)
    base = evaluate(predict(pipeline, val.x), val)["mae"]
    rows: list[tuple[str, float]] = []
    for j, name in enumerate(FEATURE_NAMES):
        rises = []
        for _ in range(repeats):
            x = val.x.copy()
            x[:, j] = x[rng.permutation(len(x)), j]
            if j == 0:  # the current ratio is also what the move is added to: keep that, shuffle the input only
                moved = np.clip(val.current + pipeline.predict(x.astype(np.float32)), 0, 1)
                rises.append(evaluate(moved, val)["mae"] - base)
            else:
                rises.append(evaluate(predict(pipeline, x), val)["mae"] - base)
        rows.append((name, float(np.mean(rises))))
    return [{"feature": n, "mae_increase": v} for n, v in sorted(rows, key=lambda r: -r[1])]


def parity(pipeline, payload: bytes, x: np.ndarray) -> float:
    """Max |onnxruntime - scikit-learn| over ``x`` (float32 inputs to both)."""
    from ..inference import OnnxModel

    return float(np.nanmax(np.abs(OnnxModel.load(payload).predict(x) - predict(pipeline, x)))) if len(x) else 0.0


def make_model(
    train: Dataset,
    val: Dataset,
    *,
    kind: str = "gbr",
    seed: int = 0,
    name: str,
    version: str,
    now: float,
    data_note: str = "",
    extra: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Fit ``kind`` and the linear model on ``train``, score both and the baselines on ``val``,
    export ``kind`` to ONNX with its metrics, confidence table and importance in the metadata.

    :returns: (ONNX bytes, report: metrics by model, confidence, importance, parity, data summary).
    """
    if not len(train) or not len(val):
        raise ValueError(f"need training and validation samples (have {len(train)} and {len(val)})")
    from time import perf_counter  # a duration, not the wall clock

    kinds = [kind] + [k for k in ("linear",) if k != kind]
    started = perf_counter()
    results, fitted, preds = compare(train, val, kinds, seed=seed)
    fit_s = perf_counter() - started
    pipe = fitted[kind]
    table = confidence_table(preds[kind], val)
    importance = permutation_importance_table(pipe, val, seed=seed)
    data = {
        "train_samples": len(train),
        "validation_samples": len(val),
        "train_groups": sorted(set(train.groups)),
        "validation_groups": sorted(set(val.groups)),
        "train_hash": train.hash(),
        "note": data_note,
    }
    metrics = {"model": results[kind], "baselines": {k: v for k, v in results.items() if k != kind}, "kind": kind}
    payload = export_onnx(
        pipe,
        name=name,
        version=version,
        trained_at=now,
        metrics=metrics,
        extra={"confidence": table, "importance": importance, "data": data, **(extra or {})},
        feature_stats=FeatureStats.of(train.x),
        rows=train.x,
    )
    report = {
        "metrics": metrics,
        "confidence": table,
        "importance": importance,
        "data": data,
        "parity_max_abs_diff": parity(pipe, payload, val.x),
        "fit_seconds": fit_s,
    }
    return payload, report


class OnlineLearner:
    """Incremental updates as targets mature: an SGD regressor behind a fixed imputer and scaler.

    The imputer medians and scaling are fitted once, on the first batch, so the learner's
    pipeline stays one convertible scikit-learn object; each later batch is a ``partial_fit``.
    :attr:`stats` accumulates the statistics of every row learned (exported for drift indicators).
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.pipeline = build_pipeline("sgd", seed=seed)
        self.seen = 0
        self.stats = FeatureStats()

    def update(self, data: Dataset) -> int:
        """Learn from these samples; returns how many samples the learner has seen in all."""
        if not len(data):
            return self.seen
        x = data.x.astype(np.float32)
        imputer, scaler, sgd = (step for _, step in self.pipeline.steps)
        if self.seen == 0:
            imputer.fit(x)
            scaler.fit(imputer.transform(x))
        sgd.partial_fit(scaler.transform(imputer.transform(x)), data.y - data.current)
        self.stats.update(data.x)
        self.seen += len(data)
        return self.seen

    def predict(self, x: np.ndarray) -> np.ndarray:
        return predict(self.pipeline, x)
