"""Liquidity model benchmarks for issues [G] and [M], each against a baseline timed in the same run.

- batch: onnxruntime predicting 10,000 channels at once vs scikit-learn's ``predict`` on the same
  fitted pipeline and the same float32 rows (C-contiguous, prepared once; raw outputs on both sides):
  the model as lnlens exports it (its trees as binned lookup tables, lnlens_core/model/learning/treegraph.py)
  with one and two intra-op threads, and skl2onnx's plain conversion of the same pipeline (how models
  were exported before);
- single: one channel per call (the latency a plugin sees per decision), same comparison;
- the shipped model's tables against its own graph (no scikit-learn object ships with it);
- the file's size and the time to load it and open its tables;
- training: the time to fit the default model's pipeline on simulated data of the default
  plan's size (read from the shipped model card), and the card's own recorded build time.

The served model is the default model's kind (gradient boosting, the default settings), fitted on
rows resampled from simulated mainnet data (two neighbourhoods, two seeds; one with ``--quick``) to a
fixed continuous quantity of those rows, so every runtime serves exactly the same trees. Each figure
is the median over pairs timed back to back with the baseline, in wall-clock time and in this
process's CPU time (which a busy machine disturbs less: on 2 cores shared by many processes the wall
clock also counts waiting for a core), with the quartiles of the per-pair ratios.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_model.py --quick``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from time import perf_counter, process_time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "train"))


def _paired(fn, base, pairs: int, block: int = 1) -> dict[str, float]:
    """Medians per call of ``fn`` and of ``base`` (wall ``fn_s``/``base_s``, CPU ``fn_cpu``/``base_cpu``)
    and of the per-pair ratios fn/base (``ratio`` wall, ``cpu_ratio``).

    A pair times ``block`` consecutive calls of each, back to back (alternating which goes first),
    so a load change on the shared machine hits both: the ratio is what the figures mean, the
    absolute times move with load. Blocks keep each side's caches warm as in a run of calls.
    """
    fn(), base()
    wall: dict[object, list[float]] = {fn: [], base: []}
    cpu: dict[object, list[float]] = {fn: [], base: []}
    for i in range(pairs):
        for f in (fn, base) if i % 2 == 0 else (base, fn):
            t, c = perf_counter(), process_time()
            for _ in range(block):
                f()
            cpu[f].append((process_time() - c) / block)
            wall[f].append((perf_counter() - t) / block)
    med = statistics.median
    walls = [y / x for x, y in zip(wall[fn], wall[base], strict=True) if x > 0]
    cpus = [y / x for x, y in zip(cpu[fn], cpu[base], strict=True) if x > 0]
    return {
        "fn_s": med(wall[fn]), "base_s": med(wall[base]), "fn_cpu": med(cpu[fn]), "base_cpu": med(cpu[base]),
        "ratio": 1 / med(walls), "cpu_ratio": 1 / med(cpus),
        "quartiles": statistics.quantiles(walls, n=4)[::2] if len(walls) > 1 else [walls[0]] * 2,
        "cpu_quartiles": statistics.quantiles(cpus, n=4)[::2] if len(cpus) > 1 else [cpus[0]] * 2,
    }


def _line(label: str, r: dict, unit: float, unit_name: str, base: str = "scikit-learn") -> str:
    q, cq = r["quartiles"], r["cpu_quartiles"]
    return (
        f"{label}: onnxruntime {r['fn_s'] * unit:.1f} {unit_name}, {base} {r['base_s'] * unit:.1f} {unit_name} "
        f"-> {1 / r['ratio']:.2f}x faster (wall, pairs' quartiles {q[0]:.2f}-{q[1]:.2f}); "
        f"CPU {r['fn_cpu'] * unit:.1f} vs {r['base_cpu'] * unit:.1f} {unit_name} -> {1 / r['cpu_ratio']:.2f}x "
        f"({cq[0]:.2f}-{cq[1]:.2f})"
    )


def _load_times(payloads: list[bytes], pairs: int) -> list[tuple[float, float]]:
    """Median (wall, CPU) seconds of OnnxModel.load and opening the tables' session (what the first batch
    of 64 rows or more adds) for each payload, loads interleaved."""
    from lnlens_core.model.inference import OnnxModel

    wall: list[list[float]] = [[] for _ in payloads]
    cpu: list[list[float]] = [[] for _ in payloads]
    for _ in range(pairs):
        for k, payload in enumerate(payloads):
            t, c = perf_counter(), process_time()
            OnnxModel.load(payload).tables_session()
            cpu[k].append(process_time() - c)
            wall[k].append(perf_counter() - t)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a shorter simulation")
    args = p.parse_args(argv)

    import lnlens_models
    import onnx
    from lnlens_sim.scenario import SimSettings, load_graph
    from simdata import Run, collect, mainnet_centres
    from skl2onnx import to_onnx

    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.learning import build_pipeline, export_onnx, fit
    from lnlens_core.model.learning.treegraph import TABLES_META, compile_pipeline

    graph = load_graph(SimSettings(network="mainnet"))
    hours = 12.0 if args.quick else 24.0
    centres = mainnet_centres(graph, 1 if args.quick else 2)
    data = collect([Run(c, seed, hours=hours) for c in centres for seed in ((1,) if args.quick else (1, 2))])
    rng = np.random.default_rng(0)
    card = lnlens_models.model_card()
    n_train = int(card["data"]["train_samples"])

    # Training: the default pipeline on as many rows as the default model saw (resampled).
    rows = rng.integers(0, len(data), n_train)
    train = data.select(np.zeros(len(data), dtype=bool))
    train.x, train.y, train.current = data.x[rows], data.y[rows], data.current[rows]
    t = perf_counter()
    fit(build_pipeline("gbr", seed=0), train)
    fit_s = perf_counter() - t
    # Serving: the same pipeline fitted to a fixed continuous quantity of the same rows (log10 of each
    # row's net-value curve spread: how much its balance matters), so its trees split like a working
    # model's whatever the liquidity target gives on this short simulation (it can be constant).
    spread = np.log10(1.0 + data.curves.max(axis=1) - data.curves.min(axis=1))
    pipe = build_pipeline("gbr", seed=0).fit(train.x.astype(np.float32), spread[rows])
    t = perf_counter()
    payload = export_onnx(pipe, name="bench", version="1", trained_at=0.0, metrics={}, rows=train.x)
    export_s = perf_counter() - t
    plain_model = to_onnx(pipe, np.zeros((1, data.x.shape[1]), dtype=np.float32))
    plain_model.metadata_props.extend(
        e for e in onnx.load_from_string(payload).metadata_props if e.key != TABLES_META
    )
    plain = plain_model.SerializeToString()
    tables_graph, _ = compile_pipeline(pipe, data.x.shape[1], sample=train.x)
    model, before = OnnxModel.load(payload, threads=1), OnnxModel.load(plain, threads=1)
    model2 = OnnxModel.load(payload, threads=2)

    x10k = np.ascontiguousarray(data.x[rng.integers(0, len(data), 10_000)], dtype=np.float32)
    noisy = rng.standard_normal((10_000, data.x.shape[1])).astype(np.float32)
    noisy[rng.random(noisy.shape) < 0.1] = np.nan
    worst = 0.0
    for x in (x10k, noisy):  # the same predictions, within float32 rounding of the sums
        for served in (model, model2, before):
            worst = max(worst, float(np.nanmax(np.abs(served.run(x)[1] - pipe.predict(x)))))
    assert worst < 1e-5, worst
    repeat = 7 if args.quick else 21
    skl = lambda: pipe.predict(x10k)  # noqa: E731 - the raw outputs on both sides (no clipping)
    batch = _paired(lambda: model.run(x10k), skl, repeat)
    batch2 = _paired(lambda: model2.run(x10k), skl, repeat)
    batch_before = _paired(lambda: before.run(x10k), skl, repeat)
    one = x10k[:1]
    single_pairs = 4 if args.quick else 20
    single = _paired(lambda: model.run(one), lambda: pipe.predict(one), single_pairs, 100)
    single_before = _paired(lambda: before.run(one), lambda: pipe.predict(one), single_pairs, 100)

    # The shipped model: its tables against its own graph (no scikit-learn object ships with it).
    shipped = OnnxModel.load(lnlens_models.model_bytes())
    by_tables, by_graph = (lambda s=s: s.run(None, {"X": x10k})[0] for s in (shipped.tables_session(), shipped.session))
    shipped_err = float(np.max(np.abs(by_tables() - by_graph())))
    shipped_batch = _paired(by_tables, by_graph, repeat)
    loads = _load_times([payload, plain, lnlens_models.model_bytes()], 3 if args.quick else 7)

    trees = len(pipe[-1].estimators_)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"model: GradientBoostingRegressor pipeline ({trees} trees) on {len(data):,} simulated rows; "
          f"load average {load} on {os.cpu_count()} cores; max |onnxruntime - scikit-learn| {worst:.1e}")
    print(f"model file: {len(payload) / 1e6:.2f} MB (the tables' graph compressed in its metadata; "
          f"as the file's own graph, uncompressed, it was {len(tables_graph.SerializeToString()) / 1e6:.1f} MB "
          f"before its tables were built at load), exported in {export_s:.1f} s; skl2onnx's plain graph "
          f"{len(plain) / 1e6:.2f} MB")
    (w, c), (pw, pc), (sw, sc) = ((a * 1e3, b * 1e3) for a, b in loads)
    print(f"OnnxModel.load, tables opened: {w:.0f} ms wall, {c:.0f} ms CPU (plain graph {pw:.0f} / {pc:.0f} ms; "
          f"the shipped model {sw:.0f} / {sc:.0f} ms)")
    print(_line("batch 10,000 channels, lookup tables, 1 thread ", batch, 1e3, "ms"))
    print(_line("batch 10,000 channels, lookup tables, 2 threads", batch2, 1e3, "ms"))
    print(_line("batch 10,000 channels, plain graph, 1 thread   ", batch_before, 1e3, "ms"))
    print(_line("single channel (plain trees below 64 rows)     ", single, 1e6, "us"))
    print(_line("single channel, plain graph                    ", single_before, 1e6, "us"))
    print(_line(f"shipped {shipped.name}-{shipped.version}, 10,000 simulated rows, tables",
                shipped_batch, 1e3, "ms", base="its own graph"), f"(max difference {shipped_err:.1e})")
    print(
        f"training the default pipeline on {n_train:,} rows: {fit_s:.2f} s here; "
        f"the shipped model's card records {card['fit_seconds']:.2f} s for its fits (model + linear) "
        f"and {card.get('build_seconds', float('nan')):.0f} s for `make model` (simulation included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
