"""Decision quality of fee strategies in the simulator (docs/FEES.md, "Decision quality").

For each held-out seed and each arm, simulate the mainnet neighbourhood of the
default managed node for ``--days`` and run the fee engine every ``--interval``
through the same rails (``lnlens_core.fees.simrun``, the loop ``lnlens policy experiment``
uses too); report net fee revenue and success rates through our node.

    .venv/bin/python scripts/fees_decision_quality.py --seeds 101 102 --days 14 --json out/fees_dq.json

Arms: ``none`` (no changes), ``proportional`` (charge-lnd's proportional in one
catch-all section), ``balance_based`` and ``flow_based`` (lnlens). The engine, the
rails and the journal are the production code; only the policy file differs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from lnlens_sim.scenario import SimSettings, build

from lnlens_core.config import LensConfig
from lnlens_core.fees.api import plan_or_apply
from lnlens_core.fees.engine import FeeEngine
from lnlens_core.fees.simrun import drive, simulated_lens
from lnlens_core.plugins import get_plugin_manager

PROPORTIONAL = """[proportional]
strategy = proportional
min_fee_ppm = 10
max_fee_ppm = 1000
base_fee_msat = 1000
"""
BALANCE = """[balance]
strategy = balance_based
fee_ppm = {median}
"""
FLOW = """[flow]
strategy = flow_based
"""
REVENUE = """[revenue]
strategy = revenue_max
fee_ppm = {median}
"""
ARMS = {"none": None, "proportional": PROPORTIONAL, "balance_based": BALANCE, "flow_based": FLOW,
        "revenue_max": REVENUE}  # fmt: skip
RAILS = {"max_fee_ppm": 5000, "max_step_share": 0.25, "max_step_ppm": 50, "cooldown": "6h", "max_changes_per_day": 2,
         "charge_lnd_rails": True}  # the same rails for every arm, charge-lnd's proportional included


def run_arm(
    arm: str, seed: int, days: float, interval_s: int, nodes: int, workdir: Path, payments_per_hour: float | None = None
) -> dict:
    node = build(SimSettings(seed=seed, nodes=nodes, payments_per_hour=payments_per_hour))
    config = LensConfig(data_dir=workdir, db_path=workdir / "unused.sqlite3", backends={"policy": RAILS})
    lens = simulated_lens(config, node, pm=get_plugin_manager(load_entrypoints=False))
    text = ARMS[arm]
    engine = None
    if text is not None:
        median = int(statistics.median(c.local_policy.fee_ppm for c in node.list_channels()))
        path = workdir / f"{arm}-{seed}.ini"
        path.write_text(text.format(median=max(1, median)))
        engine = FeeEngine.from_config(lens, node, policy_path=path)
    changes = 0

    def run_engine() -> None:
        # policy apply's own path: reconcile, automatic rollbacks (off here), plan, rails, vetoes, journal
        nonlocal changes
        done = plan_or_apply(lens, node, apply=True, engine=engine)
        changes += sum(1 for r in done["results"] if r["state"] == "verified")

    drive(lens, node, days * 86_400, interval_s=interval_s, each_interval=run_engine if engine else None)
    st = node.stats
    failed_here = sum(v for k, v in st.our_failed.items() if k != "downstream")
    reached = st.our_settled + sum(st.our_failed.values())
    return {
        "arm": arm,
        "seed": seed,
        "days": days,
        "revenue_msat": st.revenue_msat,
        "our_settled": st.our_settled,
        "our_failed_here": failed_here,
        "our_failed_downstream": st.our_failed.get("downstream", 0),
        "success_rate_through_us": st.our_settled / reached if reached else None,
        "success_rate_decided_here": st.our_settled / (st.our_settled + failed_here)
        if st.our_settled + failed_here
        else None,
        "network_success_rate": st.success_rate,
        "fee_changes_applied": changes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    p.add_argument("--days", type=float, default=21)
    p.add_argument("--interval", type=int, default=6 * 3600, help="engine cadence in seconds")
    p.add_argument("--nodes", type=int, default=1000, help="mainnet neighbourhood size around our node")
    p.add_argument("--payments-per-hour", type=float, default=3000, help="network-wide payment rate")
    p.add_argument("--arms", nargs="+", default=list(ARMS)[:4], choices=list(ARMS))
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arm in args.arms:
                row = run_arm(arm, seed, args.days, args.interval, args.nodes, Path(tmp), args.payments_per_hour)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    print(f"{'arm':14} {'seed':>5} {'revenue sat':>12} {'settled':>8} {'fail here':>9} {'succ/us':>8} {'changes':>8}")
    for r in rows:
        rate = r["success_rate_through_us"]
        shown = "-" if rate is None else f"{rate:.3f}"
        print(f"{r['arm']:14} {r['seed']:>5} {r['revenue_msat'] / 1000:>12,.0f} {r['our_settled']:>8} "
              f"{r['our_failed_here']:>9} {shown:>8} {r['fee_changes_applied']:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
