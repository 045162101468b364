"""Tree ensembles as binned lookup tables in ONNX: the same predictions, far fewer tree walks per row.

onnxruntime's tree operator walks every tree for every row: the default model's 150 trees cost ~450
data-dependent comparisons a row and the batch is bound by them (so is scikit-learn's, which is why
the two tie). The exporter rewrites the fitted ensemble, exactly:

1. Every threshold the trees test, rounded down to float32 (scikit-learn compares float32 inputs
   with float64 thresholds, so ``x <= t`` is ``x <= the largest float32 <= t``). A row's *bin* on a
   feature is how many of that feature's thresholds lie below its value.
2. Trees are grouped, greedily (the pair whose merged grid is smallest first), while the grid of a
   group's own bins stays within :data:`MAX_CELLS` cells; the group's table holds, for every cell,
   the sum of its trees' leaves (summed in float64, stored as float32). The graph computes the tables
   from each tree's values on its own small grid (``Gather`` to spread them, ``Sum``): every input is
   a constant, so onnxruntime builds them once, when the session opens, and the file stays small.
3. A few search trees over the features' bins (several features nested in one tree, up to
   :data:`MAX_LEAVES` leaves; each split at the weighted median of the training rows that reach it,
   so usual rows take few steps) add, at their leaves, each group's share of its cell number. The
   cell numbers are packed, bit fields of a float32 output (exact below 2**24), into a few outputs of
   one ``TreeEnsembleRegressor``; simple arithmetic unpacks them, ``GatherElements`` reads the
   tables and a ``ReduceSum`` adds the groups and the base value.

A tree whose own grid is over the limit (deep forests) stays a tree, walked as before. Missing
values are imputed first (the pipeline's ``SimpleImputer``, as an ``Imputer`` operator). A second,
small graph walks the original trees: it is the model file's own graph (any ONNX runtime reads it)
and serves batches under :data:`SMALL_BATCH` rows (fewer operators, so one channel is served as fast
as before); the tables' graph travels compressed in the file's metadata (:data:`TABLES_META`).
:func:`compile_onnx` reads the trees from a graph skl2onnx wrote instead (:func:`with_tables` adds
tables to such a file without retraining).

Only numpy and onnx are needed: the fitted scikit-learn objects are read through their public
attributes (``tree_``, ``estimators_``, ``learning_rate``, ``init_``, ``statistics_``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

__all__ = [
    "MAX_CELLS", "MAX_LEAVES", "SMALL_BATCH", "SMALL_BATCH_META", "TABLES_META",
    "Tree", "compile_onnx", "compile_pipeline", "ensemble_trees", "group_trees", "tables_entry", "with_tables",
]

MAX_CELLS = 2**19
"""The largest table one group of trees may have (float32 cells, 2 MiB). Larger groups mean fewer
groups, hence fewer outputs and lookups per row, at the price of memory and of the time to build the
tables when the model loads (not of file size: the file holds the trees, see the module docstring);
docs/MODEL.md has the benchmark's figures."""


@dataclass(slots=True)
class Tree:
    """One fitted regression tree, its leaves already scaled by the ensemble's weight."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float32, rounded down (see the module docstring)
    value: np.ndarray  # float64, per node (only leaves are read)

    def splits(self) -> dict[int, set[float]]:
        """The thresholds this tree tests, by feature."""
        out: dict[int, set[float]] = {}
        for f, t in zip(self.feature[self.left >= 0], self.threshold[self.left >= 0], strict=True):
            out.setdefault(int(f), set()).add(float(t))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The leaf value for every row of ``x`` (float32), walked level by level."""
        node = np.zeros(len(x), dtype=np.intp)
        inner = self.left[node] >= 0
        while inner.any():
            rows = np.flatnonzero(inner)
            at = node[rows]
            go_left = x[rows, self.feature[at]] <= self.threshold[at]
            node[rows] = np.where(go_left, self.left[at], self.right[at])
            inner[rows] = self.left[node[rows]] >= 0
        return self.value[node]


