"""``make model``: train the shipped default model, reproducibly (fixed seeds, simulated mainnet data).

Writes models/lnlens_models/liquidity-default.onnx and its model card (liquidity-default.json).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from time import perf_counter  # a duration for the model card, not the wall clock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build import Plan, train_from_simulation, write  # noqa: E402

DEFAULT_PLAN = Plan(train_centres=2, seeds=(1, 2), val_seeds=(101,), nodes=200, hours=18.0, kind="gbr", seed=0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = perf_counter()
    payload, report, _ = train_from_simulation(DEFAULT_PLAN, name="liquidity-default", version="1")
    report["build_seconds"] = perf_counter() - started
    model, card = write(payload, report, HERE.parent / "lnlens_models", "liquidity-default")
    print(f"wrote {model} ({len(payload)} bytes) and {card} in {report['build_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
