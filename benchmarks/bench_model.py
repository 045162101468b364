"""Liquidity model benchmarks for issue [G], each against scikit-learn in the same run.

- batch: onnxruntime predicting 10,000 channels at once (one intra-op thread, and two) vs
  scikit-learn's ``predict`` on the same fitted pipeline and the same float32 rows;
- single: one channel per call (the latency a plugin sees per decision), same comparison;
- training: the time to fit the default model's pipeline on simulated data of the default
  plan's size (read from the shipped model card), and the card's own recorded build time.

The model is the default model's kind (gradient boosting, the default settings), fitted here
on rows resampled from simulated mainnet data, so both runtimes serve exactly the same trees.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_model.py --quick``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from time import perf_counter

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "train"))


def _paired(fn, base, pairs: int, block: int = 1) -> tuple[float, float, float]:
    """(median seconds per call of ``fn``, of ``base``, median of the per-pair ratio fn/base).

    A pair times ``block`` consecutive calls of each, back to back (alternating which goes first),
    so a load change on the shared machine hits both: the ratio is what the figures mean, the
    absolute times move with load. Blocks keep each side's caches warm as in a run of calls.
    """
    fn(), base()
    a, b = [], []
    for i in range(pairs):
        order = ((fn, a), (base, b)) if i % 2 == 0 else ((base, b), (fn, a))
        for f, times in order:
            t = perf_counter()
            for _ in range(block):
                f()
            times.append((perf_counter() - t) / block)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a shorter simulation")
    args = p.parse_args(argv)

    import lnlens_models
    from lnlens_sim.scenario import SimSettings, load_graph
    from simdata import Run, collect, mainnet_centres

    from lnlens_core.inference import OnnxModel
    from lnlens_core.learning import build_pipeline, export_onnx, fit, predict

    graph = load_graph(SimSettings(network="mainnet"))
    hours = 12.0 if args.quick else 24.0
    data = collect([Run(mainnet_centres(graph, 2)[1], 1, hours=hours)])
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
    payload = export_onnx(pipe, name="bench", version="1", trained_at=0.0, metrics={})
    model = OnnxModel.load(payload, threads=1)

    x10k = data.x[rng.integers(0, len(data), 10_000)].astype(np.float32)
    repeat = 5 if args.quick else 20
    ort_batch, skl_batch, batch_ratio = _paired(lambda: model.predict(x10k), lambda: predict(pipe, x10k), repeat)
    model2 = OnnxModel.load(payload, threads=2)
    ort2_batch, skl2_batch, batch2_ratio = _paired(lambda: model2.predict(x10k), lambda: predict(pipe, x10k), repeat)
    one = x10k[:1]
    single_pairs = 4 if args.quick else 20
    ort_one, skl_one, one_ratio = _paired(lambda: model.predict(one), lambda: predict(pipe, one), single_pairs, 100)
    assert np.nanmax(np.abs(model.predict(x10k) - predict(pipe, x10k))) < 1e-5
    assert np.nanmax(np.abs(model.predict(x10k) - model2.predict(x10k))) < 1e-6

    print(f"model: GradientBoostingRegressor pipeline ({len(pipe[-1].estimators_)} trees), onnxruntime 1 thread")
    print(
        f"batch 10,000 channels: onnxruntime {ort_batch * 1e3:.2f} ms, scikit-learn {skl_batch * 1e3:.2f} ms "
        f"-> onnxruntime takes {batch_ratio:.3f}x scikit-learn's time (median of paired runs)"
    )
    print(
        f"batch, 2 threads:      onnxruntime {ort2_batch * 1e3:.2f} ms, scikit-learn {skl2_batch * 1e3:.2f} ms "
        f"-> onnxruntime takes {batch2_ratio:.3f}x scikit-learn's time (median of paired runs)"
    )
    print(
        f"single channel:        onnxruntime {ort_one * 1e6:.1f} us, scikit-learn {skl_one * 1e6:.1f} us "
        f"-> onnxruntime takes {one_ratio:.3f}x scikit-learn's time (median of paired runs)"
    )
    print(
        f"training the default pipeline on {n_train:,} rows: {fit_s:.2f} s here; "
        f"the shipped model's card records {card['fit_seconds']:.2f} s for its fits (model + linear) "
        f"and {card.get('build_seconds', float('nan')):.0f} s for `make model` (simulation included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