def _round_down32(t: np.ndarray) -> np.ndarray:
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


def _tree(estimator: Any, scale: float) -> Tree:
    t = estimator.tree_
    if t.n_outputs != 1:
        raise ValueError("only single-output trees")
    return Tree(
        left=np.asarray(t.children_left, dtype=np.intp),
        right=np.asarray(t.children_right, dtype=np.intp),
        feature=np.asarray(t.feature, dtype=np.intp),
        threshold=_round_down32(np.asarray(t.threshold, dtype=np.float64)),
        value=np.asarray(t.value, dtype=np.float64)[:, 0, 0] * scale,
    )


def ensemble_trees(model: Any) -> tuple[list[Tree], float] | None:
    """(the trees with their leaves scaled, the base value) of a fitted scikit-learn regression
    ensemble whose prediction is ``base + sum of leaves``; None for any other model."""
    name = type(model).__name__
    if name == "GradientBoostingRegressor":
        init = model.init_
        if isinstance(init, str) and init == "zero":
            base = 0.0
        elif type(init).__name__ == "DummyRegressor":
            base = float(np.asarray(init.constant_).reshape(-1)[0])
        else:
            return None
        return [_tree(e, float(model.learning_rate)) for e in model.estimators_[:, 0]], base
    if name in ("RandomForestRegressor", "ExtraTreesRegressor") and getattr(model, "n_outputs_", 1) == 1:
        return [_tree(e, 1.0 / len(model.estimators_)) for e in model.estimators_], 0.0
    return None


# ---- grouping -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    trees: list[int]
    splits: dict[int, set[float]] = field(default_factory=dict)

    def cells(self) -> int:
        return prod(len(s) + 1 for s in self.splits.values())

    def merged(self, other: _Group) -> dict[int, set[float]]:
        out = {f: set(s) for f, s in self.splits.items()}
        for f, s in other.splits.items():
            out.setdefault(f, set()).update(s)
        return out


def _merged_cells(a: dict[int, set[float]], b: dict[int, set[float]]) -> int:
    return prod(len(a.get(f, set()) | b.get(f, set())) + 1 for f in a.keys() | b.keys())


def group_trees(trees: list[Tree], max_cells: int = MAX_CELLS) -> tuple[list[_Group], list[int]]:
    """(groups whose grids fit in ``max_cells``, indices of trees too large to tabulate alone).

    Greedy: repeatedly merge the two groups whose merged grid is smallest, while it fits.
    """
    live: dict[int, _Group] = {}
    direct = []
    for i, tree in enumerate(trees):
        g = _Group([i], tree.splits())
        if g.cells() <= max_cells:
            live[i] = g
        else:
            direct.append(i)
    cost = {}
    for i in live:
        for j in live:
            if i < j:
                cost[i, j] = _merged_cells(live[i].splits, live[j].splits)
    while True:
        fits = [(c, pair) for pair, c in cost.items() if c <= max_cells]
        if not fits:
            break
        _, (i, j) = min(fits)
        live[i] = _Group(live[i].trees + live[j].trees, live[i].merged(live[j]))
        del live[j]
        cost = {p: c for p, c in cost.items() if j not in p and i not in p}
        for k in live:
            if k != i:
                cost[min(i, k), max(i, k)] = _merged_cells(live[i].splits, live[k].splits)
    return list(live.values()), direct


# ---- the graph ------------------------------------------------------------------------------


def _grid_values(tree: Tree, feats: list[int], axes: list[np.ndarray], width: int) -> np.ndarray:
    """The tree's leaf for every combination of ``axes`` (values of ``feats``), as an array of that shape."""
    mesh = np.meshgrid(*axes, indexing="ij")
    x = np.zeros((mesh[0].size if mesh else 1, width), dtype=np.float32)
    for f, m in zip(feats, mesh, strict=True):
        x[:, f] = m.reshape(-1)
    return tree.predict(x).reshape(tuple(len(a) for a in axes))


