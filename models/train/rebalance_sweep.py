"""Rebalance-parameter advice from simulator sweeps (seed row 72), with the evidence.

LightningLens advised "rebalance when |0.5 − ratio| exceeds max(0.15, …), moving 10–30 % of
capacity" without ever measuring it. This sweeps the balance rule of decision.py (a channel more
than ``threshold`` from 50 % local gets a circular rebalance of ``share`` of its capacity toward
it, from the channel furthest the other way, paying at most what forwarding that amount once at
the receiving channel's fee earns) over thresholds and shares, on held-out seeds of the default
node's mainnet neighbourhood, against no action on the same traffic. The advice is whichever
setting made the most net money; "no rebalancing" is a possible answer.

Run: ``.venv/bin/python models/train/rebalance_sweep.py`` (docs/MODEL.md quotes its output).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decision import run  # noqa: E402
from lnlens_sim.scenario import SimSettings, load_graph  # noqa: E402
from simdata import mainnet_centres  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="201,202,203")
    p.add_argument("--thresholds", default="0.15,0.25,0.35", help="distance from 50 %% local that triggers")
    p.add_argument("--shares", default="0.1,0.2,0.3", help="share of the target's capacity moved per rebalance")
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--warmup-hours", type=float, default=24.0)
    p.add_argument("--eval-hours", type=float, default=48.0)
    p.add_argument("--every-hours", type=float, default=6.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    graph = load_graph(SimSettings(network="mainnet"))
    centre = mainnet_centres(graph, 1)[0]
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [(None, None)] + list(
        itertools.product((float(t) for t in args.thresholds.split(",")), (float(s) for s in args.shares.split(",")))
    )
    common = dict(graph=graph, nodes=args.nodes, warmup_h=args.warmup_hours, eval_h=args.eval_hours,
                  every_h=args.every_hours)  # fmt: skip
    rows = []
    for threshold, share in settings:
        total = {"threshold": threshold, "share": share, "revenue_msat": 0, "rebalance_fee_msat": 0, "net_msat": 0,
                 "rebalances": 0, "rebalances_ok": 0, "net_by_seed_msat": {}}  # fmt: skip
        for seed in seeds:
            if threshold is None:
                o = run("none", centre, seed, None, **common)
            else:
                o = run("balance-rule", centre, seed, None, rule=(threshold, share), **common)
            total["revenue_msat"] += o.revenue_msat
            total["rebalance_fee_msat"] += o.rebalance_fee_msat
            total["net_msat"] += o.net_msat
            total["rebalances"] += o.rebalances
            total["rebalances_ok"] += o.rebalances_ok
            total["net_by_seed_msat"][seed] = o.net_msat
        rows.append(total)
        print(json.dumps(total), file=sys.stderr)
    best = max(rows, key=lambda r: (r["net_msat"], r["threshold"] is None))
    advice = (
        "no rebalancing: no setting earned back its fees"
        if best["threshold"] is None
        else f"rebalance beyond ±{best['threshold']:.2f} of 50 % local, moving {best['share']:.0%} of capacity"
    )
    result = {"settings": vars(args), "rows": rows, "advice": advice}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(seeds)} seeds, {args.warmup_hours:g} h warm-up, {args.eval_hours:g} h evaluated, "
              f"rule every {args.every_hours:g} h")  # fmt: skip
        print("| threshold | share | revenue sat | rebalance fees sat | net sat | rebalances ok/tried |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            label = ("none", "-") if r["threshold"] is None else (f"±{r['threshold']:.2f}", f"{r['share']:.0%}")
            sats = [f"{r[k] / 1000:,.0f}" for k in ("revenue_msat", "rebalance_fee_msat", "net_msat")]
            print(f"| {label[0]} | {label[1]} | {' | '.join(sats)} | {r['rebalances_ok']}/{r['rebalances']} |")
        print(f"advice: {advice}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
