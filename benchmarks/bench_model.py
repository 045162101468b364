"""Liquidity model benchmarks for issues [G] and [M], each against scikit-learn in the same run.

- batch: onnxruntime predicting 10,000 channels at once vs scikit-learn's ``predict`` on the same
  fitted pipeline and the same float32 rows; the model as lnlens exports it (tree ensembles as
  binned lookup tables, lnlens_core/learning/treegraph.py) and, for reference, skl2onnx's plain
  conversion of the same pipeline (how models were exported before);
- single: one channel per call (the latency a plugin sees per decision), same comparison;
- training: the time to fit the default model's pipeline on simulated data of the default
  plan's size (read from the shipped model card), and the card's own recorded build time.

The model is the default model's kind (gradient boosting, the default settings), fitted here on
rows resampled from simulated mainnet data (two neighbourhoods, two seeds; one with ``--quick``), so
every runtime serves exactly the same trees. Each figure is the median over pairs timed back to back
with scikit-learn, in wall-clock time and in this process's CPU time (which a busy machine disturbs
less: on 2 cores shared by many processes the wall clock also counts waiting for a core).

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
    return {
        "fn_s": med(wall[fn]), "base_s": med(wall[base]), "fn_cpu": med(cpu[fn]), "base_cpu": med(cpu[base]),
        "ratio": med(x / y for x, y in zip(wall[fn], wall[base], strict=True)),
        "cpu_ratio": med(x / y for x, y in zip(cpu[fn], cpu[base], strict=True) if y > 0),
    }


def _line(label: str, r: dict[str, float], unit: float, unit_name: str) -> str:
    return (
        f"{label}: onnxruntime {r['fn_s'] * unit:.1f} {unit_name}, scikit-learn {r['base_s'] * unit:.1f} {unit_name} "
        f"-> {1 / r['ratio']:.2f}x faster (wall); CPU {r['fn_cpu'] * unit:.1f} vs {r['base_cpu'] * unit:.1f} "
        f"{unit_name} -> {1 / r['cpu_ratio']:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a shorter simulation")
    args = p.parse_args(argv)

    import lnlens_models
    import onnx
    from lnlens_sim.scenario import SimSettings, load_graph
    from simdata import Run, collect, mainnet_centres
    from skl2onnx import to_onnx

    from lnlens_core.inference import OnnxModel
    from lnlens_core.learning import build_pipeline, export_onnx, fit, predict

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
    pipe = fit(build_pipeline("gbr", seed=0), train)
    fit_s = perf_counter() - t
    t = perf_counter()
    payload = export_onnx(pipe, name="bench", version="1", trained_at=0.0, metrics={}, rows=train.x)
    export_s = perf_counter() - t
    plain_model = to_onnx(pipe, np.zeros((1, data.x.shape[1]), dtype=np.float32))
    plain_model.metadata_props.extend(
        e for e in onnx.load_from_string(payload).metadata_props if e.key != "small_batch"
    )
    plain = plain_model.SerializeToString()
    model, before = OnnxModel.load(payload, threads=1), OnnxModel.load(plain, threads=1)

    x10k = data.x[rng.integers(0, len(data), 10_000)].astype(np.float32)
    noisy = rng.standard_normal((10_000, data.x.shape[1])).astype(np.float32)
    noisy[rng.random(noisy.shape) < 0.1] = np.nan
    for x in (x10k, noisy):  # the same predictions, within float32 rounding of the sums
        assert np.nanmax(np.abs(model.predict(x) - predict(pipe, x))) < 1e-5
        assert np.nanmax(np.abs(before.predict(x) - predict(pipe, x))) < 1e-5
    repeat = 7 if args.quick else 21
    skl = lambda: predict(pipe, x10k)  # noqa: E731
    batch = _paired(lambda: model.predict(x10k), skl, repeat)
    batch_before = _paired(lambda: before.predict(x10k), skl, repeat)
    one = x10k[:1]
    single_pairs = 4 if args.quick else 20
    single = _paired(lambda: model.predict(one), lambda: predict(pipe, one), single_pairs, 100)
    single_before = _paired(lambda: before.predict(one), lambda: predict(pipe, one), single_pairs, 100)

    trees = len(pipe[-1].estimators_)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"model: GradientBoostingRegressor pipeline ({trees} trees) on {len(data):,} simulated rows; "
          f"onnxruntime 1 thread; load average {load} on {os.cpu_count()} cores")
    print(f"exported as lookup tables: {len(payload) / 1e6:.1f} MB in {export_s:.1f} s "
          f"(skl2onnx's plain graph: {len(plain) / 1e6:.2f} MB)")
    print(_line("batch 10,000 channels, lookup tables", batch, 1e3, "ms"))
    print(_line("batch 10,000 channels, plain graph  ", batch_before, 1e3, "ms"))
    print(_line("single channel, lookup tables       ", single, 1e6, "us"))
    print(_line("single channel, plain graph         ", single_before, 1e6, "us"))
    print(
        f"training the default pipeline on {n_train:,} rows: {fit_s:.2f} s here; "
        f"the shipped model's card records {card['fit_seconds']:.2f} s for its fits (model + linear) "
        f"and {card.get('build_seconds', float('nan')):.0f} s for `make model` (simulation included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