@dataclass(slots=True)
class _Piece:
    """One tree of a group on its own small grid, and how that grid spreads over the group's."""

    values: np.ndarray  # float64, over the tree's own bins (its features in the group's order)
    index: list[np.ndarray]  # per own feature: the own bin of each of the group's bins on it
    shape: tuple[int, ...]  # the group's grid shape, 1 on the features the tree does not test


def _table(group: _Group, trees: list[Tree], width: int) -> tuple[list[int], list[np.ndarray], list[_Piece]]:
    """(features, their sorted local thresholds, the pieces whose sum is the table over local bins)."""
    feats = sorted(group.splits)
    local = [np.array(sorted(group.splits[f]), dtype=np.float32) for f in feats]
    # A representative value for each bin j: the j-th threshold itself (j thresholds lie below it),
    # and +inf for the last bin.
    axes = [np.append(t, np.float32(np.inf)) for t in local]
    pieces = []
    for i in group.trees:
        own = trees[i].splits()
        mine = [k for k, f in enumerate(feats) if f in own]
        small = [np.append(np.array(sorted(own[feats[k]]), np.float32), np.float32(np.inf)) for k in mine]
        values = _grid_values(trees[i], [feats[k] for k in mine], small, width)
        index = [np.searchsorted(small[j][:-1], axes[k], side="left") for j, k in enumerate(mine)]
        pieces.append(_Piece(values, index, tuple(len(axes[k]) if k in mine else 1 for k in range(len(feats)))))
    return feats, local, pieces


def _spread(piece: _Piece) -> np.ndarray:
    """The piece over the group's grid (broadcastable to it)."""
    return (piece.values[np.ix_(*piece.index)] if piece.index else piece.values).reshape(piece.shape)


