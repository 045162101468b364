"""Serving the liquidity model: onnxruntime only, CPU, few threads, one batch for all channels.

onnxruntime is imported lazily (the ``ml`` extra), so the CLN plugin starts without it.
:meth:`OnnxModel.load` checks the model's metadata against this code's feature schema
(:data:`~lnlens_core.model.features.FEATURE_NAMES`, :data:`~lnlens_core.model.features.FEATURE_VERSION`)
and the input's width, and raises :class:`~lnlens_core.errors.ModelError` on any mismatch:
callers catch it and carry on rule-based. scikit-learn is never imported here.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import MissingExtra, ModelError
from ..extras import require
from .features import FEATURE_NAMES, FEATURE_VERSION

__all__ = ["OnnxModel", "read_metadata", "shipped_model_file"]

log = logging.getLogger(__name__)


def shipped_model_file(name: str) -> Path | None:
    """A model file shipped in the ``lnlens_models`` package, through importlib.resources (None when absent)."""
    from importlib.resources import files

    try:
        root = files("lnlens_models")
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(name)))
    return path if path.is_file() else None


def read_metadata(session: Any) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


@dataclass(slots=True)
class OnnxModel:
    """A loaded model. ``metadata`` holds the ONNX metadata_props as strings."""

    session: Any
    input_name: str
    metadata: dict[str, str]
    source: str
    small: tuple[Any, int] | None = None
    """(a session walking the plain trees, the rows below which a batch goes to it), for files of the
    earlier layout whose own graph is the lookup tables (``small_batch`` metadata)."""
    tables_graph: bytes | None = None
    """The same trees as binned lookup tables (``lookup_tables`` metadata, lnlens_core/model/learning/treegraph.py),
    a zlib-compressed graph opened on the first batch of at least :attr:`tables_from` rows
    (:meth:`tables_session`): a node with fewer channels never pays for it (~0.15 s of CPU, the tables built
    then, and ~13 MB resident)."""
    tables_from: int = 0
    opener: Callable[[bytes], Any] | None = None
    """Opens a graph with this model's session options."""
    _tables: Any = None

    INPUT_NAMES: ClassVar[tuple[str, ...]] = FEATURE_NAMES
    """The columns this class feeds the model, in order; its metadata must name exactly these."""
    OUTPUT: ClassVar[str] = "adjustment"
    """What the model's output means (metadata ``output``): here the move from the current ratio."""

    @classmethod
    def load(cls, model: str | Path | bytes, *, threads: int = 1) -> OnnxModel:
        """Open a model file (or its bytes) and check it against the feature schema.

        ``threads`` > 1 splits a batch's rows over that many intra-op threads (same predictions, see
        ``benchmarks/bench_model.py`` for what it buys); one thread is the default for shared cores.

        :raises ModelError: onnxruntime missing, unreadable file, or features/version/width mismatch.
        """
        try:
            ort = require("onnxruntime", extra="ml", what="the liquidity model")
        except MissingExtra as exc:
            raise ModelError(str(exc)) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if threads > 1:
            # Helper threads sleep between batches instead of spinning: the node's cores are shared
            # with lightningd and bitcoind, and a batch comes once per interval.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = "<bytes>" if isinstance(model, bytes) else str(model)

        def open_session(payload: bytes) -> Any:
            return ort.InferenceSession(payload, sess_options=options, providers=["CPUExecutionProvider"])

        try:
            payload = model if isinstance(model, bytes) else Path(model).read_bytes()
            session = open_session(payload)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"{source}: cannot load the model ({exc})") from exc
        meta = read_metadata(session)
        cls._check(meta, session, source)
        small = tables = None
        from_rows = 0
        try:
            if meta.get("lookup_tables"):
                spec = json.loads(meta["lookup_tables"])
                tables = base64.b64decode(spec["model_zlib_base64"], validate=True)
                from_rows = int(spec["from_rows"])
            elif meta.get("small_batch"):
                spec = json.loads(meta["small_batch"])
                small = (open_session(base64.b64decode(spec["model_base64"], validate=True)), int(spec["below_rows"]))
        except Exception as exc:  # noqa: BLE001 - JSON, base64 and onnxruntime errors alike
            key = "lookup_tables" if meta.get("lookup_tables") else "small_batch"
            raise ModelError(f"{source}: unreadable {key} metadata ({exc})") from exc
        return cls(session, session.get_inputs()[0].name, meta, source, small, tables, from_rows, open_session)

    def tables_session(self) -> Any:
        """The lookup tables' session (opened now if not yet), or None for a model without tables.

        :raises ModelError: the tables' graph cannot be opened or does not take this model's rows.
        """
        if self._tables is None and self.tables_graph is not None and self.opener is not None:
            try:
                session = self.opener(zlib.decompress(self.tables_graph))
                inputs = session.get_inputs()
                if len(inputs) != 1 or inputs[0].shape[-1] != len(self.INPUT_NAMES):
                    raise ValueError(f"its graph takes {len(inputs)} input(s) of shape {inputs[0].shape}")
            except Exception as exc:  # noqa: BLE001 - zlib and onnxruntime errors alike
                raise ModelError(f"{self.source}: unreadable lookup_tables metadata ({exc})") from exc
            self._tables = session
        return self._tables

    @classmethod
    def _check(cls, meta: dict[str, str], session: Any, source: str) -> None:
        problems = []
        expected = cls.INPUT_NAMES
        try:
            names = tuple(json.loads(meta.get("feature_names", "null")) or ())
        except ValueError:
            names = ()
        if names != expected:
            missing = [n for n in expected if n not in names]
            extra = [n for n in names if n not in expected]
            problems.append(
                f"its features differ from this lnlens's (missing {missing or 'none'}, unknown {extra or 'none'}"
                f"{', order differs' if not missing and not extra else ''})"
            )
        if meta.get("output") != cls.OUTPUT:
            problems.append(f"its output is {meta.get('output')!r}, this lnlens reads {cls.OUTPUT!r}")
        if meta.get("feature_version") != str(FEATURE_VERSION):
            problems.append(f"feature version {meta.get('feature_version')!r}, this lnlens computes {FEATURE_VERSION}")
        inputs = session.get_inputs()
        width = inputs[0].shape[-1] if len(inputs) == 1 and inputs[0].shape else None
        if len(inputs) != 1 or width != len(expected):
            problems.append(f"it takes {len(inputs)} input(s) of width {width}, not one of {len(expected)}")
        if problems:
            raise ModelError(f"{source}: model does not match the feature schema: " + "; ".join(problems))

    @property
    def name(self) -> str:
        return self.metadata.get("name", "?")

    @property
    def version(self) -> str:
        return self.metadata.get("version", "?")

    def json_meta(self, key: str) -> Any:
        """A metadata entry stored as JSON (metrics, confidence, libraries), or None."""
        raw = self.metadata.get(key)
        return json.loads(raw) if raw else None

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the rows as float32, the model's raw output per row) for a batch of rows of :attr:`INPUT_NAMES`.

        A tree-ensemble model carries in its metadata (``lookup_tables``) the same trees as binned lookup
        tables (lnlens_core/model/learning/treegraph.py), which serve batches from so many rows (several times
        faster there; small batches walk the trees, fewer operators).
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.INPUT_NAMES):
            raise ModelError(f"expected rows of {len(self.INPUT_NAMES)} input features, got shape {x.shape}")
        if not len(x):
            return x, np.zeros(0)
        session = self.session
        if self.tables_graph is not None and len(x) >= self.tables_from:
            try:
                session = self.tables_session()
            except ModelError as exc:  # refused when stored (ModelRegistry.register); the own graph agrees
                log.warning("%s: serving with the file's own graph (the same predictions, slower)", exc)
                self.tables_graph = None
        elif self.small is not None and len(x) < self.small[1]:
            session = self.small[0]
        name = self.input_name if session is self.session else session.get_inputs()[0].name
        return x, np.asarray(session.run(None, {name: x})[0], dtype=np.float64).reshape(-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Optimal local ratios for a batch of feature rows (NaN allowed), clipped to [0, 1]."""
        rows = np.asarray(x, dtype=np.float64)
        _, out = self.run(rows)
        # The model gives the move from the current ratio (feature 0); no current ratio, no prediction (NaN). The
        # move is added to the caller's ratio, not to its float32 copy the model read: a move of 0 is no move.
        return np.clip(rows[:, 0] + out, 0.0, 1.0)
