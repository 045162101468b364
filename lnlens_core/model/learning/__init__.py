"""Training the liquidity model: datasets, pipelines, metrics, ONNX export, the online learner.

Needs the ``train`` extra (scikit-learn, skl2onnx, onnx), imported lazily through
:func:`~lnlens_core.extras.require`, so nothing here loads unless an operator trains.
Serving a model needs only onnxruntime (:mod:`lnlens_core.model.inference`).

A :class:`Dataset` holds one row per (channel, sample time): the features of
:mod:`lnlens_core.model.features` and the replay target of :mod:`lnlens_core.model.target`,
with the net-value curve kept so that any prediction can be scored by what it
would have earned, net of reaching it. The simulator's data (``models/train``) and the store's
(:func:`dataset_from_store`) build it with the same functions; a running process builds
the store's samples as they mature (:class:`SampleStream`), reading only what each needs.
"""

from .dataset import Dataset, dataset_from_store, iter_chunks, samples_at, time_split
from .drift import FeatureStats, drift_report, drift_summary
from .incremental import SampleStream
from .metrics import baselines, confidence_table, evaluate
from .models import (
    KINDS,
    OUTPUT,
    TARGET_DEFINITION,
    OnlineLearner,
    build_pipeline,
    compare,
    export_onnx,
    fit,
    make_model,
    parity,
    permutation_importance_table,
    predict,
)
from .online import OnlineSession, OnlineTrainer, TickResult
from .policy_history import PolicyHistory

__all__ = [
    "Dataset",
    "KINDS",
    "OUTPUT",
    "TARGET_DEFINITION",
    "samples_at",
    "dataset_from_store",
    "iter_chunks",
    "time_split",
    "build_pipeline",
    "fit",
    "predict",
    "evaluate",
    "baselines",
    "compare",
    "confidence_table",
    "export_onnx",
    "make_model",
    "parity",
    "permutation_importance_table",
    "OnlineLearner",
    "OnlineSession",
    "OnlineTrainer",
    "TickResult",
    "SampleStream",
    "PolicyHistory",
    "FeatureStats",
    "drift_report",
    "drift_summary",
]