def _table_nodes(name: str, pieces: list[_Piece]) -> tuple[list, list]:
    """(nodes, initializers) computing a group's table, flat float32, from its trees' small grids.

    Every input is a constant, so onnxruntime computes the table once, when the session is created
    (constant folding): the file holds each tree's few values instead of the table's cells.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, terms = [], [], []
    for p, piece in enumerate(pieces):
        at = f"{name}_p{p}"
        inits.append(numpy_helper.from_array(np.asarray(piece.values, np.float64), at))
        for j, idx in enumerate(piece.index):
            inits.append(numpy_helper.from_array(idx.astype(np.int64), f"{at}_i{j}"))
            nodes.append(helper.make_node("Gather", [at, f"{at}_i{j}"], [f"{at}_g{j}"], axis=j))
            at = f"{at}_g{j}"
        inits.append(numpy_helper.from_array(np.array(piece.shape, np.int64), f"{name}_p{p}_shape"))
        nodes.append(helper.make_node("Reshape", [at, f"{name}_p{p}_shape"], [f"{name}_p{p}_spread"]))
        terms.append(f"{name}_p{p}_spread")
    nodes += [
        helper.make_node("Sum", terms, [f"{name}_sum"]),
        helper.make_node("Reshape", [f"{name}_sum", "minus_one"], [f"{name}_flat64"]),
        helper.make_node("Cast", [f"{name}_flat64"], [f"{name}_flat"], to=TensorProto.FLOAT),
    ]
    return nodes, inits


def _tree_ensemble(
    name: str, inp: str, out: str, n_targets: int, trees: list[tuple[list, list]], base: list[float]
):
    """A ``TreeEnsembleRegressor`` node (sum of leaves) from trees given as (nodes, leaves): nodes are
    (id, feature, threshold, true id, false id) with true id -1 for a leaf (ids numbered from 0 in
    each tree), leaves (node id, target, weight).
    """
    from onnx import helper

    a: dict[str, Any] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        "target_treeids", "target_nodeids", "target_ids", "target_weights",
    )}
    for tree_id, (nodes, leaves) in enumerate(trees):
        for node_id, feature, threshold, true_id, false_id in nodes:
            leaf = true_id < 0
            a["nodes_treeids"].append(tree_id)
            a["nodes_nodeids"].append(node_id)
            a["nodes_featureids"].append(0 if leaf else feature)
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_values"].append(0.0 if leaf else threshold)
            a["nodes_truenodeids"].append(0 if leaf else true_id)
            a["nodes_falsenodeids"].append(0 if leaf else false_id)
            a["nodes_missing_value_tracks_true"].append(0)
        for node_id, target, weight in leaves:
            a["target_treeids"].append(tree_id)
            a["target_nodeids"].append(node_id)
            a["target_ids"].append(target)
            a["target_weights"].append(weight)
    return helper.make_node(
        "TreeEnsembleRegressor", [inp], [out], name=name, domain="ai.onnx.ml",
        n_targets=n_targets, aggregate_function="SUM", post_transform="NONE", base_values=base, **a,
    )



def _walk(t: Tree) -> tuple[list, list]:
    nodes = [(n, int(t.feature[n]), float(t.threshold[n]), int(t.left[n]), int(t.right[n])) for n in range(len(t.left))]
    return nodes, [(n, 0, float(t.value[n])) for n in range(len(t.left)) if t.left[n] < 0]



def _gather(table: str, at: str, out: str) -> list:
    """``table[0, at]`` for a float matrix ``at`` of whole numbers, as a matrix of at's shape.

    GatherElements over a (1, n) view: onnxruntime's Gather copies element by element through a
    callback (~40x slower for this), GatherElements runs a plain loop.
    """
    from onnx import TensorProto, helper

    return [
        helper.make_node("Cast", [at], [f"{at}_i"], to=TensorProto.INT64),
        helper.make_node("Shape", [at], [f"{at}_shape"]),
        helper.make_node("Reshape", [f"{at}_i", "flat"], [f"{at}_row"]),
        helper.make_node("GatherElements", [table, f"{at}_row"], [f"{out}_row"], axis=1),
        helper.make_node("Reshape", [f"{out}_row", f"{at}_shape"], [out]),
    ]



WORD_BITS = 24
"""Bits of one packed output: onnxruntime sums float32 leaf weights, exact for whole numbers below 2**24."""

MAX_LEAVES = 4096
"""The most bins one search tree may tell apart: features are searched together (nested) up to this,
since onnxruntime's cost is mostly per tree walked, not per comparison."""

SMALL_BATCH = 64
"""Batches smaller than this are better served by walking the original trees (fewer operators: a single
channel stays as fast); larger ones go to the tables."""

TABLES_META = "lookup_tables"
"""The metadata entry carrying the tables' graph in a model file whose own graph walks the plain trees:
JSON ``{"from_rows": SMALL_BATCH, "model_zlib_base64": ...}``. The server opens it as a second session
(onnxruntime runs every operator of a graph whichever outputs are asked for, so one graph with both
would cost the sum). Compressed, it is ~15x smaller (its search trees' attributes repeat), and the
tables themselves are not in it: onnxruntime builds them from the trees' small grids when the session
is created. Any other ONNX runtime reads the file's own graph: the same predictions."""

SMALL_BATCH_META = "small_batch"
"""The earlier layout (tables as the file's graph, the plain trees' graph in this entry as
``{"below_rows": ..., "model_base64": ...}``, 6.5 MB files): still served."""


def tables_entry(tables: Any, from_rows: int = SMALL_BATCH) -> str:
    """The :data:`TABLES_META` metadata value for a tables model."""
    import base64
    import json
    import zlib

    packed = base64.b64encode(zlib.compress(tables.SerializeToString(), 9)).decode("ascii")
    return json.dumps({"from_rows": from_rows, "model_zlib_base64": packed}, sort_keys=True)


