"""Decision quality: follow each policy on held-out simulator seeds over the mainnet graph and count the money.

The policies and the run are lnlens_sim.sweep's (``lnlens sim sweep`` runs the same tasks on Dask, with paired
statistics); this script runs them in one process and prints totals.

Policies, each run on the same network, seed and traffic stream (the simulator draws
traffic from its own seeded stream, so only the policy differs):

- ``none``: no action.
- ``chargelnd-proportional``: charge-lnd's ``proportional`` strategy
  (lnlens_core.fees.chargelnd.strategies.Proportional, min 1 ppm, max 2000 ppm) applied
  to every channel every ``every_h`` hours; no rebalancing.
- ``balance-rule``: LightningLens's auto-recovery rebalancer as a baseline (seed row 49):
  a channel outside 35-65 % local (``rule`` threshold 0.15) gets a circular rebalance of 20 % of its capacity
  toward 50 %, from (or into) the channel furthest the other way, with a fee ceiling of
  what forwarding that amount once at the receiving channel's fee earns.
- ``balance-based``: [F]'s ``balance_based`` fee strategy (lnlens_core.fees.lnlens_strategies,
  ``fee_ppm`` = the node's median fee at the start, its other defaults); no rebalancing.
- ``model``: what lnlens's models suggest (the shipped defaults through onnxruntime): the
  liquidity model's rebalances (lnlens_core.model.suggestions), executed as circular rebalances
  with their own fee ceiling (the backtest gain), and fee opinions through the
  ``model_driven`` strategy with its defaults: the fee-response model's
  (lnlens_core.model.fee_model) when it is installed, as lnlens serves them, else the liquidity
  model's balance opinions (:func:`lnlens_core.model.suggestions.fee_suggestions`, ``--balance-opinions``).
- ``model-cap``: the same rebalances under the balance rule's fee ceiling and no fee changes,
  which separates what the model chooses from how much it is allowed to pay.

Measured over the evaluation window after a warm-up: routing revenue, rebalancing
fees paid, net = revenue - rebalancing fees, forwards decided at our node that
settled (success rate), rebalances tried and done.

Run: ``.venv/bin/python models/train/decision.py`` (docs/MODEL.md quotes its output).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lnlens_sim.scenario import SimSettings, load_graph  # noqa: E402
from lnlens_sim.sweep import POLICIES, Models, SweepSpec, Task, run_task  # noqa: E402
from simdata import mainnet_centres  # noqa: E402

from lnlens_core.model.fee_model import FeeResponseModel, default_fee_model_path  # noqa: E402
from lnlens_core.model.inference import OnnxModel  # noqa: E402


@dataclass(slots=True)
class Outcome:
    revenue_msat: int = 0
    rebalance_fee_msat: int = 0
    settled: int = 0
    decided: int = 0
    rebalances: int = 0
    rebalances_ok: int = 0

    @property
    def net_msat(self) -> int:
        return self.revenue_msat - self.rebalance_fee_msat


def run(
    policy: str,
    centre: str,
    seed: int,
    model: OnnxModel | None,
    *,
    graph=None,
    nodes: int,
    warmup_h: float,
    eval_h: float,
    every_h: float,
    rule: tuple[float, float] = (0.15, 0.2),
    fee_model=None,
) -> Outcome:
    """One policy on one network and seed (lnlens_sim.sweep.run_task, the task ``lnlens sim sweep`` runs).

    ``rule``: the balance rule's (threshold, share); ``graph`` is loaded once per process by the sweep itself.
    """
    spec = SweepSpec(nodes=nodes, warmup_h=warmup_h, eval_h=eval_h, every_h=every_h)
    models = Models(model, fee_model) if model is not None else None
    row = run_task(Task(centre, seed, policy, spec), models=models, rule=rule)
    return Outcome(**{k: row[k] for k in ("revenue_msat", "rebalance_fee_msat", "settled", "decided", "rebalances",
                                          "rebalances_ok")})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="201,202,203")
    p.add_argument("--centres", type=int, default=3, help="mainnet neighbourhoods (the default node first)")
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--warmup-hours", type=float, default=24.0)
    p.add_argument("--eval-hours", type=float, default=48.0)
    p.add_argument("--every-hours", type=float, default=6.0)
    p.add_argument("--model", default=None, help="ONNX file (default: the shipped default model)")
    p.add_argument("--policies", default=",".join(POLICIES), help="a comma-separated subset of the policies")
    p.add_argument("--balance-opinions", action="store_true",
                   help="fee opinions from the liquidity model even when a fee-response model is installed")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    policies = [q for q in args.policies.split(",") if q]
    if unknown := [q for q in policies if q not in POLICIES]:
        p.error(f"--policies: unknown {', '.join(unknown)} (choose from {', '.join(POLICIES)})")
    fee_path = None if args.balance_opinions else default_fee_model_path()
    fee_model = FeeResponseModel.load(fee_path) if fee_path is not None else None
    if args.model:
        model = OnnxModel.load(args.model)
    else:
        import lnlens_models

        model = OnnxModel.load(lnlens_models.model_bytes())
    graph = load_graph(SimSettings(network="mainnet"))
    centres = mainnet_centres(graph, args.centres)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for centre in centres:
        for seed in seeds:
            for policy in policies:
                o = run(
                    policy,
                    centre,
                    seed,
                    model,
                    graph=graph,
                    nodes=args.nodes,
                    warmup_h=args.warmup_hours,
                    eval_h=args.eval_hours,
                    every_h=args.every_hours,
                    fee_model=fee_model,
                )
                rows.append(
                    {
                        "centre": centre[:12],
                        "seed": seed,
                        "policy": policy,
                        "revenue_msat": o.revenue_msat,
                        "rebalance_fee_msat": o.rebalance_fee_msat,
                        "net_msat": o.net_msat,
                        "settled": o.settled,
                        "decided": o.decided,
                        "rebalances": o.rebalances,
                        "rebalances_ok": o.rebalances_ok,
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    totals = {}
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]
        nets = np.array([r["net_msat"] for r in mine])
        totals[policy] = {
            "runs": len(mine),
            "revenue_msat": sum(r["revenue_msat"] for r in mine),
            "rebalance_fee_msat": sum(r["rebalance_fee_msat"] for r in mine),
            "net_msat": int(nets.sum()),
            "success_rate": (sum(r["settled"] for r in mine) / max(sum(r["decided"] for r in mine), 1)),
            "rebalances": sum(r["rebalances"] for r in mine),
            "rebalances_ok": sum(r["rebalances_ok"] for r in mine),
            "best_net_runs": sum(
                1
                for r in mine
                if r["net_msat"]
                == max(x["net_msat"] for x in rows if (x["centre"], x["seed"]) == (r["centre"], r["seed"]))
            ),
        }
    fee_name = f"{fee_model.name}-{fee_model.version}" if fee_model is not None else "liquidity model (balance)"
    result = {"model": f"{model.name}-{model.version}", "fee_opinions": fee_name, "settings": vars(args),
              "totals": totals, "runs": rows}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"model {result['model']}, fee opinions {fee_name}; {len(centres)} networks x {len(seeds)} seeds; "
            f"{args.warmup_hours:g} h warm-up, {args.eval_hours:g} h evaluated, actions every {args.every_hours:g} h"
        )
        print("| policy | revenue sat | rebalance fees sat | net sat | success rate | rebalances ok/tried | best net |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for policy, t in totals.items():
            print(
                f"| {policy} | {t['revenue_msat'] / 1000:,.0f} | {t['rebalance_fee_msat'] / 1000:,.0f} | "
                f"{t['net_msat'] / 1000:,.0f} | {t['success_rate']:.3f} | {t['rebalances_ok']}/{t['rebalances']} | "
                f"{t['best_net_runs']}/{t['runs']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
