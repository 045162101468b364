"""Train the liquidity model from simulated mainnet data: ``lnlens model train --simulate`` and ``make model``.

Training runs: mainnet neighbourhoods (``nodes`` nodes around each centre) with seeds
``seeds``; validation: a held-out centre (a network none of the training runs saw) with
held-out seeds, plus the training centres under held-out seeds. No training or validation
centre is one of the nodes ``lnlens sim sweep --centres 3`` measures decisions on; those
nodes, under ``eval_seeds`` (never trained or tuned on), give the held-out evaluation.
Everything is seeded, so the same arguments give the same model bytes up to library versions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simdata
from lnlens_sim.scenario import SIM_START, SimSettings, load_graph
from simdata import Run, collect, training_centres

from lnlens_core.model.learning import Dataset, make_model

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    train_centres: int = 2
    seeds: tuple[int, ...] = (1, 2)
    val_seeds: tuple[int, ...] = (101,)
    nodes: int = 200
    hours: float = 30.0
    kind: str = "gbr"
    seed: int = 0
    eval_seeds: tuple[int, ...] = ()


def train_from_simulation(plan: Plan, *, name: str, version: str) -> tuple[bytes, dict[str, Any], Dataset]:
    """(ONNX bytes, report, validation set)."""
    graph = load_graph(SimSettings(network="mainnet"))
    centres = training_centres(graph, plan.train_centres + 1)
    train_c, held_c = centres[:-1], centres[-1]
    train_runs = [Run(c, s, nodes=plan.nodes, hours=plan.hours) for c in train_c for s in plan.seeds]
    val_runs = [Run(c, s, nodes=plan.nodes, hours=plan.hours) for c in [*train_c, held_c] for s in plan.val_seeds]
    simdata.ROUTE_COSTS.clear()
    train = collect(train_runs)
    route_cost = float(np.median(simdata.ROUTE_COSTS)) if simdata.ROUTE_COSTS else None
    val = collect(val_runs)
    note = (
        f"simulated mainnet (2026-02-03 gossip snapshot) neighbourhoods of {plan.nodes} nodes, {plan.hours:g} h each; "
        f"training centres {[c[:12] for c in train_c]} seeds {list(plan.seeds)}; validation: held-out centre "
        f"{held_c[:12]} and every centre under held-out seeds {list(plan.val_seeds)}"
    )
    extra = {"route_cost_ppm": round(route_cost, 1)} if route_cost is not None else {}
    payload, report = make_model(train, val, kind=plan.kind, seed=plan.seed, name=name, version=version,
                                 now=SIM_START, data_note=note, extra=extra)  # fmt: skip
    report["route_cost_ppm"] = extra.get("route_cost_ppm")
    report["target_moves"] = {name: {"samples": len(d), "moved": int((np.abs(d.y - d.current) > 1e-12).sum())}
                              for name, d in (("train", train), ("validation", val))}  # fmt: skip
    from lnlens_core.model.inference import OnnxModel
    from lnlens_core.model.learning import baselines, evaluate
    from lnlens_core.model.registry import sample_times

    served = OnnxModel.load(payload)
    held = val.select(np.array([g.startswith(held_c[:12]) for g in val.groups]))
    if len(held):
        report["held_out_network"] = {"model": evaluate(served.predict(held.x), held), **baselines(held)}
    # Per validation run (network:seed): where the model wins or loses against keeping the current ratio.
    report["by_validation_run"] = {}
    for group in sorted(set(val.groups)):
        part = val.select(np.array([g == group for g in val.groups]))
        report["by_validation_run"][group] = {"model": evaluate(served.predict(part.x), part), **baselines(part)}
    if plan.eval_seeds:
        report["held_out_sweep_nodes"] = evaluate_on_sweep_nodes(served, plan, graph)
    report["plan"] = {k: getattr(plan, k) for k in plan.__dataclass_fields__}
    report["data"]["train_times"] = sample_times(train)  # what the promotion gate counts
    report["data"]["simulator_sources_sha256"] = simulator_hash()
    return payload, report, val


def evaluate_on_sweep_nodes(served, plan: Plan, graph) -> dict[str, Any]:
    """The model against keeping the current ratio and 50/50 on the sweep's nodes under ``plan.eval_seeds``:
    nodes and seeds no training, validation or tuning saw. One entry per node, all seeds pooled."""
    from lnlens_sim.sweep import sized_centres

    from lnlens_core.model.learning import baselines, evaluate

    out = {}
    for centre in sized_centres(graph, 3):
        data = collect([Run(centre, s, nodes=plan.nodes, hours=plan.hours) for s in plan.eval_seeds])
        if len(data):
            out[centre[:12]] = {"model": evaluate(served.predict(data.x), data), **baselines(data)}
    return out


def simulator_hash() -> str:
    """A digest of the simulator's sources: the same digest and seeds give the same data."""
    import hashlib

    import lnlens_sim

    h = hashlib.sha256()
    for path in sorted(Path(lnlens_sim.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def write(payload: bytes, report: dict[str, Any], out: Path, stem: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    model, card = out / f"{stem}.onnx", out / f"{stem}.json"
    model.write_bytes(payload)
    card.write_text(json.dumps(report, indent=2, sort_keys=True, default=list) + "\n")
    return model, card