def with_tables(payload: bytes, *, sample: np.ndarray | None = None) -> bytes | None:
    """A tree-ensemble model file (``Imputer`` + ``TreeEnsembleRegressor``, as skl2onnx writes it) with
    its lookup tables added in :data:`TABLES_META`, its own graph and other metadata unchanged; None if
    the graph is of another kind. Re-exports a shipped model without retraining (exact: see
    :func:`compile_onnx`)."""
    import onnx

    model = onnx.load_from_string(payload)
    compiled = compile_onnx(model, sample=sample)
    if compiled is None:
        return None
    props = [(e.key, e.value) for e in model.metadata_props if e.key not in (TABLES_META, SMALL_BATCH_META)]
    del model.metadata_props[:]
    for key, value in [*props, (TABLES_META, tables_entry(compiled[0]))]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


@dataclass(slots=True)
class _Layout:
    """Where each group's cell number lives: output column (slot) and bit offset in it."""

    slot: list[int]
    shift: list[int]
    bits: list[int]
    slots: int


def _pack(cells: list[int], features: list[set[int]]) -> _Layout:
    """Groups' cell numbers packed into as few float32 outputs as fit, groups sharing features together
    (one leaf weight then serves several groups)."""
    bits = [max(1, (c - 1).bit_length()) for c in cells]
    slot, shift = [0] * len(cells), [0] * len(cells)
    used: list[int] = []
    members: list[set[int]] = []
    for g in sorted(range(len(cells)), key=lambda g: -bits[g]):
        fits = [k for k in range(len(used)) if used[k] + bits[g] <= WORD_BITS]
        if fits:
            k = max(fits, key=lambda k: (len(features[g] & members[k]), -k))
        else:
            used.append(0)
            members.append(set())
            k = len(used) - 1
        slot[g], shift[g] = k, used[k]
        used[k] += bits[g]
        members[k] |= features[g]
    return _Layout(slot, shift, bits, len(used))


def compile_pipeline(
    pipeline: Any, width: int, *, sample: np.ndarray | None = None, max_cells: int = MAX_CELLS,
    max_leaves: int = MAX_LEAVES,
):
    """The ONNX model of a fitted ``[SimpleImputer, tree ensemble]`` pipeline as binned lookup tables,
    or None for any other pipeline (the caller then converts it the usual way).

    :param sample: training rows: the search trees put their frequent bins near the root (any rows
        give the same predictions; these only make the usual ones faster).
    :returns: (the tables' model, the plain trees' model for small batches): input ``X`` float32
        (N, width), output ``variable`` float32 (N, 1), as skl2onnx's.
    """
    steps = [step for _, step in getattr(pipeline, "steps", [])]
    if len(steps) != 2 or type(steps[0]).__name__ != "SimpleImputer":
        return None
    imputer = steps[0]
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)) or getattr(imputer, "add_indicator", False):
        return None
    impute = np.nan_to_num(np.asarray(imputer.statistics_, dtype=np.float32), nan=0.0)
    if len(impute) != width:
        return None
    found = ensemble_trees(steps[1])
    if found is None:
        return None
    trees, base = found
    return _compile(trees, base, impute, width, sample, max_cells, max_leaves)


def compile_onnx(model: Any, *, sample: np.ndarray | None = None, max_cells: int = MAX_CELLS,
                 max_leaves: int = MAX_LEAVES):
    """:func:`compile_pipeline` for a model already in ONNX: an ``Imputer`` (NaN replaced) feeding one
    single-target ``TreeEnsembleRegressor`` (sum, no post-transform, ``BRANCH_LEQ`` splits), as skl2onnx
    converts a ``[SimpleImputer, gradient boosting or forest]`` pipeline; None for any other graph.

    The tables then give that graph's predictions exactly (its float32 thresholds are compared as
    stored), so a shipped model gains them without retraining.
    """
    from onnx import helper

    graph = model.graph
    ops = [n.op_type for n in graph.node]
    if ops != ["Imputer", "TreeEnsembleRegressor"] or len(graph.input) != 1:
        return None
    imp, ens = graph.node
    if ens.input[0] != imp.output[0] or imp.input[0] != graph.input[0].name:
        return None
    ia = {a.name: helper.get_attribute_value(a) for a in imp.attribute}
    a = {x.name: helper.get_attribute_value(x) for x in ens.attribute}
    dims = graph.input[0].type.tensor_type.shape.dim
    width = dims[-1].dim_value if dims else 0
    impute = np.asarray(ia.get("imputed_value_floats", []), dtype=np.float32)
    if not np.isnan(ia.get("replaced_value_float", 0.0)) or not width or len(impute) not in (1, width):
        return None
    impute = np.broadcast_to(impute, (width,)).copy()
    if (a.get("n_targets", 1) != 1 or a.get("aggregate_function", b"SUM") != b"SUM"
            or a.get("post_transform", b"NONE") != b"NONE" or "nodes_values" not in a):
        return None
    modes = [m.decode() for m in a["nodes_modes"]]
    if set(modes) - {"BRANCH_LEQ", "LEAF"} or set(a.get("target_ids", [0])) - {0}:
        return None
    tree_ids = np.asarray(a["nodes_treeids"])
    node_ids = np.asarray(a["nodes_nodeids"])
    trees = []
    for t in np.unique(tree_ids):
        at = np.flatnonzero(tree_ids == t)
        n = int(node_ids[at].max()) + 1
        tree = Tree(np.full(n, -1, np.intp), np.full(n, -1, np.intp), np.full(n, -2, np.intp),
                    np.zeros(n, np.float32), np.zeros(n))
        for k in at:
            node = int(node_ids[k])
            if modes[k] == "BRANCH_LEQ":
                tree.left[node], tree.right[node] = a["nodes_truenodeids"][k], a["nodes_falsenodeids"][k]
                tree.feature[node], tree.threshold[node] = a["nodes_featureids"][k], a["nodes_values"][k]
        for t2, node, w in zip(a["target_treeids"], a["target_nodeids"], a["target_weights"], strict=True):
            if t2 == t:
                tree.value[node] += float(np.float32(w))
        trees.append(tree)
    base = float(np.float32(a.get("base_values", [0.0])[0]))
    return _compile(trees, base, impute, width, sample, max_cells, max_leaves)


def _compile(trees: list[Tree], base: float, impute: np.ndarray, width: int, sample: np.ndarray | None,
             max_cells: int, max_leaves: int):
    from onnx import TensorProto, helper, numpy_helper

    if sample is not None:
        sample = np.asarray(sample, dtype=np.float32)
        sample = np.where(np.isnan(sample), impute[None, :], sample)
    groups, direct = group_trees(trees, max_cells)

    inits = [
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    parts: list[str] = []
    lookup: list = []
    fixed = base
    tables: list[tuple[int, list[_Piece]]] = []  # (cells, pieces) per group
    pairs: list[tuple[int, int, np.ndarray, int]] = []  # (group, feature, its thresholds there, stride)
    for group in groups:
        feats, local, pieces = _table(group, trees, width)
        if not feats:  # trees without a split: a constant
            fixed += float(sum(float(p.values.reshape(-1)[0]) for p in pieces))
            continue
        sizes = [len(t) + 1 for t in local]
        for k, (f, thr) in enumerate(zip(feats, local, strict=True)):
            pairs.append((len(tables), f, thr, prod(sizes[k + 1 :])))
        tables.append((prod(sizes), pieces))
    if not tables:  # no tree small enough to tabulate: the usual graph is as fast
        return None
    if tables:
        ng = len(tables)
        layout = _pack([n for n, _ in tables], [{f for g, f, _, _ in pairs if g == k} for k in range(ng)])
        feats, globs, weights = [], [], []
        for f in sorted({f for _, f, _, _ in pairs}):
            mine = [p for p in pairs if p[1] == f]
            glob = np.array(sorted({float(t) for _, _, thr, _ in mine for t in thr}), dtype=np.float32)
            w = np.zeros((layout.slots, len(glob) + 1))
            for g, _, thr, stride in mine:
                # the group's own bin for each global bin: how many of its thresholds lie below
                local_bin = np.searchsorted(np.searchsorted(glob, thr), np.arange(len(glob) + 1), side="left")
                w[layout.slot[g]] += local_bin * stride * 2.0 ** layout.shift[g]
            feats.append(f)
            globs.append(glob)
            weights.append(w)
        search = [
            _nested_tree([feats[i] for i in chunk], [globs[i] for i in chunk], [weights[i] for i in chunk], sample)
            for chunk in _chunks([len(g) + 1 for g in globs], max_leaves)
        ]
        offsets = np.cumsum([0] + [n for n, _ in tables[:-1]]).astype(np.float32)
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), "minus_one"))
        for k, (_, pieces) in enumerate(tables):
            built, consts = _table_nodes(f"table{k}", pieces)
            lookup += built
            inits += consts
        lookup += [
            helper.make_node("Concat", [f"table{k}_flat" for k in range(len(tables))], ["tables_flat"], axis=0),
            helper.make_node("Reshape", ["tables_flat", "flat"], ["tables"]),
        ]
        lookup.append(_tree_ensemble("bins", "Ximp", "packed", layout.slots, search, [0.0] * layout.slots))
        if layout.slots == ng:  # one group per output: the outputs are the cell numbers
            by_slot = np.zeros(ng, np.float32)
            by_slot[layout.slot] = offsets
            inits.append(numpy_helper.from_array(by_slot, "offsets"))
            lookup.append(helper.make_node("Add", ["packed", "offsets"], ["cell_at"]))
        else:
            # cell = floor(packed / 2**shift) - floor(packed / 2**(shift + bits)) * 2**bits, exact in
            # float32 (onnxruntime's float Mod calls fmod element by element: 30x slower); the
            # matrix products pick each group's output, scaled (one non-zero per column: exact)
            low = np.zeros((layout.slots, ng), np.float32)
            high = np.zeros((layout.slots, ng), np.float32)
            low[layout.slot, np.arange(ng)] = [2.0**-s for s in layout.shift]
            high[layout.slot, np.arange(ng)] = [2.0 ** -(s + b) for s, b in zip(layout.shift, layout.bits, strict=True)]
            inits += [
                numpy_helper.from_array(low, "pick_low"),
                numpy_helper.from_array(high, "pick_high"),
                numpy_helper.from_array(np.array([2.0**b for b in layout.bits], np.float32), "span"),
                numpy_helper.from_array(offsets, "offsets"),
            ]
            lookup += [
                helper.make_node("MatMul", ["packed", "pick_low"], ["shifted"]),
                helper.make_node("Floor", ["shifted"], ["low"]),
                helper.make_node("MatMul", ["packed", "pick_high"], ["shifted_high"]),
                helper.make_node("Floor", ["shifted_high"], ["high"]),
                helper.make_node("Mul", ["high", "span"], ["above"]),
                helper.make_node("Sub", ["low", "above"], ["cells"]),
                helper.make_node("Add", ["cells", "offsets"], ["cell_at"]),
            ]
        lookup += [
            *_gather("tables", "cell_at", "leaves"),
            helper.make_node("ReduceSum", ["leaves", "axis1"], ["grouped"], keepdims=1),
        ]
        parts.append("grouped")
    if direct:
        lookup.append(_tree_ensemble("trees", "Ximp", "walked", 1, [_walk(trees[i]) for i in direct], [0.0]))
        parts.append("walked")
    inits.append(numpy_helper.from_array(np.array([[fixed]], dtype=np.float32), "fixed"))
    total = "fixed"
    for k, part in enumerate(parts):
        lookup.append(helper.make_node("Add", [total, part], [f"sum{k}"]))
        total = f"sum{k}"
    lookup.append(helper.make_node("Identity", [total], ["by_tables"]))
    walk = [_tree_ensemble("walk", "Ximp", "by_trees", 1, [_walk(t) for t in trees], [base])]
    imputer = helper.make_node(
        "Imputer", ["X"], ["Ximp"], domain="ai.onnx.ml",
        imputed_value_floats=[float(v) for v in impute], replaced_value_float=float("nan"),
    )

    def model(nodes: list, result: str, initializers: list):
        out = helper.make_tensor_value_info
        graph = helper.make_graph(
            [imputer, *nodes, helper.make_node("Identity", [result], ["variable"])],
            "lnlens_tree_tables",
            [out("X", TensorProto.FLOAT, [None, width])],
            [out("variable", TensorProto.FLOAT, [None, 1])],
            initializer=initializers,
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
        made = helper.make_model(graph, opset_imports=opsets)
        made.ir_version = 8
        return made

    return model(lookup, "by_tables", inits), model(walk, "by_trees", [])


def _chunks(sizes: list[int], limit: int) -> list[list[int]]:
    """Indices of ``sizes`` in runs whose product stays within ``limit`` (largest first, first fit)."""
    chunks: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        k = next((k for k in range(len(chunks)) if room[k] >= sizes[i]), None)
        if k is None:
            chunks.append([])
            room.append(limit)
            k = len(chunks) - 1
        chunks[k].append(i)
        room[k] //= sizes[i]
    return chunks


def _nested_tree(feats: list[int], globs: list[np.ndarray], weights: list[np.ndarray], sample: np.ndarray | None):
    """One search tree over several features' bins, nested: a search over the first feature's bins,
    under each of its leaves one over the second's, and so on; a final leaf adds, per output, the
    sum of the weights of its bins. Each search splits at the weighted median of the sample rows
    that reach it (so frequent combinations take few steps)."""
    nodes: list[tuple[int, int, float, int, int]] = []
    leaves: list[tuple[int, int, float]] = []
    rows = sample if sample is not None else np.zeros((0, 0), np.float32)
    bins = [np.searchsorted(g, rows[:, f], side="left") if len(rows) else np.zeros(0, np.intp)
            for f, g in zip(feats, globs, strict=True)]

    def search(level: int, lo: int, hi: int, acc: np.ndarray, at: np.ndarray) -> int:
        node = len(nodes)
        nodes.append((node, 0, 0.0, -1, -1))
        if lo == hi:
            acc = acc + weights[level][:, lo]
            if level + 1 < len(feats):
                here = at[bins[level][at] == lo] if len(at) else at
                nodes.pop()
                return descend(level + 1, acc, here)
            entries = [(node, k, float(v)) for k, v in enumerate(acc) if v != 0.0]
            leaves.extend(entries or [(node, 0, 0.0)])
            return node
        counts = np.bincount(bins[level][at] - lo, minlength=hi - lo + 1) if len(at) else np.zeros(hi - lo + 1)
        freq = counts + max(1.0, 0.01 * len(at) / (hi - lo + 1))
        cum = np.cumsum(freq)[:-1]
        mid = lo + int(np.argmin(np.abs(2 * cum - freq.sum())))
        t = search(level, lo, mid, acc, at[bins[level][at] <= mid] if len(at) else at)
        f = search(level, mid + 1, hi, acc, at[bins[level][at] > mid] if len(at) else at)
        nodes[node] = (node, feats[level], float(globs[level][mid]), t, f)
        return node

    def descend(level: int, acc: np.ndarray, at: np.ndarray) -> int:
        return search(level, 0, len(globs[level]), acc, at)

    descend(0, np.zeros(weights[0].shape[0]), np.arange(len(rows)))
    return nodes, leaves
